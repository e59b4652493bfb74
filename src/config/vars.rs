//! Variables and secrets.
//!
//! Precedence, lowest first: role defaults < play vars < inventory `[vars]` <
//! group vars (in the order the host lists its groups) < host vars < `-e`.
//! A variable written as `{ secret = true, env = "NAME" }` (or `file = "path"`,
//! or `value = "..."`) is a secret: templates receive its value, but the
//! [`Redactor`] keeps it out of every diff, plan, log and error.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde_json::Value;
use toml::Spanned;
use toml::de::DeValue;

use super::doc::{Doc, Node, table_entries};
use crate::diag::{InputError, InputResult, SourceFile};
use crate::redact::Redactor;

pub type VarMap = BTreeMap<String, Value>;
pub type RawVars = BTreeMap<String, Spanned<toml::Value>>;

/// Resolves a TOML vars table: secrets are read and registered, the rest converted.
pub fn resolve(raw: &RawVars, src: &SourceFile, redactor: &Redactor) -> InputResult<VarMap> {
    let mut out = VarMap::new();
    for (name, value) in raw {
        let resolved = resolve_value(name, value.get_ref(), value.span(), src, redactor)?;
        out.insert(name.clone(), resolved);
    }
    Ok(out)
}

/// One value outside a vars table (a setting that may be a secret), resolved
/// like a variable's.
pub fn resolve_one(
    name: &str,
    value: &Spanned<toml::Value>,
    src: &SourceFile,
    redactor: &Redactor,
) -> InputResult<Value> {
    resolve_value(name, value.get_ref(), value.span(), src, redactor)
}

/// A value with every secret declared in it read and registered: the value
/// itself (`name = { secret = true, ... }`), or a key or item inside it
/// (`docker_registries = [{ password = { secret = true, ... } }]`). Errors
/// point at the variable's value and quote none of it.
fn resolve_value(
    name: &str,
    value: &toml::Value,
    span: Range<usize>,
    src: &SourceFile,
    redactor: &Redactor,
) -> InputResult<Value> {
    Ok(match value {
        toml::Value::Table(t) if t.contains_key("secret") => {
            let secret = match read_secret(t, src) {
                Ok(secret) => secret,
                Err(Unreadable::Source(msg)) if redactor.is_offline() => {
                    crate::diag::warn_once(format!(
                        "secret `{name}`: {msg}; a placeholder stands in for it"
                    ));
                    format!("(secret {name})")
                }
                Err(Unreadable::Source(msg) | Unreadable::Spec(msg)) => {
                    return Err(src.error(span, format!("secret `{name}`: {msg}")));
                }
            };
            redactor.add(&secret);
            Value::String(secret)
        }
        toml::Value::Table(t) if declares_secret(value) => Value::Object(
            t.iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        resolve_value(name, v, span.clone(), src, redactor)?,
                    ))
                })
                .collect::<InputResult<_>>()?,
        ),
        toml::Value::Array(a) if declares_secret(value) => Value::Array(
            a.iter()
                .map(|v| resolve_value(name, v, span.clone(), src, redactor))
                .collect::<InputResult<_>>()?,
        ),
        other => to_json(other),
    })
}

/// Whether a table with a `secret` key is in `value`, or is `value`: such a
/// table is a secret's declaration, or a mistake [`read_secret`] reports,
/// never a plain table, which templates and plans would show in clear.
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
        Some(toml::Value::Boolean(false)) => {
            return Err(Unreadable::Spec(
                "`secret = false`: a table with a `secret` key declares a secret; write \
                 secret = true, or give the value itself without a table"
                    .into(),
            ));
        }
        // Only called for a table with a `secret` key.
        None => {}
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
/// The values' [`Origins`] are layered the same way.
pub fn layer<T: Clone>(base: &mut BTreeMap<String, T>, top: &BTreeMap<String, T>) {
    for (k, v) in top {
        base.insert(k.clone(), v.clone());
    }
}

/// Where a variable's value was set, so an error about the value can point there.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A `name = value` entry of a vars table: the spans of its key and value.
    File {
        src: SourceFile,
        key: Range<usize>,
        value: Range<usize>,
        /// The value is a secret: errors point at the key, and quote no line.
        secret: bool,
    },
    /// `-e NAME=VALUE` on the command line.
    Extra,
}

/// Where each variable was set, by name; layered like the values (see [`layer`]).
pub type Origins = BTreeMap<String, Origin>;

/// [`declares_secret`] for a value as parsed with its spans.
fn holds_secret(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Table(t) => {
            t.keys().any(|k| k.get_ref() == "secret")
                || t.values().any(|v| holds_secret(v.get_ref()))
        }
        DeValue::Array(a) => a.iter().any(|v| holds_secret(v.get_ref())),
        _ => false,
    }
}

/// The origins of the entries of a vars table (`node` is the table).
pub fn origins(src: &SourceFile, node: &Node<'_>) -> Origins {
    table_entries(node)
        .into_iter()
        .map(|(key, value)| {
            // Whatever its `secret` says: a mistaken declaration is no less private.
            let secret = holds_secret(value.get_ref());
            let origin = Origin::File {
                src: src.clone(),
                key: key.span(),
                value: value.span(),
                secret,
            };
            (key.get_ref().to_string(), origin)
        })
        .collect()
}

/// The origins of every host's inventory variables, by host name: `[vars]`,
/// then the vars of the host's groups in the order it lists them, then its own
/// (the precedence [`crate::config::Inventory::load`] applies to the values).
pub fn inventory_origins(
    inventory: &crate::config::Inventory,
) -> InputResult<BTreeMap<String, Origins>> {
    let src = &inventory.source;
    let doc = Doc::parse(src)?;
    let root = doc.root.get_ref();
    let vars_of = |table: Option<&Node<'_>>| {
        table
            .and_then(|t| t.get_ref().get("vars"))
            .map(|v| origins(src, v))
            .unwrap_or_default()
    };
    let global = vars_of(Some(&doc.root));
    let section =
        |kind: &str, name: &str| vars_of(root.get(kind).and_then(|t| t.get_ref().get(name)));
    let mut out = BTreeMap::new();
    for host in &inventory.hosts {
        let mut o = global.clone();
        for g in &host.groups {
            layer(&mut o, &section("groups", g));
        }
        layer(&mut o, &section("hosts", &host.name));
        out.insert(host.name.clone(), o);
    }
    Ok(out)
}

/// One step of a path into a variable's value: `firewall_rules[0].port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Splits `firewall_rules[0].port` into the variable's name and the steps into its value.
pub fn split_path(path: &str) -> (&str, Vec<Step>) {
    let end = path.find(['[', '.']).unwrap_or(path.len());
    let (name, mut rest) = path.split_at(end);
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').unwrap_or(r.len());
            match r[..close].parse() {
                Ok(i) => steps.push(Step::Index(i)),
                Err(_) => break,
            }
            rest = r.get(close + 1..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['[', '.']).unwrap_or(r.len());
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else {
            break;
        }
    }
    (name, steps)
}

impl Origin {
    /// Where it was set, for messages: `FILE:LINE:COL` or `-e NAME`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Origin::File { src, key, .. } => {
                let (line, col) = src.line_col(key.start);
                format!("{}:{line}:{col}", src.name())
            }
            Origin::Extra => format!("-e {name}"),
        }
    }

    /// An error about the name `name` itself, at its key.
    pub fn name_error(&self, name: &str, message: String) -> InputError {
        match self {
            Origin::File {
                src,
                key,
                secret: false,
                ..
            } => src.error(key.clone(), message),
            _ => self.error(name, &[], false, message),
        }
    }

    /// An error about variable `name` set here, at `steps` inside its value
    /// (the whole value when they lead nowhere). `key`: point at the last
    /// step's key rather than its value (an unknown key).
    pub fn error(&self, name: &str, steps: &[Step], key: bool, message: String) -> InputError {
        match self {
            Origin::Extra => InputError::plain(format!("-e {name}: {message}")),
            Origin::File {
                src,
                key: at,
                secret: true,
                ..
            } => {
                let (line, col) = src.line_col(at.start);
                InputError::plain(format!("{}:{line}:{col}: {message}", src.name()))
            }
            Origin::File { src, value, .. } => {
                let span = Doc::parse(src)
                    .ok()
                    .and_then(|doc| {
                        let node = find_span(&doc.root, value)?;
                        Some(walk(node, steps, key))
                    })
                    .unwrap_or_else(|| value.clone());
                src.error(span, message)
            }
        }
    }
}

/// The node whose span is `span`.
fn find_span<'n, 'a>(node: &'n Node<'a>, span: &Range<usize>) -> Option<&'n Node<'a>> {
    // No pruning by span: a `[table]` header's span does not cover its entries.
    if node.span() == *span {
        return Some(node);
    }
    match node.get_ref() {
        DeValue::Table(t) => t.values().find_map(|v| find_span(v, span)),
        DeValue::Array(a) => a.iter().find_map(|v| find_span(v, span)),
        _ => None,
    }
}

/// The span `steps` lead to from `node`, as far as they go.
fn walk(node: &Node<'_>, steps: &[Step], key: bool) -> Range<usize> {
    let Some((first, rest)) = steps.split_first() else {
        return node.span();
    };
    match (first, node.get_ref()) {
        (Step::Index(i), DeValue::Array(a)) => match a.get(*i) {
            Some(item) => walk(item, rest, key),
            None => node.span(),
        },
        (Step::Key(k), DeValue::Table(t)) => match t.iter().find(|(name, _)| name.get_ref() == k) {
            Some((name, _)) if key && rest.is_empty() => name.span(),
            Some((_, v)) => walk(v, rest, key),
            None => node.span(),
        },
        _ => node.span(),
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
            "a = { inner = { secret = 1, value = \"s-5\" } }\n",
            "a = [{ secret = true, value = \"s-6\", env = \"X\" }]\n",
        ] {
            let e = load(bad).expect_err(bad);
            assert!(
                e.message().starts_with("v.toml:1:5: secret `a`: "),
                "{}",
                e.message()
            );
            assert!(!e.message().contains("s-"), "{}", e.message());
        }
        // Declared inside a list or a table: resolved in place, and registered.
        let src = SourceFile::from_text(Path::new("v.toml"), String::new());
        let raw: RawVars = toml::from_str(
            "a = [{ user = \"u\", password = { secret = true, value = \"s-7\" } }]\n",
        )
        .unwrap();
        let redactor = Redactor::default();
        let nested = resolve(&raw, &src, &redactor).unwrap();
        assert_eq!(nested["a"][0]["password"], Value::String("s-7".into()));
        assert_eq!(nested["a"][0]["user"], Value::String("u".into()));
        assert_eq!(redactor.secrets(), ["s-7"]);
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

#[cfg(test)]
mod origin_tests {
    use super::*;
    use crate::config::Inventory;

    #[test]
    fn paths_split_into_a_name_and_steps() {
        assert_eq!(split_path("ssh_port"), ("ssh_port", vec![]));
        assert_eq!(
            split_path("firewall_rules[10].port"),
            (
                "firewall_rules",
                vec![Step::Index(10), Step::Key("port".into())]
            )
        );
        assert_eq!(
            split_path("monitoring_images.grafana"),
            ("monitoring_images", vec![Step::Key("grafana".into())])
        );
    }

    const INVENTORY: &str = "[vars]\nsite = \"a\"\nrules = [{ port = 1 }, { port = 2, form = \"x\" }]\n\
        token = { secret = true, value = \"s-9\" }\n\n\
        [groups.web]\nvars = { site = \"b\" }\n\n\
        [hosts.web1]\ngroups = [\"web\"]\nvars = { only = 1 }\n\n[hosts.db1]\n";

    fn inventory() -> Inventory {
        let src = SourceFile::from_text(Path::new("i.toml"), INVENTORY.into());
        Inventory::load(src, &Redactor::default()).unwrap()
    }

    fn at(o: &Origin, steps: &[Step], key: bool) -> String {
        o.error("x", steps, key, "m".into()).message().to_string()
    }

    #[test]
    fn inventory_origins_follow_the_precedence_of_the_values() {
        let inv = inventory();
        let all = inventory_origins(&inv).unwrap();
        for host in &inv.hosts {
            let names: Vec<&String> = all[&host.name].keys().collect();
            let values: Vec<&String> = host.vars.keys().collect();
            assert_eq!(names, values, "{}", host.name);
        }
        // The group's `site` wins over [vars] for web1; db1 has only [vars].
        assert_eq!(all["web1"]["site"].describe("site"), "i.toml:7:10");
        assert_eq!(all["db1"]["site"].describe("site"), "i.toml:2:1");
        assert_eq!(all["web1"]["only"].describe("only"), "i.toml:11:10");
        assert_eq!(Origin::Extra.describe("site"), "-e site");
    }

    #[test]
    fn errors_point_inside_the_value_or_at_the_key_and_never_quote_a_secret() {
        let all = inventory_origins(&inventory()).unwrap();
        let rules = &all["db1"]["rules"];
        assert!(at(rules, &[], false).starts_with("i.toml:3:9: "));
        let port = [Step::Index(1), Step::Key("port".into())];
        assert!(at(rules, &port, false).starts_with("i.toml:3:33: "));
        let form = [Step::Index(1), Step::Key("form".into())];
        assert!(at(rules, &form, true).starts_with("i.toml:3:36: "));
        // Steps that lead nowhere stop where they can.
        assert!(at(rules, &[Step::Index(7)], false).starts_with("i.toml:3:9: "));
        // A secret: at its name, and with no source snippet that would show the value.
        let e = all["db1"]["token"].error("token", &[], false, "m".into());
        assert!(e.message().starts_with("i.toml:4:1: "), "{}", e.message());
        assert!(!format!("{:?}", miette::Report::new(e)).contains("s-9"));
        let e = Origin::Extra.error("site", &[], false, "bad".into());
        assert_eq!(e.message(), "-e site: bad");
    }
}
