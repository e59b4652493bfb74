//! Keeps secret values out of everything slipway prints or saves.

use std::sync::{Arc, LazyLock, RwLock};

pub const SENSITIVE: &str = "(sensitive)";

/// Every secret any redactor of this process has seen: what the edge (the
/// error, warning and output printers) redacts with, whichever run found it.
static GLOBAL: LazyLock<Redactor> = LazyLock::new(Redactor::default);

/// The process-wide redactor, holding the secrets of every [`Redactor`].
pub fn global() -> &'static Redactor {
    &GLOBAL
}

/// The set of secret values known to this run. Cheap to clone; shared by all hosts.
#[derive(Clone, Default, Debug)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
    offline: bool,
}

impl Redactor {
    /// For runs that reach no host (render, check): a secret that cannot be
    /// read is replaced by a placeholder instead of failing the run.
    pub fn offline() -> Self {
        Self {
            offline: true,
            ..Self::default()
        }
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write().expect("redactor lock");
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
            // Longest first, so a secret that contains another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        drop(secrets);
        if !Arc::ptr_eq(&self.secrets, &GLOBAL.secrets) {
            GLOBAL.add(secret);
        }
    }

    /// The secret values, longest first.
    pub fn secrets(&self) -> Vec<String> {
        self.secrets.read().expect("redactor lock").clone()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.read().expect("redactor lock").is_empty()
    }

    /// Whether `text` contains any secret value.
    pub fn touches(&self, text: &[u8]) -> bool {
        let secrets = self.secrets.read().expect("redactor lock");
        secrets
            .iter()
            .any(|s| text.windows(s.len()).any(|w| w == s.as_bytes()))
    }

    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().expect("redactor lock");
        let mut out = text.to_string();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), SENSITIVE);
            }
        }
        out
    }
}

impl Redactor {
    /// Redacts every string inside a JSON value, in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => *s = self.redact(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_secret_longest_first() {
        let r = Redactor::default();
        r.add("hunter2");
        r.add("hunter2-extra");
        assert_eq!(
            r.redact("a hunter2-extra b hunter2"),
            "a (sensitive) b (sensitive)"
        );
        assert!(r.touches(b"xx hunter2 yy"));
        assert!(!r.touches(b"hunter"));
    }

    #[test]
    fn every_secret_reaches_the_process_wide_redactor() {
        let r = Redactor::offline();
        r.add("global-test-secret-1");
        assert_eq!(
            global().redact("x global-test-secret-1 y"),
            "x (sensitive) y"
        );
        assert!(!global().is_offline());
    }
}
