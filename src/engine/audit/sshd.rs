//! sshd: every setting the ssh_hardening drop-in sets, against what the
//! server really uses (`sshd -T`). The expectation is the drop-in the role
//! renders for this host, so the audit follows the role's defaults and the
//! inventory's variables without a list of its own.

use std::collections::BTreeMap;

use crate::audit::{Check, Finding};

/// `Key value` lines of an sshd configuration, keys lower-cased, in order.
pub fn settings(config: &str) -> Vec<(String, String)> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            Some((k.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// The spellings `sshd -T` prints for values it accepts under another name.
fn canonical(key: &str, value: &str) -> String {
    let value = value.to_ascii_lowercase();
    match (key, value.as_str()) {
        ("permitrootlogin", "prohibit-password") => "without-password".into(),
        _ => value,
    }
}

/// Compares the drop-in's settings with `sshd -T`'s output. A keyword sshd
/// prints on several lines (Port, AllowUsers) is compared as the list of them.
pub fn check(drop_in: &str, sshd_t: &str) -> Check {
    let mut effective: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in settings(sshd_t) {
        effective.entry(k).or_default().push(v);
    }
    if !effective.contains_key("port") {
        let why = sshd_t.lines().next().unwrap_or("no output").trim();
        return Check::new(
            "sshd",
            vec![Finding::new(
                "sshd -T",
                "the effective configuration",
                format!("it failed: {why}"),
            )],
            Vec::new(),
        );
    }
    let mut findings = Vec::new();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (k, v) in settings(drop_in) {
        // sshd keeps the first value it reads: a repeated keyword adds a list entry.
        match wanted.iter_mut().find(|(key, _)| *key == k) {
            Some((_, list)) => {
                list.push(' ');
                list.push_str(&v);
            }
            None => wanted.push((k, v)),
        }
    }
    for (key, want) in &wanted {
        let want_words: Vec<String> = want.split_whitespace().map(|w| canonical(key, w)).collect();
        let found = effective.get(key).map(|vs| {
            vs.iter()
                .flat_map(|v| v.split_whitespace())
                .map(|w| canonical(key, w))
                .collect::<Vec<_>>()
        });
        match found {
            Some(words) if words == want_words => {}
            Some(words) => findings.push(Finding::new(key, want, words.join(" "))),
            None => findings.push(Finding::new(key, want, "not reported by sshd -T")),
        }
    }
    let notes = vec![format!(
        "{} settings of the drop-in compared with sshd -T",
        wanted.len()
    )];
    Check::new("sshd", findings, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;

    const DROP_IN: &str = include_str!("fixtures/drop_in.conf");
    const SSHD_T: &str = include_str!("fixtures/sshd_t.txt");

    #[test]
    fn a_converged_server_matches_its_drop_in() {
        let c = check(DROP_IN, SSHD_T);
        assert_eq!(c.status, Status::Ok, "{c:?}");
    }

    #[test]
    fn a_weak_cipher_added_by_hand_is_named() {
        let weak = SSHD_T.replace(
            "ciphers chacha20-poly1305@openssh.com,",
            "ciphers aes128-cbc,chacha20-poly1305@openssh.com,",
        );
        let c = check(DROP_IN, &weak);
        assert_eq!(c.status, Status::Differs);
        assert_eq!(c.findings.len(), 1, "{c:?}");
        let f = &c.findings[0];
        assert_eq!(f.subject, "ciphers");
        assert!(f.found.starts_with("aes128-cbc,"), "{f:?}");
        assert!(f.expected.starts_with("chacha20-poly1305@openssh.com,"));
    }

    #[test]
    fn lists_extra_ports_synonyms_and_missing_keywords() {
        let more = SSHD_T.replace("port 22\n", "port 22\nport 2222\n");
        let c = check(DROP_IN, &more);
        assert_eq!(c.findings[0].subject, "port");
        assert_eq!(c.findings[0].found, "22 2222");

        let drop_in = format!(
            "{}PermitRootLogin prohibit-password\nAllowUsers deploy ops\nFutureKeyword yes\n",
            DROP_IN.replace("PermitRootLogin no\n", "")
        );
        let sshd_t = SSHD_T.replace("permitrootlogin no", "permitrootlogin without-password")
            + "allowusers deploy\nallowusers ops\n";
        let c = check(&drop_in, &sshd_t);
        let subjects: Vec<&str> = c.findings.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, ["futurekeyword"], "{c:?}");
        assert_eq!(c.findings[0].found, "not reported by sshd -T");
    }

    #[test]
    fn a_failing_sshd_t_is_a_finding() {
        let c = check(
            DROP_IN,
            "Missing privilege separation directory: /run/sshd\n",
        );
        assert_eq!(c.findings[0].subject, "sshd -T");
        assert!(c.findings[0].found.contains("privilege separation"));
    }
}
