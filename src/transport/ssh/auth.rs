//! Proving who we are: ssh-agent keys, then key files, then a password,
//! in the order OpenSSH uses, stopping at the first that works.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use russh::client::{AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};

use super::Client;
use crate::transport::{ConnectSpec, TransportError};

/// The environment variable read for an encrypted key's passphrase.
pub const PASSPHRASE_ENV: &str = "SLIPWAY_KEY_PASSPHRASE";

/// Where the passphrase of an encrypted identity file comes from.
#[derive(Clone, Default)]
pub enum KeyPassphrase {
    /// `SLIPWAY_KEY_PASSPHRASE`, else a prompt when stdin is a terminal.
    #[default]
    EnvOrPrompt,
    /// This passphrase, for every encrypted key.
    Given(String),
    /// Encrypted keys are skipped (and named in the error).
    Unavailable,
}

// By hand, so that a passphrase never reaches a log line.
impl std::fmt::Debug for KeyPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyPassphrase::EnvOrPrompt => "EnvOrPrompt",
            KeyPassphrase::Given(_) => "Given(<redacted>)",
            KeyPassphrase::Unavailable => "Unavailable",
        })
    }
}

impl KeyPassphrase {
    /// The passphrase for `path`, or why there is none (for the error).
    async fn obtain(&self, path: &Path) -> Result<String, String> {
        const HOW: &str = "set SLIPWAY_KEY_PASSPHRASE or run from a terminal to be asked";
        match self {
            KeyPassphrase::Given(p) => Ok(p.clone()),
            KeyPassphrase::Unavailable => Err(format!("encrypted, no passphrase ({HOW})")),
            KeyPassphrase::EnvOrPrompt => {
                if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
                    return Ok(p);
                }
                if !std::io::stdin().is_terminal() {
                    return Err(format!("encrypted, no passphrase ({HOW})"));
                }
                let prompt = format!("Passphrase for {}: ", path.display());
                tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|e| format!("encrypted, cannot ask for the passphrase: {e}"))
            }
        }
    }
}

/// Tries every method in turn; the error lists what was tried (paths and
/// methods only, never secrets).
pub(super) async fn authenticate(
    handle: &mut Handle<Client>,
    spec: &ConnectSpec,
    passphrase: &KeyPassphrase,
) -> Result<(), TransportError> {
    let mut auth = Attempts {
        handle,
        user: &spec.user,
        tried: Vec::new(),
        rsa_hash: None,
    };
    let failed = |tried: Vec<String>, why: Option<String>| {
        let mut reason = if tried.is_empty() {
            "nothing to try: no ssh-agent, no identity file, no password".to_string()
        } else {
            format!("tried {}", tried.join(", "))
        };
        if let Some(why) = why {
            reason.push_str(&format!("; {why}"));
        }
        TransportError::Auth {
            user: spec.user.clone(),
            host: spec.name.clone(),
            reason,
        }
    };
    match auth.run(spec, passphrase).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(failed(auth.tried, None)),
        Err(e) => Err(failed(auth.tried, Some(format!("the server hung up: {e}")))),
    }
}

struct Attempts<'a> {
    handle: &'a mut Handle<Client>,
    user: &'a str,
    tried: Vec<String>,
    /// Asked of the server at the first RSA key only: it can take a second.
    rsa_hash: Option<Option<HashAlg>>,
}

impl Attempts<'_> {
    async fn run(
        &mut self,
        spec: &ConnectSpec,
        passphrase: &KeyPassphrase,
    ) -> Result<bool, russh::Error> {
        if std::env::var_os("SSH_AUTH_SOCK").is_some() && self.agent().await? {
            return Ok(true);
        }
        for path in &spec.identity_files {
            let key = match load_key(path, passphrase).await {
                Ok(key) => key,
                Err(why) => {
                    self.tried.push(format!("{} ({why})", path.display()));
                    continue;
                }
            };
            let hash = self.hash_for(key.algorithm().is_rsa()).await;
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let result = self.handle.authenticate_publickey(self.user, key).await?;
            if self.judge(result, path.display().to_string()) {
                return Ok(true);
            }
        }
        if let Some(password) = &spec.password {
            let result = self
                .handle
                .authenticate_password(self.user, password)
                .await?;
            return Ok(self.judge(result, "password".into()));
        }
        Ok(false)
    }

    /// Every key the agent holds; a broken agent is noted, not fatal.
    async fn agent(&mut self) -> Result<bool, russh::Error> {
        let mut agent = match AgentClient::connect_env().await {
            Ok(agent) => agent,
            Err(e) => {
                self.tried.push(format!("ssh-agent (unreachable: {e})"));
                return Ok(false);
            }
        };
        if let Some(binding) = self.handle.agent_session_binding() {
            // Only destination-constrained keys need this; older agents
            // reject the extension and still sign with the rest.
            let _ = agent.bind_session(binding, false).await;
        }
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                self.tried.push(format!("ssh-agent (failed: {e})"));
                return Ok(false);
            }
        };
        let mut offered = 0;
        for identity in identities {
            let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity else {
                continue;
            };
            offered += 1;
            let hash = self.hash_for(key.algorithm().is_rsa()).await;
            let result = self
                .handle
                .authenticate_publickey_with(self.user, key, hash, &mut agent)
                .await;
            match result {
                Ok(AuthResult::Success) => return Ok(true),
                Ok(AuthResult::Failure { .. }) => {}
                // The agent declined to sign; the handle stays usable.
                Err(e) => tracing::debug!("ssh-agent could not sign: {e:?}"),
            }
        }
        self.tried.push(format!("ssh-agent ({offered} keys)"));
        Ok(false)
    }

    /// OpenSSH rejects SHA-1 RSA signatures; use what the server announced.
    async fn hash_for(&mut self, is_rsa: bool) -> Option<HashAlg> {
        if !is_rsa {
            return None;
        }
        if let Some(known) = self.rsa_hash {
            return known;
        }
        let hash = self
            .handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        self.rsa_hash = Some(hash);
        hash
    }

    fn judge(&mut self, result: AuthResult, what: String) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                partial_success: true,
                ..
            } => {
                self.tried.push(format!(
                    "{what} (accepted, but the server wants a second factor)"
                ));
                false
            }
            AuthResult::Failure { .. } => {
                self.tried.push(format!("{what} (rejected)"));
                false
            }
        }
    }
}

/// Reads an identity file, decrypting it if needed; the error is a short
/// note for the list of what was tried.
async fn load_key(path: &Path, passphrase: &KeyPassphrase) -> Result<PrivateKey, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "not found".to_string(),
            _ => format!("unreadable: {e}"),
        })?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let secret = passphrase.obtain(path).await?;
            russh::keys::decode_secret_key(&text, Some(&secret))
                .map_err(|_| "encrypted, wrong passphrase".to_string())
        }
        Err(e) => Err(format!("not a usable private key: {e}")),
    }
}
