//! Runs plans and applies across hosts: in parallel (at most `forks` at once),
//! one connection per host, a failed host never stopping the others.

pub mod audit;
pub mod connect;
pub mod execute;
pub mod guard;
mod host_keys;
pub mod lock;
pub mod runner;
pub mod session;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::future::Future;
use tokio::sync::Semaphore;

use crate::desired::HostState;
use crate::redact::Redactor;
use crate::resource::Runtime;
pub use execute::{StepReport, StepStatus};
pub use session::{Session, connect_runner};

/// Where per-host progress goes: bars on a terminal, plain lines otherwise.
pub trait Progress: Send + Sync {
    fn update(&self, host: &str, message: &str);
    fn finish(&self, host: &str, message: &str, ok: bool);
}

/// What apply did on one host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostReport {
    pub host: String,
    pub steps: Vec<StepReport>,
    /// Whether a fresh probe after apply found every changed resource converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub remote_commands: u32,
}

impl HostReport {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.problems.is_empty()
    }
    pub fn changed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Ok && !s.resource.starts_with("handler:"))
            .count()
    }
}

#[derive(Clone)]
pub struct Engine {
    pub forks: usize,
    pub redactor: Redactor,
    /// Salts change digests; a saved plan keeps its salt so they can be compared.
    pub salt: Vec<u8>,
}

/// A fresh salt for a run's change digests.
pub fn new_salt() -> Vec<u8> {
    use std::io::Read;
    let mut salt = vec![0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .expect("/dev/urandom is readable");
    salt
}

impl Engine {
    /// Runs `f` on every item, at most `forks` at a time, keeping the input order.
    pub async fn each<T, R, F, Fut>(&self, items: Vec<T>, f: F) -> Vec<R>
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = R>,
    {
        let gate = Semaphore::new(self.forks.max(1));
        let gate = &gate;
        let f = &f;
        join_all(items.into_iter().map(|item| async move {
            let _permit = gate.acquire().await.expect("semaphore open");
            f(item).await
        }))
        .await
    }
}

impl Engine {
    /// Connects to every host and plans it; with `lock`, each host stays locked
    /// until its session is closed.
    pub async fn open_all(
        &self,
        states: Vec<HostState>,
        lock: bool,
        progress: &dyn Progress,
    ) -> Vec<Session> {
        self.each(states, |state| async move {
            let name = state.host.name.clone();
            progress.update(&name, "connecting and observing");
            let session = Session::open(state, lock, &self.redactor, &self.salt).await;
            match &session.plan.error {
                Some(e) => progress.finish(&name, e.lines().next().unwrap_or_default(), false),
                None => progress.finish(
                    &name,
                    &format!("planned, {} to change", session.plan.changes.len()),
                    true,
                ),
            }
            session
        })
        .await
    }

    /// Applies every session's plan, play by play: every host finishes a play
    /// before any host starts the next, and within a play the hosts that others
    /// need values from (a Swarm leader's join token) go first. Then each host
    /// proves its logins, verifies, and is closed (releasing its lock).
    pub async fn apply_all(
        &self,
        mut sessions: Vec<Session>,
        progress: &dyn Progress,
    ) -> Vec<HostReport> {
        for s in &sessions {
            if !s.plan.changes.is_empty() {
                progress.update(
                    &s.state.host.name,
                    &format!("applying {} changes", s.plan.changes.len()),
                );
            }
        }
        let mut plays: Vec<usize> = sessions.iter().flat_map(Session::plays).collect();
        plays.sort_unstable();
        plays.dedup();
        let mut runtime = Runtime::new();
        for play in plays {
            let providers: Vec<String> = sessions
                .iter()
                .flat_map(|s| s.needs(play))
                .map(|n| n.host)
                .collect();
            for providers_first in [true, false] {
                let wave: Vec<usize> = (0..sessions.len())
                    .filter(|&i| {
                        let s = &sessions[i];
                        s.plays().contains(&play)
                            && providers.contains(&s.state.host.name) == providers_first
                    })
                    .collect();
                self.gather(&mut sessions, &wave, play, &mut runtime).await;
                let runtime = &runtime;
                let gate = Semaphore::new(self.forks.max(1));
                let gate = &gate;
                let running = sessions
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| wave.contains(i))
                    .map(|(_, s)| async move {
                        let _permit = gate.acquire().await.expect("semaphore open");
                        s.apply_play(play, runtime, &self.redactor).await
                    });
                join_all(running).await;
            }
        }
        self.each(sessions, |mut session| async move {
            let report = session.finish().await;
            session.close().await;
            let name = &session.state.host.name;
            let msg = match &report.error {
                Some(e) => e.lines().next().unwrap_or_default().to_string(),
                None if !report.problems.is_empty() => "not converged".to_string(),
                None => format!("{} changed, verified", report.changed()),
            };
            progress.finish(name, &msg, report.ok());
            report
        })
        .await
    }

    /// Gets the values the hosts of `wave` need for `play` from the hosts that
    /// have them; a host whose values cannot be had fails.
    async fn gather(
        &self,
        sessions: &mut [Session],
        wave: &[usize],
        play: usize,
        runtime: &mut Runtime,
    ) {
        for &i in wave {
            for need in sessions[i].needs(play) {
                if runtime.contains_key(&need.key) {
                    continue;
                }
                let value = match sessions.iter().find(|s| s.state.host.name == need.host) {
                    Some(provider) if !provider.failed() => provider.provide(&need.command).await,
                    Some(_) => Err(format!("{} failed earlier", need.host)),
                    None => Err(format!(
                        "{} is not part of this run; include it (see --limit)",
                        need.host
                    )),
                };
                match value {
                    Ok(v) => {
                        self.redactor.add(&v);
                        runtime.insert(need.key, v);
                    }
                    Err(e) => {
                        let msg = format!("needs a value from {}: {e}", need.host);
                        sessions[i].fail_with(self.redactor.redact(&msg));
                    }
                }
            }
        }
    }

    pub async fn close_all(&self, sessions: Vec<Session>) -> Vec<Session> {
        self.each(sessions, |mut s| async move {
            s.close().await;
            s
        })
        .await
    }
}
