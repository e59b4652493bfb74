//! One host's run: connect, lock, observe, plan, apply, verify. Every step
//! records its failure on the host's plan or report instead of returning early
//! through the other hosts.

use std::sync::Arc;

use super::runner::Runner;
use super::{HostReport, StepStatus, connect, execute, lock};
use crate::config::Become;
use crate::desired::HostState;
use crate::plan::compute::{self, Observation};
use crate::plan::{HostPlan, Step};
use crate::redact::Redactor;
use crate::resource::{Need, Runtime};
use crate::shell::Script;
use crate::transport::{HoldGuard, ssh};

pub struct Session {
    pub state: HostState,
    pub runner: Option<Runner>,
    pub lock: Option<Box<dyn HoldGuard>>,
    pub plan: HostPlan,
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
        let mut lock_guard = None;
        if take_lock {
            match lock::acquire(&runner).await {
                Ok(g) => lock_guard = Some(g),
                Err(e) => {
                    let n = runner.commands();
                    runner.transport().close().await;
                    return Self::fail(state, redactor.redact(&e), n, salt);
                }
            }
        }
        let mut session = Self {
            plan: HostPlan::default(),
            state,
            runner: Some(runner),
            lock: lock_guard,
            salt: salt.to_vec(),
            observed: None,
            report: HostReport::default(),
        };
        session.plan = session.make_plan(redactor).await;
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

    /// Applies the steps of one play (then its handlers) as one remote script.
    pub async fn apply_play(&mut self, play: usize, runtime: &Runtime, redactor: &Redactor) {
        if self.failed() {
            return;
        }
        let (Some(runner), Some(observed)) = (self.runner.as_ref(), self.observed.as_ref()) else {
            return;
        };
        let (script, names) = execute::script(&self.state, &self.plan, observed, play, runtime);
        match runner.run(&script).await {
            Ok(out) => {
                let steps = execute::parse(&redactor.redact(&out.stdout_str()), &names);
                if let Some(failed) = steps.iter().find(|s| s.status == StepStatus::Failed) {
                    self.report.error = Some(format!("{} failed", failed.resource));
                } else if !out.success() {
                    self.report.error = Some(redactor.redact(&format!(
                        "apply script exited {}: {}",
                        out.status,
                        out.stderr_str().trim()
                    )));
                }
                self.report.steps.extend(steps);
            }
            Err(e) => self.report.error = Some(redactor.redact(&e.to_string())),
        }
    }

    /// After the last play: prove logins still work, verify, and report.
    pub async fn finish(&mut self, redactor: &Redactor) -> HostReport {
        let mut report = std::mem::take(&mut self.report);
        report.host = self.state.host.name.clone();
        if let Some(e) = &self.plan.error {
            report.error = Some(e.clone());
        }
        if let Some(runner) = self.runner.as_ref() {
            // Logins are proven even when a later step failed: a login change
            // that was applied is in effect all the same.
            let applied: Vec<&str> = report
                .steps
                .iter()
                .filter(|s| s.status == super::execute::StepStatus::Ok)
                .map(|s| s.resource.as_str())
                .collect();
            let proof = super::login::prove(runner, &self.state, &self.plan, &applied).await;
            match (proof, report.error.take()) {
                (Err(e), previous) => {
                    let e = redactor.redact(&e);
                    report.error = Some(previous.map_or(e.clone(), |p| format!("{p}; {e}")));
                }
                (Ok(()), Some(previous)) => report.error = Some(previous),
                (Ok(()), None) if !self.plan.changes.is_empty() => self.verify(&mut report).await,
                (Ok(()), None) => {}
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
        if let Some(g) = self.lock.take() {
            g.release().await;
        }
        if let Some(r) = &self.runner {
            self.plan.remote_commands = r.commands();
            r.transport().close().await;
        }
    }
}

async fn connect_runner(state: &HostState) -> Result<Runner, String> {
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
