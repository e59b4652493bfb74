//! Top-level keys of a JSON file (Docker's daemon.json), merged into whatever
//! else the file holds: several roles can each own their keys of one file.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::file::File;
use super::{Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::Script;

/// Larger files are not read whole by the probe; nobody writes daemon.json that big.
const MAX_READ: usize = 256 * 1024;

type Current = (Vec<u8>, Map<String, Value>);

#[derive(Debug, Clone)]
pub struct JsonKeys {
    pub path: String,
    pub keys: Map<String, Value>,
    pub validate: Option<String>,
    pub notify: Vec<String>,
}

impl JsonKeys {
    /// Takes over `other`'s keys (they win) and handlers.
    pub fn merge(&mut self, other: &JsonKeys) {
        for (k, v) in &other.keys {
            self.keys.insert(k.clone(), v.clone());
        }
        for n in &other.notify {
            if !self.notify.contains(n) {
                self.notify.push(n.clone());
            }
        }
        if self.validate.is_none() {
            self.validate = other.validate.clone();
        }
    }

    /// The file's bytes and parsed object, None when it does not exist.
    fn current(&self, obs: &Observed<'_>) -> Result<Option<Current>, String> {
        if obs.get("type") != Some("file") {
            return Ok(None);
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(obs.get("content").unwrap_or_default())
            .map_err(|e| format!("could not read {}: {e}", self.path))?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some((raw, Map::new())));
        }
        match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(map)) => Ok(Some((raw, map))),
            Ok(_) => Err(format!(
                "{} does not hold a JSON object; fix or remove it",
                self.path
            )),
            Err(e) => Err(format!(
                "{} is not valid JSON ({e}); fix or remove it",
                self.path
            )),
        }
    }

    fn merged(&self, current: &Map<String, Value>) -> Map<String, Value> {
        let mut out = current.clone();
        for (k, v) in &self.keys {
            out.insert(k.clone(), v.clone());
        }
        out
    }

    fn file(&self, content: &Map<String, Value>) -> File {
        let mut text = serde_json::to_string_pretty(content).expect("JSON serializes");
        text.push('\n');
        File {
            validate: self.validate.clone(),
            ..File::root_owned(&self.path, text.into_bytes(), 0o644)
        }
    }
}

impl Resource for JsonKeys {
    fn id(&self) -> String {
        format!("json:{}", self.path)
    }

    /// Every role's keys of one file become one resource (see `desired`).
    fn manages(&self) -> Vec<super::Managed> {
        vec![super::Managed::shared(
            super::Thing::Path,
            &self.path,
            "JSON keys",
        )]
    }

    fn probe(&self) -> String {
        // The file's own probe (type, mode, owner, sha256), plus its content.
        format!(
            "{}if [ -f \"$p\" ]; then printf 'content=%s\\n' \"$(head -c {MAX_READ} \"$p\" | base64 -w0)\"; fi\n",
            self.file(&Map::new()).probe()
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let current = match self.current(obs) {
            Ok(c) => c,
            Err(e) => return Outcome::blocked(e),
        };
        let (old_raw, old) = current.clone().unzip();
        let old = old.unwrap_or_default();
        let new = self.merged(&old);
        let file = self.file(&new);
        if old_raw.is_some() && new == old && file.plan(obs).change.is_none() {
            return Outcome::unchanged();
        }
        let attrs: Vec<Attr> = self
            .keys
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(v))
            .map(|(k, v)| Attr::new(k, old.get(k).map(Value::to_string), Some(v.to_string())))
            .collect();
        let (action, verb) = if old_raw.is_some() {
            (Action::Update, "update")
        } else {
            (Action::Create, "create")
        };
        let mut change =
            Change::new(self.id(), action, format!("{verb} {}", self.path)).with_attrs(attrs);
        if new != old || old_raw.is_none() {
            change.diff = Some(crate::diff::file_diff(
                &self.path,
                old_raw.as_deref(),
                file.content.as_deref().unwrap_or_default(),
            ));
        }
        Outcome::change(change)
    }

    fn apply(&self, _change: &Change, observed: &Observed<'_>) -> Script {
        let current = self
            .current(observed)
            .ok()
            .flatten()
            .map(|(_, m)| m)
            .unwrap_or_default();
        // The merged file is rewritten whole, atomically, and validated like any file.
        let rewrite = Change::new(String::new(), Action::Create, String::new());
        self.file(&self.merged(&current)).apply(&rewrite, observed)
    }

    fn notify(&self) -> &[String] {
        &self.notify
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;
    use serde_json::json;

    fn keys(v: Value) -> JsonKeys {
        JsonKeys {
            path: "/etc/docker/daemon.json".into(),
            keys: v.as_object().unwrap().clone(),
            validate: None,
            notify: vec![],
        }
    }

    fn section(content: &str, mode: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(content);
        format!(
            "type=file\nmode={mode}\nowner=root\ngroup=root\nsize={}\ncontent={b64}\nsha256={}\n",
            content.len(),
            crate::digest::sha256_hex(content.as_bytes())
        )
    }

    #[test]
    fn keeps_keys_it_does_not_own() {
        let k = keys(json!({"log-driver": "json-file"}));
        let facts = HostFacts::default();
        let s = section("{\"debug\": true}\n", "644");
        let o = k.plan(&Observed::new(&s, &facts));
        let c = o.change.unwrap();
        assert_eq!(
            c.attrs[0],
            Attr::new("log-driver", None::<String>, Some("\"json-file\""))
        );
        let Some(crate::plan::change::Diff::Text { unified, .. }) = c.diff else {
            panic!()
        };
        assert!(
            unified.contains("+  \"debug\": true,") || unified.contains("\"debug\": true"),
            "{unified}"
        );
        assert!(
            unified.contains("+  \"log-driver\": \"json-file\""),
            "{unified}"
        );
    }

    #[test]
    fn converged_file_needs_nothing_and_broken_json_blocks() {
        let k = keys(json!({"log-driver": "json-file"}));
        let facts = HostFacts::default();
        let s = section("{\n  \"log-driver\": \"json-file\"\n}\n", "644");
        assert_eq!(k.plan(&Observed::new(&s, &facts)), Outcome::unchanged());
        let bad = section("{oops", "644");
        assert!(k.plan(&Observed::new(&bad, &facts)).blocked.is_some());
    }

    #[test]
    fn merging_lets_the_later_keys_win() {
        let mut a = keys(json!({"log-driver": "json-file", "debug": false}));
        a.merge(&keys(json!({"debug": true})));
        assert_eq!(
            Value::Object(a.keys),
            json!({"log-driver": "json-file", "debug": true})
        );
    }
}
