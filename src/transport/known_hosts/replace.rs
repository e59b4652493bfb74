//! Replacing a host's recorded keys with the ones it serves now, as learned
//! over a connection that was authenticated against the old ones (after
//! `ssh_hardening` regenerated them): the new login that proves the change,
//! and every later run, then find them on record.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use russh::keys::known_hosts;
use russh::keys::ssh_key::PublicKey;

use super::{ensure_file, physical_line};

/// Makes `path` record exactly `keys` for `host` on `port`: entries of other
/// keys are dropped (from a line that names other hosts too, only this host's
/// name is), keys not on record are appended. Returns those appended.
pub fn replace_host_keys(
    path: &Path,
    host: &str,
    port: u16,
    keys: &[PublicKey],
) -> std::io::Result<Vec<PublicKey>> {
    ensure_file(path)?;
    let recorded =
        known_hosts::known_host_keys_path(host, port, path).map_err(std::io::Error::other)?;
    let same = |a: &PublicKey, b: &PublicKey| a.key_data() == b.key_data();
    let stale: Vec<usize> = recorded
        .iter()
        .filter(|(_, r)| !keys.iter().any(|k| same(k, r)))
        .map(|(line, _)| physical_line(path, *line))
        .collect();
    let new: Vec<PublicKey> = keys
        .iter()
        .filter(|k| !recorded.iter().any(|(_, r)| same(k, r)))
        .cloned()
        .collect();
    if stale.is_empty() && new.is_empty() {
        return Ok(new);
    }
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut text = String::new();
    for (i, line) in std::fs::read_to_string(path)?.lines().enumerate() {
        if stale.contains(&(i + 1)) {
            if let Some(kept) = without_host(line, &name) {
                text.push_str(&kept);
                text.push('\n');
            }
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    for k in &new {
        let openssh = k.to_openssh().map_err(std::io::Error::other)?;
        // Type and key only: russh reads the fields split by single spaces.
        let mut fields = openssh.split(' ');
        let (kind, b64) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        text.push_str(&format!("{name} {kind} {b64}\n"));
    }
    write_atomically(path, text.as_bytes())?;
    Ok(new)
}

/// `line` without `name` among its hosts; `None` when nothing would be left
/// (a line for this host alone, hashed or not).
fn without_host(line: &str, name: &str) -> Option<String> {
    let (hosts, rest) = line.split_once(' ')?;
    let others: Vec<&str> = hosts.split(',').filter(|h| *h != name).collect();
    if others.is_empty() || !hosts.contains(',') {
        return None;
    }
    Some(format!("{} {rest}", others.join(",")))
}

/// Beside the file, then renamed over it, with its mode: a crash leaves the
/// old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mode = std::fs::metadata(path)?.permissions().mode();
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::HostKeyPolicy;
    use crate::transport::known_hosts::HostKeyCheck;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";
    const P256: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHZhyI8s4dD5IC3tX3/RB09CpMgty/UmVvqbp2PFaR4VE/p+dVP/y9wAEZFXjHKs3n9V/GzHyAON+m+SQluPIwQ=";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn stale_keys_go_new_ones_are_added_other_hosts_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            format!(
                "# mine\n10.0.0.5 ecdsa-sha2-nistp256 {P256}\nother,10.0.0.5 ssh-ed25519 {ED2}\n\
                 10.0.0.5 ssh-ed25519 {ED}\nother ecdsa-sha2-nistp256 {P256}\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The host now serves ED (on record) and ED2 (recorded only for `other`... and it).
        let added = replace_host_keys(&path, "10.0.0.5", 22, &[key(ED)]).unwrap();
        assert!(added.is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "# mine\nother ssh-ed25519 {ED2}\n10.0.0.5 ssh-ed25519 {ED}\nother ecdsa-sha2-nistp256 {P256}\n"
            )
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A key type never seen before is now accepted, strictly.
        let added = replace_host_keys(&path, "10.0.0.5", 2222, &[key(ED2)]).unwrap();
        assert_eq!(added.len(), 1);
        let strict = HostKeyCheck {
            name: "web1".into(),
            host: "10.0.0.5".into(),
            port: 2222,
            known_hosts: path.clone(),
            policy: HostKeyPolicy::Strict,
        };
        strict.verify(&key(ED2)).unwrap();
        assert!(strict.verify(&key(ED)).is_err());
    }
}
