//! How commands reach a host. The engine only sees [`Transport`], so it can be
//! exercised without a network; [`ssh`] is the real implementation.

pub mod known_hosts;
pub mod ssh;
pub mod ssh_config;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

/// What a finished remote command left behind.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A command kept running on the host until [`HoldGuard::release`] (or drop):
/// the host lock lives exactly as long as this channel.
#[async_trait]
pub trait HoldGuard: Send {
    async fn release(self: Box<Self>);
}

pub enum Held {
    /// The command printed its first line and is still running.
    Running {
        first_line: String,
        guard: Box<dyn HoldGuard>,
    },
    /// The command ended before printing a line.
    Exited(ExecOutput),
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Runs `command` with `stdin` as its standard input and waits for it to end.
    async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError>;

    /// Starts `command`, writes `stdin` to it without closing it, and returns
    /// once the command printed its first line or ended.
    async fn hold(&self, command: &str, stdin: &[u8]) -> Result<Held, TransportError>;

    /// Closes the connection politely.
    async fn close(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Unknown and changed keys are refused.
    #[default]
    Strict,
    /// Unknown keys are recorded on first use; changed keys are still refused.
    AcceptNew,
}

/// Everything needed to open one SSH connection, already resolved from the
/// inventory and ~/.ssh/config.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// The inventory name, used in messages.
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    /// Password authentication, for a first connection to a fresh host only.
    pub password: Option<String>,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
    pub proxy_jump: Option<Box<ConnectSpec>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {host} ({addr}): {reason}")]
    Connect {
        host: String,
        addr: String,
        reason: String,
    },
    #[error("timed out after {secs}s connecting to {host} ({addr})")]
    Timeout {
        host: String,
        addr: String,
        secs: u64,
    },
    #[error(
        "host key for {host} CHANGED: the server now offers {fingerprint}, but {known_hosts}:{line} records a different key.\nThis may be an attack. If the host was reinstalled, remove that line and connect again."
    )]
    HostKeyChanged {
        host: String,
        fingerprint: String,
        known_hosts: String,
        line: usize,
    },
    #[error(
        "host key for {host} is not known: the server offers {fingerprint}.\nAdd it to {known_hosts} (ssh-keyscan), or set host_key_checking = \"accept-new\" to record it on first use."
    )]
    HostKeyUnknown {
        host: String,
        fingerprint: String,
        known_hosts: String,
    },
    #[error("authentication as {user}@{host} failed: {reason}")]
    Auth {
        user: String,
        host: String,
        reason: String,
    },
    #[error("connection to {host} broke: {reason}")]
    Broken { host: String, reason: String },
    /// The connection broke while a command ran: what it printed until then.
    #[error("connection to {host} broke while a command ran: {reason}")]
    Interrupted {
        host: String,
        reason: String,
        stdout: Vec<u8>,
    },
}
