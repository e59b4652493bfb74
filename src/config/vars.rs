//! Variables and secrets.
//!
//! Precedence, lowest first: role defaults < play vars < inventory `[vars]` <
//! group vars (in the order the host lists its groups) < host vars < `-e`.
//! A variable written as `{ secret = true, env = "NAME" }` (or `file = "path"`,
//! or `value = "..."`) is a secret: templates receive its value, but the
//! [`Redactor`] keeps it out of every diff, plan, log and error.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use toml::Spanned;

use crate::diag::{InputError, InputResult, SourceFile};
use crate::redact::Redactor;

pub type VarMap = BTreeMap<String, Value>;
pub type RawVars = BTreeMap<String, Spanned<toml::Value>>;

/// Resolves a TOML vars table: secrets are read and registered, the rest converted.
pub fn resolve(raw: &RawVars, src: &SourceFile, redactor: &Redactor) -> InputResult<VarMap> {
    let mut out = VarMap::new();
    for (name, value) in raw {
        let resolved = match secret_spec(value.get_ref()) {
            Some(spec) => {
                let secret = match read_secret(spec, src) {
                    Ok(secret) => secret,
                    Err(Unreadable::Source(msg)) if redactor.is_offline() => {
                        crate::diag::warn_once(format!(
                            "secret `{name}`: {msg}; a placeholder stands in for it"
                        ));
                        format!("(secret {name})")
                    }
                    Err(Unreadable::Source(msg) | Unreadable::Spec(msg)) => {
                        return Err(src.error(value.span(), format!("secret `{name}`: {msg}")));
                    }
                };
                redactor.add(&secret);
                Value::String(secret)
            }
            None => to_json(value.get_ref()),
        };
        out.insert(name.clone(), resolved);
    }
    Ok(out)
}

fn secret_spec(value: &toml::Value) -> Option<&toml::Table> {
    let table = value.as_table()?;
    (table.get("secret")?.as_bool() == Some(true)).then_some(table)
}

/// Why a secret has no value: a mistake in how it is written, or a source
/// (environment variable, file) that is not there on this machine.
enum Unreadable {
    Spec(String),
    Source(String),
}

fn read_secret(spec: &toml::Table, src: &SourceFile) -> Result<String, Unreadable> {
    let known = ["secret", "env", "file", "value"];
    if let Some(key) = spec.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Unreadable::Spec(format!(
            "unknown key `{key}` (expected env, file or value)"
        )));
    }
    let sources: Vec<_> = ["env", "file", "value"]
        .into_iter()
        .filter(|k| spec.contains_key(*k))
        .collect();
    let [source] = sources[..] else {
        return Err(Unreadable::Spec(
            "give exactly one of env = \"NAME\", file = \"path\", value = \"...\"".into(),
        ));
    };
    let text = spec[source]
        .as_str()
        .ok_or_else(|| Unreadable::Spec(format!("`{source}` must be a string")))?;
    match source {
        "env" => std::env::var(text)
            .map_err(|_| Unreadable::Source(format!("environment variable {text} is not set"))),
        "file" => {
            let base = src.path.parent().unwrap_or(Path::new("."));
            let path = crate::config::expand_path(text, base);
            std::fs::read_to_string(&path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| Unreadable::Source(format!("cannot read {}: {e}", path.display())))
        }
        _ => Ok(text.to_string()),
    }
}

pub fn to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Parses `-e key=value`; the value is read as TOML when it parses as one
/// (`-e port=2222` is a number, `-e 'keys=["a","b"]'` a list), else as a string.
pub fn parse_extra(arg: &str) -> InputResult<(String, Value)> {
    let (key, raw) = arg.split_once('=').ok_or_else(|| {
        InputError::plain(format!("-e {arg}: expected key=value"))
            .with_help("for example: -e deploy_user=ops")
    })?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(InputError::plain(format!(
            "-e {arg}: `{key}` is not a valid variable name (letters, digits, _)"
        )));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|t| t.get("v").map(to_json))
        .unwrap_or_else(|| Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

/// Lays `top` over `base`, key by key (no deep merge: a table replaces a table).
pub fn layer(base: &mut VarMap, top: &VarMap) {
    for (k, v) in top {
        base.insert(k.clone(), v.clone());
    }
}
