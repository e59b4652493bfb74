//! fail2ban: the jails the fail2ban role configures are running; the bans
//! are reported, not judged.

use crate::audit::{Check, Finding};

/// The enabled jails of a jail file (`[sshd]` ... `enabled = true`).
pub fn enabled_jails(jail_file: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<&str> = None;
    for line in jail_file.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name);
        } else if let (Some(name), Some((k, v))) = (current, line.split_once('='))
            && k.trim() == "enabled"
            && v.trim() == "true"
            && name != "DEFAULT"
        {
            out.push(name.to_string());
        }
    }
    out
}

/// `reading`: `fail2ban-client status`, then `jail NAME` and that jail's status.
pub fn check(expected: &[String], reading: &str) -> Check {
    let Some(list) = reading
        .lines()
        .find_map(|l| l.split_once("Jail list:").map(|(_, r)| r))
    else {
        let why = reading.lines().next().unwrap_or("no answer").trim();
        return Check::new(
            "fail2ban",
            vec![Finding::new(
                "fail2ban",
                format!("running, jails {}", expected.join(", ")),
                why,
            )],
            Vec::new(),
        );
    };
    let running: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|j| !j.is_empty())
        .collect();
    let findings = expected
        .iter()
        .filter(|j| !running.contains(&j.as_str()))
        .map(|j| Finding::new(format!("jail {j}"), "running", "not running"))
        .collect();
    let mut notes = Vec::new();
    for section in reading.split("\njail ").skip(1) {
        let name = section.lines().next().unwrap_or_default().trim();
        let field = |key: &str| {
            section
                .lines()
                .find_map(|l| l.split_once(key).map(|(_, v)| v.trim().to_string()))
                .unwrap_or_default()
        };
        let ips = field("Banned IP list:");
        notes.push(format!(
            "jail {name}: {} banned now ({} in total){}",
            field("Currently banned:"),
            field("Total banned:"),
            if ips.is_empty() {
                String::new()
            } else {
                format!(": {ips}")
            }
        ));
    }
    Check::new("fail2ban", findings, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;

    const STATUS: &str = include_str!("fixtures/fail2ban.txt");

    #[test]
    fn jails_running_with_their_bans() {
        let jails = enabled_jails(
            "[DEFAULT]\nenabled = true\nbantime = 600\n\n[sshd]\nenabled = true\nport = 22\n\n[nginx]\nenabled = false\n",
        );
        assert_eq!(jails, ["sshd"]);
        let c = check(&jails, STATUS);
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert_eq!(
            c.notes,
            ["jail sshd: 1 banned now (4 in total): 203.0.113.9"]
        );
        let c = check(&["sshd".into(), "recidive".into()], STATUS);
        assert_eq!(
            c.findings,
            [Finding::new("jail recidive", "running", "not running")]
        );
        let down = check(
            &jails,
            "Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?\n",
        );
        assert_eq!(down.status, Status::Differs);
        assert!(
            down.findings[0]
                .found
                .starts_with("Failed to access socket")
        );
    }
}
