//! `slipway restore`: one backup back into the running PostgreSQL service,
//! after a plan-like confirmation of what it replaces (each table's rows now
//! and in the backup), then every table's rows compared with the backup's.

use std::io::{BufRead, IsTerminal, Write};

use super::args::RestoreArgs;
use super::backup::{HostError, Locked, Record, bytes, require_role, select};
use super::{CliError, EXIT_ERROR, EXIT_OK, Format, Ui};
use crate::roles::postgres_backup::SCRIPT;

/// `latest`, or a backup's file name as the role writes them (no path).
fn check_from(from: &str) -> Result<(), CliError> {
    let name_ok = from.ends_with(".dump")
        && !from.starts_with('.')
        && from
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if from == "latest" || name_ok {
        return Ok(());
    }
    Err(CliError::Message(format!(
        "--from {from:?}: give a backup's file name in the backup directory (NAME.dump), or latest"
    )))
}

pub async fn run(args: RestoreArgs, ui: &Ui) -> Result<i32, CliError> {
    check_from(&args.from)?;
    let mut hosts = select(&args.hosts)?;
    if hosts.len() != 1 {
        return Err(CliError::Message(format!(
            "restore works on one host, and {} are selected: pass --limit HOST",
            hosts.len()
        )));
    }
    let host = hosts.remove(0);
    let name = host.name.clone();
    let fail = |e: HostError| CliError::Message(format!("{name}: {e}"));
    let locked = Locked::open(host).await.map_err(fail)?;
    let result = restore(&locked, &args, ui, &name).await;
    locked.close().await;
    result.map_err(fail)
}

async fn restore(
    locked: &Locked,
    args: &RestoreArgs,
    ui: &Ui,
    name: &str,
) -> Result<i32, HostError> {
    let from = crate::shell::q(&args.from);
    let before = Record::parse(
        &locked
            .run(
                "reading the backup and the database",
                format!("{}{SCRIPT} inspect {from}\n", require_role()),
            )
            .await?,
    );
    eprint!(
        "{}",
        crate::redact::global().redact(&confirmation(name, &before))
    );
    if !args.yes {
        confirm(name)?;
    }
    // The file inspect resolved: `latest` must not move to a newer backup meanwhile.
    let file = crate::shell::q(before.get("file"));
    let after = Record::parse(
        &locked
            .run("pg_restore", format!("{SCRIPT} restore {file}\n"))
            .await?,
    );
    let expected = before.tables("backup");
    let got = after.tables("restored");
    let differ: Vec<String> = expected
        .iter()
        .filter(|(t, n)| got.get(*t) != Some(n))
        .map(|(t, n)| {
            let now = got.get(t).map_or("missing".to_string(), u64::to_string);
            format!("{t}: {now} rows, the backup has {n}")
        })
        .collect();
    match ui.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "host": name,
                "file": before.get("file"),
                "database": before.get("database"),
                "service": before.get("service"),
                "before": before.tables("current"),
                "backup": expected,
                "after": got,
                "ok": differ.is_empty(),
            })
        ),
        Format::Human if differ.is_empty() => println!(
            "{name}: restored {} into {}: every table has the backup's row count ({} tables)",
            before.get("file"),
            before.get("database"),
            expected.len()
        ),
        Format::Human => println!(
            "{name}: restored {}, but row counts differ from the backup's (writers still connected?):\n  {}",
            before.get("file"),
            differ.join("\n  ")
        ),
    }
    Ok(if differ.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// What the restore replaces: every table of the backup, its rows now and in it.
fn confirmation(name: &str, r: &Record) -> String {
    let size: u64 = r.get("size").parse().unwrap_or_default();
    let mut text = format!(
        "{name}: restore {} ({}) into database {} of service {}\n  \
         pg_restore --clean --if-exists drops and recreates every table of the backup:\n",
        r.get("file"),
        bytes(size),
        r.get("database"),
        r.get("service"),
    );
    let now = r.tables("current");
    let backup = r.tables("backup");
    let width = backup.keys().map(|t| t.len()).max().unwrap_or(5).max(5);
    text.push_str(&format!(
        "    {:width$}  {:>12}  {:>12}\n",
        "table", "rows now", "in backup"
    ));
    for (table, rows) in &backup {
        let current = now.get(table).map_or("(missing)".into(), u64::to_string);
        text.push_str(&format!("    {table:width$}  {current:>12}  {rows:>12}\n"));
    }
    let untouched: Vec<&str> = now
        .keys()
        .filter(|t| !backup.contains_key(*t))
        .copied()
        .collect();
    if !untouched.is_empty() {
        text.push_str(&format!(
            "  tables not in the backup stay as they are: {}\n",
            untouched.join(", ")
        ));
    }
    text
}

/// Asks on the terminal; without one, refuses (use --yes).
fn confirm(name: &str) -> Result<(), HostError> {
    if !std::io::stdin().is_terminal() {
        return Err(HostError::NotConfirmed(
            "stdin is not a terminal to confirm on; pass --yes to restore without asking",
        ));
    }
    eprint!("Replace those tables of {name}? Only 'yes' is accepted: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(HostError::NotConfirmed("the answer was not 'yes'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_is_latest_or_a_file_name() {
        for ok in ["latest", "app-20261130T074637Z.dump"] {
            assert!(check_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "../etc/shadow",
            ".app.dump.tmp",
            "app.sql",
            "a b.dump",
            "/x.dump",
        ] {
            assert!(check_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_confirmation_shows_rows_now_and_in_the_backup() {
        let r = Record::parse(
            "file app-1.dump\nservice api_postgres\ndatabase app\nsize 4109\n\
             current public.extra 5\ncurrent public.items 10\nbackup public.items 1234\nbackup public.users 3\n",
        );
        let text = confirmation("db-1", &r);
        assert!(
            text.starts_with(
                "db-1: restore app-1.dump (4.0 KiB) into database app of service api_postgres\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    public.items            10          1234\n"),
            "{text}"
        );
        assert!(
            text.contains("    public.users     (missing)             3\n"),
            "{text}"
        );
        assert!(text.ends_with("stay as they are: public.extra\n"), "{text}");
    }
}
