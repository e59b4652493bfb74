//! `stack`: a Docker Swarm stack deployed from a stack file on a manager.
//!
//! Swarm configs and secrets cannot change once created, so the stack file
//! names each one with a revision (`name: monitoring_prometheus_yml_${PROMETHEUS_YML_REV}`)
//! and the deploy sets those variables from the content's digest: a changed
//! file becomes a new config, and only the services that use it roll. The
//! revisions live in the deploy's environment, never in the stack file, so a
//! secret's digest is not shown in the stack file's diff.
//!
//! Deploys pass `--with-registry-auth`: the manager's registry credentials
//! (see `registry_login`) go with the services, so workers pull private
//! images without logging in themselves.
//!
//! With `follow` set, the deploy then waits for Swarm to finish updating
//! every service, and fails, naming the service, the image it tried and the
//! task error, when Swarm rolled the update back, paused it, or did not
//! converge in time (see [`follow`]).
//!
//! Deployed means: the marker written after the last successful deploy holds
//! the digest of the stack file and every revision, and every service exists.

pub mod follow;

use super::swarm::API;
use super::{Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    /// Directory holding `stack.yml`; the stack's relative `file:` paths start here.
    pub dir: String,
    /// Environment variable and value the stack file expects, per config or secret.
    pub revisions: Vec<(String, String)>,
    /// Service names as in the stack file (without the stack prefix).
    pub services: Vec<String>,
    /// `docker stack deploy --resolve-image`: always, changed or never.
    pub resolve_image: String,
    /// Digest of the stack file and the revisions.
    pub digest: String,
    /// Seconds to wait for the services to converge after the deploy; `None`:
    /// the deploy returns once Swarm has the new specs.
    pub follow: Option<u32>,
}

/// Where the digest of the last successful deploy is kept.
const MARKER: &str = ".slipway-deployed";

impl Stack {
    fn marker(&self) -> String {
        format!("{}/{MARKER}", self.dir)
    }

    fn missing_services<'a>(&'a self, obs: &Observed<'_>) -> Vec<&'a str> {
        let present = obs.all("service");
        self.services
            .iter()
            .filter(|s| !present.contains(&format!("{}_{s}", self.name).as_str()))
            .map(String::as_str)
            .collect()
    }
}

impl Resource for Stack {
    /// The audit reads which ports the stack publishes (see `engine::audit`).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn id(&self) -> String {
        format!("stack:{}", self.name)
    }

    fn probe(&self) -> String {
        let filter = format!(
            "%7B%22label%22%3A%5B%22com.docker.stack.namespace%3D{}%22%5D%7D",
            self.name
        );
        format!(
            r#"printf 'deployed=%s\n' "$(cat {marker} 2>/dev/null)"
if [ -S /run/docker.sock ] && command -v curl >/dev/null 2>&1; then
{API}/services?filters={filter} | grep -o '"Name":"[^"]*"' | sed 's/^"Name":"/service=/; s/"$//' | sort -u
fi
"#,
            marker = q(&self.marker()),
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let missing = self.missing_services(obs);
        let deployed = obs.get("deployed").unwrap_or_default();
        if missing.is_empty() && deployed == self.digest {
            return Outcome::unchanged();
        }
        let id = self.id();
        if missing.len() == self.services.len() {
            let summary = format!("deploy stack {} ({} services)", self.name, missing.len());
            return Outcome::change(Change::new(id, Action::Create, summary));
        }
        let mut attrs = Vec::new();
        if deployed != self.digest {
            attrs.push(Attr::new(
                "revision",
                Some(short(deployed)).filter(|s| !s.is_empty()),
                Some(short(&self.digest)),
            ));
        }
        if !missing.is_empty() {
            attrs.push(Attr::new(
                "services",
                Some("missing"),
                Some(missing.join(", ")),
            ));
        }
        Outcome::update(id, format!("update stack {}", self.name), attrs)
    }

    fn apply(&self, _change: &Change, _obs: &Observed<'_>) -> Script {
        let mut s = Script::default();
        s.line(format!("cd {}", q(&self.dir)));
        for (var, rev) in &self.revisions {
            s.line(format!("export {var}={}", q(rev)));
        }
        s.line(format!(
            "docker stack deploy --prune --with-registry-auth --resolve-image {} -c stack.yml {}",
            q(&self.resolve_image),
            q(&self.name)
        ));
        if let Some(timeout) = self.follow {
            let names: Vec<String> = self
                .services
                .iter()
                .map(|svc| format!("{}_{svc}", self.name))
                .collect();
            s.line(follow::script(timeout, &names));
        }
        s.line(format!(
            "printf '%s\\n' {} > {MARKER}.tmp && mv {MARKER}.tmp {MARKER}",
            q(&self.digest)
        ));
        // Earlier revisions are left behind by the deploy; Docker refuses to
        // remove the ones a service still uses, which is what keeps them.
        s.line(format!(
            "for kind in config secret; do docker $kind ls -q --filter label=com.docker.stack.namespace={} | xargs -r docker $kind rm >/dev/null 2>&1 || true; done",
            q(&self.name)
        ));
        s
    }
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn stack() -> Stack {
        Stack {
            name: "monitoring".into(),
            dir: "/opt/monitoring".into(),
            revisions: vec![("PROMETHEUS_YML_REV".into(), "0123456789ab".into())],
            services: vec!["prometheus".into(), "grafana".into()],
            resolve_image: "always".into(),
            digest: "d".repeat(64),
            follow: None,
        }
    }

    fn plan(section: &str) -> Outcome {
        stack().plan(&Observed::new(section, &HostFacts::default()))
    }

    #[test]
    fn deployed_when_the_marker_matches_and_every_service_runs() {
        let ok = format!(
            "deployed={}\nservice=monitoring_grafana\nservice=monitoring_prometheus\n",
            "d".repeat(64)
        );
        assert_eq!(plan(&ok), Outcome::unchanged());
    }

    #[test]
    fn a_new_stack_is_created_and_a_changed_one_updated() {
        let created = plan("deployed=\n").change.unwrap();
        assert_eq!(created.action, Action::Create);
        let changed = plan("deployed=abc\nservice=monitoring_grafana\n")
            .change
            .unwrap();
        assert_eq!(changed.action, Action::Update);
        let attrs: Vec<_> = changed.attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(attrs, ["revision", "services"]);
        assert_eq!(changed.attrs[1].to.as_deref(), Some("prometheus"));
    }

    #[test]
    fn the_deploy_sets_revisions_and_records_the_digest() {
        let s = stack();
        let script = s.apply(
            &plan("").change.unwrap(),
            &Observed::new("", &HostFacts::default()),
        );
        assert!(
            script
                .sh
                .contains("export PROMETHEUS_YML_REV='0123456789ab'")
        );
        assert!(script.sh.contains(
            "docker stack deploy --prune --with-registry-auth --resolve-image 'always' -c stack.yml 'monitoring'"
        ));
        assert!(script.sh.contains(&"d".repeat(64)));
    }
}
