//! Building POSIX sh for the host. Only sh and coreutils are assumed there.

/// Quotes `s` as one sh word.
pub fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A piece of shell with the bytes it reads from the payload stream, in order.
/// Payload bytes travel over stdin, never on a command line, so file contents
/// (and the secrets in them) do not show up in `ps` or in sudo's log.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub sh: String,
    pub payloads: Vec<Vec<u8>>,
}

impl Script {
    pub fn new(sh: impl Into<String>) -> Self {
        Self {
            sh: sh.into(),
            payloads: Vec::new(),
        }
    }

    pub fn line(&mut self, line: impl AsRef<str>) -> &mut Self {
        self.sh.push_str(line.as_ref());
        self.sh.push('\n');
        self
    }

    /// Appends a payload and returns the shell that writes it to stdout.
    pub fn payload(&mut self, bytes: Vec<u8>) -> String {
        let cmd = format!("slipway_payload {}", bytes.len());
        self.payloads.push(bytes);
        cmd
    }

    pub fn append(&mut self, other: Script) {
        self.sh.push_str(&other.sh);
        if !other.sh.ends_with('\n') {
            self.sh.push('\n');
        }
        self.payloads.extend(other.payloads);
    }
}

/// Lists the temp files `$t` (and `$b`, when set) in the registry the next
/// run's lock empties (see `engine::lock`), and removes them however the step
/// ends, a dropped connection included. The registry is for a writer killed
/// outright, which runs no trap.
pub const REMOVE_TEMP_ON_EXIT: &str = "mkdir -p /var/lib/slipway; printf '%s\\n' \"$t\" ${b:+\"$b\"} >> /var/lib/slipway/temps\n\
trap 'rm -f \"$t\" ${b:+\"$b\"}' EXIT; trap 'exit 1' HUP INT TERM PIPE";

/// Defined at the top of every script slipway runs. The payload stream is moved
/// to fd 3 so that commands run by the script cannot swallow it from stdin.
pub const PRELUDE: &str = r#"exec 3<&0 </dev/null
slipway_payload() { head -c "$1" <&3; }
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(q("it's"), r"'it'\''s'");
        assert_eq!(q(""), "''");
    }
}
