//! One remote command per session channel.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{Handle, Msg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::Client;
use crate::transport::{ExecOutput, Held, HoldGuard, TransportError};

/// How long a released hold may take to end after EOF before we close the
/// channel under it, and then to acknowledge the close.
const RELEASE_GRACE: Duration = Duration::from_secs(5);

/// Refused channel opens retried before giving up (about 1.6 s in all).
const OPEN_RETRIES: u32 = 12;

pub(super) async fn exec(
    handle: &Handle<Client>,
    host: &str,
    command: &str,
    stdin: &[u8],
) -> Result<ExecOutput, TransportError> {
    let (mut rx, tx, mut output) = start(handle, host, command).await?;
    pump(&mut rx, &tx, stdin, true, &mut output, |_| false).await;
    tx.ended();
    output.finish(host)
}

/// `stdin` is written in full before this returns, so keep it small (a
/// password line): a command that prints its line without reading a large
/// stdin would leave us waiting for window space.
pub(super) async fn hold(
    handle: &Handle<Client>,
    host: &str,
    command: &str,
    stdin: &[u8],
    permit: OwnedSemaphorePermit,
) -> Result<Held, TransportError> {
    let (mut rx, tx, mut output) = start(handle, host, command).await?;
    // No EOF: commands like `flock LOCK cat` hold on until their stdin ends.
    let has_line = |o: &Output| o.first_line().is_some();
    let running = pump(&mut rx, &tx, stdin, false, &mut output, has_line).await;
    let Some(first_line) = output.first_line().filter(|_| running) else {
        tx.ended();
        return output.finish(host).map(Held::Exited);
    };
    // russh delivers to every channel in turn: an undrained one would stall
    // the whole connection once its queue fills.
    let drain = tokio::spawn(async move {
        while rx.wait().await.is_some() {}
        drop(permit);
    });
    let tx = Arc::new(tx);
    let beat = tokio::spawn(heartbeat(tx.clone()));
    Ok(Held::Running {
        first_line,
        guard: Box::new(SshHoldGuard {
            tx: Some(tx),
            drain: Some(drain),
            beat,
        }),
    })
}

/// Sends `stdin` (and EOF if `eof`) while collecting output, until the
/// channel ends (false) or, once stdin is out, `enough` says so (true).
/// Writing while reading matters: a command that answers as it reads (`cat`)
/// would otherwise fill its window and ours, and both sides stall.
async fn pump(
    rx: &mut ChannelReadHalf,
    tx: &Closer,
    stdin: &[u8],
    eof: bool,
    output: &mut Output,
    enough: impl Fn(&Output) -> bool,
) -> bool {
    let write = async {
        if !stdin.is_empty() {
            tx.data(stdin.to_vec()).await?;
        }
        if eof {
            tx.eof().await?;
        }
        Ok::<(), russh::Error>(())
    };
    tokio::pin!(write);
    let mut written = false;
    loop {
        tokio::select! {
            sent = &mut write, if !written => {
                written = true;
                // A command may end without reading all its input; what
                // counts is how it ended, which the channel still tells.
                if let Err(e) = sent {
                    tracing::debug!("stdin not fully delivered: {e}");
                }
                if enough(output) {
                    return true;
                }
            }
            // Also the way out when the command ends before taking all of
            // stdin: the writer would wait forever for window space.
            msg = rx.wait() => match msg {
                Some(msg) => {
                    output.absorb(msg);
                    if written && enough(output) {
                        return true;
                    }
                }
                None => return false,
            },
        }
    }
}

/// Opens a channel and starts `command`, returning once the server agreed.
async fn start(
    handle: &Handle<Client>,
    host: &str,
    command: &str,
) -> Result<(ChannelReadHalf, Closer, Output), TransportError> {
    let broken = |e: russh::Error| TransportError::Broken {
        host: host.to_string(),
        reason: e.to_string(),
    };
    let (mut rx, tx) = open_session(handle).await.map_err(broken)?.split();
    let tx = Closer(Some(tx));
    tx.exec(command).await.map_err(broken)?;
    let mut output = Output::default();
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Success) => return Ok((rx, tx, output)),
            Some(ChannelMsg::Failure) => {
                return Err(TransportError::Broken {
                    host: host.to_string(),
                    reason: "the server refused to run a command".into(),
                });
            }
            Some(msg) => output.absorb(msg),
            None => {
                tx.ended();
                return Err(lost(host));
            }
        }
    }
}

/// sshd frees a session slot only once it has handled our close, which may
/// be after our next open arrived: that open is refused although we stay
/// under MaxSessions. Nothing ran, so trying again is safe.
async fn open_session(handle: &Handle<Client>) -> Result<russh::Channel<Msg>, russh::Error> {
    let mut refused = 0;
    loop {
        match handle.channel_open_session().await {
            Err(russh::Error::ChannelOpenFailure(_)) if refused < OPEN_RETRIES => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(20) * refused).await;
            }
            other => return other,
        }
    }
}

fn lost(host: &str) -> TransportError {
    TransportError::Broken {
        host: host.to_string(),
        reason: "the channel closed before the command could start".into(),
    }
}

/// What a channel reported so far.
#[derive(Default)]
struct Output {
    out: ExecOutput,
    status: Option<u32>,
}

impl Output {
    fn absorb(&mut self, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } => self.out.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => self.out.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => self.status = Some(exit_status),
            // What a shell would report for a command killed by a signal.
            ChannelMsg::ExitSignal { signal_name, .. } => {
                self.status = Some(128 + signal_number(&signal_name))
            }
            _ => {}
        }
    }

    /// The first complete stdout line, without its line ending.
    fn first_line(&self) -> Option<String> {
        let end = self.out.stdout.iter().position(|b| *b == b'\n')?;
        let line = String::from_utf8_lossy(&self.out.stdout[..end]);
        Some(line.trim_end_matches('\r').to_string())
    }

    /// Without an exit status the command's fate is unknown: the connection
    /// (or sshd) died under it.
    fn finish(mut self, host: &str) -> Result<ExecOutput, TransportError> {
        match self.status {
            Some(status) => {
                self.out.status = status;
                Ok(self.out)
            }
            None => Err(TransportError::Interrupted {
                host: host.to_string(),
                reason: "the command ended without an exit status".into(),
                stdout: self.out.stdout,
            }),
        }
    }
}

fn signal_number(sig: &Sig) -> u32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 127,
    }
}

/// A channel's sending half that closes the channel when dropped before the
/// command ended (a cancelled exec, a hold guard dropped unreleased): the
/// remote command must not outlive our interest in it, least of all a lock.
struct Closer(Option<ChannelWriteHalf<Msg>>);

impl Closer {
    async fn exec(&self, command: &str) -> Result<(), russh::Error> {
        match &self.0 {
            Some(tx) => tx.exec(true, command).await,
            None => Err(russh::Error::SendError),
        }
    }

    async fn data(&self, bytes: Vec<u8>) -> Result<(), russh::Error> {
        match &self.0 {
            Some(tx) => tx.data_bytes(bytes).await,
            None => Err(russh::Error::SendError),
        }
    }

    async fn eof(&self) -> Result<(), russh::Error> {
        match &self.0 {
            Some(tx) => tx.eof().await,
            None => Err(russh::Error::SendError),
        }
    }

    async fn close(&self) {
        if let Some(tx) = &self.0 {
            let _ = tx.close().await;
        }
    }

    /// The channel is gone; nothing left to close.
    fn ended(mut self) {
        self.0 = None;
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        let Some(tx) = self.0.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // EOF first: `cat` and friends end cleanly on it.
                let _ = tx.eof().await;
                let _ = tx.close().await;
            });
        }
    }
}

/// A byte on a held command's stdin this often tells it its holder lives: a
/// command can then let go when the beats stop, even where sshd keeps a
/// session whose client vanished (the host lock waits 90 s, see `lock`).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

async fn heartbeat(tx: Arc<Closer>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if tx.data(b".".to_vec()).await.is_err() {
            return;
        }
    }
}

/// Keeps a held command's channel open, and beating, until released or dropped.
struct SshHoldGuard {
    tx: Option<Arc<Closer>>,
    drain: Option<JoinHandle<()>>,
    beat: JoinHandle<()>,
}

impl Drop for SshHoldGuard {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

#[async_trait]
impl HoldGuard for SshHoldGuard {
    async fn release(mut self: Box<Self>) {
        self.beat.abort();
        let _ = (&mut self.beat).await;
        let (Some(mut drain), Some(tx)) = (self.drain.take(), self.tx.take()) else {
            return;
        };
        // EOF lets the command end by itself (its read returns, flock unlocks);
        // close is the fallback for one that ignores its stdin.
        let _ = tx.eof().await;
        if tokio::time::timeout(RELEASE_GRACE, &mut drain)
            .await
            .is_err()
        {
            tx.close().await;
            let _ = tokio::time::timeout(RELEASE_GRACE, drain).await;
        }
        if let Ok(tx) = Arc::try_unwrap(tx) {
            tx.ended();
        }
    }
}
