//! Host-key verification against an OpenSSH `known_hosts` file.
//!
//! Entries are keyed by the address the user connects to (`host` for port 22,
//! `[host]:port` otherwise), exactly as OpenSSH writes them, so the file can
//! be shared with the user's own `ssh`.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use russh::keys::ssh_key::{HashAlg, PublicKey};
use russh::keys::{Algorithm, known_hosts};

use super::{HostKeyPolicy, TransportError};

mod replace;
pub use replace::replace_host_keys;

/// What one connection needs to judge the key a server offers.
#[derive(Debug, Clone)]
pub struct HostKeyCheck {
    /// The inventory name, for messages.
    pub name: String,
    /// The address as connected to: the name the entry is recorded under.
    pub host: String,
    pub port: u16,
    pub known_hosts: std::path::PathBuf,
    pub policy: HostKeyPolicy,
}

/// `SHA256:<base64>`, the form `ssh` and `ssh-keygen -l` print.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl HostKeyCheck {
    /// Accepts `key` or says precisely why not; under accept-new an unknown
    /// key is recorded first.
    pub fn verify(&self, key: &PublicKey) -> Result<(), TransportError> {
        let path = &self.known_hosts;
        let changed = |line| TransportError::HostKeyChanged {
            host: self.name.clone(),
            fingerprint: fingerprint(key),
            known_hosts: path.display().to_string(),
            line,
        };
        match known_hosts::check_known_hosts_path(&self.host, self.port, key, path) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(russh::keys::Error::KeyChanged { line }) => {
                return Err(changed(physical_line(path, line)));
            }
            Err(e) => return Err(self.unreadable(e)),
        }
        // The host is on record, but with keys of other types only. Trusting
        // a new type here would let a man in the middle pick an algorithm we
        // have no record for; the connection already prefers recorded types.
        let recorded = known_hosts::known_host_keys_path(&self.host, self.port, path)
            .map_err(|e| self.unreadable(e))?;
        if let Some((line, _)) = recorded.first() {
            return Err(changed(physical_line(path, *line)));
        }
        match self.policy {
            HostKeyPolicy::Strict => Err(TransportError::HostKeyUnknown {
                host: self.name.clone(),
                fingerprint: fingerprint(key),
                known_hosts: path.display().to_string(),
            }),
            HostKeyPolicy::AcceptNew => {
                ensure_file(path)
                    .and_then(|()| {
                        known_hosts::learn_known_hosts_path(&self.host, self.port, key, path)
                            .map_err(std::io::Error::other)
                    })
                    .map_err(|e| TransportError::Connect {
                        host: self.name.clone(),
                        addr: self.addr(),
                        reason: format!("cannot record host key in {}: {e}", path.display()),
                    })?;
                tracing::info!(
                    host = %self.name,
                    fingerprint = %fingerprint(key),
                    known_hosts = %path.display(),
                    "recorded new host key"
                );
                Ok(())
            }
        }
    }

    /// Key types already on record for this host, so negotiation can ask for
    /// one of them first (as OpenSSH does) instead of tripping over a type
    /// we never saw.
    pub fn recorded_algorithms(&self) -> Vec<Algorithm> {
        known_hosts::known_host_keys_path(&self.host, self.port, &self.known_hosts)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, key)| key.algorithm())
            .collect()
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn unreadable(&self, e: russh::keys::Error) -> TransportError {
        TransportError::Connect {
            host: self.name.clone(),
            addr: self.addr(),
            reason: format!("cannot read {}: {e}", self.known_hosts.display()),
        }
    }
}

/// Orders `preferred` host-key algorithms so those recorded come first.
pub fn prefer_recorded(preferred: &[Algorithm], recorded: &[Algorithm]) -> Vec<Algorithm> {
    let is_recorded = |alg: &Algorithm| {
        recorded.iter().any(|r| match (r, alg) {
            // A recorded RSA key verifies under every RSA signature hash.
            (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
            (r, a) => r == a,
        })
    };
    let (mut first, rest): (Vec<_>, Vec<_>) = preferred.iter().cloned().partition(is_recorded);
    first.extend(rest);
    first
}

/// Creates the file (and its directory) with OpenSSH's private modes if
/// missing; existing ones are left as they are.
pub fn ensure_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// russh numbers only the lines that are not comments; editors and
/// `ssh-keygen -R` need the real line number.
pub fn physical_line(path: &Path, russh_line: usize) -> usize {
    let Ok(file) = std::fs::File::open(path) else {
        return russh_line;
    };
    let mut counted = 0;
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        let Ok(line) = line else { break };
        if line.first() != Some(&b'#') {
            counted += 1;
            if counted == russh_line {
                return index + 1;
            }
        }
    }
    russh_line
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn check(dir: &Path, policy: HostKeyPolicy) -> HostKeyCheck {
        HostKeyCheck {
            name: "web1".into(),
            host: "10.0.0.5".into(),
            port: 2222,
            known_hosts: dir.join("sub").join("known_hosts"),
            policy,
        }
    }

    #[test]
    fn changed_key_reports_the_real_line_despite_comments() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(dir.path(), HostKeyPolicy::AcceptNew);
        std::fs::create_dir_all(c.known_hosts.parent().unwrap()).unwrap();
        let text = format!(
            "# comment\n# another\nother ssh-ed25519 {KEY_B}\n[10.0.0.5]:2222 ssh-ed25519 {KEY_A}\n"
        );
        std::fs::write(&c.known_hosts, text).unwrap();
        match c.verify(&key(KEY_B)) {
            Err(TransportError::HostKeyChanged {
                line, fingerprint, ..
            }) => {
                assert_eq!(line, 4);
                assert_eq!(fingerprint, fingerprint_of(KEY_B));
            }
            other => panic!("expected HostKeyChanged, got {other:?}"),
        }
        assert!(c.verify(&key(KEY_A)).is_ok());
    }

    #[test]
    fn accept_new_creates_private_file_and_then_knows_the_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let strict = check(dir.path(), HostKeyPolicy::Strict);
        assert!(matches!(
            strict.verify(&key(KEY_A)),
            Err(TransportError::HostKeyUnknown { .. })
        ));
        let new = check(dir.path(), HostKeyPolicy::AcceptNew);
        new.verify(&key(KEY_A)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&new.known_hosts), 0o600);
        assert_eq!(mode(new.known_hosts.parent().unwrap()), 0o700);
        let text = std::fs::read_to_string(&new.known_hosts).unwrap();
        // russh starts a new file with an empty line; harmless.
        assert!(
            text.trim_start()
                .starts_with("[10.0.0.5]:2222 ssh-ed25519 "),
            "{text}"
        );
        strict.verify(&key(KEY_A)).unwrap();
    }

    #[test]
    fn other_key_type_on_record_is_not_learned() {
        let dir = tempfile::tempdir().unwrap();
        let c = check(dir.path(), HostKeyPolicy::AcceptNew);
        std::fs::create_dir_all(c.known_hosts.parent().unwrap()).unwrap();
        // An ECDSA key on record; the server now offers ed25519.
        let ecdsa = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHZhyI8s4dD5IC3tX3/RB09CpMgty/UmVvqbp2PFaR4VE/p+dVP/y9wAEZFXjHKs3n9V/GzHyAON+m+SQluPIwQ=";
        let line = format!("[10.0.0.5]:2222 ecdsa-sha2-nistp256 {ecdsa}\n");
        std::fs::write(&c.known_hosts, line).unwrap();
        assert!(matches!(
            c.verify(&key(KEY_A)),
            Err(TransportError::HostKeyChanged { line: 1, .. })
        ));
        let p256 = Algorithm::Ecdsa {
            curve: russh::keys::EcdsaCurve::NistP256,
        };
        assert_eq!(c.recorded_algorithms(), vec![p256.clone()]);
        let order = prefer_recorded(
            &[Algorithm::Ed25519, p256.clone()],
            std::slice::from_ref(&p256),
        );
        assert_eq!(order, vec![p256, Algorithm::Ed25519]);
    }

    #[test]
    fn recorded_rsa_prefers_every_rsa_hash() {
        let sha512 = Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        };
        let order = prefer_recorded(
            &[Algorithm::Ed25519, sha512.clone()],
            &[Algorithm::Rsa { hash: None }],
        );
        assert_eq!(order, vec![sha512, Algorithm::Ed25519]);
    }

    fn fingerprint_of(b64: &str) -> String {
        let f = fingerprint(&key(b64));
        assert!(f.starts_with("SHA256:") && !f.ends_with('='), "{f}");
        f
    }
}
