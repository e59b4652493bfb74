//! Runs scripts on one host over its one connection: privilege escalation,
//! the stdin framing of script and payloads, and the count of remote commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::Become;
use crate::shell::{PRELUDE, Script, q};
use crate::transport::{ExecOutput, Held, Transport, TransportError};

pub struct Runner {
    /// The inventory name, for logs.
    host: String,
    transport: Arc<dyn Transport>,
    become_: Become,
    /// The sudo password, sent as the first line of stdin, never on a command line.
    password: Option<String>,
    commands: AtomicU32,
}

impl Runner {
    pub fn new(
        host: &str,
        transport: Arc<dyn Transport>,
        become_: Become,
        password: Option<String>,
    ) -> Self {
        Self {
            host: host.to_string(),
            transport,
            become_,
            password,
            commands: AtomicU32::new(0),
        }
    }

    /// Remote commands started so far on this host.
    pub fn commands(&self) -> u32 {
        self.commands.load(Ordering::Relaxed)
    }

    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Runs `script` as root (through sudo when configured). The script text and
    /// its payloads travel on stdin: `sh` reads exactly the script's length,
    /// and the script reads its payloads from the rest.
    pub async fn run(&self, script: &Script) -> Result<ExecOutput, TransportError> {
        let body = format!("{PRELUDE}{}", script.sh);
        let inner = format!(
            "sh -c {}",
            q(&format!("eval \"$(head -c {})\"", body.len()))
        );
        let (command, mut stdin) = self.escalate(&inner);
        stdin.extend_from_slice(body.as_bytes());
        for p in &script.payloads {
            stdin.extend_from_slice(p);
        }
        let n = self.commands.fetch_add(1, Ordering::Relaxed) + 1;
        let started = std::time::Instant::now();
        let result = self.transport.exec(&command, &stdin).await;
        // Sizes and timings only: scripts and payloads may hold secrets.
        match &result {
            Ok(out) => tracing::info!(
                host = %self.host,
                command = n,
                sent = stdin.len(),
                received = out.stdout.len() + out.stderr.len(),
                status = out.status,
                ms = started.elapsed().as_millis() as u64,
                "remote command"
            ),
            Err(e) => tracing::warn!(host = %self.host, command = n, "remote command failed: {e}"),
        }
        result
    }

    /// Starts a long-running root command (the host lock) that lives until released.
    pub async fn hold(&self, sh: &str) -> Result<Held, TransportError> {
        let (command, stdin) = self.escalate(&format!("sh -c {}", q(sh)));
        let n = self.commands.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(host = %self.host, command = n, "remote command held open (host lock)");
        self.transport.hold(&command, &stdin).await
    }

    /// The command line and the stdin prefix that run `inner` as root.
    fn escalate(&self, inner: &str) -> (String, Vec<u8>) {
        match (self.become_, &self.password) {
            (Become::None, _) => (inner.to_string(), Vec::new()),
            (Become::Sudo, None) => (format!("sudo -n -- {inner}"), Vec::new()),
            (Become::Sudo, Some(pw)) => {
                // When sudo needs no password after all (NOPASSWD, cached), the
                // password line is read and dropped so the script still starts at
                // the right byte. Otherwise the password is tried once on its own
                // (`-k`: every time, cache or not): given the script's stdin, a
                // wrong one would have sudo read script lines as more attempts.
                // The shell's printf is a builtin: the password is on no command line.
                let cmd = format!(
                    "if sudo -n true 2>/dev/null; then IFS= read -r _; exec sudo -n -- {inner}; \
                     else IFS= read -r pw; \
                     if ! printf '%s\\n' \"$pw\" | sudo -k -S -p '' true 2>/dev/null; then echo 'sudo refused the password (become_password_env)' >&2; exit 1; fi; \
                     {{ printf '%s\\n' \"$pw\"; exec cat; }} | exec sudo -k -S -p '' -- {inner}; fi"
                );
                (cmd, format!("{pw}\n").into_bytes())
            }
        }
    }
}
