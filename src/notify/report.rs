//! What a notification says: a value built from the plan and what apply did,
//! so every channel formats the same facts.

use std::time::Duration;

use crate::engine::{HostReport, StepReport, StepStatus};
use crate::plan::{HostPlan, Plan};
use crate::resource::stack::follow::{self, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Swarm rolled a service's update back: the hosts run the old image.
    Rollback,
    /// A plan found hosts that differ from the playbook (or could not tell).
    Drift,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Rollback => "rollback",
            Outcome::Drift => "drift",
        }
    }
}

/// One host's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLine {
    pub host: String,
    /// Changes applied (apply) or pending (drift).
    pub changes: usize,
    pub failed: Option<HostFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFailure {
    /// The step that failed; none when the host failed outside a step
    /// (connecting, planning, verifying).
    pub resource: Option<String>,
    /// The first line of the error.
    pub error: String,
}

/// A service's image as a stack change moves it: `SERVICE.image` from -> to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    pub host: String,
    pub stack: String,
    pub service: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A service whose update Swarm did not finish, on the host that deployed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    pub host: String,
    pub failure: Failure,
}

/// The run a report is about.
#[derive(Debug, Clone)]
pub struct Run {
    /// `apply` or `plan`.
    pub command: &'static str,
    /// The playbook's file name.
    pub playbook: String,
    /// `ACCOUNT@MACHINE`.
    pub who: String,
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    pub run: Run,
    pub hosts: Vec<HostLine>,
    pub images: Vec<ImageChange>,
    pub services: Vec<ServiceFailure>,
}

impl Report {
    /// What an apply did: `plan` is what it planned, `reports` what it did
    /// (empty when it stopped before applying, e.g. hosts failed to plan).
    pub fn applied(plan: &Plan, reports: &[HostReport], run: Run) -> Self {
        let mut services = Vec::new();
        let hosts: Vec<HostLine> = plan
            .hosts
            .iter()
            .map(|hp| {
                let report = reports.iter().find(|r| r.host == hp.host);
                let failed_step = report.and_then(|r| {
                    r.steps
                        .iter()
                        .find(|s| matches!(s.status, StepStatus::Failed | StepStatus::Interrupted))
                });
                if let Some(step) = failed_step.filter(|s| s.resource.starts_with("stack:")) {
                    services.extend(follow::failures(&step.output).into_iter().map(|failure| {
                        ServiceFailure {
                            host: hp.host.clone(),
                            failure,
                        }
                    }));
                }
                HostLine {
                    host: hp.host.clone(),
                    changes: report.map_or(0, HostReport::changed),
                    failed: failure(hp, report, failed_step),
                }
            })
            .collect();
        let outcome = if services.iter().any(|s| s.failure.rolled_back()) {
            Outcome::Rollback
        } else if hosts.iter().any(|h| h.failed.is_some()) {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        Self {
            outcome,
            run,
            hosts,
            images: images(plan),
            services,
        }
    }

    /// What a plan found: changes pending per host, and hosts it could not plan.
    pub fn drift(plan: &Plan, run: Run) -> Self {
        let hosts = plan
            .hosts
            .iter()
            .map(|hp| HostLine {
                host: hp.host.clone(),
                changes: hp.changes.len(),
                failed: hp.error.as_deref().map(|e| HostFailure {
                    resource: None,
                    error: first_line(e),
                }),
            })
            .collect();
        Self {
            outcome: Outcome::Drift,
            run,
            hosts,
            images: images(plan),
            services: Vec::new(),
        }
    }

    pub fn changes(&self) -> usize {
        self.hosts.iter().map(|h| h.changes).sum()
    }
}

/// Why a host failed, if it did: its failed step first, then what failed
/// outside steps.
fn failure(
    plan: &HostPlan,
    report: Option<&HostReport>,
    step: Option<&StepReport>,
) -> Option<HostFailure> {
    if let Some(step) = step {
        let error = error_line(&step.output)
            .or_else(|| report.and_then(|r| r.error.as_deref()).map(first_line))
            .unwrap_or_else(|| format!("{} failed", step.resource));
        return Some(HostFailure {
            resource: Some(step.resource.clone()),
            error,
        });
    }
    let error = plan
        .error
        .as_deref()
        .or_else(|| report.and_then(|r| r.error.as_deref()))
        .or_else(|| report.and_then(|r| r.problems.first().map(String::as_str)))?;
    Some(HostFailure {
        resource: None,
        error: first_line(error),
    })
}

/// The line of a step's output that says what went wrong: the first naming an
/// error, else the last (where a failing command usually says why).
fn error_line(output: &str) -> Option<String> {
    let lines = || output.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("failed")
        })
        .or_else(|| lines().next_back())
        .map(str::to_string)
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// The image moves of every `stack:NAME` change: its `SERVICE.image` attrs.
fn images(plan: &Plan) -> Vec<ImageChange> {
    let mut out = Vec::new();
    for hp in &plan.hosts {
        for step in &hp.changes {
            let Some(stack) = step.change.resource.strip_prefix("stack:") else {
                continue;
            };
            for attr in &step.change.attrs {
                if let Some(service) = attr.name.strip_suffix(".image") {
                    out.push(ImageChange {
                        host: hp.host.clone(),
                        stack: stack.to_string(),
                        service: service.to_string(),
                        from: attr.from.clone(),
                        to: attr.to.clone(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use crate::plan::change::{Action, Attr, Change};
    use crate::plan::{HostPlan, Step};

    pub const ROLLED_BACK: &str = "Updating service api_api (id: x)\n\
        service api_api: rolled back; tried reg:5443/app:broken; running reg:5443/app:1.1; \
        swarm: rollback completed; task error: unhealthy container\n";

    pub fn run(command: &'static str) -> Run {
        Run {
            command,
            playbook: "site.toml".into(),
            who: "ops@laptop".into(),
            duration: Some(Duration::from_secs(83)),
        }
    }

    fn step(resource: &str, attrs: Vec<Attr>) -> Step {
        Step {
            play: 0,
            index: 0,
            change: Change::new(resource.into(), Action::Update, "update").with_attrs(attrs),
            digest: String::new(),
        }
    }

    /// web1 deploys stack api (the api service from app:1.0 to app:1.1) and
    /// changes a file; web2 changes one file; db1 could not be reached.
    pub fn plan() -> Plan {
        let stack = step(
            "stack:api",
            vec![
                Attr::new(
                    "api.image",
                    Some("reg:5443/app:1.0"),
                    Some("reg:5443/app:1.1"),
                ),
                Attr::new("api.replicas", Some("1"), Some("2")),
                Attr::new("nginx.env.MODE", Some("a"), Some("b")),
            ],
        );
        let host = |name: &str, changes: Vec<Step>| HostPlan {
            host: name.into(),
            changes,
            ..HostPlan::default()
        };
        Plan {
            hosts: vec![
                host("web1", vec![step("file:/etc/motd", vec![]), stack]),
                host("web2", vec![step("file:/etc/motd", vec![])]),
                HostPlan::failed("db1", "db1", "connect: refused\nmore".into(), 0),
            ],
        }
    }

    pub fn reports(stack_output: Option<&str>) -> Vec<HostReport> {
        let step = |resource: &str, status, output: &str| StepReport {
            resource: resource.into(),
            summary: String::new(),
            status,
            output: output.into(),
        };
        let mut web1 = HostReport {
            host: "web1".into(),
            steps: vec![step("file:/etc/motd", StepStatus::Ok, "")],
            ..HostReport::default()
        };
        match stack_output {
            Some(out) => {
                web1.steps.push(step("stack:api", StepStatus::Failed, out));
                web1.error = Some("stack:api failed".into());
            }
            None => web1.steps.push(step("stack:api", StepStatus::Ok, "")),
        }
        let web2 = HostReport {
            host: "web2".into(),
            steps: vec![step("file:/etc/motd", StepStatus::Ok, "")],
            ..HostReport::default()
        };
        vec![web1, web2]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn an_apply_names_each_host_its_changes_and_where_it_failed() {
        let r = Report::applied(&plan(), &reports(None), run("apply"));
        // db1 failed to plan: the apply failed.
        assert_eq!(r.outcome, Outcome::Failure);
        let lines: Vec<(&str, usize)> = r
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.changes))
            .collect();
        assert_eq!(lines, [("web1", 2), ("web2", 1), ("db1", 0)]);
        assert_eq!(r.hosts[0].failed, None);
        let db1 = r.hosts[2].failed.as_ref().unwrap();
        assert_eq!(
            (db1.resource.as_deref(), db1.error.as_str()),
            (None, "connect: refused")
        );
        assert_eq!(
            r.images,
            [ImageChange {
                host: "web1".into(),
                stack: "api".into(),
                service: "api".into(),
                from: Some("reg:5443/app:1.0".into()),
                to: Some("reg:5443/app:1.1".into()),
            }]
        );
        let mut ok_plan = plan();
        ok_plan.hosts.pop();
        let ok = Report::applied(&ok_plan, &reports(None), run("apply"));
        assert_eq!((ok.outcome, ok.changes()), (Outcome::Success, 3));
    }

    #[test]
    fn a_rolled_back_service_makes_the_outcome_rollback() {
        let mut p = plan();
        p.hosts.pop();
        let r = Report::applied(&p, &reports(Some(ROLLED_BACK)), run("apply"));
        assert_eq!(r.outcome, Outcome::Rollback);
        let failed = r.hosts[0].failed.as_ref().unwrap();
        assert_eq!(failed.resource.as_deref(), Some("stack:api"));
        assert!(
            failed.error.starts_with("service api_api: rolled back"),
            "{}",
            failed.error
        );
        assert_eq!(r.services.len(), 1);
        assert_eq!(r.services[0].failure.tried, "reg:5443/app:broken");
        // Not rolled back (paused): a plain failure, the step's last line.
        let paused = ROLLED_BACK.replace("rolled back", "update paused");
        let r = Report::applied(&p, &reports(Some(&paused)), run("apply"));
        assert_eq!(r.outcome, Outcome::Failure);
        let r = Report::applied(&p, &reports(Some("one\nno such file\n")), run("apply"));
        assert_eq!(r.hosts[0].failed.as_ref().unwrap().error, "no such file");
    }

    #[test]
    fn drift_counts_pending_changes_per_host() {
        let r = Report::drift(&plan(), run("plan"));
        assert_eq!(r.outcome, Outcome::Drift);
        let lines: Vec<(&str, usize)> = r
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.changes))
            .collect();
        assert_eq!(lines, [("web1", 2), ("web2", 1), ("db1", 0)]);
        assert!(r.hosts[2].failed.is_some());
        assert_eq!(r.images.len(), 1);
    }
}
