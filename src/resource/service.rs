//! `service`: a systemd unit enabled or not, running or stopped.

use serde::Deserialize;

use super::{BuildContext, Observed, Outcome, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Stopped,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub enabled: Option<bool>,
    pub state: Option<RunState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: toml::Spanned<String>,
    enabled: Option<bool>,
    state: Option<RunState>,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    let name = spec.name.get_ref();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:\\".contains(c));
    if !valid {
        return Err(ctx.doc.src.error(
            spec.name.span(),
            format!("`{name}` is not a valid systemd unit name"),
        ));
    }
    if spec.enabled.is_none() && spec.state.is_none() {
        return Err(ctx
            .error(node, "a service needs `enabled`, `state`, or both")
            .with_help("for example: enabled = true, state = \"running\""));
    }
    Ok(Box::new(Service {
        name: spec.name.into_inner(),
        enabled: spec.enabled,
        state: spec.state,
    }))
}

/// `systemctl is-enabled` answers that count as enabled.
const ENABLED: &[&str] = &[
    "enabled",
    "enabled-runtime",
    "static",
    "alias",
    "indirect",
    "generated",
];

impl Resource for Service {
    fn id(&self) -> String {
        format!("service:{}", self.name)
    }

    fn probe(&self) -> String {
        let n = q(&self.name);
        format!(
            "systemctl show -p LoadState -p ActiveState {n} 2>/dev/null | sed 's/^LoadState=/load=/; s/^ActiveState=/active=/'\nprintf 'enabled=%s\\n' \"$(systemctl is-enabled {n} 2>/dev/null)\"\n"
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        if !obs.facts.systemd {
            return Outcome::skipped(format!(
                "{}: systemd is not running on this host",
                self.name
            ));
        }
        let load = obs.get("load").unwrap_or("not-found");
        let active = obs.get("active").unwrap_or("inactive");
        let enabled = obs.get("enabled").unwrap_or("");
        if load == "masked" || enabled == "masked" {
            return Outcome::blocked(format!(
                "{} is masked; unmask it first if it should run",
                self.name
            ));
        }
        let mut attrs = Vec::new();
        if let Some(want) = self.enabled {
            let is = ENABLED.contains(&enabled);
            if want != is {
                attrs.push(Attr::new("enabled", Some(is), Some(want)));
            }
        }
        if let Some(want) = self.state {
            // "activating" and "reloading" are on their way to running.
            let running = matches!(active, "active" | "activating" | "reloading");
            let want_running = want == RunState::Running;
            if want_running != running {
                attrs.push(Attr::new(
                    "state",
                    Some(active),
                    Some(if want_running { "active" } else { "inactive" }),
                ));
            }
        }
        if attrs.is_empty() {
            return Outcome::unchanged();
        }
        let mut summary = attrs
            .iter()
            .map(|a| match (a.name.as_str(), a.to.as_deref()) {
                ("enabled", Some("true")) => "enable",
                ("enabled", _) => "disable",
                (_, Some("active")) => "start",
                _ => "stop",
            })
            .collect::<Vec<_>>()
            .join(" and ");
        summary = format!("{summary} {}", self.name);
        if load == "not-found" {
            summary.push_str(" (unit not installed yet)");
        }
        Outcome::change(Change::new(self.id(), Action::Update, summary).with_attrs(attrs))
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let n = q(&self.name);
        let mut s = Script::default();
        for a in &change.attrs {
            let verb = match (a.name.as_str(), a.to.as_deref()) {
                ("enabled", Some("true")) => "enable",
                ("enabled", _) => "disable",
                (_, Some("active")) => "start",
                _ => "stop",
            };
            s.line(format!("systemctl {verb} {n}"));
        }
        s
    }
}

/// The shell a handler runs: restart once, after the play's changes.
pub fn restart(name: &str) -> String {
    format!("systemctl restart {}", q(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn plan(s: &Service, section: &str) -> Outcome {
        let facts = HostFacts {
            systemd: true,
            ..HostFacts::default()
        };
        s.plan(&Observed {
            section,
            facts: &facts,
        })
    }

    #[test]
    fn starts_and_enables_a_stopped_unit() {
        let s = Service {
            name: "nginx".into(),
            enabled: Some(true),
            state: Some(RunState::Running),
        };
        let c = plan(&s, "load=loaded\nactive=inactive\nenabled=disabled\n")
            .change
            .unwrap();
        assert_eq!(c.summary, "enable and start nginx");
        assert!(
            plan(&s, "load=loaded\nactive=active\nenabled=enabled\n")
                .change
                .is_none()
        );
    }

    #[test]
    fn ubuntu_socket_activated_ssh_counts_as_running() {
        // Ubuntu 24.04: ssh.service is started on demand by ssh.socket; when no one is
        // connected it reports inactive, and is-enabled answers "disabled".
        let s = Service {
            name: "ssh.socket".into(),
            enabled: Some(true),
            state: Some(RunState::Running),
        };
        assert!(
            plan(&s, "load=loaded\nactive=active\nenabled=enabled\n")
                .change
                .is_none()
        );
    }

    #[test]
    fn masked_units_block() {
        let s = Service {
            name: "x".into(),
            enabled: Some(true),
            state: None,
        };
        assert!(
            plan(&s, "load=masked\nactive=inactive\nenabled=masked\n")
                .blocked
                .is_some()
        );
    }
}
