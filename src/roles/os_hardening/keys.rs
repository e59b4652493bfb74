//! Keys of a `KEY VALUE` file (/etc/login.defs) set in place. The rest of the
//! distribution's file (its comments, the keys slipway leaves alone) stays
//! as it is, so the file differs between Ubuntu and Debian and cannot be a
//! whole-file `file` resource; the plan still shows the edit as a diff.
//!
//! The edit is made twice, alike: in Rust, for the plan's diff, and in awk on
//! the host, for apply. A key's uncommented lines get the new value after the
//! key's own separator; a key the file does not set is appended.

use crate::facts::HostFacts;
use crate::plan::change::{Action, Attr, Change};
use crate::resource::fsattr::PROBE_STAT;
use crate::resource::{Managed, Observed, Outcome, Resource, Thing};
use crate::shell::{REMOVE_TEMP_ON_EXIT, Script, q};

#[derive(Debug, Clone)]
pub struct KeyValues {
    path: String,
    /// In the order missing keys are appended.
    pub keys: Vec<(String, String)>,
}

/// A key is upper-case letters, digits and `_`; a value one word without quotes,
/// so both go into awk and sh literals as they are.
pub fn check_word(word: &str, value: bool) -> Result<(), String> {
    let ok = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_uppercase()
                || c.is_ascii_digit()
                || c == '_'
                || (value && (c.is_ascii_lowercase() || "./-".contains(c)))
        });
    if ok {
        Ok(())
    } else if value {
        Err(format!(
            "`{word}` is not a value: one word of letters, digits, `.`, `/`, `-` or `_`"
        ))
    } else {
        Err(format!("`{word}` is not a key"))
    }
}

/// The key a line sets and where its value begins, if it sets one.
fn split_line(line: &str) -> Option<(&str, usize)> {
    let body = line.trim_start_matches([' ', '\t']);
    if body.starts_with('#') || body.is_empty() {
        return None;
    }
    let start = line.len() - body.len();
    let key_end = body.find([' ', '\t']).unwrap_or(body.len());
    let rest = &body[key_end..];
    let sep = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    Some((&body[..key_end], start + key_end + sep))
}

impl KeyValues {
    /// Keys and values checked with [`check_word`]: they go into awk and sh as they are.
    pub fn new(path: &str, keys: Vec<(String, String)>) -> Result<Self, String> {
        for (k, v) in &keys {
            check_word(k, false)?;
            check_word(v, true)?;
        }
        Ok(Self {
            path: path.to_string(),
            keys,
        })
    }

    /// `text` with the keys set: what the awk of [`KeyValues::edit_awk`] writes.
    pub fn edit(&self, text: &str) -> String {
        let mut out = String::new();
        let mut done = Vec::new();
        for line in text.lines() {
            match split_line(line).and_then(|(k, at)| {
                let (key, value) = self.keys.iter().find(|(key, _)| key == k)?;
                Some((key, value, at))
            }) {
                Some((key, value, at)) => {
                    let prefix = &line[..at];
                    let sep = if prefix.ends_with([' ', '\t']) {
                        ""
                    } else {
                        " "
                    };
                    out.push_str(&format!("{prefix}{sep}{value}\n"));
                    done.push(key);
                }
                None => out.push_str(&format!("{line}\n")),
            }
        }
        for (key, value) in &self.keys {
            if !done.contains(&key) {
                out.push_str(&format!("{key} {value}\n"));
            }
        }
        out
    }

    fn awk_table(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        let mut s = format!("n = split(\"{}\", order, \" \")", names.join(" "));
        for (k, v) in &self.keys {
            s.push_str(&format!("; w[\"{k}\"] = \"{v}\""));
        }
        s
    }

    /// awk printing `k.KEY=VALUE` for each key the file sets (the last line
    /// setting it wins, as for login.defs), in the keys' order.
    fn read_awk(&self) -> String {
        format!(
            "BEGIN {{ {} }} !/^[ \\t]*#/ && ($1 in w) {{ v = $2; for (i = 3; i <= NF; i++) v = v \" \" $i; seen[$1] = v }} \
             END {{ for (i = 1; i <= n; i++) if (order[i] in seen) printf \"k.%s=%s\\n\", order[i], seen[order[i]] }}",
            self.awk_table()
        )
    }

    /// awk writing the edited file: [`KeyValues::edit`] on the host.
    fn edit_awk(&self) -> String {
        format!(
            "BEGIN {{ {} }} {{ line = $0 }} !/^[ \\t]*#/ && ($1 in w) {{ match(line, /^[ \\t]*[^ \\t]+[ \\t]*/); p = substr(line, 1, RLENGTH); \
             if (p !~ /[ \\t]$/) p = p \" \"; line = p w[$1]; done[$1] = 1 }} {{ print line }} \
             END {{ for (i = 1; i <= n; i++) if (!(order[i] in done)) print order[i] \" \" w[order[i]] }}",
            self.awk_table()
        )
    }

    /// What [`KeyValues::read_awk`] prints once every key is set.
    fn converged(&self) -> String {
        self.keys
            .iter()
            .map(|(k, v)| format!("k.{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Resource for KeyValues {
    fn id(&self) -> String {
        format!("file:{}", self.path)
    }

    fn manages(&self) -> Vec<Managed> {
        vec![Managed::sole(Thing::Path, &self.path)]
    }

    fn probe(&self) -> String {
        format!(
            "p={}\n{PROBE_STAT}if [ -f \"$p\" ]; then awk {} \"$p\"; fi\n",
            q(&self.path),
            q(&self.read_awk())
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        if obs.get("type") != Some("file") {
            return Outcome::blocked(format!(
                "{} is not a file: slipway sets keys in the distribution's file, which this host lacks",
                self.path
            ));
        }
        let attrs: Vec<Attr> = self
            .keys
            .iter()
            .filter_map(|(k, want)| {
                let seen = obs.get(&format!("k.{k}"));
                (seen != Some(want.as_str())).then(|| Attr::new(k, seen, Some(want)))
            })
            .collect();
        let summary = format!("set {} in {}", plural(attrs.len()), self.path);
        Outcome::update(self.id(), summary, attrs)
    }

    fn diff_source(&self, _change: &Change) -> Option<String> {
        Some(self.path.clone())
    }

    fn set_diff(&self, change: &mut Change, old: Option<&[u8]>, _facts: &HostFacts) {
        let old_text = String::from_utf8_lossy(old.unwrap_or_default());
        let new = self.edit(&old_text);
        change.diff = Some(crate::diff::file_diff(&self.path, old, new.as_bytes()));
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        debug_assert_eq!(change.action, Action::Update);
        let mut s = Script::default();
        s.line(format!("p={}", q(&self.path)));
        s.line("d=$(dirname \"$p\"); t=$(mktemp \"$d/.slipway.XXXXXX\")");
        s.line(REMOVE_TEMP_ON_EXIT);
        s.line(format!("awk {} \"$p\" > \"$t\"", q(&self.edit_awk())));
        // The edited copy must read back as converged before it replaces the file.
        s.line(format!(
            "if [ \"$(awk {} \"$t\")\" != {} ]; then echo {} >&2; exit 1; fi",
            q(&self.read_awk()),
            q(&self.converged()),
            q(&format!(
                "the edited {} did not read back as planned; the file was left unchanged",
                self.path
            ))
        ));
        s.line("chmod --reference=\"$p\" \"$t\"; chown --reference=\"$p\" \"$t\"");
        s.line("sync \"$t\"; mv -f \"$t\" \"$p\"; sync \"$d\" 2>/dev/null || true");
        s
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 key".into()
    } else {
        format!("{n} keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> KeyValues {
        KeyValues {
            path: "/etc/login.defs".into(),
            keys: [
                ("UMASK", "027"),
                ("PASS_MAX_DAYS", "365"),
                ("SHA_CRYPT_MIN_ROUNDS", "65536"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec(),
        }
    }

    const DISTRO: &str = "# login.defs\n#UMASK 002\nUMASK\t\t022\nPASS_MAX_DAYS\t99999\n#SHA_CRYPT_MIN_ROUNDS 5000\nMAIL_DIR /var/mail";

    #[test]
    fn keys_change_in_place_and_missing_ones_are_appended() {
        assert_eq!(
            defs().edit(DISTRO),
            "# login.defs\n#UMASK 002\nUMASK\t\t027\nPASS_MAX_DAYS\t365\n#SHA_CRYPT_MIN_ROUNDS 5000\nMAIL_DIR /var/mail\nSHA_CRYPT_MIN_ROUNDS 65536\n"
        );
        // Editing again changes nothing.
        let once = defs().edit(DISTRO);
        assert_eq!(defs().edit(&once), once);
        assert_eq!(split_line("UMASK"), Some(("UMASK", 5)));
        assert_eq!(
            defs().edit("UMASK\n"),
            "UMASK 027\nPASS_MAX_DAYS 365\nSHA_CRYPT_MIN_ROUNDS 65536\n"
        );
    }

    #[test]
    fn the_plan_lists_the_keys_that_differ_and_diffs_the_host_copy() {
        let facts = HostFacts::default();
        let r = defs();
        let section = "type=file\nmode=644\nk.UMASK=022\nk.PASS_MAX_DAYS=365\n";
        let mut c = r.plan(&Observed::new(section, &facts)).change.unwrap();
        assert_eq!(c.summary, "set 2 keys in /etc/login.defs");
        assert_eq!(c.attrs[0], Attr::new("UMASK", Some("022"), Some("027")));
        assert_eq!(
            c.attrs[1],
            Attr::new("SHA_CRYPT_MIN_ROUNDS", None::<String>, Some("65536"))
        );
        r.set_diff(&mut c, Some(DISTRO.as_bytes()), &facts);
        let Some(crate::plan::change::Diff::Text { unified, .. }) = &c.diff else {
            panic!("{:?}", c.diff)
        };
        assert!(
            unified.contains(
                "-UMASK\t\t022\n-PASS_MAX_DAYS\t99999\n+UMASK\t\t027\n+PASS_MAX_DAYS\t365\n"
            ),
            "{unified}"
        );
        assert!(unified.contains("+SHA_CRYPT_MIN_ROUNDS 65536"), "{unified}");
        let done = "type=file\nk.UMASK=027\nk.PASS_MAX_DAYS=365\nk.SHA_CRYPT_MIN_ROUNDS=65536\n";
        assert_eq!(r.plan(&Observed::new(done, &facts)), Outcome::unchanged());
        assert!(
            r.plan(&Observed::new("type=absent\n", &facts))
                .blocked
                .is_some()
        );
    }

    #[test]
    fn keys_and_values_are_single_words() {
        assert!(check_word("PASS_MAX_DAYS", false).is_ok());
        assert!(check_word("umask", false).is_err());
        assert!(check_word("SHA512", true).is_ok());
        for bad in ["", "a b", "x\"y", "1\n2", "$(id)"] {
            assert!(check_word(bad, true).is_err(), "{bad:?}");
        }
        let bad = vec![("UMASK".to_string(), "0'27".to_string())];
        assert!(KeyValues::new("/etc/login.defs", bad).is_err());
    }
}
