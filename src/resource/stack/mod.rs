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
//! the digest of the stack file and every revision, and every service runs
//! what the stack file asks for (see [`services`]: image, replicas,
//! environment, ports, configs and secrets). The plan lists what differs per
//! service; for a new image tag it asks the registry for the tag's digest
//! (`docker manifest inspect`, as root, whose Docker login the manager has),
//! and shows none when the registry cannot be reached.

pub mod follow;
pub mod services;

use std::collections::BTreeMap;

use self::services::Services;
use super::swarm::API;
use super::{Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    /// Directory holding `stack.yml`; the stack's relative `file:` paths start here.
    pub dir: String,
    /// The stack file's text, as rendered into `dir`/stack.yml.
    pub spec: String,
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

    fn desired(&self) -> Result<Services, services::SpecError> {
        services::desired(&self.spec, &self.name, &self.revisions)
    }

    /// Shell asking the registry for the digest of each desired image no
    /// service runs yet (`$services` holds the API's answer), in parallel:
    /// a plan with nothing to change makes no registry request.
    fn lookups(&self) -> String {
        let lookups = self
            .desired()
            .map(|d| services::lookups(&d))
            .unwrap_or_default();
        if lookups.is_empty() {
            return String::new();
        }
        let mut sh = DIGEST.to_string();
        for (image, forms) in lookups {
            let running: Vec<String> = forms
                .iter()
                .map(|f| format!(r#"*'"Image":"'{f}'@'*|*'"Image":"'{f}'"'*"#, f = q(f)))
                .collect();
            sh.push_str(&format!(
                "case \"$services\" in {}) ;; *) slipway_digest {} & ;; esac\n",
                running.join("|"),
                q(&image)
            ));
        }
        sh.push_str("wait\n");
        sh
    }
}

/// Prints `digest IMAGE=sha256:...` for an image the registry knows. A
/// manifest list (several platforms) has no digest of its own in this
/// output, and an unreachable registry none at all: nothing is printed then.
const DIGEST: &str = r#"slipway_digest() {
  m=$(timeout 10 docker manifest inspect --verbose "$1" 2>/dev/null) || return 0
  case "$m" in '{'*)
    d=$(printf '%s\n' "$m" | grep -o '"digest": *"sha256:[0-9a-f]*"' | head -n 1 | grep -o 'sha256:[0-9a-f]*') &&
      printf 'digest %s=%s\n' "$1" "$d" ;;
  esac
}
"#;

/// The registry digests the probe found, by image.
fn digests(obs: &Observed<'_>) -> BTreeMap<String, String> {
    obs.section
        .lines()
        .filter_map(|l| l.strip_prefix("digest ")?.split_once('='))
        .map(|(image, digest)| (image.to_string(), digest.to_string()))
        .collect()
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
services=$({API}/services?filters={filter} | tr -d '\n')
printf 'services=%s\n' "$services"
{lookups}fi
"#,
            marker = q(&self.marker()),
            lookups = self.lookups(),
        )
    }

    /// The services as compared, not the API's answer: its timestamps,
    /// versions and update status change while the services do not, and the
    /// registry's digests come and go with the network.
    fn stable(&self, section: &str) -> String {
        section
            .lines()
            .filter(|l| !l.starts_with("digest "))
            .map(|l| match l.strip_prefix("services=") {
                Some(json) => format!("services={:?}\n", services::observed(json, &self.name).ok()),
                None => format!("{l}\n"),
            })
            .collect()
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let desired = match self.desired() {
            Ok(d) => d,
            Err(e) => return Outcome::blocked(e.to_string()),
        };
        let api = obs.get("services").unwrap_or_default();
        let observed = match services::observed(api, &self.name) {
            Ok(o) => o,
            Err(e) => {
                return Outcome::blocked(format!(
                    "Docker's API answered with services that do not parse: {e}"
                ));
            }
        };
        let attrs = services::diff(&desired, &observed, &digests(obs));
        let deployed = obs.get("deployed").unwrap_or_default();
        if attrs.is_empty() && deployed == self.digest {
            return Outcome::unchanged();
        }
        let id = self.id();
        if observed.is_empty() {
            let summary = format!("deploy stack {} ({} services)", self.name, desired.len());
            return Outcome::change(Change::new(id, Action::Create, summary).with_attrs(attrs));
        }
        if attrs.is_empty() {
            // What changed is not compared per service (a label, a command):
            // the stack file's digest tells.
            let revision = Attr::new(
                "revision",
                Some(short(deployed)).filter(|s| !s.is_empty()),
                Some(short(&self.digest)),
            );
            return Outcome::update(id, format!("update stack {}", self.name), vec![revision]);
        }
        let summary = format!("update stack {}: {}", self.name, services::summary(&attrs));
        Outcome::update(id, summary, attrs)
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

    const FIRST_STACK: &str = include_str!("fixtures/first.stack.yml");
    const SECOND_STACK: &str = include_str!("fixtures/second.stack.yml");
    const FIRST_API: &str = include_str!("fixtures/first.services.json");

    /// Stack `demo` of the fixtures, wanting `spec` with its first revisions.
    fn stack(spec: &str) -> Stack {
        Stack {
            name: "demo".into(),
            dir: "/opt/demo".into(),
            spec: spec.into(),
            revisions: vec![
                ("APP_CONF_REV".into(), "aaaa1111".into()),
                ("DB_PASSWORD_REV".into(), "bbbb2222".into()),
            ],
            services: vec!["api".into(), "worker".into()],
            resolve_image: "always".into(),
            digest: "d".repeat(64),
            follow: None,
        }
    }

    fn plan_of(spec: &str, section: &str) -> Outcome {
        stack(spec).plan(&Observed::new(section, &HostFacts::default()))
    }

    fn plan(section: &str) -> Outcome {
        plan_of(FIRST_STACK, section)
    }

    /// The probe's section with the first deploy running, its marker `marker`.
    fn running(marker: &str) -> String {
        format!("deployed={marker}\nservices={}", FIRST_API.trim_end())
    }

    #[test]
    fn deployed_when_the_marker_matches_and_every_service_runs_the_file() {
        assert_eq!(plan(&running(&"d".repeat(64))), Outcome::unchanged());
    }

    #[test]
    fn a_new_stack_is_created_with_its_services() {
        let created = plan("deployed=\n").change.unwrap();
        assert_eq!(created.action, Action::Create);
        assert_eq!(created.summary, "deploy stack demo (2 services)");
        let names: Vec<_> = created.attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["api", "api.image", "worker", "worker.image"]);
    }

    #[test]
    fn only_the_marker_differs_the_revision_shows() {
        let changed = plan(&running("abc")).change.unwrap();
        assert_eq!(changed.action, Action::Update);
        assert_eq!(changed.summary, "update stack demo");
        assert_eq!(
            changed.attrs,
            [Attr::new("revision", Some("abc"), Some("dddddddddddd"))]
        );
    }

    #[test]
    fn changed_services_show_per_service_whatever_the_marker() {
        let section = running(&"d".repeat(64))
            + "\ndigest slipway-registry.test:5443/lab/app:1.1=sha256:2385\n";
        let changed = plan_of(SECOND_STACK, &section).change.unwrap();
        assert_eq!(changed.action, Action::Update);
        assert_eq!(
            changed.summary,
            "update stack demo: add web; change api; remove worker"
        );
        let image = changed
            .attrs
            .iter()
            .find(|a| a.name == "api.image")
            .unwrap();
        assert_eq!(
            image.to.as_deref(),
            Some("slipway-registry.test:5443/lab/app:1.1@sha256:2385")
        );
        assert!(!changed.attrs.iter().any(|a| a.name == "revision"));
    }

    #[test]
    fn a_broken_api_answer_blocks_the_host() {
        let blocked = plan("deployed=\nservices=[{\"Spec\"").blocked.unwrap();
        assert!(blocked.contains("do not parse"), "{blocked}");
    }

    #[test]
    fn the_fingerprint_ignores_what_changes_while_the_services_do_not() {
        let s = stack(FIRST_STACK);
        let section = running("abc");
        let later =
            section.replace("2026-11-30T07:25:29", "2026-12-01T00:00:00") + "\ndigest x=sha256:1\n";
        assert_ne!(section, later);
        assert_eq!(s.stable(&section), s.stable(&later));
        assert_ne!(
            s.stable(&section),
            s.stable(&section.replace("QUEUE=jobs", "QUEUE=x"))
        );
    }

    /// The probe's registry lookups, run by `sh` with the fixture's API
    /// answer: only the image no service runs yet is looked up.
    #[test]
    fn the_registry_is_asked_only_about_tags_no_service_runs() {
        let asked = |spec: &str| {
            // The registry request itself is left out: this is about which images.
            let sh = format!(
                "services=$(cat)\nslipway_digest() {{ echo \"$1\"; }}\n{}",
                stack(spec).lookups().replace(DIGEST, "")
            );
            let mut child = std::process::Command::new("sh")
                .args(["-c", &sh])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(FIRST_API.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(asked(FIRST_STACK), "");
        let mut images: Vec<String> = asked(SECOND_STACK).lines().map(String::from).collect();
        images.sort();
        assert_eq!(
            images,
            [
                "slipway-registry.test:5443/lab/app:1.1",
                "slipway-registry.test:5443/lab/nginx:1.24.0"
            ]
        );
    }

    #[test]
    fn the_deploy_sets_revisions_and_records_the_digest() {
        let s = stack(FIRST_STACK);
        let script = s.apply(
            &plan("").change.unwrap(),
            &Observed::new("", &HostFacts::default()),
        );
        assert!(script.sh.contains("export APP_CONF_REV='aaaa1111'"));
        assert!(script.sh.contains(
            "docker stack deploy --prune --with-registry-auth --resolve-image 'always' -c stack.yml 'demo'"
        ));
        assert!(script.sh.contains(&"d".repeat(64)));
    }
}
