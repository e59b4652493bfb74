//! Applying a host's planned changes: a script runs the steps in order,
//! stops at the first failure, then runs the handlers each play triggered.
//! A guarded change (see `guard`) ends a script: it is proven before the
//! next one runs.

use serde::{Deserialize, Serialize};

use super::guard;
use super::lock::{STEP, WORK_LOCK};
use crate::desired::HostState;
use crate::plan::HostPlan;
use crate::plan::compute::{Observation, observed_of, resource_of};
use crate::resource::sshd::host_keys;
use crate::resource::{Runtime, service};
use crate::shell::{Script, q};

const MARK: &str = "@@slipway-rc ";
const ORPHANED: &str = "@@slipway-orphaned ";
/// Every apply script's steps, with times and run ids, for whoever looks
/// at the host later (and to show runs never overlapped).
pub const RUN_LOG: &str = "/var/log/slipway/apply.log";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Ok,
    Failed,
    /// Started, and the connection broke before it reported back: it may have
    /// finished on the host, or still be running there.
    Interrupted,
    NotRun,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub resource: String,
    pub summary: String,
    pub status: StepStatus,
    /// What the step printed, kept only when it failed; for a step that
    /// changed host keys, what users must know about the new ones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// What an apply script needs to know about the run it belongs to.
pub struct RunContext<'a> {
    /// The remote PID holding this run's host lock: a script whose holder is
    /// gone (its connection died) stops before its next step.
    pub holder: Option<u32>,
    /// A short id of this run, in the host's run log.
    pub run: &'a str,
    /// Who slipway is logged in as: who proves a guard that names nobody.
    pub login_user: &'a str,
}

/// A part of a play's script that ends with a guarded change (or the play's
/// end): the guard must be proven before the next part may run.
pub struct Segment {
    pub script: Script,
    /// The play-wide number of its first step.
    pub first: usize,
    pub names: Vec<(String, String)>,
    /// The guarded change that ends this segment, and who must prove it.
    pub guard: Option<Proof>,
}

/// A new login that must succeed after a guarded change.
#[derive(Debug, Clone)]
pub struct Proof {
    pub resource: String,
    pub user: String,
    pub port: u16,
}

struct Unit {
    resource: String,
    summary: String,
    script: Script,
    proof: Option<Proof>,
}

/// The steps and handlers of one play of `plan`, in the order the script runs them.
fn units(
    state: &HostState,
    plan: &HostPlan,
    obs: &Observation,
    play: usize,
    runtime: &Runtime,
    ctx: &RunContext<'_>,
) -> Vec<Unit> {
    let mut units = Vec::new();
    // A guard naming nobody is proven by whoever the last proven login was.
    let mut login = ctx.login_user.to_string();
    for step in plan.changes.iter().filter(|s| s.play == play) {
        let r = resource_of(state, step).expect("plan matches state");
        let mut observed = observed_of(state, step, obs);
        observed.runtime = Some(runtime);
        let resource = step.change.resource.clone();
        let mut script = Script::default();
        let proof = r.guard().map(|g| {
            let user = g.user.clone().unwrap_or_else(|| login.clone());
            script.line(guard::arm(&resource, &g, &user));
            login = user.clone();
            Proof {
                resource: resource.clone(),
                user,
                port: g.port,
            }
        });
        script.append(r.apply(&step.change, &observed));
        units.push(Unit {
            resource,
            summary: step.change.summary.clone(),
            script,
            proof,
        });
    }
    for h in plan.handlers.iter().filter(|h| h.play == play) {
        units.push(Unit {
            resource: format!("handler:{}", h.service),
            summary: format!("restart {}", h.service),
            script: Script::new(service::restart(&h.service, check_of(state, &h.service))),
            proof: None,
        });
    }
    units
}

/// The check of the service a handler restarts, if the host's resources give one.
fn check_of<'s>(state: &'s HostState, service: &str) -> Option<&'s str> {
    state
        .resources()
        .filter_map(|r| r.service_check())
        .find(|(name, _)| *name == service)
        .map(|(_, check)| check)
}

/// What every apply script does first: hold the work lock (shared) for as
/// long as it runs, survive its connection (output goes to a file, and a
/// closed channel no longer kills it), and log its steps on the host.
fn header(ctx: &RunContext<'_>) -> Script {
    let mut s = Script::default();
    s.line(format!(
        "exec 8>>{WORK_LOCK}
flock -s -w 30 8 || {{ echo 'the host work lock could not be taken' >&2; exit 1; }}"
    ));
    s.line("trap '' HUP PIPE");
    s.line("mkdir -p /run/slipway; mkdir -p -m 0750 /var/log/slipway");
    s.line("o=$(mktemp /run/slipway/out.XXXXXX)");
    s.line(format!(
        "slipway_log() {{ printf '%s %s %s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%S.%N | cut -c1-23)\" {} \"$*\" >> {RUN_LOG}; }}",
        q(ctx.run)
    ));
    s
}

/// One play's steps on one host as scripts that stop at the first failure,
/// split after each guarded change so that it is proven before going on.
pub fn segments(
    state: &HostState,
    plan: &HostPlan,
    obs: &Observation,
    play: usize,
    runtime: &Runtime,
    ctx: &RunContext<'_>,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut current: Option<Segment> = None;
    for (i, unit) in units(state, plan, obs, play, runtime, ctx)
        .into_iter()
        .enumerate()
    {
        let seg = current.get_or_insert_with(|| Segment {
            script: header(ctx),
            first: i,
            names: Vec::new(),
            guard: None,
        });
        let s = &mut seg.script;
        let name = q(&unit.resource);
        if let Some(pid) = ctx.holder {
            s.line(format!(
                "kill -0 {pid} 2>/dev/null || {{ slipway_log stopped before step {i} {name}: the host lock of this run is gone; printf '{ORPHANED}{i}\\n'; rm -f \"$o\"; exit 1; }}"
            ));
        }
        s.line(format!(
            "printf 'step %s of run %s: %s\\n' {i} {} {name} > {STEP}; slipway_log step {i} {name} start",
            q(ctx.run)
        ));
        s.line(format!("printf '@@slipway-step {i}\\n'"));
        s.line("(\nset -e");
        s.append(unit.script);
        s.line(") 8>&- >\"$o\" 2>&1; rc=$?");
        s.line(format!("slipway_log step {i} {name} exit $rc; cat \"$o\""));
        s.line(format!("printf '\\n{MARK}{i} %d\\n' \"$rc\""));
        s.line("[ \"$rc\" -eq 0 ] || { rm -f \"$o\"; exit 1; }");
        seg.names.push((unit.resource, unit.summary));
        if unit.proof.is_some() {
            seg.guard = unit.proof;
            segments.extend(current.take());
        }
    }
    segments.extend(current);
    for seg in &mut segments {
        seg.script.line(format!("rm -f \"$o\" {STEP}"));
    }
    segments
}

/// Whether the script stopped because its run's lock holder was gone.
pub fn orphaned(stdout: &str) -> bool {
    stdout.lines().any(|l| l.starts_with(ORPHANED))
}

/// Reads each step's status and output back from the script's stdout
/// (`first`: the number of its first step); `broken`: the connection broke
/// before the script ended.
pub fn parse(
    stdout: &str,
    names: &[(String, String)],
    first: usize,
    broken: bool,
) -> Vec<StepReport> {
    let mut reports: Vec<StepReport> = names
        .iter()
        .map(|(resource, summary)| StepReport {
            resource: resource.clone(),
            summary: summary.clone(),
            status: StepStatus::NotRun,
            output: String::new(),
        })
        .collect();
    let mut current: Option<usize> = None;
    let mut buf = String::new();
    for line in stdout.split_inclusive('\n') {
        if let Some(i) = line.strip_prefix("@@slipway-step ") {
            current = i
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(first));
            buf.clear();
        } else if let Some(rest) = line.strip_prefix(MARK) {
            let mut it = rest.split_whitespace();
            let (Some(i), Some(rc)) = (it.next().and_then(|v| v.parse::<usize>().ok()), it.next())
            else {
                continue;
            };
            if let Some(r) = i.checked_sub(first).and_then(|i| reports.get_mut(i)) {
                r.status = if rc == "0" {
                    StepStatus::Ok
                } else {
                    StepStatus::Failed
                };
                if r.status == StepStatus::Failed {
                    r.output = buf.trim().to_string();
                } else {
                    // The host keys it reports, for `host_keys::learn`.
                    r.output = buf
                        .lines()
                        .filter(|l| l.starts_with(host_keys::MARK))
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
            current = None;
        } else if current.is_some() {
            buf.push_str(line);
        }
    }
    // A step that started but never reported.
    if let Some(i) = current
        && let Some(r) = reports.get_mut(i)
    {
        if broken {
            r.status = StepStatus::Interrupted;
        } else {
            r.status = StepStatus::Failed;
            r.output = format!(
                "{}\n(the step did not finish: the remote shell ended)",
                buf.trim()
            );
        }
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_statuses_and_failed_output() {
        let names = vec![
            ("a".into(), "x".into()),
            ("b".into(), "y".into()),
            ("c".into(), "z".into()),
        ];
        let out = "@@slipway-step 0\nfine\n\n@@slipway-rc 0 0\n@@slipway-step 1\nboom\n\n@@slipway-rc 1 2\n";
        let r = parse(out, &names, 0, false);
        assert_eq!(r[0].status, StepStatus::Ok);
        assert_eq!(r[0].output, "");
        assert_eq!(r[1].status, StepStatus::Failed);
        assert_eq!(r[1].output, "boom");
        assert_eq!(r[2].status, StepStatus::NotRun);
    }
}
