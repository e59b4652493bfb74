//! The services a stack file (compose format) asks for, as `docker stack
//! deploy` turns them into Swarm services.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::{Service, Services};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the stack file does not parse: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("service `{0}` of the stack file names no image")]
    NoImage(String),
}

/// The services of stack `stack`'s file `spec`, its `${VAR}` references set
/// from `vars` as the deploy sets them (the revisions of configs and
/// secrets). Other variables are empty, as `docker stack deploy` makes unset ones.
pub fn desired(spec: &str, stack: &str, vars: &[(String, String)]) -> Result<Services, SpecError> {
    let mut doc: Value = serde_yaml_ng::from_str(spec)?;
    doc.apply_merge()?;
    interpolate_all(&mut doc, vars);
    let configs = swarm_names(&doc, "configs", stack);
    let secrets = swarm_names(&doc, "secrets", stack);
    let mut out = Services::new();
    let services = doc.get("services").and_then(Value::as_mapping);
    for (name, svc) in services.into_iter().flatten() {
        let name = text(name);
        let image = svc.get("image").map(text).unwrap_or_default();
        if image.is_empty() {
            return Err(SpecError::NoImage(name));
        }
        let deploy = svc.get("deploy");
        let mode = deploy
            .and_then(|d| d.get("mode"))
            .map_or("replicated".into(), text);
        let replicas = match mode.as_str() {
            "replicated" => deploy
                .and_then(|d| d.get("replicas"))
                .map_or("1".into(), text),
            other => other.to_string(),
        };
        let refs = |key: &str, names: &BTreeMap<String, String>| {
            let mut out: Vec<String> = list(svc.get(key))
                .map(|r| {
                    let source = r.get("source").map_or_else(|| text(r), text);
                    names
                        .get(&source)
                        .cloned()
                        .unwrap_or_else(|| format!("{stack}_{source}"))
                })
                .collect();
            out.sort();
            out
        };
        let mut ports: Vec<String> = list(svc.get("ports")).flat_map(ports).collect();
        ports.sort();
        out.insert(
            name,
            Service {
                image,
                replicas,
                env: environment(svc.get("environment")),
                ports,
                configs: refs("configs", &configs),
                secrets: refs("secrets", &secrets),
                env_file: svc.get("env_file").is_some(),
            },
        );
    }
    Ok(out)
}

/// A scalar as text (numbers and booleans as YAML writes them); "" for null.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn list(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_sequence).into_iter().flatten()
}

/// Top-level `configs:` or `secrets:` key -> the Swarm object's name: its
/// `name:`, the key itself when external, else `STACK_KEY`.
fn swarm_names(doc: &Value, section: &str, stack: &str) -> BTreeMap<String, String> {
    let entries = doc.get(section).and_then(Value::as_mapping);
    entries
        .into_iter()
        .flatten()
        .map(|(key, def)| {
            let key = text(key);
            let external = def.get("external").and_then(Value::as_bool) == Some(true);
            let name = match def.get("name") {
                Some(name) => text(name),
                None if external => key.clone(),
                None => format!("{stack}_{key}"),
            };
            (key, name)
        })
        .collect()
}

/// `environment:` as a list (`KEY=VALUE`, or `KEY` alone) or a mapping.
fn environment(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                let item = text(item);
                match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (item, String::new()),
                }
            })
            .collect(),
        Some(Value::Mapping(map)) => map.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => BTreeMap::new(),
    }
}

/// One `ports:` entry as Swarm publishes it: the short syntax
/// (`[IP:][PUBLISHED:]TARGET[/PROTOCOL]`, ranges included, always ingress)
/// or the long one (`target`, `published`, `protocol`, `mode`).
fn ports(entry: &Value) -> Vec<String> {
    if entry.is_mapping() {
        let field = |k: &str| entry.get(k).map(text).unwrap_or_default();
        let protocol = Some(field("protocol")).filter(|p| !p.is_empty());
        let mode = field("mode");
        return vec![port(
            &field("published"),
            &field("target"),
            protocol.as_deref().unwrap_or("tcp"),
            &mode,
        )];
    }
    let short = text(entry);
    let (spec, protocol) = short.split_once('/').unwrap_or((&short, "tcp"));
    let parts: Vec<&str> = spec.split(':').collect();
    let target = parts[parts.len() - 1];
    let published = if parts.len() >= 2 {
        parts[parts.len() - 2]
    } else {
        ""
    };
    let (targets, published) = (range(target), range(published));
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = published.get(i).map_or("", String::as_str);
            port(p, t, protocol, "ingress")
        })
        .collect()
}

/// `8000-8002` -> 8000, 8001, 8002; anything else as it is.
fn range(ports: &str) -> Vec<String> {
    let bounds = ports
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match bounds {
        Some((a, b)) if a <= b => (a..=b).map(|p| p.to_string()).collect(),
        _ => vec![ports.to_string()],
    }
}

/// The form both sides show a port in (see [`Service::ports`]).
pub(super) fn port(published: &str, target: &str, protocol: &str, mode: &str) -> String {
    let published = match published {
        "" | "0" => String::new(),
        p => format!("{p}:"),
    };
    let host = if mode == "host" { " (host)" } else { "" };
    format!("{published}{target}/{protocol}{host}")
}

fn interpolate_all(v: &mut Value, vars: &[(String, String)]) {
    match v {
        Value::String(s) => *s = interpolate(s, vars),
        Value::Sequence(items) => items.iter_mut().for_each(|i| interpolate_all(i, vars)),
        Value::Mapping(map) => map.values_mut().for_each(|i| interpolate_all(i, vars)),
        Value::Tagged(t) => interpolate_all(&mut t.value, vars),
        _ => {}
    }
}

/// Compose's variable syntax: `$$` is a `$`; `$VAR`, `${VAR}`, and `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+other}`, `${VAR+other}`.
pub(super) fn interpolate(text: &str, vars: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let name_len = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some((expr, r)) = after.strip_prefix('{').and_then(|r| r.split_once('}')) {
            let (name, op) = expr.split_at(name_len(expr));
            let value = lookup(name);
            let set = value.is_some_and(|v| !v.is_empty());
            let word = |prefix: &str| op.strip_prefix(prefix);
            let expanded = if let Some(default) = word(":-") {
                if set {
                    value.unwrap_or_default()
                } else {
                    default
                }
            } else if let Some(default) = word("-") {
                value.unwrap_or(default)
            } else if let Some(other) = word(":+") {
                if set { other } else { "" }
            } else if let Some(other) = word("+") {
                if value.is_some() { other } else { "" }
            } else {
                value.unwrap_or_default()
            };
            out.push_str(expanded);
            rest = r;
        } else {
            let n = name_len(after);
            out.push_str(if n == 0 {
                "$"
            } else {
                lookup(&after[..n]).unwrap_or_default()
            });
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    out
}
