//! The real transport: one russh connection per host, carrying every command
//! of a run as its own channel.

mod auth;
mod channel;

pub use auth::KeyPassphrase;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use russh::client;
use russh::keys::PublicKeyOrCertificate;
use tokio::sync::Semaphore;

use super::known_hosts::{HostKeyCheck, prefer_recorded};
use super::{ConnectSpec, ExecOutput, Held, Transport, TransportError};

/// Channels open at once on one connection. OpenSSH refuses the 11th session
/// by default (MaxSessions 10) and frees a slot a little after our close, so
/// stay below the limit; a refused open is also retried (see `channel`).
const MAX_CHANNELS: usize = 8;

/// Unanswered keepalives after which the peer counts as gone.
const KEEPALIVE_MAX: u32 = 3;

/// An authenticated connection to one host.
pub struct SshTransport {
    name: String,
    handle: client::Handle<Client>,
    channels: Arc<Semaphore>,
    /// The jump host's connection carries ours, so it lives as long.
    jump: Option<Box<SshTransport>>,
    /// SHA256 fingerprint of the host key the server presented (and we accepted).
    host_key: String,
    /// Why the connection ended, once it has (see `Client::disconnected`).
    lost: Arc<Mutex<Option<String>>>,
}

impl SshTransport {
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key
    }
}

/// Connects and authenticates, asking for key passphrases as
/// [`KeyPassphrase::EnvOrPrompt`] says.
pub async fn connect(spec: &ConnectSpec) -> Result<SshTransport, TransportError> {
    connect_with(spec, &KeyPassphrase::EnvOrPrompt).await
}

/// [`connect`] with an explicit source for key passphrases.
pub async fn connect_with(
    spec: &ConnectSpec,
    passphrase: &KeyPassphrase,
) -> Result<SshTransport, TransportError> {
    // Boxed: a jump host is connected by the same function.
    Box::pin(connect_inner(spec, passphrase)).await
}

async fn connect_inner(
    spec: &ConnectSpec,
    passphrase: &KeyPassphrase,
) -> Result<SshTransport, TransportError> {
    let jump = match &spec.proxy_jump {
        Some(jump_spec) => Some(Box::new(connect_with(jump_spec, passphrase).await?)),
        None => None,
    };
    let check = HostKeyCheck {
        name: spec.name.clone(),
        host: spec.address.clone(),
        port: spec.port,
        known_hosts: spec.known_hosts.clone(),
        policy: spec.host_key_policy,
    };
    let rejection = Arc::new(Mutex::new(None));
    let accepted = Arc::new(Mutex::new(String::new()));
    let lost = Arc::new(Mutex::new(None));
    let client = Client {
        check: check.clone(),
        rejection: rejection.clone(),
        accepted: accepted.clone(),
        lost: lost.clone(),
        keepalive: spec.keepalive_interval * KEEPALIVE_MAX,
    };
    let config = Arc::new(client_config(spec, &check));
    let addr = format!("{}:{}", spec.address, spec.port);

    let handshake = async {
        match &jump {
            None => {
                let target = (spec.address.as_str(), spec.port);
                client::connect(config, target, client).await
            }
            Some(jump) => {
                let port = u32::from(spec.port);
                let tunnel = jump
                    .handle
                    .channel_open_direct_tcpip(spec.address.as_str(), port, "127.0.0.1", 0)
                    .await
                    .map_err(|e| Tunnel(format!("jump host {} cannot reach it: {e}", jump.name)))?;
                client::connect_stream(config, tunnel.into_stream(), client).await
            }
        }
    };
    let mut handle = match tokio::time::timeout(spec.connect_timeout, handshake).await {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            // A refused host key surfaces from russh as a bare "unknown key";
            // the handler kept the real story.
            let stashed = rejection.lock().ok().and_then(|mut r| r.take());
            return Err(stashed.unwrap_or_else(|| TransportError::Connect {
                host: spec.name.clone(),
                addr,
                reason: e.to_string(),
            }));
        }
        Err(_) => {
            return Err(TransportError::Timeout {
                host: spec.name.clone(),
                addr,
                secs: spec.connect_timeout.as_secs(),
            });
        }
    };
    auth::authenticate(&mut handle, spec, passphrase).await?;
    Ok(SshTransport {
        name: spec.name.clone(),
        handle,
        channels: Arc::new(Semaphore::new(MAX_CHANNELS)),
        jump,
        host_key: accepted.lock().map(|k| k.clone()).unwrap_or_default(),
        lost,
    })
}

fn client_config(spec: &ConnectSpec, check: &HostKeyCheck) -> client::Config {
    let mut preferred = russh::Preferred::default();
    preferred.key = Cow::Owned(prefer_recorded(
        &preferred.key,
        &check.recorded_algorithms(),
    ));
    client::Config {
        preferred,
        // Keepalives notice a dead peer (after keepalive_max unanswered
        // ones) without an inactivity timeout, which would also kill a
        // healthy command that is silent for long, like an apt upgrade.
        keepalive_interval: (!spec.keepalive_interval.is_zero()).then_some(spec.keepalive_interval),
        keepalive_max: KEEPALIVE_MAX as usize,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

/// A failure to open the tunnel through a jump host, carried through russh's
/// error type so both connect paths share one timeout and error mapping.
struct Tunnel(String);

impl From<Tunnel> for russh::Error {
    fn from(t: Tunnel) -> Self {
        russh::Error::IO(std::io::Error::other(t.0))
    }
}

/// russh's callbacks for one connection.
struct Client {
    check: HostKeyCheck,
    /// Why the host key was refused: the handler can only answer yes or no.
    rejection: Arc<Mutex<Option<TransportError>>>,
    /// The fingerprint of the key that was accepted.
    accepted: Arc<Mutex<String>>,
    /// Why the connection ended, in words for the user.
    lost: Arc<Mutex<Option<String>>>,
    /// How long keepalives go unanswered before the connection is given up.
    keepalive: std::time::Duration,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.check.verify(key).inspect(|()| {
                if let Ok(mut slot) = self.accepted.lock() {
                    *slot = crate::transport::known_hosts::fingerprint(key);
                }
            }),
            // We never advertise certificate algorithms, so this is a server
            // ignoring negotiation: nothing we could check it against.
            PublicKeyOrCertificate::Certificate(_) => Err(TransportError::Connect {
                host: self.check.name.clone(),
                addr: format!("{}:{}", self.check.host, self.check.port),
                reason: "server sent a host certificate that was not asked for".into(),
            }),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.rejection.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let (why, result) = match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => (
                format!("the server closed the connection: {}", info.message),
                Ok(()),
            ),
            client::DisconnectReason::Error(russh::Error::KeepaliveTimeout) => (
                format!(
                    "the network stopped answering: no reply to keepalives for {} s",
                    self.keepalive.as_secs()
                ),
                Err(russh::Error::KeepaliveTimeout),
            ),
            client::DisconnectReason::Error(e) => (e.to_string(), Err(e)),
        };
        if let Ok(mut slot) = self.lost.lock() {
            *slot = Some(why);
        }
        result
    }
}

#[async_trait]
impl Transport for SshTransport {
    async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        let _permit = self.channel_permit().await?;
        match channel::exec(&self.handle, &self.name, command, stdin).await {
            Err(TransportError::Interrupted { host, stdout, .. }) => {
                Err(TransportError::Interrupted {
                    host,
                    reason: self.why_lost().await,
                    stdout,
                })
            }
            other => other,
        }
    }

    async fn hold(&self, command: &str, stdin: &[u8]) -> Result<Held, TransportError> {
        let permit = self.channel_permit().await?;
        channel::hold(&self.handle, &self.name, command, stdin, permit).await
    }

    async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        if let Some(jump) = &self.jump {
            jump.close().await;
        }
    }
}

impl SshTransport {
    /// Why the connection under a command ended. The session task records it
    /// as it winds down, which may be just after the channel noticed.
    async fn why_lost(&self) -> String {
        for _ in 0..10 {
            if let Some(why) = self.lost.lock().ok().and_then(|l| l.clone()) {
                return why;
            }
            if !self.handle.is_closed() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if self.handle.is_closed() {
            "the connection ended".into()
        } else {
            "the command ended without an exit status: the sshd session serving it, or the shell, was killed".into()
        }
    }

    async fn channel_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, TransportError> {
        self.channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Broken {
                host: self.name.clone(),
                reason: "connection closed".into(),
            })
    }
}
