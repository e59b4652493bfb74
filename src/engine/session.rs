//! One host's run: connect, lock, observe, plan, apply, verify. Every step
//! records its failure on the host's plan or report instead of returning early
//! through the other hosts.

use std::sync::Arc;

use super::execute::{RunContext, StepReport};
use super::lock::Lock;
use super::runner::Runner;
use super::{HostReport, StepStatus, connect, execute, guard, host_keys, lock};
use crate::config::Become;
use crate::desired::HostState;
use crate::plan::compute::{self, Observation};
use crate::plan::{HostPlan, Step};
use crate::redact::Redactor;
use crate::resource::{Need, Runtime};
use crate::shell::Script;
use crate::transport::{TransportError, ssh};

pub struct Session {
    pub state: HostState,
    pub runner: Option<Runner>,
    pub lock: Option<Lock>,
    pub plan: HostPlan,
    /// Who this run is logged in as, or, once a guarded change proved a new
    /// login, that login's user: who proves a guard that names nobody.
    login_user: String,
    /// Salts the digests of planned changes (see [`crate::plan::Step::digest`]).
    salt: Vec<u8>,
    /// What the plan was computed from.
    observed: Option<Observation>,
    /// What apply did so far.
    report: HostReport,
}

impl Session {
    fn fail(state: HostState, error: String, commands: u32, salt: &[u8]) -> Self {
        let plan = HostPlan::failed(&state.host.name, &state.host.address, error, commands);
        Self {
            state,
            runner: None,
            lock: None,
            plan,
            login_user: String::new(),
            salt: salt.to_vec(),
            observed: None,
            report: HostReport::default(),
        }
    }

    pub fn commands(&self) -> u32 {
        self.runner
            .as_ref()
            .map_or(self.plan.remote_commands, Runner::commands)
    }

    /// Connects and plans; with `take_lock`, holds the host lock until [`Session::close`].
    pub async fn open(state: HostState, take_lock: bool, redactor: &Redactor, salt: &[u8]) -> Self {
        match connect_runner(&state).await {
            Ok(runner) => Self::start(state, runner, take_lock, redactor, salt).await,
            Err(e) => Self::fail(state, redactor.redact(&e), 0, salt),
        }
    }

    /// Plans over an already open [`Runner`]: the seam where another transport plugs in.
    pub async fn start(
        state: HostState,
        runner: Runner,
        take_lock: bool,
        redactor: &Redactor,
        salt: &[u8],
    ) -> Self {
        let mut held = None;
        let mut notices = state.notices.clone();
        if take_lock {
            let taken = match lock::acquire(&runner, &lock::owner(lock::run_id())).await {
                Ok(l) => settle(&runner, &state, l, &mut notices).await,
                Err(e) => Err(e),
            };
            match taken {
                Ok(l) => held = Some(l),
                Err(e) => {
                    let n = runner.commands();
                    runner.transport().close().await;
                    return Self::fail(state, redactor.redact(&e), n, salt);
                }
            }
        }
        let mut session = Self {
            plan: HostPlan::default(),
            login_user: connect::spec(&state.host)
                .map(|c| c.user)
                .unwrap_or_default(),
            state,
            runner: Some(runner),
            lock: held,
            salt: salt.to_vec(),
            observed: None,
            report: HostReport::default(),
        };
        session.plan = session.make_plan(redactor).await;
        session.plan.notices = notices.iter().map(|n| redactor.redact(n)).collect();
        session
    }

    /// Observes and plans; keeps the observation, which apply works from.
    async fn make_plan(&mut self, redactor: &Redactor) -> HostPlan {
        let runner = self.runner.as_ref().expect("connected");
        let state = &self.state;
        let mut plan = match compute::observe(runner, state).await {
            Ok(obs) => {
                let plan = compute::plan(state, &obs, &self.salt);
                self.observed = Some(obs);
                plan
            }
            Err(e) => {
                return HostPlan::failed(
                    &state.host.name,
                    &state.host.address,
                    e,
                    runner.commands(),
                );
            }
        };
        if plan.error.is_none()
            && let Err(e) = compute::fill_diffs(runner, state, &mut plan).await
        {
            plan.error = Some(e);
        }
        plan.remote_commands = runner.commands();
        redact_plan(&plan, redactor)
    }

    /// Plays in which this host has something to do, in order.
    pub fn plays(&self) -> Vec<usize> {
        if self.plan.error.is_some() || self.runner.is_none() {
            return Vec::new();
        }
        let mut plays: Vec<usize> = self.plan.changes.iter().map(|s| s.play).collect();
        plays.dedup();
        plays
    }

    /// Values the changes of `play` need from other hosts.
    pub fn needs(&self, play: usize) -> Vec<Need> {
        self.plan
            .changes
            .iter()
            .filter(|s| s.play == play)
            .flat_map(|s| {
                compute::resource_of(&self.state, s)
                    .map(|r| r.needs(&s.change))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Whether apply failed on this host (later plays skip it).
    pub fn failed(&self) -> bool {
        self.report.error.is_some()
    }

    pub fn fail_with(&mut self, error: String) {
        self.report.error = Some(error);
    }

    /// Runs a command here on behalf of another host's change (a join token),
    /// returning its trimmed stdout.
    pub async fn provide(&self, command: &str) -> Result<String, String> {
        let runner = self.runner.as_ref().ok_or("not connected")?;
        let out = runner
            .run(&Script::new(command))
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("`{command}` failed: {}", out.stderr_str().trim()));
        }
        Ok(out.stdout_str().trim().to_string())
    }

    /// Applies the steps of one play (then its handlers): one remote script,
    /// or one per guarded change, each proven by a new login before the next.
    pub async fn apply_play(&mut self, play: usize, runtime: &Runtime, redactor: &Redactor) {
        if self.failed() {
            return;
        }
        let (Some(runner), Some(observed)) = (self.runner.as_ref(), self.observed.as_ref()) else {
            return;
        };
        let ctx = RunContext {
            holder: self.lock.as_ref().map(|l| l.holder),
            run: lock::run_id(),
            login_user: &self.login_user,
        };
        let segments = execute::segments(&self.state, &self.plan, observed, play, runtime, &ctx);
        let host = &self.state.host.name;
        let mut error = None;
        let mut steps: Vec<StepReport> = Vec::new();
        for seg in &segments {
            if error.is_some() {
                steps.extend(execute::parse("", &seg.names, seg.first, false));
                continue;
            }
            let (mut done, mut e) = match runner.run(&seg.script).await {
                Ok(out) => {
                    let stdout = redactor.redact(&out.stdout_str());
                    let done = execute::parse(&stdout, &seg.names, seg.first, false);
                    let e = if execute::orphaned(&stdout) {
                        Some(format!(
                            "the host lock of this run was released under it (slipway unlock?): the script on {host} stopped before its next step"
                        ))
                    } else if let Some(f) = done.iter().find(|s| s.status == StepStatus::Failed) {
                        Some(format!("{} failed", f.resource))
                    } else if !out.success() {
                        Some(redactor.redact(&format!(
                            "apply script exited {}: {}",
                            out.status,
                            out.stderr_str().trim()
                        )))
                    } else {
                        None
                    };
                    (done, e)
                }
                Err(TransportError::Interrupted {
                    host: _,
                    reason,
                    stdout,
                }) => {
                    let stdout = redactor.redact(&String::from_utf8_lossy(&stdout));
                    let done = execute::parse(&stdout, &seg.names, seg.first, true);
                    let e = interrupted(host, &reason, &done, seg.guard.is_some());
                    (done, Some(redactor.redact(&e)))
                }
                Err(e) => (
                    execute::parse("", &seg.names, seg.first, false),
                    Some(redactor.redact(&e.to_string())),
                ),
            };
            // Before the proof: its new login must know the new host keys.
            if e.is_none() {
                let port = seg.guard.as_ref().map(|p| p.port);
                e = host_keys::learn(&self.state.host, &mut done, port)
                    .err()
                    .map(|m| redactor.redact(&m));
            }
            steps.extend(done);
            error = e;
            if let (None, Some(proof)) = (&error, &seg.guard) {
                match guard::prove(
                    runner,
                    &self.state.host,
                    &proof.resource,
                    &proof.user,
                    proof.port,
                )
                .await
                {
                    Ok(()) => self.login_user = proof.user.clone(),
                    Err(e) => error = Some(redactor.redact(&e)),
                }
            }
        }
        self.report.steps.extend(steps);
        self.report.error = error;
    }

    /// After the last play: verify, and report.
    pub async fn finish(&mut self) -> HostReport {
        let mut report = std::mem::take(&mut self.report);
        report.host = self.state.host.name.clone();
        if let Some(e) = &self.plan.error {
            report.error = Some(e.clone());
        }
        if let Some(runner) = self.runner.as_ref() {
            if report.error.is_none() && !self.plan.changes.is_empty() {
                self.verify(&mut report).await;
            }
            report.remote_commands = runner.commands();
        } else {
            report.remote_commands = self.plan.remote_commands;
        }
        report
    }

    /// A fresh probe must find every applied resource converged.
    async fn verify(&self, report: &mut HostReport) {
        let runner = self.runner.as_ref().expect("connected");
        let obs: Observation = match compute::observe(runner, &self.state).await {
            Ok(o) => o,
            Err(e) => {
                report.verified = Some(false);
                report.problems.push(format!("could not verify: {e}"));
                return;
            }
        };
        let fresh = compute::plan(&self.state, &obs, &self.salt);
        for step in &self.plan.changes {
            let r = compute::resource_of(&self.state, step).expect("plan matches state");
            let still = fresh
                .changes
                .iter()
                .find(|s| s.play == step.play && s.index == step.index);
            if let (true, Some(s)) = (r.converges(), still) {
                report.problems.push(format!(
                    "{} still differs after apply: {}",
                    s.change.resource, s.change.summary
                ));
            }
        }
        report.verified = Some(report.problems.is_empty());
    }

    /// Compares a saved plan with this fresh one: the host must be as it was
    /// when the plan was made, and the plan must still describe the same work.
    pub fn check_saved(&self, saved: &HostPlan) -> Result<(), String> {
        let host = &self.state.host.name;
        if let Some(e) = &saved.error {
            return Err(format!(
                "the saved plan has no changes for {host}: it failed when planned ({e})"
            ));
        }
        if let Some(e) = &self.plan.error {
            return Err(e.clone());
        }
        let fresh = &self.plan.fingerprints;
        if fresh.len() != saved.fingerprints.len()
            || fresh
                .iter()
                .zip(&saved.fingerprints)
                .any(|(a, b)| a.resource != b.resource)
        {
            return Err(format!(
                "the playbook's resources for {host} changed since the plan was made; run plan again"
            ));
        }
        if let Some((_, was)) = fresh
            .iter()
            .zip(&saved.fingerprints)
            .find(|(a, b)| a.sha256 != b.sha256)
        {
            return Err(format!(
                "stale plan: {} on {host} changed since the plan was made; run plan again",
                was.resource
            ));
        }
        let strip = |steps: &[Step]| -> Vec<Step> {
            steps
                .iter()
                .cloned()
                .map(|mut s| {
                    s.change.diff = None;
                    s
                })
                .collect()
        };
        if strip(&self.plan.changes) != strip(&saved.changes) {
            return Err(format!(
                "the saved plan no longer matches the playbook, templates or variables for {host}; run plan again"
            ));
        }
        Ok(())
    }

    /// Releases the lock and closes the connection.
    pub async fn close(&mut self) {
        if let Some(l) = self.lock.take() {
            l.guard.release().await;
        }
        if let Some(r) = &self.runner {
            self.plan.remote_commands = r.commands();
            r.transport().close().await;
        }
    }
}

/// What a run must know and do right after taking a host's lock, before it
/// observes anything: what happened since the last run (a revert, a wait for
/// an interrupted run's script), and the proof of any change an interrupted
/// run armed and never proved. A failed proof reverts it and fails the host.
async fn settle(
    runner: &Runner,
    state: &HostState,
    lock: Lock,
    notices: &mut Vec<String>,
) -> Result<Lock, String> {
    if lock.waited {
        notices.push(
            "waited for the remaining script of an interrupted run to end before observing".into(),
        );
    }
    for r in &lock.reverted {
        let w: Vec<&str> = r.split_whitespace().collect();
        if let [resource, user, port, _armed, at, result] = w[..] {
            notices.push(format!(
                "the host put back the previous {resource} by itself at epoch {at} ({result}): \
                 a run changed it and never proved a new login as {user} on port {port} (it was interrupted, or the login failed)"
            ));
        }
    }
    for p in lock.pending.clone() {
        match guard::prove(runner, &state.host, &p.resource, &p.user, p.port).await {
            Ok(()) => notices.push(format!(
                "{} was changed by an interrupted run and never proven; a new login as {} on port {} proved it now",
                p.resource, p.user, p.port
            )),
            Err(e) => {
                lock.guard.release().await;
                return Err(format!(
                    "an interrupted run left {} unproven, and proving it now failed: {e}",
                    p.resource
                ));
            }
        }
    }
    Ok(lock)
}

/// What to say when the connection broke under an apply script.
fn interrupted(host: &str, reason: &str, steps: &[StepReport], guarded: bool) -> String {
    let count = |st: StepStatus| steps.iter().filter(|s| s.status == st).count();
    let mut msg = format!("connection to {host} broke ({reason})");
    match steps.iter().find(|s| s.status == StepStatus::Interrupted) {
        Some(s) => msg.push_str(&format!(
            "; the last step heard of was {}: the remote script may still be running; it stops before its next step, and a re-run waits for it",
            s.resource
        )),
        None => msg.push_str(" between steps"),
    }
    msg.push_str(&format!(
        ". Steps done: {}, not run: {}",
        count(StepStatus::Ok),
        count(StepStatus::NotRun)
    ));
    if guarded {
        msg.push_str(
            ". The access change of this script is not proven: the host puts the previous settings back by itself when its revert window ends, unless a re-run proves it first",
        );
    }
    msg
}

pub async fn connect_runner(state: &HostState) -> Result<Runner, String> {
    let spec = connect::spec(&state.host)?;
    let started = std::time::Instant::now();
    let transport = ssh::connect(&spec).await.map_err(|e| e.to_string())?;
    tracing::info!(
        host = %state.host.name,
        address = %spec.address,
        port = spec.port,
        user = %spec.user,
        via = spec.proxy_jump.as_ref().map(|j| j.address.as_str()).unwrap_or("direct"),
        ms = started.elapsed().as_millis() as u64,
        "connected"
    );
    let password = state
        .host
        .become_password_env
        .as_ref()
        .and_then(|v| std::env::var(v.get_ref()).ok());
    let become_ = if spec.user == "root" {
        Become::None
    } else {
        state.host.become_
    };
    Ok(Runner::new(
        &state.host.name,
        Arc::new(transport),
        become_,
        password,
    ))
}

/// Secrets cannot hide in any field: every string in the plan goes through the redactor.
fn redact_plan(plan: &HostPlan, redactor: &Redactor) -> HostPlan {
    if redactor.is_empty() {
        return plan.clone();
    }
    let mut value = serde_json::to_value(plan).expect("plan serializes");
    redactor.redact_json(&mut value);
    serde_json::from_value(value).expect("redacting strings keeps the plan's shape")
}
