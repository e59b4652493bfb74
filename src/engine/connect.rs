//! From an inventory host to an open connection: ~/.ssh/config fills in what
//! the inventory leaves unsaid (HostName, User, Port, IdentityFile, ProxyJump).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Host, home_dir};
use crate::transport::ConnectSpec;
use crate::transport::ssh_config::{self, parse_jump};

const KEEPALIVE: Duration = Duration::from_secs(15);

/// `SLIPWAY_SSH_CONFIG` points at another file than ~/.ssh/config.
fn ssh_config_path() -> PathBuf {
    std::env::var_os("SLIPWAY_SSH_CONFIG")
        .map_or_else(|| home_dir().join(".ssh/config"), PathBuf::from)
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

fn default_identities() -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home_dir().join(".ssh").join(n))
        .filter(|p| p.exists())
        .collect()
}

/// The connection for `host`. Inventory settings win over ~/.ssh/config.
pub fn spec(host: &Host) -> Result<ConnectSpec, String> {
    spec_with(host, &ssh_config_path())
}

pub fn spec_with(host: &Host, config: &Path) -> Result<ConnectSpec, String> {
    let entry =
        ssh_config::lookup(config, &host.name).map_err(|e| format!("{}: {e}", config.display()))?;
    let address = if host.address_given {
        host.address.clone()
    } else {
        entry
            .host_name
            .clone()
            .unwrap_or_else(|| host.address.clone())
    };
    let identity_files = match &host.identity_file {
        Some(p) => vec![p.clone()],
        None if !entry.identity_files.is_empty() => entry.identity_files.clone(),
        None => default_identities(),
    };
    let base = ConnectSpec {
        name: host.name.clone(),
        address,
        port: host.port.or(entry.port).unwrap_or(22),
        user: host.user.clone().or(entry.user).unwrap_or_else(local_user),
        identity_files,
        password: host.password.clone(),
        known_hosts: host.known_hosts.clone(),
        host_key_policy: host.host_key_policy,
        connect_timeout: host.connect_timeout,
        keepalive_interval: KEEPALIVE,
        proxy_jump: None,
    };
    let jump = match host.proxy_jump.clone().or(entry.proxy_jump) {
        None => None,
        Some(j) if j == "none" => None,
        Some(j) => Some(Box::new(jump_spec(&j, &base, config)?)),
    };
    Ok(ConnectSpec {
        proxy_jump: jump,
        ..base
    })
}

/// The first hop of a ProxyJump, resolved through the ssh config like any host;
/// it is checked against the same known_hosts with the same policy.
fn jump_spec(jump: &str, via: &ConnectSpec, config: &Path) -> Result<ConnectSpec, String> {
    let hop = parse_jump(jump.split(',').next().unwrap_or(jump))?;
    let entry = ssh_config::lookup(config, &hop.host).unwrap_or_default();
    Ok(ConnectSpec {
        name: format!("{} (jump host)", hop.host),
        address: entry.host_name.unwrap_or_else(|| hop.host.clone()),
        port: hop.port.or(entry.port).unwrap_or(22),
        user: hop.user.or(entry.user).unwrap_or_else(|| via.user.clone()),
        identity_files: if entry.identity_files.is_empty() {
            via.identity_files.clone()
        } else {
            entry.identity_files
        },
        password: None,
        proxy_jump: None,
        ..via.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::HostKeyPolicy;

    fn host(name: &str) -> Host {
        Host {
            name: name.into(),
            address: name.into(),
            address_given: false,
            port: None,
            user: None,
            identity_file: None,
            known_hosts: PathBuf::from("/kh"),
            host_key_policy: HostKeyPolicy::Strict,
            become_: crate::config::Become::None,
            become_password_env: None,
            connect_timeout: Duration::from_secs(5),
            proxy_jump: None,
            password: None,
            groups: Vec::new(),
            vars: Default::default(),
        }
    }

    #[test]
    fn ssh_config_fills_what_the_inventory_leaves_unsaid() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host web1\n  HostName 192.0.2.10\n  User ops\n  Port 2222\n  IdentityFile /keys/web\n  ProxyJump jumper@bastion:2200\n\
             Host bastion\n  HostName 192.0.2.1\n",
        )
        .unwrap();
        let s = spec_with(&host("web1"), &cfg).unwrap();
        assert_eq!(
            (s.address.as_str(), s.port, s.user.as_str()),
            ("192.0.2.10", 2222, "ops")
        );
        assert_eq!(s.identity_files, vec![PathBuf::from("/keys/web")]);
        let j = s.proxy_jump.unwrap();
        assert_eq!(
            (j.address.as_str(), j.port, j.user.as_str()),
            ("192.0.2.1", 2200, "jumper")
        );
        assert_eq!(j.known_hosts, PathBuf::from("/kh"));
    }

    #[test]
    fn the_inventory_wins_over_ssh_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host web1\n  HostName 192.0.2.10\n  User ops\n  Port 2222\n",
        )
        .unwrap();
        let mut h = host("web1");
        h.address = "198.51.100.7".into();
        h.address_given = true;
        h.user = Some("root".into());
        h.port = Some(22);
        let s = spec_with(&h, &cfg).unwrap();
        assert_eq!(
            (s.address.as_str(), s.port, s.user.as_str()),
            ("198.51.100.7", 22, "root")
        );
        assert!(s.proxy_jump.is_none());
    }
}
