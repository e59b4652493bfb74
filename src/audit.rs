//! What `slipway audit` found on each host, as data: the engine computes it
//! (see `engine::audit`), and the text and JSON renderings show the same value.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The host is as the inventory and playbook say.
    Ok,
    /// Something differs: see the findings.
    Differs,
    /// Nothing to compare against (the role is not in the host's plays).
    Skipped,
}

/// One thing that differs: what (`ciphers`, `8088/tcp`), what the roles
/// would have, and what the host has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub subject: String,
    pub expected: String,
    pub found: String,
}

impl Finding {
    pub fn new(
        subject: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// One family of checks on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `sshd`, `ports`, `updates`, `fail2ban`, `docker`, `swarm`.
    pub name: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What was seen that is as expected, for the reader (the ports listening, the bans).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Check {
    /// Ok without findings, differs with any.
    pub fn new(name: &str, findings: Vec<Finding>, notes: Vec<String>) -> Self {
        Self {
            name: name.into(),
            status: if findings.is_empty() {
                Status::Ok
            } else {
                Status::Differs
            },
            findings,
            notes,
        }
    }

    pub fn skipped(name: &str, why: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Skipped,
            findings: Vec::new(),
            notes: vec![why.into()],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAudit {
    pub host: String,
    pub address: String,
    pub checks: Vec<Check>,
    /// The host could not be audited (no connection, the remote command failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub remote_commands: u32,
}

impl HostAudit {
    pub fn differs(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Differs)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub hosts: Vec<HostAudit>,
}

impl Audit {
    pub fn failed(&self) -> usize {
        self.hosts.iter().filter(|h| h.error.is_some()).count()
    }

    pub fn differing(&self) -> usize {
        self.hosts.iter().filter(|h| h.differs()).count()
    }
}
