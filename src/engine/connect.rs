//! From an inventory host to an open connection: ~/.ssh/config fills in what
//! the inventory leaves unsaid (HostName, User, Port, IdentityFile, ProxyJump).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Host, home_dir};
use crate::transport::ssh_config::{self, SshConfigEntry};
use crate::transport::{ConnectSpec, HostKeyPolicy};

const KEEPALIVE: Duration = Duration::from_secs(15);

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
    let entry = ssh_config::lookup(&ssh_config_path(), &host.name)
        .map_err(|e| format!("~/.ssh/config: {e}"))?;
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
        user: host
            .user
            .clone()
            .or_else(|| entry.user.clone())
            .unwrap_or_else(local_user),
        identity_files,
        password: None,
        known_hosts: host.known_hosts.clone(),
        host_key_policy: host.host_key_policy,
        connect_timeout: host.connect_timeout,
        keepalive_interval: KEEPALIVE,
        proxy_jump: None,
    };
    let jump = host.proxy_jump.clone().or_else(|| entry.proxy_jump.clone());
    let proxy_jump = match jump.as_deref() {
        None | Some("none") => None,
        Some(j) => Some(Box::new(jump_spec(j, &base)?)),
    };
    Ok(ConnectSpec { proxy_jump, ..base })
}

/// `[user@]host[:port]`, resolved through ~/.ssh/config like any host.
fn jump_spec(jump: &str, via: &ConnectSpec) -> Result<ConnectSpec, String> {
    let first = jump.split(',').next().unwrap_or(jump).trim();
    let (user, rest) = match first.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, first),
    };
    let (alias, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("bad port in ProxyJump `{jump}`"))?,
            ),
        ),
        None => (rest, None),
    };
    let entry: SshConfigEntry = ssh_config::lookup(&ssh_config_path(), alias).unwrap_or_default();
    Ok(ConnectSpec {
        name: format!("{alias} (jump host)"),
        address: entry.host_name.clone().unwrap_or_else(|| alias.to_string()),
        port: port.or(entry.port).unwrap_or(22),
        user: user.or(entry.user).unwrap_or_else(|| via.user.clone()),
        identity_files: if entry.identity_files.is_empty() {
            via.identity_files.clone()
        } else {
            entry.identity_files
        },
        password: None,
        known_hosts: via.known_hosts.clone(),
        host_key_policy: if via.host_key_policy == HostKeyPolicy::AcceptNew {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: via.connect_timeout,
        keepalive_interval: KEEPALIVE,
        proxy_jump: None,
    })
}
