//! `slipway unlock`: after a run died in a way its host did not notice (a
//! network gone for longer than sshd waits, a suspended laptop), show who
//! holds the host's lock and release it, like Terraform's force-unlock.

use std::io::{BufRead, IsTerminal, Write};

use super::args::UnlockArgs;
use super::commands::inventory_host;
use super::{CliError, EXIT_OK, Format, Ui};
use crate::desired::HostState;
use crate::engine::connect_runner;
use crate::engine::lock::{self, LockStatus};

pub async fn run(args: UnlockArgs, ui: &Ui) -> Result<i32, CliError> {
    let (mut host, redactor) = inventory_host(&args.inventory, &args.host)?;
    if let Some(u) = &args.user {
        host.user = Some(u.clone());
    }
    let name = host.name.clone();
    let state = HostState {
        host,
        plays: Vec::new(),
        notices: Vec::new(),
    };
    let fail = |e: String| CliError::Message(redactor.redact(&format!("{name}: {e}")));
    let runner = connect_runner(&state).await.map_err(fail)?;
    let result = unlock(&runner, &args, ui, &name).await.map_err(fail);
    runner.transport().close().await;
    result
}

async fn unlock(
    runner: &crate::engine::runner::Runner,
    args: &UnlockArgs,
    ui: &Ui,
    name: &str,
) -> Result<i32, String> {
    let out = runner
        .run(&lock::inspect())
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "could not read the lock: {}",
            out.stderr_str().trim()
        ));
    }
    let status = LockStatus::parse(&out.stdout_str());
    let running = !status.scripts.is_empty();
    if ui.format == Format::Json {
        println!(
            "{}",
            serde_json::json!({
                "host": name,
                "held": status.held,
                "owner": status.owner,
                "holders": status.holders,
                "scripts": status.scripts,
                "step": status.step,
            })
        );
    } else {
        eprintln!("{}", describe(name, &status));
    }
    let work = status.held || (running && args.stop_script);
    if !work {
        return Ok(EXIT_OK);
    }
    if !args.yes && !confirm(name, args.stop_script && running)? {
        return Err("not released".into());
    }
    let out = runner
        .run(&lock::release(args.stop_script))
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "releasing the lock failed: {}",
            out.stderr_str().trim()
        ));
    }
    if ui.format == Format::Human {
        eprintln!("{name}: the lock is released.");
        if running && !args.stop_script {
            eprintln!(
                "{name}: the apply script of that run stops before its next step; the next apply waits for it (--stop-script stops it now)."
            );
        }
    }
    Ok(EXIT_OK)
}

fn describe(name: &str, s: &LockStatus) -> String {
    let mut text = if s.held {
        format!(
            "{name} is locked by {} (remote process {})",
            s.owner.as_deref().unwrap_or("an unknown run"),
            join(&s.holders)
        )
    } else {
        format!("{name} is not locked")
    };
    if !s.scripts.is_empty() {
        text.push_str(&format!(
            "\n{name}: an apply script is still running ({}), process {}",
            s.step.as_deref().unwrap_or("step unknown"),
            join(&s.scripts)
        ));
    }
    text
}

fn join(pids: &[u32]) -> String {
    if pids.is_empty() {
        return "unknown".into();
    }
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asks on the terminal; without one, refuses (use --yes).
fn confirm(name: &str, stop_script: bool) -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err(
            "refusing to release the lock without confirmation: stdin is not a terminal; pass --yes"
                .into(),
        );
    }
    let what = if stop_script {
        "Release the lock and stop the running script"
    } else {
        "Release the lock"
    };
    eprint!(
        "{what} of {name}? Only do this when that run is really gone. Only 'yes' is accepted: "
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    Ok(answer.trim() == "yes")
}
