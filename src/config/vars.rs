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

/// A table with a `secret` key, or holding one deeper down, is a secret's
/// declaration, or a mistake [`read_secret`] reports: never a plain table,
/// which templates and plans would show in clear.
fn secret_spec(value: &toml::Value) -> Option<&toml::Table> {
    let table = value.as_table()?;
    declares_secret(value).then_some(table)
}

fn declares_secret(value: &toml::Value) -> bool {
    match value {
        toml::Value::Table(t) => t.contains_key("secret") || t.values().any(declares_secret),
        toml::Value::Array(a) => a.iter().any(declares_secret),
        _ => false,
    }
}

/// Why a secret has no value: a mistake in how it is written, or a source
/// (environment variable, file) that is not there on this machine.
enum Unreadable {
    Spec(String),
    Source(String),
}

fn read_secret(spec: &toml::Table, src: &SourceFile) -> Result<String, Unreadable> {
    match spec.get("secret") {
        Some(toml::Value::Boolean(true)) => {}
        None => {
            return Err(Unreadable::Spec(
                "a secret is declared inside this value: a secret must be a variable of its \
                 own, name = { secret = true, env = \"NAME\" }"
                    .into(),
            ));
        }
        Some(toml::Value::Boolean(false)) => {
            return Err(Unreadable::Spec(
                "`secret = false`: a table with a `secret` key declares a secret; write \
                 secret = true, or give the value itself without a table"
                    .into(),
            ));
        }
        Some(other) => {
            return Err(Unreadable::Spec(format!(
                "`secret` must be true (a boolean), not {} {other}",
                other.type_str()
            )));
        }
    }
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
/// (`-e port=2222` is a number, `-e 'keys=["a","b"]'` a list), else as a
/// string (`-e motd=hello`). A value that starts like TOML structure (`[`,
/// `{`, a quote) must parse: a typo there is an error, not a string.
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
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"));
    let value = match parsed {
        Ok(ref t) if t.len() == 1 => t.get("v").map(to_json),
        _ => None,
    };
    let value = match value {
        Some(v) => v,
        None if raw.trim_start().starts_with(['[', '{', '"', '\'']) => {
            let why = parsed.err().map_or_else(
                || "it is not one TOML value".to_string(),
                |e| e.message().trim_end().to_string(),
            );
            return Err(InputError::plain(format!(
                "-e {key}: the value starts like a TOML list, table or string but does not \
                 parse: {why}"
            ))
            .with_help(
                "quote the whole argument for the shell: -e 'ports=[80, 443]'; a plain word \
                 needs no quotes: -e motd=hello",
            ));
        }
        None => Value::String(raw.to_string()),
    };
    Ok((key.to_string(), value))
}

/// Lays `top` over `base`, key by key (no deep merge: a table replaces a table).
pub fn layer(base: &mut VarMap, top: &VarMap) {
    for (k, v) in top {
        base.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod secret_and_extra_tests {
    use super::*;

    fn load(text: &str) -> InputResult<VarMap> {
        let src = SourceFile::from_text(Path::new("v.toml"), text.into());
        let raw: RawVars = toml::from_str(text).expect("valid TOML");
        resolve(&raw, &src, &Redactor::default())
    }

    #[test]
    fn a_table_with_a_secret_key_is_a_secret_or_an_error() {
        let ok = load("a = { secret = true, value = \"s-1\" }\n").unwrap();
        assert_eq!(ok["a"], Value::String("s-1".into()));
        for bad in [
            "a = { secret = \"true\", value = \"s-2\" }\n",
            "a = { secret = 1, value = \"s-3\" }\n",
            "a = { secret = false, value = \"s-4\" }\n",
            "a = { secret = false }\n",
            "a = { inner = { secret = true, value = \"s-5\" } }\n",
            "a = { list = [{ secret = true, value = \"s-6\" }] }\n",
        ] {
            let e = load(bad).expect_err(bad);
            assert!(
                e.message().starts_with("v.toml:1:5: secret `a`: "),
                "{}",
                e.message()
            );
            assert!(!e.message().contains("s-"), "{}", e.message());
        }
        // A plain table stays a table.
        let plain = load("a = { secretary = \"jo\" }\n").unwrap();
        assert_eq!(plain["a"]["secretary"], Value::String("jo".into()));
    }

    #[test]
    fn extra_values_that_start_like_toml_must_parse() {
        assert_eq!(parse_extra("p=2222").unwrap().1, Value::from(2222));
        assert_eq!(
            parse_extra("m=hello world").unwrap().1,
            Value::from("hello world")
        );
        assert_eq!(parse_extra("m=1.2.3").unwrap().1, Value::from("1.2.3"));
        assert_eq!(
            parse_extra("k=[\"a\", \"b\"]").unwrap().1,
            serde_json::json!(["a", "b"])
        );
        for bad in ["x=[1,", "x={ a = ", "x=\"open", "x='open", "x=[1] 2"] {
            let e = parse_extra(bad).expect_err(bad);
            assert!(e.message().starts_with("-e x: "), "{}", e.message());
        }
    }
}
