//! The audit's one remote command per host: every reading runs in parallel
//! (fail2ban-client and apt are slow), each into its own file of a private
//! directory removed on exit, and is printed in order under a marker line.
//! Nothing is written anywhere else: apt runs as nobody, so it reads its
//! package cache, or builds one in memory, and can write none.

use std::collections::BTreeMap;

use crate::shell::Script;

const MARK: &str = "@@slipway-audit ";

/// What is read, by section name. Every reading says what failed on its own
/// output (stderr included), so a check can tell "absent" from "broken".
pub const READINGS: &[(&str, &str)] = &[
    ("sshd", "/usr/sbin/sshd -T 2>&1"),
    ("listening", "ss -Hltnup 2>&1"),
    (
        "containers",
        "command -v docker >/dev/null || exit 0; docker ps --format '{{.Names}}\t{{.Ports}}' 2>&1",
    ),
    (
        "services",
        "command -v docker >/dev/null || exit 0; [ \"$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)\" = true ] || exit 0; docker service ls --format '{{.Name}}\t{{.Ports}}' 2>&1",
    ),
    (
        "nodes",
        "command -v docker >/dev/null || exit 0; docker node ls --format '{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}' 2>&1",
    ),
    (
        "updates",
        "runuser -u nobody -- apt-get -s upgrade 2>&1 | grep -E '^(Inst |E: )'",
    ),
    (
        "fail2ban",
        "command -v fail2ban-client >/dev/null || { echo 'fail2ban-client: not installed'; exit 0; }\n\
         jails=$(fail2ban-client status 2>&1); printf '%s\\n' \"$jails\"\n\
         for j in $(printf '%s\\n' \"$jails\" | sed -n 's/.*Jail list:[[:space:]]*//p' | tr ',' ' '); do\n\
         printf 'jail %s\\n' \"$j\"; fail2ban-client status \"$j\" 2>&1; done",
    ),
    (
        "daemon_json",
        "if [ -e /etc/docker/daemon.json ]; then cat /etc/docker/daemon.json; else echo '@@absent'; fi",
    ),
    (
        "docker",
        "command -v docker >/dev/null || { echo 'docker: not installed'; exit 0; }; docker info --format 'running {{.ServerVersion}}' 2>&1",
    ),
];

pub fn script() -> Script {
    let mut s = Script::default();
    s.line("d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT");
    for (name, sh) in READINGS {
        s.line(format!("( {sh}\n) >\"$d/{name}\" 2>&1 </dev/null &"));
    }
    s.line("wait");
    for (name, _) in READINGS {
        s.line(format!("printf '{MARK}{name}\\n'; cat \"$d/{name}\""));
    }
    s.line(format!("printf '{MARK}end\\n'"));
    s
}

/// The remote output, split into its readings by name.
pub fn parse(stdout: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<&str> = None;
    let mut body = String::new();
    for line in stdout.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix(MARK) {
            if let Some(prev) = current.take() {
                out.insert(prev.to_string(), std::mem::take(&mut body));
            }
            let name = name.trim_end();
            if name == "end" {
                return if out.len() == READINGS.len() {
                    Ok(out)
                } else {
                    Err(format!(
                        "the audit output was cut short ({} of {} readings)",
                        out.len(),
                        READINGS.len()
                    ))
                };
            }
            current = Some(name);
            body.clear();
        } else {
            body.push_str(line);
        }
    }
    Err("the audit output was cut short (no end marker)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_readings_and_refuses_a_cut_output() {
        let mut out = String::new();
        for (name, _) in READINGS {
            out.push_str(&format!("{MARK}{name}\n{name} says\n"));
        }
        assert!(parse(&out).is_err());
        out.push_str(&format!("{MARK}end\n"));
        let r = parse(&out).unwrap();
        assert_eq!(r["sshd"], "sshd says\n");
        assert_eq!(r.len(), READINGS.len());
    }
}
