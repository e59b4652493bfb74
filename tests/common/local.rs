//! A transport that runs commands on this machine with `sh -c`, so the engine
//! (sessions, probes, plans, apply scripts) can be tested without a network.

use std::process::Stdio;

use async_trait::async_trait;
use slipway::engine::Progress;
use slipway::transport::{ExecOutput, Held, HoldGuard, Transport, TransportError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Runs commands on this machine.
pub struct Local;

fn broken(e: std::io::Error) -> TransportError {
    TransportError::Broken {
        host: "local".into(),
        reason: e.to_string(),
    }
}

/// `sh -c command` with all three streams piped.
fn spawn(command: &str) -> Result<Child, TransportError> {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(broken)
}

#[async_trait]
impl Transport for Local {
    async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        let mut child = spawn(command)?;
        let mut input = child.stdin.take().expect("piped");
        let data = stdin.to_vec();
        let writer = tokio::spawn(async move {
            // The script may stop reading early; that is not an error here.
            let _ = input.write_all(&data).await;
        });
        let out = child.wait_with_output().await.map_err(broken)?;
        writer.await.ok();
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(255) as u32,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn hold(&self, command: &str, stdin: &[u8]) -> Result<Held, TransportError> {
        let mut child = spawn(command)?;
        child
            .stdin
            .as_mut()
            .expect("piped")
            .write_all(stdin)
            .await
            .map_err(broken)?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        match lines.next_line().await.map_err(broken)? {
            Some(first_line) => Ok(Held::Running {
                first_line,
                guard: Box::new(LocalGuard(child)),
            }),
            None => {
                let out = child.wait_with_output().await.map_err(broken)?;
                Ok(Held::Exited(ExecOutput {
                    status: out.status.code().unwrap_or(255) as u32,
                    stdout: Vec::new(),
                    stderr: out.stderr,
                }))
            }
        }
    }

    async fn close(&self) {}
}

struct LocalGuard(Child);

#[async_trait]
impl HoldGuard for LocalGuard {
    async fn release(mut self: Box<Self>) {
        drop(self.0.stdin.take());
        self.0.wait().await.ok();
    }
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: &str, _: bool) {}
}
