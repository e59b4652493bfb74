//! Every resource kind, declared once. A playbook's `type = "..."`, the error
//! listing the kinds, docs/playbook.md and docs/plan.schema.json all follow
//! [`KINDS`] (tests/docs.rs checks the documents); a new kind is one more
//! entry here, next to its module.

use super::{BuildContext, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;

/// Builds a resource of one kind from a rendered `[[play.resources]]` table.
pub type Builder = for<'a> fn(&Node<'a>, &BuildContext<'a>) -> InputResult<Box<dyn Resource>>;

/// One resource kind.
pub struct Kind {
    /// `type = "NAME"` in a playbook, and the `NAME:` of its resources' ids.
    pub name: &'static str,
    /// One line saying what it is; docs/playbook.md has it under the kind's heading.
    pub doc: &'static str,
    /// What of a host it manages, where no other resource may (see [`super::Managed`]).
    pub manages: &'static str,
    /// What its probe observes on the host.
    pub probe: &'static str,
    /// How a playbook writes one; `None`: only roles make it.
    pub build: Option<Builder>,
}

impl Kind {
    /// Whether a playbook can write this kind inline.
    pub fn inline(&self) -> bool {
        self.build.is_some()
    }
}

pub const FILE: Kind = Kind {
    name: "file",
    doc: "A file's content, mode and owner.",
    manages: "its `path`",
    probe: "type, mode, owner and SHA-256 of `path`",
    build: Some(super::file::build),
};

pub const DIRECTORY: Kind = Kind {
    name: "directory",
    doc: "A directory, its mode and owner.",
    manages: "its `path`",
    probe: "type, mode and owner of `path`",
    build: Some(super::directory::build),
};

pub const PACKAGE: Kind = Kind {
    name: "package",
    doc: "Debian packages, installed, upgraded or removed with apt.",
    manages: "each package it names; shared with resources that want it the same way (installed, or absent)",
    probe: "dpkg's status and version of each package (and apt's candidate for `latest`)",
    build: Some(super::package::build),
};

pub const SERVICE: Kind = Kind {
    name: "service",
    doc: "A systemd unit, enabled or disabled, running or stopped.",
    manages: "the unit `name`",
    probe: "the unit's load, active and unit-file state, and its `check`",
    build: Some(super::service::build),
};

pub const USER: Kind = Kind {
    name: "user",
    doc: "A local account: groups, shell, locked password, SSH keys.",
    manages: "the account `name`; with nothing but `name` and `groups`, only those memberships (shared)",
    probe: "the account's passwd entry, groups, password lock and authorized_keys",
    build: Some(super::user::build),
};

pub const GROUP: Kind = Kind {
    name: "group",
    doc: "A local group.",
    manages: "the group `name`",
    probe: "the group's entry and gid",
    build: Some(super::group::build),
};

pub const COMMAND: Kind = Kind {
    name: "command",
    doc: "A shell command, run as root under `set -e`.",
    manages: "nothing",
    probe: "whether `creates` exists, and the `unless` check",
    build: Some(super::command::build),
};

pub const SYSCTL: Kind = Kind {
    name: "sysctl",
    doc: "Kernel settings in a drop-in file, also applied live.",
    manages: "/etc/sysctl.d/60-NAME.conf and each key of `settings`",
    probe: "the drop-in, and each setting's current value",
    build: Some(super::sysctl::build),
};

pub const SSHD: Kind = Kind {
    name: "sshd",
    doc: "The ssh_hardening role's sshd drop-in: validated, proven by a new login, reverted unless proven.",
    manages: "the drop-in's path",
    probe: "the drop-in, ssh.socket, and the ports sshd listens on",
    build: None,
};

pub const JSON: Kind = Kind {
    name: "json",
    doc: "Top-level keys of a JSON file (Docker's daemon.json), several roles' keys merged into one.",
    manages: "the file's path; shared with the other roles' keys of that file",
    probe: "the file's type, mode, owner and content",
    build: None,
};

pub const STACK: Kind = Kind {
    name: "stack",
    doc: "A Docker Swarm stack deployed from a stack file on the leader.",
    manages: "nothing (its files are `file` resources)",
    probe: "the marker of the last deploy, the stack's services (Docker's API), and the registry's digest of each image tag no service runs yet",
    build: None,
};

pub const UFW: Kind = Kind {
    name: "ufw",
    doc: "The firewall role's UFW rules, policies and DOCKER-USER block.",
    manages: "UFW's rule files, ufw.conf, /etc/default/ufw, after.rules and after6.rules",
    probe: "the files UFW reads",
    build: None,
};

pub const SWARM: Kind = Kind {
    name: "swarm",
    doc: "A host's Swarm membership (`swarm:node`), and the leader's view of the whole swarm (`swarm:cluster`).",
    manages: "nothing",
    probe: "Docker's swarm state and, on the leader, its nodes and networks",
    build: None,
};

pub const REGISTRY_LOGIN: Kind = Kind {
    name: "registry_login",
    doc: "root logged in to a container registry with `docker login`, the password on stdin.",
    manages: "nothing (Docker keeps the credential)",
    probe: "the SHA-256 of the registry's credential in root's Docker config",
    build: None,
};

/// Every kind: first those a playbook can write, in the order docs/playbook.md
/// documents them, then those only roles make.
pub static KINDS: &[&Kind] = &[
    &FILE,
    &DIRECTORY,
    &PACKAGE,
    &SERVICE,
    &USER,
    &GROUP,
    &COMMAND,
    &SYSCTL,
    &SSHD,
    &JSON,
    &STACK,
    &UFW,
    &SWARM,
    &REGISTRY_LOGIN,
];

/// The kind a playbook names, if it can write it.
pub fn inline(name: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.name == name && k.inline())
}

/// The kinds a playbook can write, for help: `file, directory, ...`.
pub fn inline_names() -> String {
    KINDS
        .iter()
        .filter(|k| k.inline())
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_inline_kinds_come_first() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        let first_role_only = KINDS.iter().position(|k| !k.inline()).unwrap();
        assert!(KINDS[first_role_only..].iter().all(|k| !k.inline()));
        assert_eq!(
            inline_names(),
            "file, directory, package, service, user, group, command, sysctl"
        );
        assert!(inline("sshd").is_none() && inline("file").is_some());
    }
}
