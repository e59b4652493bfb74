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

#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub enabled: Option<bool>,
    pub state: Option<RunState>,
    /// A cheap command, run by every probe, that tells a working service from a
    /// unit that is merely "active" (its socket exists). When it fails, the plan
    /// restarts the service.
    pub check: Option<String>,
    /// The thorough proof (`fail2ban-client ping`, `docker info`), waited for
    /// after every start and restart. Too slow for every probe.
    pub verify: Option<String>,
    /// Units that systemd never starts in a container (time sync): skipped there.
    pub skip_in_container: bool,
}

impl Service {
    pub fn running(name: &str) -> Self {
        Self {
            name: name.to_string(),
            enabled: Some(true),
            state: Some(RunState::Running),
            ..Self::default()
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: toml::Spanned<String>,
    enabled: Option<bool>,
    state: Option<RunState>,
    check: Option<String>,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    check_unit_name(spec.name.get_ref()).map_err(|m| ctx.doc.src.error(spec.name.span(), m))?;
    if spec.enabled.is_none() && spec.state.is_none() {
        return Err(ctx
            .error(node, "a service needs `enabled`, `state`, or both")
            .with_help("for example: enabled = true, state = \"running\""));
    }
    Ok(Box::new(Service {
        name: spec.name.into_inner(),
        enabled: spec.enabled,
        state: spec.state,
        check: spec.check,
        verify: None,
        skip_in_container: false,
    }))
}

/// A systemd unit name, as a service or a `notify` entry names it.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:\\".contains(c));
    if valid {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid systemd unit name"))
    }
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

/// What a changed attribute asks systemctl to do.
fn verb(attr: &Attr) -> &'static str {
    match (attr.name.as_str(), attr.to.as_deref()) {
        ("enabled", Some("true")) => "enable",
        ("enabled", _) => "disable",
        ("state", Some("active")) => "start",
        ("state", _) => "stop",
        _ => "restart",
    }
}

/// Shell that waits (up to 30 s) for `check` to pass, then fails if it never did.
pub fn wait_for_check(name: &str, check: &str) -> String {
    format!(
        "i=0; until ( {check}\n ) >/dev/null 2>&1 </dev/null; do i=$((i+1)); if [ $i -ge 30 ]; then echo {} >&2; exit 1; fi; sleep 1; done",
        q(&format!(
            "{name} is running but its check failed for 30 s: {check}"
        ))
    )
}

impl Resource for Service {
    fn id(&self) -> String {
        format!("service:{}", self.name)
    }

    fn manages(&self) -> Vec<super::Managed> {
        vec![super::Managed::sole(super::Thing::Unit, &self.name)]
    }

    fn units(&self) -> &[String] {
        std::slice::from_ref(&self.name)
    }

    /// The unit's state comes from the shared query (see [`Resource::units`]);
    /// the check runs whatever that state, and counts only while the unit is active.
    fn probe(&self) -> String {
        match &self.check {
            Some(check) => format!(
                "if ( {check}\n ) >/dev/null 2>&1 </dev/null; then echo check=ok; else echo check=failed; fi\n"
            ),
            None => String::new(),
        }
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        if !obs.facts.systemd {
            return Outcome::skipped(format!(
                "{}: systemd is not running on this host",
                self.name
            ));
        }
        if let (true, Some(c)) = (self.skip_in_container, &obs.facts.container) {
            return Outcome::skipped(format!(
                "{}: systemd does not start it inside a container ({c})",
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
        // What `systemctl is-active` calls active: a check means something only then.
        let check_failed = matches!(active, "active" | "reloading" | "refreshing")
            && obs.get("check") == Some("failed");
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
                let to = if want_running { "active" } else { "inactive" };
                attrs.push(Attr::new("state", Some(active), Some(to)));
            } else if want_running && check_failed {
                attrs.push(Attr::new("check", Some("failed"), Some("ok")));
            }
        }
        if attrs.is_empty() {
            return Outcome::unchanged();
        }
        let verbs: Vec<&str> = attrs.iter().map(verb).collect();
        let mut summary = format!("{} {}", verbs.join(" and "), self.name);
        if load == "not-found" {
            summary.push_str(" (unit not installed yet)");
        }
        if check_failed {
            summary.push_str(&format!(
                " (`{}` fails)",
                self.check.as_deref().unwrap_or_default()
            ));
        }
        Outcome::change(Change::new(self.id(), Action::Update, summary).with_attrs(attrs))
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let n = q(&self.name);
        let mut s = Script::default();
        for a in &change.attrs {
            s.line(format!("systemctl {} {n}", verb(a)));
        }
        let started = change
            .attrs
            .iter()
            .any(|a| matches!(verb(a), "start" | "restart"));
        if let (true, Some((_, proof))) = (started, self.service_check()) {
            s.line(wait_for_check(&self.name, proof));
        }
        s
    }

    fn service_check(&self) -> Option<(&str, &str)> {
        self.verify
            .as_deref()
            .or(self.check.as_deref())
            .map(|c| (self.name.as_str(), c))
    }
}

/// The shell a handler runs, once after its play's changes: restart the
/// service if it is running (a stopped service stays stopped), then wait
/// for its check, if it has one.
pub fn restart(name: &str, check: Option<&str>) -> String {
    let mut sh = format!("systemctl try-restart {}", q(name));
    if let Some(check) = check {
        sh.push_str(&format!(
            "\nif systemctl is-active --quiet {}; then {}; fi",
            q(name),
            wait_for_check(name, check)
        ));
    }
    sh
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
        s.plan(&Observed::new(section, &facts))
    }

    #[test]
    fn starts_and_enables_a_stopped_unit() {
        let s = Service::running("nginx");
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
        let s = Service::running("ssh.socket");
        assert!(
            plan(&s, "load=loaded\nactive=active\nenabled=enabled\n")
                .change
                .is_none()
        );
    }

    #[test]
    fn a_failing_check_restarts_and_containers_skip_what_they_cannot_run() {
        let mut s = Service::running("fail2ban");
        s.check = Some("fail2ban-client ping".into());
        let c = plan(
            &s,
            "load=loaded\nactive=active\nenabled=enabled\ncheck=failed\n",
        )
        .change
        .unwrap();
        assert_eq!(c.summary, "restart fail2ban (`fail2ban-client ping` fails)");
        // The probe runs the check whatever the state; it counts only while active.
        for (active, summary) in [("inactive", "start fail2ban"), ("activating", "")] {
            let o = plan(
                &s,
                &format!("load=loaded\nactive={active}\nenabled=enabled\ncheck=failed\n"),
            );
            assert_eq!(o.change.map(|c| c.summary).unwrap_or_default(), summary);
        }
        assert!(
            s.apply(&c, &Observed::new("", &HostFacts::default()))
                .sh
                .contains("until ( fail2ban-client ping")
        );
        let mut t = Service::running("systemd-timesyncd");
        t.skip_in_container = true;
        let facts = HostFacts {
            systemd: true,
            container: Some("docker".into()),
            ..HostFacts::default()
        };
        let o = t.plan(&Observed::new("load=loaded\nactive=inactive\n", &facts));
        assert!(
            o.change.is_none() && o.skipped[0].contains("inside a container"),
            "{o:?}"
        );
    }

    #[test]
    fn masked_units_block() {
        let s = Service {
            name: "x".into(),
            enabled: Some(true),
            ..Service::default()
        };
        assert!(
            plan(&s, "load=masked\nactive=inactive\nenabled=masked\n")
                .blocked
                .is_some()
        );
    }
}
