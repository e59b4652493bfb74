//! The swarm, seen from a manager: as many nodes as the inventory's managers
//! and workers, every one Ready and Active.

use crate::audit::{Check, Finding};

/// `reading`: `docker node ls` as `HOST\tSTATUS\tAVAILABILITY\tMANAGER STATUS` lines.
pub fn check(expected: usize, reading: &str) -> Check {
    let lines: Vec<Vec<&str>> = reading
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    if lines.iter().any(|cols| cols.len() < 3) {
        let why = reading.lines().next().unwrap_or_default().trim();
        return Check::new(
            "swarm",
            vec![Finding::new("docker node ls", "the swarm's nodes", why)],
            Vec::new(),
        );
    }
    let mut findings = Vec::new();
    if lines.len() != expected {
        findings.push(Finding::new(
            "nodes",
            format!("{expected} (the inventory's managers and workers)"),
            lines.len().to_string(),
        ));
    }
    for cols in &lines {
        if cols[1] != "Ready" || cols[2] != "Active" {
            findings.push(Finding::new(
                format!("node {}", cols[0]),
                "Ready, Active",
                format!("{}, {}", cols[1], cols[2]),
            ));
        }
    }
    let names: Vec<String> = lines
        .iter()
        .map(|c| match c.get(3).filter(|m| !m.is_empty()) {
            Some(m) => format!("{} ({m})", c[0]),
            None => c[0].to_string(),
        })
        .collect();
    Check::new(
        "swarm",
        findings,
        vec![format!("nodes: {}", names.join(", "))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;

    #[test]
    fn every_node_ready_and_active_and_counted() {
        let ls = "m1\tReady\tActive\tLeader\nw1\tReady\tActive\t\n";
        let c = check(2, ls);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.notes, ["nodes: m1 (Leader), w1"]);
        let c = check(3, "m1\tReady\tActive\tLeader\nw1\tDown\tDrain\t\n");
        let subjects: Vec<&str> = c.findings.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, ["nodes", "node w1"]);
        assert_eq!(c.findings[1].found, "Down, Drain");
        let c = check(
            2,
            "Error response from daemon: This node is not a swarm manager.\n",
        );
        assert_eq!(c.findings[0].subject, "docker node ls");
    }
}
