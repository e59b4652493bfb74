//! What each subcommand does, in terms of the library.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use super::args::{ApplyArgs, Command, FactsArgs, PlanArgs, Selection};
use super::notify::Notifier;
use super::{CliError, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Format, Ui};
use crate::config::{Host, Inventory, LoadOptions, Notify, Project};
use crate::desired::{self, HostState};
use crate::diag::SourceFile;
use crate::engine::{Engine, HostReport, Session, new_salt};
use crate::plan::Plan;
use crate::plan::saved::SavedPlan;
use crate::redact::Redactor;
use crate::render::{human::Human, json};

pub async fn run(command: Command, ui: &Ui) -> Result<i32, CliError> {
    match command {
        Command::Plan(a) => plan(a, ui).await,
        Command::Apply(a) => apply(a, ui).await,
        Command::Facts(a) => facts(a, ui).await,
        Command::Audit(a) => super::audit::run(a, ui).await,
        Command::Unlock(a) => super::unlock::run(a, ui).await,
        Command::Backup(a) => super::backup::run(a, ui).await,
        Command::Restore(a) => super::restore::run(a, ui).await,
        Command::Bootstrap(a) => super::bootstrap::run(a, ui).await,
        Command::Render(a) => super::offline::render(a, ui),
        Command::Check(a) => super::offline::check(a, ui),
        Command::Init { dir } => super::init::run(&dir, ui),
        Command::Completions { shell } => super::manual::completions(shell),
        Command::Man => super::manual::man(),
        Command::Roles { name } => roles(name.as_deref(), ui),
    }
}

pub(super) fn load_options(
    sel: &Selection,
    playbook: &std::path::Path,
) -> Result<LoadOptions, CliError> {
    let inventory = sel.inventory.clone().ok_or_else(|| {
        CliError::Message("no inventory: pass -i INVENTORY (a TOML file listing the hosts)".into())
    })?;
    Ok(LoadOptions {
        inventory,
        playbook: playbook.to_path_buf(),
        extra_vars: sel.vars.extra_vars.clone(),
        user: sel.user.clone(),
        limit: sel.limit.clone(),
        templates_dir: sel.vars.templates.clone(),
        offline: false,
    })
}

/// Everything the user wrote, checked; nothing has touched a host yet. The
/// inventory's `[notify]` channels come with it.
pub fn prepare(
    opts: &LoadOptions,
    forks: usize,
    salt: Vec<u8>,
) -> Result<(Engine, Vec<HostState>, Option<Notify>), CliError> {
    let project = Project::load(opts)?;
    let states = desired::build(&project)?;
    Ok((
        Engine {
            forks,
            redactor: project.redactor.clone(),
            salt,
        },
        states,
        project.inventory.notify,
    ))
}

fn plan_of(sessions: &[Session]) -> Plan {
    Plan {
        hosts: sessions.iter().map(|s| s.plan.clone()).collect(),
    }
}

pub(super) fn human(ui: &Ui) -> Human {
    Human {
        palette: ui.palette,
        verbose: ui.verbose > 0,
        full_diff: ui.full_diff,
    }
}

// Plans and reports (host errors included) reach stdout through the
// redactor of every secret this run met, whatever produced them.

fn print_plan(ui: &Ui, plan: &Plan) {
    let redactor = crate::redact::global();
    match ui.format {
        Format::Human => print!("{}", redactor.redact(&human(ui).plan(plan))),
        Format::Json => println!("{}", redacted_json(json::plan(plan))),
    }
}

fn print_report(ui: &Ui, reports: &[HostReport]) {
    let redactor = crate::redact::global();
    match ui.format {
        Format::Human => print!("{}", redactor.redact(&human(ui).report(reports))),
        Format::Json => println!("{}", redacted_json(json::report(reports))),
    }
}

pub(super) fn redacted_json(mut value: serde_json::Value) -> String {
    crate::redact::global().redact_json(&mut value);
    serde_json::to_string_pretty(&value).expect("json")
}

async fn plan(args: PlanArgs, ui: &Ui) -> Result<i32, CliError> {
    let opts = load_options(&args.sel, &args.playbook)?;
    let (engine, states, notify) = prepare(&opts, args.sel.forks, new_salt())?;
    if let Some(out) = &args.out {
        writable(out)?;
    }
    let notifier = if args.notify_drift {
        Some(Notifier::for_drift(notify, &args.playbook)?)
    } else {
        None
    };
    let started = Instant::now();
    let progress = ui.progress();
    let sessions = engine.open_all(states, false, progress.as_ref()).await;
    let sessions = engine.close_all(sessions).await;
    let plan = plan_of(&sessions);
    print_plan(ui, &plan);
    if let Some(n) = &notifier {
        n.drift(ui, &plan, started.elapsed());
    }
    if let Some(out) = &args.out {
        SavedPlan::new(opts, plan.clone(), &engine.salt)
            .save(out)
            .map_err(|e| CliError::Message(e.to_string()))?;
        if ui.format == Format::Human {
            println!(
                "Saved the plan to {}; apply it with: slipway apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if plan.summary().failed > 0 {
        EXIT_ERROR
    } else if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// Whether a plan can be saved at `path`, found out before any host is
/// contacted: nothing is written (a file that is there is opened, not changed).
fn writable(path: &Path) -> Result<(), CliError> {
    let refuse = |why: String| {
        CliError::Message(format!(
            "--out {}: cannot save the plan there: {why}; nothing was contacted",
            path.display()
        ))
    };
    if path.as_os_str().is_empty() {
        return Err(refuse("the path is empty".into()));
    }
    if path.is_dir() {
        return Err(refuse("it is a directory".into()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(refuse(format!("{} is not a directory", dir.display())));
    }
    // The plan is written beside its path, then renamed over it.
    tempfile::NamedTempFile::new_in(dir).map_err(|e| refuse(e.to_string()))?;
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| refuse(e.to_string()))?;
    }
    Ok(())
}

async fn apply(args: ApplyArgs, ui: &Ui) -> Result<i32, CliError> {
    if args.sel.inventory.is_none() {
        return apply_saved(args, ui).await;
    }
    let opts = load_options(&args.sel, &args.target)?;
    let (engine, states, notify) = prepare(&opts, args.sel.forks, new_salt())?;
    let notifier = Notifier::for_apply(notify, &args.target, args.no_notify);
    converge(&engine, states, args.yes, ui, notifier.as_ref()).await
}

/// Plans under the hosts' locks, shows the plan, asks (unless `yes`),
/// applies; then reports to `notifier` when hosts changed or failed.
pub async fn converge(
    engine: &Engine,
    states: Vec<HostState>,
    yes: bool,
    ui: &Ui,
    notifier: Option<&Notifier>,
) -> Result<i32, CliError> {
    let sessions = engine.open_all(states, true, ui.progress().as_ref()).await;
    let plan = plan_of(&sessions);
    print_plan(ui, &plan);
    if !plan.has_changes() {
        engine.close_all(sessions).await;
        if plan.summary().failed == 0 {
            return Ok(EXIT_OK);
        }
        if let Some(n) = notifier {
            n.applied(ui, &plan, &[], None);
        }
        return Ok(EXIT_ERROR);
    }
    if !yes && !confirm(&plan)? {
        engine.close_all(sessions).await;
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(EXIT_ERROR);
    }
    finish_apply(engine, sessions, &plan, ui, notifier).await
}

/// Applies, prints the report, notifies: the exit code is the apply's alone.
async fn finish_apply(
    engine: &Engine,
    sessions: Vec<Session>,
    plan: &Plan,
    ui: &Ui,
    notifier: Option<&Notifier>,
) -> Result<i32, CliError> {
    let started = Instant::now();
    let reports = engine.apply_all(sessions, ui.progress().as_ref()).await;
    print_report(ui, &reports);
    if let Some(n) = notifier {
        n.applied(ui, plan, &reports, Some(started.elapsed()));
    }
    Ok(if reports.iter().all(HostReport::ok) {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// Asks on the terminal; without one, refuses (use --yes).
fn confirm(plan: &Plan) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "refusing to apply without confirmation: stdin is not a terminal; pass --yes, or apply a saved plan".into(),
        ));
    }
    let s = plan.summary();
    eprint!(
        "Apply {} changes to {} hosts? Only 'yes' is accepted: ",
        s.changes, s.hosts_changing
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    Ok(answer.trim() == "yes")
}

async fn apply_saved(args: ApplyArgs, ui: &Ui) -> Result<i32, CliError> {
    let saved = SavedPlan::load(&args.target).map_err(|e| {
        CliError::Message(format!(
            "{e}\n(to apply a playbook, pass the inventory: slipway apply -i INVENTORY PLAYBOOK)"
        ))
    })?;
    let salt = hex::decode(&saved.salt).map_err(|_| {
        CliError::Message(format!(
            "{}: the plan's salt is not hex; run plan again",
            args.target.display()
        ))
    })?;
    let (engine, states, notify) = prepare(&saved.inputs, args.sel.forks, salt)?;
    let notifier = Notifier::for_apply(notify, &saved.inputs.playbook, args.no_notify);
    let names: Vec<&str> = states.iter().map(|s| s.host.name.as_str()).collect();
    let planned: Vec<&str> = saved.plan.hosts.iter().map(|h| h.host.as_str()).collect();
    if names != planned {
        return Err(CliError::Message(format!(
            "stale plan: it covers hosts [{}] but the inventory now selects [{}]; run plan again",
            planned.join(", "),
            names.join(", ")
        )));
    }
    let sessions = engine.open_all(states, true, ui.progress().as_ref()).await;
    let problems: Vec<String> = sessions
        .iter()
        .zip(&saved.plan.hosts)
        .filter_map(|(s, h)| s.check_saved(h).err())
        .collect();
    if !problems.is_empty() {
        engine.close_all(sessions).await;
        return Err(CliError::Message(format!(
            "refusing to apply {}: nothing was changed.\n{}",
            args.target.display(),
            problems.join("\n")
        )));
    }
    if !saved.plan.has_changes() {
        engine.close_all(sessions).await;
        print_report(ui, &[]);
        return Ok(EXIT_OK);
    }
    finish_apply(&engine, sessions, &saved.plan, ui, notifier.as_ref()).await
}

/// One host of an inventory, for the commands that work on a single host.
/// Variables play no part there: a secret that cannot be read only warns, as
/// in the offline commands.
pub fn inventory_host(path: &Path, name: &str) -> Result<(Host, Redactor), CliError> {
    let redactor = Redactor::offline();
    let inventory = Inventory::load(SourceFile::read(path)?, &redactor)?;
    let host = inventory.host(name).cloned().ok_or_else(|| {
        CliError::Message(format!(
            "no host named `{name}` in {}; known: {}",
            path.display(),
            inventory
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok((host, redactor))
}

async fn facts(args: FactsArgs, ui: &Ui) -> Result<i32, CliError> {
    let (host, redactor) = inventory_host(&args.inventory, &args.host)?;
    let engine = Engine {
        forks: 1,
        redactor,
        salt: new_salt(),
    };
    let state = HostState {
        host,
        plays: Vec::new(),
        notices: Vec::new(),
    };
    let mut sessions = engine
        .open_all(vec![state], false, ui.progress().as_ref())
        .await;
    let mut session = sessions.pop().expect("one host");
    session.close().await;
    if let Some(e) = &session.plan.error {
        return Err(CliError::Message(format!("{}: {e}", args.host)));
    }
    let facts = session.plan.facts.clone().unwrap_or_default();
    match ui.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&facts).expect("json")),
        Format::Human => {
            let value = serde_json::to_value(&facts).expect("json");
            for (k, v) in value.as_object().expect("facts are an object") {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".into(),
                    other => other.to_string(),
                };
                println!("{k:12} {v}");
            }
        }
    }
    Ok(EXIT_OK)
}

fn roles(name: Option<&str>, ui: &Ui) -> Result<i32, CliError> {
    let Some(name) = name else {
        for r in crate::roles::all() {
            match ui.format {
                Format::Human => println!("{:14} {}", r.name(), r.about()),
                Format::Json => {}
            }
        }
        if ui.format == Format::Json {
            let list: Vec<serde_json::Value> = crate::roles::all()
                .iter()
                .map(|r| serde_json::json!({"name": r.name(), "about": r.about(), "defaults": r.defaults()}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        }
        return Ok(EXIT_OK);
    };
    let role = crate::roles::lookup(name).ok_or_else(|| {
        CliError::Message(format!(
            "no role named `{name}`; {}",
            crate::roles::known_help()
        ))
    })?;
    match ui.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&role.defaults()).expect("json")
        ),
        Format::Human => {
            println!(
                "# {}: {}\n# Variables and their defaults (set them in the inventory, a play, or with -e):",
                role.name(),
                role.about()
            );
            print!("{}", crate::roles::defaults_toml(role));
        }
    }
    Ok(EXIT_OK)
}
