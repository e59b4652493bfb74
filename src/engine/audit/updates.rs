//! Pending security updates, from what apt already knows (no `apt-get
//! update`: the audit changes nothing): the upgrades `apt-get -s upgrade`
//! would take from a `-security` pocket.

use crate::audit::{Check, Finding};

/// `reading`: the `Inst ` and `E: ` lines of `apt-get -s upgrade`.
pub fn check(reading: &str) -> Check {
    if let Some(e) = reading.lines().find(|l| l.starts_with("E: ")) {
        return Check::new(
            "updates",
            vec![Finding::new("apt-get -s upgrade", "a simulation", e)],
            Vec::new(),
        );
    }
    let upgrades: Vec<&str> = reading.lines().filter(|l| l.starts_with("Inst ")).collect();
    let security: Vec<&str> = upgrades
        .iter()
        .filter(|l| l.contains("-security"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let notes = vec![format!(
        "{} upgrades pending, {} of them security updates (as of the host's last apt-get update)",
        upgrades.len(),
        security.len()
    )];
    let findings = if security.is_empty() {
        Vec::new()
    } else {
        vec![Finding::new(
            "security updates",
            "none pending",
            security.join(" "),
        )]
    };
    Check::new("updates", findings, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;

    #[test]
    fn only_the_security_pocket_counts() {
        let apt = include_str!("fixtures/apt_upgrade.txt");
        let c = check(apt);
        assert_eq!(c.status, Status::Differs);
        assert_eq!(c.findings[0].found, "libssl3t64 openssl");
        assert!(c.notes[0].starts_with("3 upgrades pending, 2 of them"));
        assert_eq!(check("").status, Status::Ok);
        let locked = check("E: Could not open lock file /var/lib/dpkg/lock-frontend\n");
        assert_eq!(locked.findings[0].subject, "apt-get -s upgrade");
    }
}
