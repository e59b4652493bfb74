//! `slipway audit`: the report, and its exit code (0 as the roles set, 2
//! something differs, 1 a host could not be audited).

use super::args::AuditArgs;
use super::commands::{load_options, redacted_json};
use super::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Format, Ui};
use crate::config::Project;
use crate::desired;
use crate::engine::audit::Expect;
use crate::engine::{Engine, new_salt};

pub async fn run(args: AuditArgs, ui: &Ui) -> Result<i32, CliError> {
    let opts = load_options(&args.sel, &args.playbook)?;
    let project = Project::load(&opts)?;
    let mut states = desired::build(&project)?;
    let expects: Vec<Expect> = states
        .iter_mut()
        .map(|s| Expect::of(s, &project.inventory))
        .collect();
    let engine = Engine {
        forks: args.sel.forks,
        redactor: project.redactor.clone(),
        salt: new_salt(),
    };
    let started = std::time::Instant::now();
    let audit = engine
        .audit_all(
            states.into_iter().zip(expects).collect(),
            ui.progress().as_ref(),
        )
        .await;
    tracing::info!(
        hosts = audit.hosts.len(),
        ms = started.elapsed().as_millis() as u64,
        "audit done"
    );
    let redactor = crate::redact::global();
    match ui.format {
        Format::Human => print!(
            "{}",
            redactor.redact(&crate::render::audit::human(
                &audit,
                ui.palette,
                ui.verbose > 0
            ))
        ),
        Format::Json => println!(
            "{}",
            redacted_json(serde_json::to_value(&audit).expect("json"))
        ),
    }
    Ok(if audit.failed() > 0 {
        EXIT_ERROR
    } else if audit.differing() > 0 {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
