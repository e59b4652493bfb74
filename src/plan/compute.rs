//! From a host's desired state and one probe to its [`HostPlan`].

use base64::Engine as _;

use super::change::Attr;
use super::{Fingerprint, Handler, HostPlan, Skip, Step};
use crate::desired::HostState;
use crate::engine::runner::Runner;
use crate::facts::HostFacts;
use crate::probe::{self, Sections};
use crate::resource::{Observed, Resource};
use crate::shell::{Script, q};

/// The probe's result for one host.
#[derive(Debug, Clone)]
pub struct Observation {
    pub facts: HostFacts,
    pub sections: Vec<String>,
}

/// Runs the host's one batched probe.
pub async fn observe(runner: &Runner, state: &HostState) -> Result<Observation, String> {
    let resources: Vec<&dyn Resource> = state.resources().collect();
    let script = probe::script(&resources);
    let out = runner.run(&script).await.map_err(|e| e.to_string())?;
    let sections = probe::read(&out.stdout_str(), &resources).map_err(|e| {
        let stderr = out.stderr_str();
        format!(
            "{e} (exit status {}){}",
            out.status,
            if stderr.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", stderr.trim())
            }
        )
    })?;
    Ok(Observation {
        facts: HostFacts::parse(&sections.facts),
        sections: sections.resources,
    })
}

/// Pure: what the host needs, from what was observed. Diffs of changed files
/// are filled in later by [`fill_diffs`], which needs the files' current text.
pub fn plan(state: &HostState, obs: &Observation, salt: &[u8]) -> HostPlan {
    let mut plan = HostPlan {
        host: state.host.name.clone(),
        address: state.host.address.clone(),
        facts: Some(obs.facts.clone()),
        ..HostPlan::default()
    };
    let mut blocked = Vec::new();
    let mut flat = 0;
    for play in &state.plays {
        let mut notified: Vec<String> = Vec::new();
        for (index, r) in play.resources.iter().enumerate() {
            let section = &obs.sections[flat];
            flat += 1;
            plan.fingerprints.push(Fingerprint {
                resource: r.id(),
                sha256: probe::fingerprint(&r.stable(section)),
            });
            let observed = Observed::new(section, &obs.facts);
            let outcome = r.plan(&observed);
            plan.skipped
                .extend(outcome.skipped.into_iter().map(|reason| Skip {
                    resource: r.id(),
                    reason,
                }));
            if let Some(reason) = outcome.blocked {
                blocked.push(format!("{}: {reason}", r.id()));
            }
            if let Some(mut change) = outcome.change {
                if let Some(g) = r.guard() {
                    let who = g.user.map(|u| format!(" as {u}")).unwrap_or_default();
                    change.attrs.push(Attr::new(
                        "revert",
                        None::<&str>,
                        Some(format!(
                            "armed: the host puts the previous state back after {} s unless a new login{who} on port {} proves the change",
                            g.window, g.port
                        )),
                    ));
                }
                for n in r.notify() {
                    if !notified.contains(n) {
                        notified.push(n.clone());
                    }
                }
                let digest = digest(salt, &r.apply(&change, &observed));
                plan.changes.push(Step {
                    play: play.index,
                    index,
                    change,
                    digest,
                });
            }
        }
        plan.handlers
            .extend(notified.into_iter().map(|service| Handler {
                play: play.index,
                service,
            }));
    }
    if !blocked.is_empty() {
        plan.error = Some(blocked.join("\n"));
    }
    plan
}

fn digest(salt: &[u8], script: &Script) -> String {
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(script.sh.as_bytes());
    for p in &script.payloads {
        bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
        bytes.extend_from_slice(p);
    }
    crate::digest::sha256_hex(&bytes)
}

/// What the probe saw of a step's resource.
pub fn observed_of<'o>(state: &HostState, step: &Step, obs: &'o Observation) -> Observed<'o> {
    let before: usize = state
        .plays
        .iter()
        .take_while(|p| p.index != step.play)
        .map(|p| p.resources.len())
        .sum();
    Observed::new(&obs.sections[before + step.index], &obs.facts)
}

/// The resource a step refers to.
pub fn resource_of<'s>(state: &'s HostState, step: &Step) -> Option<&'s dyn Resource> {
    let play = state.plays.iter().find(|p| p.index == step.play)?;
    play.resources.get(step.index).map(|r| r.as_ref())
}

/// Fetches, in one remote command, the current text of every file whose change
/// is shown as a diff, and computes the diffs. Nothing is fetched when no file
/// changes, so a plan without changes costs exactly one command.
pub async fn fill_diffs(
    runner: &Runner,
    state: &HostState,
    plan: &mut HostPlan,
) -> Result<(), String> {
    let facts = plan.facts.clone().unwrap_or_default();
    let facts = &facts;
    let mut wanted = Vec::new();
    for (i, step) in plan.changes.iter().enumerate() {
        let r = resource_of(state, step).expect("plan matches state");
        if let Some(path) = r.diff_source(&step.change) {
            wanted.push((i, path));
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut s = Script::default();
    s.line("printf '@@slipway-section facts\\n'");
    for (k, (_, path)) in wanted.iter().enumerate() {
        // One byte over the diff limit tells "too large to diff" apart from "fits".
        s.line(format!(
            "printf '\\n@@slipway-section {k}\\n'; if [ -f {p} ]; then head -c {} {p} | base64 -w0; fi",
            crate::diff::MAX_TEXT + 1,
            p = q(path)
        ));
    }
    s.line("printf '\\n@@slipway-section end\\n'");
    let out = runner.run(&s).await.map_err(|e| e.to_string())?;
    let sections = Sections::parse(&out.stdout_str(), wanted.len())?;
    for ((i, _), body) in wanted.iter().zip(sections.resources) {
        let old = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("could not read the current content of a file: {e}"))?;
        let step = &mut plan.changes[*i];
        let r = resource_of(state, step).expect("plan matches state");
        r.set_diff(&mut step.change, Some(&old), facts);
    }
    Ok(())
}
