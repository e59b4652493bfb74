//! Resource kinds. Every kind has the same shape (see [`Resource`]): a probe
//! that observes, a pure `plan` from observed facts to a change, and the
//! shell that applies that change.

pub mod command;
pub mod directory;
pub mod facts_file;
pub mod file;
pub mod group;
pub mod json_keys;
pub mod package;
pub mod registry_login;
pub mod service;
pub mod sshd;
pub mod stack;
pub mod swarm;
pub mod sysctl;
pub mod ufw;
pub mod user;

pub mod fsattr;
pub mod kind;
mod spec;

use std::fmt::Debug;

use crate::facts::HostFacts;
use crate::plan::change::{Attr, Change};
use crate::shell::Script;

pub use kind::{KINDS, Kind};
pub use spec::{BuildContext, build};

/// What of a host a resource manages, which no other resource on that host may
/// manage too (see `desired`): two owners of one file or one sysctl key undo
/// each other on every apply, or one silently wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    pub thing: Thing,
    pub key: String,
    /// `None`: this resource alone may manage it. `Some(want)`: others may
    /// too, as long as they want the same (a package installed by two roles).
    pub want: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Thing {
    /// A file or directory (one namespace: a file where a directory is wanted conflicts too).
    Path,
    Package,
    /// A systemd unit.
    Unit,
    User,
    Group,
    SysctlKey,
    /// A user's membership of a group, as `USER:GROUP`: only ever added, so shareable.
    Membership,
}

impl Thing {
    pub fn noun(self) -> &'static str {
        match self {
            Thing::Path => "path",
            Thing::Package => "package",
            Thing::Unit => "systemd unit",
            Thing::User => "user",
            Thing::Group => "group",
            Thing::SysctlKey => "sysctl key",
            Thing::Membership => "group membership",
        }
    }
}

impl Managed {
    /// Managed by this resource alone.
    pub fn sole(thing: Thing, key: impl Into<String>) -> Self {
        Self {
            thing,
            key: key.into(),
            want: None,
        }
    }

    /// Shareable with resources that want the same.
    pub fn shared(thing: Thing, key: impl Into<String>, want: &'static str) -> Self {
        Self {
            thing,
            key: key.into(),
            want: Some(want),
        }
    }

    /// Whether two resources may both manage what `self` and `other` name.
    pub fn compatible(&self, other: &Managed) -> bool {
        self.thing != other.thing
            || self.key != other.key
            || (self.want.is_some() && self.want == other.want)
    }
}

/// What a probe saw, handed to [`Resource::plan`] and [`Resource::apply`].
pub struct Observed<'a> {
    /// The resource's own section of the probe output.
    pub section: &'a str,
    pub facts: &'a HostFacts,
    /// Values known only during apply (a Swarm join token), asked for with
    /// [`Resource::needs`]. None while planning.
    pub runtime: Option<&'a Runtime>,
}

/// Values gathered during apply from other hosts, by key. They are secrets:
/// registered with the redactor and never stored in a plan.
pub type Runtime = std::collections::BTreeMap<String, String>;

/// A value a change needs at apply time: the stdout of `command` run on `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub host: String,
    pub key: String,
    pub command: String,
}

impl<'a> Observed<'a> {
    pub fn new(section: &'a str, facts: &'a HostFacts) -> Self {
        Self {
            section,
            facts,
            runtime: None,
        }
    }

    /// A runtime value; empty while planning.
    pub fn runtime(&self, key: &str) -> &str {
        self.runtime
            .and_then(|r| r.get(key))
            .map_or("", String::as_str)
    }

    /// `key=value` lines of the section; the first value for a key wins.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.section
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// Every value of a repeated key, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.section
            .lines()
            .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .collect()
    }
}

/// What `plan` decided for one resource on one host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub change: Option<Change>,
    /// Parts left alone, each with the reason a user should see.
    pub skipped: Vec<String>,
    /// The host is in a state this resource must not touch; the host fails.
    pub blocked: Option<String>,
}

impl Outcome {
    pub fn unchanged() -> Self {
        Self::default()
    }
    pub fn change(change: Change) -> Self {
        Self {
            change: Some(change),
            ..Self::default()
        }
    }
    /// An update listing `attrs`, or nothing to do when none differ.
    pub fn update(id: String, summary: impl Into<String>, attrs: Vec<Attr>) -> Self {
        if attrs.is_empty() {
            Self::unchanged()
        } else {
            Self::change(
                Change::new(id, crate::plan::change::Action::Update, summary).with_attrs(attrs),
            )
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            skipped: vec![reason.into()],
            ..Self::default()
        }
    }
    pub fn blocked(reason: impl Into<String>) -> Self {
        Self {
            blocked: Some(reason.into()),
            ..Self::default()
        }
    }
}

pub trait Resource: Send + Sync + Debug {
    /// `kind:name`, stable across runs: plans are matched to hosts by it.
    fn id(&self) -> String;

    /// Shell printing this resource's facts. Runs inside the one batched probe;
    /// its output must be stable while the host is unchanged (it is fingerprinted).
    /// Package and unit states are asked for with [`Resource::packages`] and
    /// [`Resource::units`] instead: one query serves every resource of the host.
    fn probe(&self) -> String;

    /// Debian packages whose dpkg status this resource needs. The probe asks dpkg
    /// once for the packages of all resources of a host, and the section starts
    /// with the `pkg=NAME STATUS VERSION` line of each (what `dpkg-query -W
    /// -f='pkg=${Package} ${db:Status-Abbrev} ${Version}\n'` prints, in its
    /// order; none for a package dpkg does not know).
    fn packages(&self) -> &[String] {
        &[]
    }

    /// systemd units whose state this resource needs. The probe asks systemd
    /// once for the units of all resources of a host, and the section has, per
    /// unit in this order and after the package lines, `load=`, `active=` and
    /// `enabled=` lines (LoadState, ActiveState, UnitFileState).
    fn units(&self) -> &[String] {
        &[]
    }

    /// What of a probe section counts for the fingerprint a saved plan keeps:
    /// the section without what changes while the host does not (timestamps).
    fn stable(&self, section: &str) -> String {
        section.to_string()
    }

    /// Pure: observed facts in, what to do out.
    fn plan(&self, observed: &Observed<'_>) -> Outcome;

    /// The shell that makes `change` happen. Runs under `set -e`.
    /// `observed` is what the plan was computed from (re-checked before apply).
    fn apply(&self, change: &Change, observed: &Observed<'_>) -> Script;

    /// Services to restart once at the end of the play when this resource changed.
    fn notify(&self) -> &[String] {
        &[]
    }

    /// For changes shown as a diff: the remote file whose current content the diff needs.
    fn diff_source(&self, _change: &Change) -> Option<String> {
        None
    }

    /// For kinds that write a file: its path and the content it must have, when
    /// that is known without the host (what `slipway render` writes out).
    fn content(&self) -> Option<FileContent<'_>> {
        None
    }

    /// Fills in the change's diff from the remote file's current content.
    fn set_diff(&self, _change: &mut Change, _old: Option<&[u8]>, _facts: &HostFacts) {}

    /// Downcasting, for the few places that merge resources of one kind
    /// (see `desired`) or read what one declares (the audit): only those kinds answer.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }

    /// For services: the unit and the command proving it works, waited for
    /// after a start, and by a handler restarting that unit.
    fn service_check(&self) -> Option<(&str, &str)> {
        None
    }

    /// For changes that can cut access (sshd settings, the firewall): how the
    /// host puts the previous state back by itself unless a new login proves
    /// the change in time (see `engine::guard`).
    fn guard(&self) -> Option<Guard> {
        None
    }

    /// Values this change needs from other hosts before it can be applied; the
    /// engine gets them first (and applies the hosts they come from first).
    fn needs(&self, _change: &Change) -> Vec<Need> {
        Vec::new()
    }

    /// Whether a probe after apply must find nothing left to do (false for commands).
    fn converges(&self) -> bool {
        true
    }

    /// What of the host this resource manages: two resources of one host may
    /// not manage the same thing (see [`Managed`]). Checked before any connection.
    fn manages(&self) -> Vec<Managed> {
        Vec::new()
    }
}

/// A file as a resource will write it.
#[derive(Debug, Clone, Copy)]
pub struct FileContent<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
    /// The content involves a secret.
    pub sensitive: bool,
}

/// A change that can cut access, applied like a router's "commit confirmed":
/// `save` keeps the state it replaces, a timer on the host runs `restore`
/// after `window` seconds, and only a NEW connection as `user` on `port` that
/// reaches root disarms it. The timer needs no connection, so the host comes
/// back even when slipway or its session dies between change and proof.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Who must still get in; `None`: the user slipway connects as.
    pub user: Option<String>,
    pub port: u16,
    /// Seconds before the host reverts by itself.
    pub window: u32,
    /// Saves what the change replaces; runs just before it, under `set -e`.
    pub save: String,
    /// Puts the saved state back and reloads; runs on the host, with no
    /// connection (the timer) or over the old one (a failed proof).
    pub restore: String,
}

/// Parses a `mode` value: three or four octal digits.
pub fn parse_mode(mode: &str) -> Result<u32, String> {
    let ok = (3..=4).contains(&mode.len()) && mode.chars().all(|c| ('0'..='7').contains(&c));
    if !ok {
        return Err(format!(
            "invalid mode `{mode}`: write 3 or 4 octal digits as a string, e.g. \"0644\""
        ));
    }
    u32::from_str_radix(mode, 8).map_err(|e| e.to_string())
}

pub fn format_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    #[default]
    Present,
    Absent,
}
