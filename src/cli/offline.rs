//! `render` and `check`: everything that can be done without a host.

use super::args::{CheckArgs, Inputs, RenderArgs};
use super::{CliError, EXIT_OK, Format, Ui};
use crate::config::{LoadOptions, Project};
use crate::desired::{self, HostState};
use crate::offline;

/// Loads and builds the desired state of every selected host. Secrets and
/// key files that are not on this machine only warn: nothing reaches a host.
fn build(inputs: &Inputs) -> Result<(Project, Vec<HostState>), CliError> {
    let project = Project::load(&LoadOptions {
        inventory: inputs.inventory.clone(),
        playbook: inputs.playbook.clone(),
        extra_vars: inputs.vars.extra_vars.clone(),
        user: None,
        limit: inputs.limit.clone(),
        templates_dir: inputs.vars.templates.clone(),
        offline: true,
    })?;
    let states = desired::build(&project)?;
    Ok((project, states))
}

pub fn render(args: RenderArgs, ui: &Ui) -> Result<i32, CliError> {
    let (project, states) = build(&args.inputs)?;
    let files = offline::files(&states, &project.redactor);
    offline::write(&args.out, &files)
        .map_err(|e| CliError::Message(format!("cannot write into {}: {e}", args.out.display())))?;
    match ui.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "files": files }))
                .expect("serializable")
        ),
        Format::Human => {
            for f in &files {
                let note = if f.sensitive {
                    " (sensitive: placeholder)"
                } else {
                    ""
                };
                println!(
                    "{}{}",
                    offline::target(&args.out, f).display(),
                    ui.palette.dim(note)
                );
            }
            println!(
                "{} files for {} hosts rendered into {}",
                files.len(),
                states.len(),
                args.out.display()
            );
        }
    }
    Ok(EXIT_OK)
}

pub fn check(args: CheckArgs, ui: &Ui) -> Result<i32, CliError> {
    let (project, states) = build(&args.inputs)?;
    let resources: usize = states.iter().map(|s| s.resources().count()).sum();
    let files = offline::files(&states, &project.redactor).len();
    match ui.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"ok": true, "hosts": states.len(), "resources": resources, "files": files})
        ),
        Format::Human => println!(
            "{} {} hosts, {resources} resources, {files} files rendered; no host was contacted",
            ui.palette.green("ok:"),
            states.len()
        ),
    }
    Ok(EXIT_OK)
}
