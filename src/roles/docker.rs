//! `docker`: Docker Engine from Docker's official apt repository (keyring in
//! /etc/apt/keyrings, a deb822 source) or the distribution's `docker.io`;
//! daemon.json managed key by key; verified with `docker info`. Private
//! registries: see `registries`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::logrotate::DAEMON_JSON_VALIDATE;
use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::facts::HostFacts;
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::resource::directory::Directory;
use crate::resource::facts_file::FactsFile;
use crate::resource::fsattr::FsAttrs;
use crate::resource::json_keys::JsonKeys;
use crate::resource::package::Package;
use crate::resource::service::Service;
use crate::resource::user::User;

pub struct Docker;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// download.docker.com: docker-ce, cli, containerd.io, buildx and compose plugins.
    Official,
    /// The distribution's docker.io package.
    Distribution,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    pub docker_source: Source,
    /// Base URL of Docker's apt repositories (a mirror of it works too).
    pub docker_repo_url: String,
    /// daemon.json `storage-driver`; empty leaves Docker's choice.
    pub docker_storage_driver: String,
    /// daemon.json `userland-proxy`. Off (as CIS Docker 2.15 advises), a
    /// published port is reached through iptables alone, also from a
    /// container on the same node, and the firewall's DOCKER-USER rules
    /// decide for every client; on, docker-proxy answers local clients on
    /// the host's INPUT path instead.
    pub docker_userland_proxy: bool,
    /// More daemon.json keys (they win over the ones slipway sets).
    pub docker_daemon_options: Map<String, Value>,
    /// Added to the docker group, with `docker_users`.
    pub deploy_user: String,
    pub docker_users: Vec<String>,
    /// Private registries: { address, ca, username, password (a secret) }.
    pub docker_registries: Vec<super::registries::RegistryVar>,
    /// Hosts of this group log in to the registries (they deploy the stacks).
    pub swarm_managers_group: String,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            docker_source: Source::Official,
            docker_repo_url: "https://download.docker.com/linux".into(),
            docker_storage_driver: String::new(),
            docker_userland_proxy: false,
            docker_daemon_options: Map::new(),
            deploy_user: "deploy".into(),
            docker_users: Vec::new(),
            docker_registries: Vec::new(),
            swarm_managers_group: "managers".into(),
        }
    }
}

pub const KEYRING: &str = "/etc/apt/keyrings/docker.asc";
pub const OFFICIAL_PACKAGES: &[&str] = &[
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
];

/// Debian's architecture name for what `uname -m` says.
pub fn deb_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" => "armhf",
        other => other,
    }
}

/// The deb822 source for this host's OS release.
pub fn official_source(url: &str, facts: &HostFacts) -> String {
    format!(
        "{MANAGED}\nTypes: deb\nURIs: {url}/{}\nSuites: {}\nComponents: stable\nArchitectures: {}\nSigned-By: {KEYRING}\n",
        facts.os_id,
        facts.os_codename,
        deb_arch(&facts.arch)
    )
}

impl TypedRole for Docker {
    type Vars = Vars;
    const NAME: &'static str = "docker";
    const ABOUT: &'static str = "Docker Engine (official repository or docker.io), daemon.json, deploy user in the docker group";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        if !v.docker_repo_url.starts_with("https://") {
            return Err(ctx.var_error(
                "docker_repo_url",
                format!(
                    "role docker on {}: docker_repo_url must be an https:// URL, not `{}`",
                    ctx.host.name, v.docker_repo_url
                ),
            ));
        }
        let mut keys = Map::new();
        if !v.docker_storage_driver.is_empty() {
            keys.insert(
                "storage-driver".into(),
                Value::String(v.docker_storage_driver.clone()),
            );
        }
        keys.insert(
            "userland-proxy".into(),
            Value::Bool(v.docker_userland_proxy),
        );
        keys.extend(v.docker_daemon_options.clone());
        // daemon.json goes first, so the daemon's first start already uses it.
        let mut out: Vec<Box<dyn Resource>> = vec![Box::new(JsonKeys {
            path: "/etc/docker/daemon.json".into(),
            keys,
            validate: Some(DAEMON_JSON_VALIDATE.into()),
            notify: vec!["docker".into()],
        })];
        match v.docker_source {
            // curl: the swarm roles read Docker's API through its socket.
            Source::Distribution => out.push(Box::new(Package::present(&["docker.io", "curl"]))),
            Source::Official => {
                out.push(Box::new(Package::present(&["ca-certificates", "curl"])));
                out.push(Box::new(Directory {
                    path: "/etc/apt/keyrings".into(),
                    state: crate::resource::Presence::Present,
                    attrs: FsAttrs::root(0o755),
                }));
                out.push(Box::new(Command {
                    name: "fetch Docker's apt signing key".into(),
                    run: format!(
                        ". /etc/os-release\ncurl -fsSL \"{}/$ID/gpg\" -o {KEYRING}.tmp\nchmod a+r {KEYRING}.tmp\nmv {KEYRING}.tmp {KEYRING}",
                        v.docker_repo_url
                    ),
                    creates: Some(KEYRING.into()),
                    unless: None,
                    notify: Vec::new(),
                }));
                let url = v.docker_repo_url.clone();
                out.push(Box::new(FactsFile {
                    file: config_file(
                        "/etc/apt/sources.list.d/docker.sources",
                        String::new(),
                        0o644,
                    ),
                    render: Arc::new(move |facts| official_source(&url, facts).into_bytes()),
                }));
                // A new source means a stale cache: refresh whenever something is installed.
                out.push(Box::new(Package {
                    cache_valid_time: 0,
                    ..Package::present(OFFICIAL_PACKAGES)
                }));
            }
        }
        out.push(Box::new(Service {
            check: Some("[ -S /run/docker.sock ]".into()),
            verify: Some("docker info >/dev/null".into()),
            ..Service::running("docker")
        }));
        // After the service: `docker login` needs the daemon.
        let manager = ctx.host.groups.contains(&v.swarm_managers_group);
        out.extend(super::registries::resources(
            ctx,
            &v.docker_registries,
            manager,
        )?);
        let users = std::iter::once(&v.deploy_user)
            .chain(&v.docker_users)
            .filter(|u| !u.is_empty());
        for u in users {
            out.push(Box::new(User {
                name: u.clone(),
                groups: vec!["docker".into()],
                ..User::default()
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_source_for_ubuntu_noble() {
        let facts = HostFacts {
            os_id: "ubuntu".into(),
            os_codename: "noble".into(),
            arch: "x86_64".into(),
            ..HostFacts::default()
        };
        let s = official_source("https://download.docker.com/linux", &facts);
        assert!(
            s.contains("URIs: https://download.docker.com/linux/ubuntu\n"),
            "{s}"
        );
        assert!(s.contains("Suites: noble\n"), "{s}");
        assert!(s.contains("Architectures: amd64\n"), "{s}");
        assert!(
            s.contains("Signed-By: /etc/apt/keyrings/docker.asc\n"),
            "{s}"
        );
    }
}
