//! A stack's services as the plan compares them: what the stack file wants
//! ([`desired`]), what Swarm runs ([`observed`], from Docker's API), and the
//! attrs of a plan that tell them apart, per service ([`diff`]): `api.image`,
//! `api.replicas`, `api.env.LOG_LEVEL`, `api.ports`, `api.configs`,
//! `api.secrets`, and `api` itself for a service the deploy adds or removes
//! (`--prune`).
//!
//! Only these fields are compared: anything else that changes in the stack
//! file still changes the digest in the deploy marker, which the plan shows
//! as the stack's `revision`.

mod desired;
mod observed;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use desired::{SpecError, desired};
pub use observed::observed;

use crate::plan::change::Attr;
use crate::redact::SENSITIVE;

/// One service, in the forms both sides are compared in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// The image reference as written (desired) or as Swarm runs it, often
    /// pinned to a digest (`app:1.0@sha256:...`).
    pub image: String,
    /// The number of replicas, or the mode of a service that has none (`global`).
    pub replicas: String,
    /// Environment variables; a variable listed without a value has "".
    pub env: BTreeMap<String, String>,
    /// Published ports, sorted: `8080:80/tcp`, `53/udp` (Swarm picks the
    /// published port), `8080:8080/tcp (host)` (published on the node running the task).
    pub ports: Vec<String>,
    /// Swarm config names, sorted.
    pub configs: Vec<String>,
    /// Swarm secret names, sorted (shown without the digest of their value,
    /// see [`secrets_shown`]).
    pub secrets: Vec<String>,
    /// The stack file reads variables from an `env_file`, which the plan does
    /// not read: variables only Swarm has may come from it.
    pub env_file: bool,
}

/// Services by their name in the stack file (without the `STACK_` prefix).
pub type Services = BTreeMap<String, Service>;

/// The fields of a service's attrs, in the order a plan lists them.
const FIELDS: [&str; 5] = ["image", "replicas", "ports", "configs", "secrets"];

/// The service and field an attr of a stack change is about (`api.env.LOG`
/// -> `api`, `env.LOG`; `api` added or removed -> `api`, ""), or None for the
/// stack's own attrs (`revision`).
pub fn split_attr(attr: &Attr) -> Option<(&str, &str)> {
    let name = attr.name.as_str();
    if let Some(i) = name.find(".env.") {
        return Some((&name[..i], &name[i + 1..]));
    }
    let field = FIELDS.iter().find_map(|f| {
        let service = name.strip_suffix(f)?.strip_suffix('.')?;
        Some((service, *f))
    });
    let whole = attr.from.is_none() && matches!(attr.to.as_deref(), Some(ADDED | REMOVED));
    field.or(whole.then_some((name, "")))
}

const ADDED: &str = "added";
const REMOVED: &str = "removed";

/// The attrs that tell `observed` from `desired`, service by service in name
/// order. `digests` holds the registry's digest of desired images, where the
/// probe could ask (a new tag only): shown after the new image.
pub fn diff(
    desired: &Services,
    observed: &Services,
    digests: &BTreeMap<String, String>,
) -> Vec<Attr> {
    let mut attrs = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        desired.keys().chain(observed.keys()).collect();
    for name in names {
        let new_image = |want: &Service| match digests.get(&want.image) {
            Some(digest) => format!("{}@{digest}", want.image),
            None => want.image.clone(),
        };
        match (desired.get(name), observed.get(name)) {
            (Some(want), None) => {
                attrs.push(Attr::new(name, None::<&str>, Some(ADDED)));
                attrs.push(Attr::new(
                    &format!("{name}.image"),
                    None::<&str>,
                    Some(new_image(want)),
                ));
            }
            (None, Some(_)) => attrs.push(Attr::new(name, None::<&str>, Some(REMOVED))),
            (Some(want), Some(have)) => {
                let differs = |field: &str, from: &str, to: &str| {
                    (from != to).then(|| attr(&format!("{name}.{field}"), from.into(), to.into()))
                };
                if !same_image(&want.image, &have.image) {
                    attrs.extend(differs("image", &have.image, &new_image(want)));
                }
                attrs.extend(differs("replicas", &have.replicas, &want.replicas));
                attrs.extend(env_diff(name, want, have));
                for (field, from, to) in [
                    ("ports", &have.ports, &want.ports),
                    ("configs", &have.configs, &want.configs),
                ] {
                    attrs.extend(differs(field, &from.join(", "), &to.join(", ")));
                }
                if want.secrets != have.secrets {
                    let (from, to) = secrets_shown(&have.secrets, &want.secrets);
                    attrs.push(attr(&format!("{name}.secrets"), from, to));
                }
            }
            (None, None) => {}
        }
    }
    attrs
}

/// Secret names as a plan may show them: slipway's roles name a secret after
/// a digest of its value (12 hex digits, `app_db_password_3f2a9c01d4e5`),
/// which must not be shown, so any run of 12 or more hex digits is hidden
/// (`app_db_password_…`); a desired secret whose value changed is marked so.
fn secrets_shown(have: &[String], want: &[String]) -> (String, String) {
    let from: Vec<String> = have.iter().map(|n| hide_digests(n)).collect();
    let to: Vec<String> = want
        .iter()
        .map(|n| {
            let shown = hide_digests(n);
            if !have.contains(n) && from.contains(&shown) {
                format!("{shown} (new value)")
            } else {
                shown
            }
        })
        .collect();
    (from.join(", "), to.join(", "))
}

fn hide_digests(name: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in name.chars().chain(std::iter::once('_')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 12 { "…" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// An attr whose empty side is none.
fn attr(name: &str, from: String, to: String) -> Attr {
    let none = |v: String| Some(v).filter(|v| !v.is_empty());
    Attr::new(name, none(from), none(to))
}

/// The attrs of the variables that differ. A value that is one of this run's
/// secrets hides the other side too: the value it replaces is most likely the
/// previous secret, which no redactor knows any more.
fn env_diff(name: &str, want: &Service, have: &Service) -> Vec<Attr> {
    let redactor = crate::redact::global();
    let keys: std::collections::BTreeSet<&String> =
        want.env.keys().chain(have.env.keys()).collect();
    keys.into_iter()
        // Variables only Swarm has may come from an env_file the plan does not read.
        .filter(|k| want.env.contains_key(*k) || !want.env_file)
        .filter_map(|key| {
            let (from, to) = (have.env.get(key), want.env.get(key));
            if from == to {
                return None;
            }
            let secret = [from, to]
                .iter()
                .any(|v| v.is_some_and(|v| redactor.touches(v.as_bytes())));
            let shown = |v: Option<&String>| match v {
                Some(v) if secret && !v.is_empty() => SENSITIVE.to_string(),
                v => v.cloned().unwrap_or_default(),
            };
            Some(attr(&format!("{name}.env.{key}"), shown(from), shown(to)))
        })
        .collect()
}

/// A reference split for comparing: `repository:tag` (Docker Hub's implicit
/// `docker.io/` and `library/` dropped, `:latest` when no tag is written) and
/// its digest, if pinned.
fn image_key(image: &str) -> (String, Option<&str>) {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    let name = name.strip_prefix("library/").unwrap_or(name);
    let tagged = name.rsplit('/').next().unwrap_or(name).contains(':');
    let name = if tagged || digest.is_some() {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    (name, digest)
}

/// Whether Swarm runs the image the stack file names: the same repository and
/// tag, whatever digest Swarm pinned, unless the stack file pins one itself.
pub fn same_image(want: &str, have: &str) -> bool {
    let (want_name, want_digest) = image_key(want);
    let (have_name, have_digest) = image_key(have);
    want_name == have_name && (want_digest.is_none() || want_digest == have_digest)
}

/// The images of `desired` whose digest the registry can tell (those not
/// pinned by the stack file), each once, with the forms Swarm may show it in
/// (`nginx:1.24` is also `docker.io/library/nginx:1.24`): the probe asks the
/// registry only for those no service runs yet.
pub fn lookups(desired: &Services) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for s in desired.values() {
        if s.image.contains('@') || out.iter().any(|(i, _)| *i == s.image) {
            continue;
        }
        let (key, _) = image_key(&s.image);
        let mut forms = vec![s.image.clone()];
        forms.extend(Some(key).filter(|k| *k != s.image));
        out.push((s.image.clone(), forms));
    }
    out
}

/// What `attrs` do to the services, for a change's summary line:
/// `add web, change api, remove worker`.
pub fn summary(attrs: &[Attr]) -> String {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for attr in attrs {
        match split_attr(attr) {
            Some((service, "")) if attr.to.as_deref() == Some(REMOVED) => removed.push(service),
            Some((service, "")) => added.push(service),
            Some((service, _)) if !added.contains(&service) && !changed.contains(&service) => {
                changed.push(service)
            }
            _ => {}
        }
    }
    [("add", added), ("change", changed), ("remove", removed)]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(verb, names)| format!("{verb} {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}
