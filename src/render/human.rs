//! The plan and the apply report as a person reads them.

use std::fmt::Write;

use super::{Palette, plural};
use crate::engine::{HostReport, StepStatus};
use crate::plan::change::{Action, Attr};
use crate::plan::{HostPlan, Plan};
use crate::resource::stack::services::split_attr;

pub struct Human {
    pub palette: Palette,
    /// Also show remote command counts and host facts.
    pub verbose: bool,
    /// Every line of created files, however long (`--full-diff`).
    pub full_diff: bool,
}

impl Human {
    pub fn plan(&self, plan: &Plan) -> String {
        let mut out = String::new();
        for host in &plan.hosts {
            self.host_plan(&mut out, host);
        }
        let s = plan.summary();
        let line = if s.changes == 0 && s.failed == 0 {
            "No changes: every host matches the playbook.".to_string()
        } else {
            let mut l = format!(
                "Plan: {} to change on {} of {}.",
                s.changes,
                s.hosts_changing,
                plural(s.hosts, "host", "hosts")
            );
            if s.failed > 0 {
                write!(
                    l,
                    " {} could not be planned.",
                    plural(s.failed, "host", "hosts")
                )
                .ok();
            }
            l
        };
        writeln!(out, "{}", self.palette.bold(&line)).ok();
        out
    }

    fn host_plan(&self, out: &mut String, host: &HostPlan) {
        let p = &self.palette;
        let mut title = format!("{} ({})", p.bold(&host.host), host.address);
        if let Some(f) = host.facts.as_ref().filter(|_| self.verbose) {
            write!(
                title,
                " {}",
                p.dim(&format!(
                    "{}{}",
                    f.os_name,
                    f.container
                        .as_ref()
                        .map(|c| format!(", {c} container"))
                        .unwrap_or_default()
                ))
            )
            .ok();
        }
        if self.verbose {
            write!(
                title,
                " {}",
                p.dim(&format!(
                    "[{}]",
                    plural(
                        host.remote_commands as usize,
                        "remote command",
                        "remote commands"
                    )
                ))
            )
            .ok();
        }
        writeln!(out, "{title}").ok();
        if let Some(e) = &host.error {
            for (i, line) in e.lines().enumerate() {
                let lead = if i == 0 {
                    p.red("  error: ")
                } else {
                    "         ".into()
                };
                writeln!(out, "{lead}{line}").ok();
            }
            writeln!(out).ok();
            return;
        }
        for step in &host.changes {
            let c = &step.change;
            let sym = c.action.symbol().to_string();
            let sym = match c.action {
                Action::Create => p.green(&sym),
                Action::Delete => p.red(&sym),
                Action::Update => p.yellow(&sym),
                Action::Run => p.cyan(&sym),
            };
            writeln!(out, "  {sym} {}  {}", p.bold(&c.resource), c.summary).ok();
            if c.resource.starts_with("stack:") {
                stack_attrs(out, p, &c.attrs);
            } else {
                for a in &c.attrs {
                    writeln!(out, "      {}", p.dim(&attr_line(&a.name, a))).ok();
                }
            }
            if let Some(d) = &c.diff {
                self.diff(out, d);
            }
        }
        for h in &host.handlers {
            writeln!(
                out,
                "  {} restart {} {}",
                p.cyan("*"),
                h.service,
                p.dim("(handler, once at the end of its play)")
            )
            .ok();
        }
        for n in &host.notices {
            writeln!(out, "  {} {n}", p.yellow("! note:")).ok();
        }
        for s in &host.skipped {
            let reason = if self.verbose {
                s.reason.clone()
            } else {
                shorten(&s.reason)
            };
            writeln!(out, "  {} {}", p.dim("= skipped"), p.dim(&reason)).ok();
        }
        if host.changes.is_empty() {
            writeln!(out, "  {}", p.dim("no changes")).ok();
        }
        writeln!(out).ok();
    }

    pub fn report(&self, reports: &[HostReport]) -> String {
        let p = &self.palette;
        let mut out = String::new();
        for r in reports {
            let status = match (&r.error, r.problems.is_empty(), r.changed()) {
                (Some(_), _, _) => p.red("failed"),
                (None, false, _) => p.red("not converged"),
                (None, true, 0) => p.dim("no changes"),
                (None, true, n) => p.green(&format!("{} changed, verified", n)),
            };
            let mut title = format!("{} {status}", p.bold(&r.host));
            if self.verbose {
                write!(
                    title,
                    " {}",
                    p.dim(&format!(
                        "[{}]",
                        plural(
                            r.remote_commands as usize,
                            "remote command",
                            "remote commands"
                        )
                    ))
                )
                .ok();
            }
            writeln!(out, "{title}").ok();
            for s in &r.steps {
                let mark = match s.status {
                    StepStatus::Ok => p.green("ok"),
                    StepStatus::Failed => p.red("FAILED"),
                    StepStatus::Interrupted => p.red("INTERRUPTED"),
                    StepStatus::NotRun => p.dim("not run"),
                };
                writeln!(out, "  {mark} {}  {}", s.resource, p.dim(&s.summary)).ok();
                for line in s.output.lines() {
                    writeln!(out, "      {line}").ok();
                }
            }
            for pr in &r.problems {
                writeln!(out, "  {} {pr}", p.red("!")).ok();
            }
            if let Some(e) = &r.error {
                writeln!(
                    out,
                    "  {} {}",
                    p.red("error:"),
                    e.replace('\n', "\n         ")
                )
                .ok();
            }
        }
        let changed: usize = reports.iter().map(HostReport::changed).sum();
        let hosts_changed = reports.iter().filter(|r| r.changed() > 0).count();
        let failed = reports.iter().filter(|r| !r.ok()).count();
        let mut line = if changed == 0 && failed == 0 {
            "Apply complete: no changes, every host matches the playbook.".to_string()
        } else {
            format!(
                "Apply complete: {changed} changed on {hosts_changed} of {}.",
                plural(reports.len(), "host", "hosts")
            )
        };
        if failed > 0 {
            line = format!(
                "Apply finished with errors: {changed} changed; {} failed.",
                plural(failed, "host", "hosts")
            );
        }
        writeln!(
            out,
            "{}",
            if failed > 0 {
                p.red(&line)
            } else {
                p.bold(&line)
            }
        )
        .ok();
        out
    }
}

/// Long skip reasons (every kernel setting a container cannot take) would bury
/// the changes: without -v they are cut after about a line.
fn shorten(reason: &str) -> String {
    const MAX: usize = 100;
    match reason.char_indices().nth(MAX) {
        None => reason.to_string(),
        Some((cut, _)) => {
            let cut = reason[..cut].rfind(", ").unwrap_or(cut);
            format!("{}, ... (-v lists all)", &reason[..cut])
        }
    }
}

fn attr_line(name: &str, a: &Attr) -> String {
    match (&a.from, &a.to) {
        (Some(f), Some(t)) => format!("{name}: {f} -> {t}"),
        (None, Some(t)) => format!("{name}: {t}"),
        (Some(f), None) => format!("{name}: {f} -> (none)"),
        (None, None) => name.to_string(),
    }
}

/// A stack's attrs under a line per service (`api`, `web: added`), one field
/// a line, digests shortened to 12 digits as `docker` shows image IDs.
fn stack_attrs(out: &mut String, p: &Palette, attrs: &[Attr]) {
    let mut current = None;
    for a in attrs {
        let Some((service, field)) = split_attr(a) else {
            writeln!(out, "      {}", p.dim(&attr_line(&a.name, a))).ok();
            current = None;
            continue;
        };
        if field.is_empty() {
            writeln!(out, "      {}", p.dim(&attr_line(service, a))).ok();
        } else {
            if current != Some(service) {
                writeln!(out, "      {}", p.dim(&format!("{service}:"))).ok();
            }
            let short = Attr {
                from: a.from.as_deref().map(short_digests),
                to: a.to.as_deref().map(short_digests),
                ..a.clone()
            };
            writeln!(out, "        {}", p.dim(&attr_line(field, &short))).ok();
        }
        current = Some(service);
    }
}

/// `app:1.0@sha256:4f7c86c48a34...` -> `app:1.0@sha256:4f7c86c48a34`.
fn short_digests(text: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split("@sha256:");
    out.push_str(parts.next().unwrap_or_default());
    for part in parts {
        let hex = part.chars().take_while(char::is_ascii_hexdigit).count();
        out.push_str("@sha256:");
        out.push_str(&part[..hex.min(12)]);
        out.push_str(&part[hex..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::change::Change;
    use crate::plan::{HostPlan, Step};

    fn plan() -> Plan {
        let mut change = Change::new("file:/etc/motd".into(), Action::Update, "update /etc/motd");
        change.diff = Some(crate::diff::file_diff(
            "/etc/motd",
            Some(b"old\n"),
            b"new\n",
        ));
        Plan {
            hosts: vec![
                HostPlan {
                    host: "web1".into(),
                    address: "192.0.2.1".into(),
                    changes: vec![Step {
                        play: 0,
                        index: 0,
                        change,
                        digest: String::new(),
                    }],
                    remote_commands: 2,
                    ..HostPlan::default()
                },
                HostPlan {
                    host: "web2".into(),
                    address: "192.0.2.2".into(),
                    remote_commands: 1,
                    ..HostPlan::default()
                },
            ],
        }
    }

    #[test]
    fn long_skip_reasons_are_cut_unless_verbose() {
        let long = format!(
            "sysctl: kernel settings are read-only: {}",
            vec!["net.ipv4.x"; 30].join(", ")
        );
        let short = shorten(&long);
        assert!(
            short.len() < 130 && short.ends_with(", ... (-v lists all)"),
            "{short}"
        );
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn colours_only_when_asked() {
        let on = Human {
            palette: Palette { on: true },
            verbose: false,
            full_diff: false,
        }
        .plan(&plan());
        assert!(on.contains("\u{1b}[32m+new\u{1b}[0m"), "{on}");
        assert!(on.contains("\u{1b}[31m-old\u{1b}[0m"), "{on}");
        let off = Human {
            palette: Palette { on: false },
            verbose: false,
            full_diff: false,
        }
        .plan(&plan());
        assert!(!off.contains('\u{1b}'), "{off}");
        assert!(off.contains("--- /etc/motd (on host)\n"), "{off}");
    }

    #[test]
    fn summary_counts_changes_and_hosts_and_verbose_shows_commands() {
        let out = Human {
            palette: Palette { on: false },
            verbose: true,
            full_diff: false,
        }
        .plan(&plan());
        assert!(out.contains("Plan: 1 to change on 1 of 2 hosts."), "{out}");
        assert!(
            out.contains("web1 (192.0.2.1) [2 remote commands]"),
            "{out}"
        );
        assert!(out.contains("web2 (192.0.2.2) [1 remote command]"), "{out}");
    }

    #[test]
    fn a_stacks_attrs_are_grouped_by_service() {
        let attr = |n: &str, f: Option<&str>, t: Option<&str>| Attr::new(n, f, t);
        let digest = "4f7c86c48a3466baef0b01ec3d72c942fd03ecdf1e5cb410d6946fc303c250ef";
        let mut p = plan();
        p.hosts[0].changes[0].change =
            Change::new("stack:demo".into(), Action::Update, "update stack demo").with_attrs(vec![
                attr(
                    "api.image",
                    Some(&format!("app:1.0@sha256:{digest}")),
                    Some("app:1.1"),
                ),
                attr("api.env.LOG", None, Some("debug")),
                attr("web", None, Some("added")),
                attr("web.image", None, Some("nginx")),
                attr("revision", Some("abc"), Some("def")),
            ]);
        let out = Human {
            palette: Palette { on: false },
            verbose: false,
            full_diff: false,
        }
        .plan(&p);
        let want = "      api:\n        image: app:1.0@sha256:4f7c86c48a34 -> app:1.1\n        env.LOG: debug\n      web: added\n        image: nginx\n      revision: abc -> def\n";
        assert!(out.contains(want), "{out}");
    }
}
