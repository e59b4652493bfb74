//! One change a resource needs on one host: the unit of a plan.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// A command that will run (it has no state to compare).
    Run,
}

impl Action {
    pub fn symbol(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
            Action::Run => '>',
        }
    }
}

/// An attribute that differs: `mode 0644 -> 0600`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Attr {
    pub fn new(name: &str, from: Option<impl ToString>, to: Option<impl ToString>) -> Self {
        Self {
            name: name.to_string(),
            from: from.map(|v| v.to_string()),
            to: to.map(|v| v.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Diff {
    /// A unified diff of the file's text.
    Text { path: String, unified: String },
    /// Binary or large content: sizes and hashes only.
    Binary {
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<Blob>,
        new: Blob,
    },
    /// The content involves a secret; nothing about it is shown.
    Sensitive { path: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `kind:name`, e.g. `file:/etc/motd`.
    pub resource: String,
    pub action: Action,
    /// One line a person reads: "install curl, jq".
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<Attr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
}

impl Change {
    pub fn new(resource: String, action: Action, summary: impl Into<String>) -> Self {
        Self {
            resource,
            action,
            summary: summary.into(),
            attrs: Vec::new(),
            diff: None,
        }
    }

    pub fn with_attrs(mut self, attrs: Vec<Attr>) -> Self {
        self.attrs = attrs;
        self
    }
}
