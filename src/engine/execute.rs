//! Applying a host's planned changes: one script runs every step in order,
//! stops at the first failure, then runs the handlers each play triggered.

use serde::{Deserialize, Serialize};

use crate::desired::HostState;
use crate::plan::HostPlan;
use crate::plan::compute::{Observation, observed_of, resource_of};
use crate::resource::{Runtime, service};
use crate::shell::Script;

const MARK: &str = "@@slipway-rc ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Ok,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub resource: String,
    pub summary: String,
    pub status: StepStatus,
    /// What the step printed, kept only when it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// The steps and handlers of one play of `plan`, in the order the script runs them.
fn units(
    state: &HostState,
    plan: &HostPlan,
    obs: &Observation,
    play: usize,
    runtime: &Runtime,
) -> Vec<(String, String, Script)> {
    let mut units = Vec::new();
    for step in plan.changes.iter().filter(|s| s.play == play) {
        let r = resource_of(state, step).expect("plan matches state");
        let mut observed = observed_of(state, step, obs);
        observed.runtime = Some(runtime);
        units.push((
            step.change.resource.clone(),
            step.change.summary.clone(),
            r.apply(&step.change, &observed),
        ));
    }
    for h in plan.handlers.iter().filter(|h| h.play == play) {
        units.push((
            format!("handler:{}", h.service),
            format!("restart {}", h.service),
            Script::new(service::restart(&h.service, check_of(state, &h.service))),
        ));
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

/// One play's steps on one host as a single script that stops at the first failure.
pub fn script(
    state: &HostState,
    plan: &HostPlan,
    obs: &Observation,
    play: usize,
    runtime: &Runtime,
) -> (Script, Vec<(String, String)>) {
    let mut s = Script::default();
    let mut names = Vec::new();
    for (i, (resource, summary, unit)) in units(state, plan, obs, play, runtime)
        .into_iter()
        .enumerate()
    {
        s.line(format!("printf '@@slipway-step {i}\\n'"));
        s.line("(\nset -e");
        s.append(unit);
        s.line(") 2>&1; rc=$?");
        s.line(format!("printf '\\n{MARK}{i} %d\\n' \"$rc\""));
        s.line("[ \"$rc\" -eq 0 ] || exit 1");
        names.push((resource, summary));
    }
    (s, names)
}

/// Reads each step's status and output back from the script's stdout.
pub fn parse(stdout: &str, names: &[(String, String)]) -> Vec<StepReport> {
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
            current = i.trim().parse().ok();
            buf.clear();
        } else if let Some(rest) = line.strip_prefix(MARK) {
            let mut it = rest.split_whitespace();
            let (Some(i), Some(rc)) = (it.next().and_then(|v| v.parse::<usize>().ok()), it.next())
            else {
                continue;
            };
            if let Some(r) = reports.get_mut(i) {
                r.status = if rc == "0" {
                    StepStatus::Ok
                } else {
                    StepStatus::Failed
                };
                if r.status == StepStatus::Failed {
                    r.output = buf.trim().to_string();
                }
            }
            current = None;
        } else if current.is_some() {
            buf.push_str(line);
        }
    }
    // A step that started but never reported: the connection or the shell died under it.
    if let Some(i) = current
        && let Some(r) = reports.get_mut(i)
    {
        r.status = StepStatus::Failed;
        r.output = format!(
            "{}\n(the step did not finish: the connection or the remote shell ended)",
            buf.trim()
        );
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
        let r = parse(out, &names);
        assert_eq!(r[0].status, StepStatus::Ok);
        assert_eq!(r[0].output, "");
        assert_eq!(r[1].status, StepStatus::Failed);
        assert_eq!(r[1].output, "boom");
        assert_eq!(r[2].status, StepStatus::NotRun);
    }
}
