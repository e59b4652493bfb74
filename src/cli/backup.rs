//! `slipway backup`: a PostgreSQL backup and its restore drill, now, on the
//! hosts of the `postgres_backup` role. The work is the role's script on the
//! host (started as its systemd service, as the timer would); slipway holds
//! the host lock meanwhile, like apply, and prints what the script recorded.

use std::path::Path;

use serde::Serialize;

use super::args::{BackupArgs, HostArgs};
use super::{CliError, EXIT_ERROR, EXIT_OK, Format, Ui};
use crate::config::{Host, Inventory};
use crate::desired::HostState;
use crate::diag::SourceFile;
use crate::engine::connect_runner;
use crate::engine::lock::{self, Lock};
use crate::engine::runner::Runner;
use crate::redact::Redactor;
use crate::roles::postgres_backup::{SCRIPT, UNIT};
use crate::shell::Script;

/// The script's exit code when the role is not on the host.
const NO_ROLE: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Lock(String),
    #[error("the postgres_backup role is not applied here ({SCRIPT} is missing)")]
    NoRole,
    #[error("{what} failed: {detail}")]
    Remote { what: &'static str, detail: String },
    #[error("not restored: {0}")]
    NotConfirmed(&'static str),
}

/// The hosts `--limit` selects (every host without it), as the inventory describes them.
pub fn select(args: &HostArgs) -> Result<Vec<Host>, CliError> {
    let inventory = load(&args.inventory)?;
    let names = match &args.limit {
        None => inventory.hosts.iter().map(|h| h.name.clone()).collect(),
        Some(pattern) => inventory.select(pattern).map_err(|unknown| {
            CliError::Message(format!(
                "--limit: no host or group named `{unknown}`; known: {}",
                inventory.names().join(", ")
            ))
        })?,
    };
    Ok(names
        .iter()
        .filter_map(|n| inventory.host(n).cloned())
        .map(|mut h| {
            if let Some(u) = &args.user {
                h.user = Some(u.clone());
            }
            h
        })
        .collect())
}

fn load(path: &Path) -> Result<Inventory, CliError> {
    // Secrets of the inventory are not needed to connect; unreadable ones are placeholders.
    Ok(Inventory::load(
        SourceFile::read(path)?,
        &Redactor::offline(),
    )?)
}

/// A host connected and locked, like apply holds it.
pub struct Locked {
    pub runner: Runner,
    lock: Lock,
}

impl Locked {
    pub async fn open(host: Host) -> Result<Locked, HostError> {
        let state = HostState {
            host,
            plays: Vec::new(),
            notices: Vec::new(),
        };
        let runner = connect_runner(&state).await.map_err(HostError::Connect)?;
        match lock::acquire(&runner, &lock::owner(lock::run_id())).await {
            Ok(lock) => Ok(Locked { runner, lock }),
            Err(e) => {
                runner.transport().close().await;
                Err(HostError::Lock(e))
            }
        }
    }

    /// Runs `sh` as root; its stdout, or what went wrong (`what`, and stderr).
    pub async fn run(&self, what: &'static str, sh: String) -> Result<String, HostError> {
        let out = self
            .runner
            .run(&Script::new(sh))
            .await
            .map_err(|e| HostError::Connect(e.to_string()))?;
        match out.status {
            0 => Ok(out.stdout_str()),
            NO_ROLE => Err(HostError::NoRole),
            _ => Err(HostError::Remote {
                what,
                detail: last_line(&out.stderr_str()),
            }),
        }
    }

    pub async fn close(self) {
        self.lock.guard.release().await;
        self.runner.transport().close().await;
    }
}

fn last_line(text: &str) -> String {
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    line.unwrap_or("no output").trim().to_string()
}

/// Fails with [`NO_ROLE`] where the role's script is not installed.
pub fn require_role() -> String {
    format!("[ -x {SCRIPT} ] || exit {NO_ROLE}\n")
}

/// `key value` lines; `restored`, `current` and `backup` lines are row counts.
#[derive(Debug, Default, Serialize)]
pub struct Record {
    pub values: std::collections::BTreeMap<String, String>,
    pub counts: Vec<(String, String, u64)>,
}

impl Record {
    pub fn parse(text: &str) -> Record {
        let mut r = Record::default();
        for line in text.lines() {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            let count = rest
                .rsplit_once(' ')
                .and_then(|(t, n)| Some((t.to_string(), n.parse::<u64>().ok()?)));
            match (key, count) {
                ("restored" | "current" | "backup", Some((table, n))) => {
                    r.counts.push((key.to_string(), table, n));
                }
                _ => {
                    r.values.insert(key.to_string(), rest.to_string());
                }
            }
        }
        r
    }

    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    /// `table -> rows` of the lines of `kind`.
    pub fn tables(&self, kind: &str) -> std::collections::BTreeMap<&str, u64> {
        self.counts
            .iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, t, n)| (t.as_str(), *n))
            .collect()
    }
}

#[derive(Debug, Serialize)]
struct Outcome {
    host: String,
    ok: bool,
    /// The role is not on this host: nothing ran.
    skipped: bool,
    error: Option<String>,
    #[serde(flatten)]
    record: Option<Record>,
}

async fn backup_host(host: Host) -> Outcome {
    let name = host.name.clone();
    let result = async {
        let locked = Locked::open(host).await?;
        // `systemctl start` of a oneshot unit returns when the run is over (or
        // joins a run the timer started); the record says how it went.
        let sh = format!(
            "{}systemctl start {UNIT}.service >/dev/null 2>&1\n{SCRIPT} status\n",
            require_role()
        );
        let out = locked.run("reading the backup's record", sh).await;
        locked.close().await;
        out
    }
    .await;
    match result {
        Ok(text) => {
            let record = Record::parse(&text);
            let error = Some(record.get("error").to_string()).filter(|e| !e.is_empty());
            Outcome {
                host: name,
                ok: record.get("result") == "ok",
                skipped: false,
                error,
                record: Some(record),
            }
        }
        Err(e) => Outcome {
            host: name,
            ok: false,
            skipped: matches!(e, HostError::NoRole),
            error: Some(e.to_string()),
            record: None,
        },
    }
}

pub async fn run(args: BackupArgs, ui: &Ui) -> Result<i32, CliError> {
    let hosts = select(&args.hosts)?;
    let outcomes = futures::future::join_all(hosts.into_iter().map(backup_host)).await;
    let redactor = crate::redact::global();
    match ui.format {
        Format::Json => println!(
            "{}",
            super::commands::redacted_json(serde_json::to_value(&outcomes).expect("json"))
        ),
        Format::Human => {
            for o in &outcomes {
                print!("{}", redactor.redact(&human(o, ui)));
            }
        }
    }
    let ran: Vec<&Outcome> = outcomes.iter().filter(|o| !o.skipped).collect();
    if ran.is_empty() {
        return Err(CliError::Message(
            "no selected host has the postgres_backup role applied".into(),
        ));
    }
    Ok(if ran.iter().all(|o| o.ok) {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn human(o: &Outcome, ui: &Ui) -> String {
    let p = ui.palette;
    if o.skipped {
        return format!(
            "{}: skipped: the postgres_backup role is not applied here\n",
            o.host
        );
    }
    let Some(r) = o.record.as_ref().filter(|_| o.ok) else {
        let error = o.error.as_deref().unwrap_or("no error recorded");
        return format!("{}: {} {error}\n", o.host, p.red("backup FAILED:"));
    };
    let size: u64 = r.get("size").parse().unwrap_or_default();
    let mut text = format!(
        "{}: {} {} ({}), sha256 {}\n  backup {} s; restore drill {} in {} s\n",
        o.host,
        p.green("backup ok:"),
        r.get("file"),
        bytes(size),
        r.get("sha256"),
        r.get("backup_seconds"),
        r.get("drill"),
        r.get("drill_seconds"),
    );
    for (table, rows) in r.tables("restored") {
        text.push_str(&format!("    {table}: {rows} rows, as in the backup\n"));
    }
    if !r.get("copy").is_empty() {
        text.push_str(&format!(
            "  copied to {}, checksum verified there\n",
            r.get("copy")
        ));
    }
    text
}

pub fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_has_values_and_row_counts() {
        let r = Record::parse(
            "result ok\nfile app-1.dump\nerror \nrestored public.\"odd name\" 2\nrestored public.items 1234\n",
        );
        assert_eq!(r.get("result"), "ok");
        assert_eq!(r.get("error"), "");
        assert_eq!(
            r.tables("restored").into_iter().collect::<Vec<_>>(),
            [("public.\"odd name\"", 2), ("public.items", 1234)]
        );
        assert_eq!(bytes(4109), "4.0 KiB");
    }
}
