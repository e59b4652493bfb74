//! The plan: a value describing, per host, what apply will change and what
//! the changes were computed from. Renderers print it; `--out` saves it.

pub mod change;
pub mod compute;
pub mod saved;

use serde::{Deserialize, Serialize};

use crate::facts::HostFacts;
pub use change::{Action, Change};

/// A change and where it sits in the playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Index of the play in the playbook.
    pub play: usize,
    /// Index of the resource within the host's resources for that play.
    pub index: usize,
    #[serde(flatten)]
    pub change: Change,
    /// Salted sha256 of exactly what apply will run for this change, so a saved
    /// plan can tell whether the playbook still asks for the same work (content
    /// of sensitive files included) without holding anything secret.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub resource: String,
    pub reason: String,
}

/// What a resource's probe section hashed to when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub resource: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostPlan {
    pub host: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
    pub changes: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skip>,
    /// Handlers (service restarts) the changes will trigger, per play.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<Handler>,
    pub fingerprints: Vec<Fingerprint>,
    /// What taking the host's lock found that the user should know: a revert
    /// the host made by itself, a wait for an interrupted run, a late proof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    pub remote_commands: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handler {
    pub play: usize,
    pub service: String,
}

impl HostPlan {
    pub fn failed(host: &str, address: &str, error: String, remote_commands: u32) -> Self {
        Self {
            host: host.to_string(),
            address: address.to_string(),
            error: Some(error),
            remote_commands,
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub hosts: Vec<HostPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub changes: usize,
    pub hosts_changing: usize,
    pub hosts: usize,
    pub failed: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        Summary {
            changes: self.hosts.iter().map(|h| h.changes.len()).sum(),
            hosts_changing: self.hosts.iter().filter(|h| !h.changes.is_empty()).count(),
            hosts: self.hosts.len(),
            failed: self.hosts.iter().filter(|h| h.error.is_some()).count(),
        }
    }

    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(|h| !h.changes.is_empty())
    }
}
