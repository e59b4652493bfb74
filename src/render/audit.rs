//! The audit report as a person reads it; `--format json` is the same value
//! serialized (see [`crate::audit`]).

use std::fmt::Write;

use super::{Palette, plural};
use crate::audit::{Audit, HostAudit, Status};

pub fn human(audit: &Audit, palette: Palette, verbose: bool) -> String {
    let mut out = String::new();
    for host in &audit.hosts {
        host_audit(&mut out, host, palette, verbose);
    }
    let (n, differing, failed) = (audit.hosts.len(), audit.differing(), audit.failed());
    let line = if differing == 0 && failed == 0 {
        format!(
            "Audit: {} as their roles set.",
            plural(n, "host is", "hosts are")
        )
    } else {
        let mut l = format!(
            "Audit: {differing} of {} differ.",
            plural(n, "host", "hosts")
        );
        if failed > 0 {
            write!(
                l,
                " {} could not be audited.",
                plural(failed, "host", "hosts")
            )
            .ok();
        }
        l
    };
    writeln!(out, "{}", palette.bold(&line)).ok();
    out
}

fn host_audit(out: &mut String, host: &HostAudit, p: Palette, verbose: bool) {
    let mut title = format!("{} ({})", p.bold(&host.host), host.address);
    if verbose {
        write!(
            title,
            " {}",
            p.dim(&plural(
                host.remote_commands as usize,
                "remote command",
                "remote commands"
            ))
        )
        .ok();
    }
    writeln!(out, "{title}").ok();
    if let Some(e) = &host.error {
        writeln!(out, "  {} {e}", p.red("error:")).ok();
    }
    for c in &host.checks {
        let status = match c.status {
            Status::Ok => p.green("ok     "),
            Status::Differs => p.red("differs"),
            Status::Skipped => p.dim("skipped"),
        };
        let first = c.notes.first().map(String::as_str).unwrap_or_default();
        writeln!(out, "  {status} {:9} {}", c.name, p.dim(first)).ok();
        for note in c.notes.iter().skip(1) {
            writeln!(out, "          {:9} {}", "", p.dim(note)).ok();
        }
        for f in &c.findings {
            writeln!(out, "    {} {}", p.red("!"), p.bold(&f.subject)).ok();
            writeln!(out, "        expected: {}", f.expected).ok();
            writeln!(out, "        found:    {}", f.found).ok();
        }
    }
    out.push('\n');
}
