//! When apply and plan notify, and what they say about the run.

use std::path::Path;
use std::time::Duration;

use super::{CliError, Format, Ui};
use crate::config::Notify;
use crate::engine::HostReport;
use crate::notify::{Report, Run};
use crate::plan::Plan;

/// The inventory's channels, for one command on one playbook.
pub struct Notifier {
    config: Notify,
    playbook: String,
}

impl Notifier {
    /// For apply: the inventory's `[notify]`, unless `--no-notify`.
    pub fn for_apply(config: Option<Notify>, playbook: &Path, off: bool) -> Option<Self> {
        Some(Self::new(config.filter(|_| !off)?, playbook))
    }

    /// For `plan --notify-drift`, which asks for a channel the inventory
    /// must have: refused before any host is contacted.
    pub fn for_drift(config: Option<Notify>, playbook: &Path) -> Result<Self, CliError> {
        let config = config.ok_or_else(|| {
            CliError::Message(
                "--notify-drift: the inventory has no [notify] section to send to; nothing was contacted"
                    .into(),
            )
        })?;
        Ok(Self::new(config, playbook))
    }

    fn new(config: Notify, playbook: &Path) -> Self {
        let playbook = playbook
            .file_name()
            .unwrap_or(playbook.as_os_str())
            .to_string_lossy()
            .into_owned();
        Self { config, playbook }
    }

    fn run(&self, command: &'static str, duration: Option<Duration>) -> Run {
        Run {
            command,
            playbook: self.playbook.clone(),
            who: crate::engine::lock::who(),
            duration,
        }
    }

    /// After an apply that changed hosts or failed: `reports` is empty when
    /// it stopped before applying (hosts that could not be planned).
    pub fn applied(&self, ui: &Ui, plan: &Plan, reports: &[HostReport], took: Option<Duration>) {
        let report = Report::applied(plan, reports, self.run("apply", took));
        self.send(ui, &report);
    }

    /// After a plan: drift when it has changes or hosts failed to plan.
    pub fn drift(&self, ui: &Ui, plan: &Plan, took: Duration) {
        if plan.has_changes() || plan.summary().failed > 0 {
            let report = Report::drift(plan, self.run("plan", Some(took)));
            self.send(ui, &report);
        }
    }

    fn send(&self, ui: &Ui, report: &Report) {
        // Delivery blocks (at most the send timeout): off the async workers.
        let failed = tokio::task::block_in_place(|| crate::notify::send(&self.config, report));
        let sent: Vec<&str> = self
            .config
            .channels()
            .into_iter()
            .filter(|c| !failed.contains(c))
            .collect();
        if ui.format == Format::Human && !sent.is_empty() {
            eprintln!(
                "Notified {} ({}).",
                sent.join(", "),
                report.outcome.as_str()
            );
        }
    }
}
