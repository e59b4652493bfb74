//! `sysctl`: kernel settings, persisted in a drop-in under /etc/sysctl.d and
//! applied live. Settings the host cannot change (read-only inside a
//! container) are reported as skipped with the reason, never forced.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::file::File;
use super::{BuildContext, Observed, Outcome, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Sysctl {
    /// Names the drop-in: /etc/sysctl.d/60-NAME.conf.
    pub name: String,
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: toml::Spanned<String>,
    settings: BTreeMap<String, toml::Spanned<toml::Value>>,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    let src = ctx.doc.src;
    let name = spec.name.get_ref();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(src.error(
            spec.name.span(),
            "sysctl name must be letters, digits, - or _ (it names the file)",
        ));
    }
    let mut settings = BTreeMap::new();
    for (k, spanned) in &spec.settings {
        let v = spanned.get_ref();
        let valid = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let value = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => u8::from(*b).to_string(),
            _ => {
                return Err(src.error(
                    spanned.span(),
                    format!("`{k}`: value must be a string or a number"),
                ));
            }
        };
        if !valid {
            return Err(src.error(spanned.span(), format!("`{k}` is not a sysctl key")));
        }
        settings.insert(k.clone(), value);
    }
    Ok(Box::new(Sysctl {
        name: spec.name.into_inner(),
        settings,
    }))
}

/// sysctl prints multi-value settings separated by tabs; compare them by words.
fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

impl Sysctl {
    pub fn path(&self) -> String {
        format!("/etc/sysctl.d/60-{}.conf", self.name)
    }

    /// The drop-in holds every setting, so it stays the same on every host;
    /// only applying it live depends on what the host allows.
    fn drop_in(&self) -> File {
        let mut content = String::from("# Managed by slipway.\n");
        for (k, v) in &self.settings {
            content.push_str(&format!("{k} = {v}\n"));
        }
        File::root_owned(&self.path(), content.into_bytes(), 0o644)
    }

    /// The keys this host can take, and one line per reason for those it cannot.
    fn applicable<'s>(&'s self, obs: &Observed<'_>) -> (Vec<&'s String>, Vec<String>) {
        let mut ok = Vec::new();
        let mut read_only = Vec::new();
        let mut unknown = Vec::new();
        for k in self.settings.keys() {
            match obs.get(&format!("w.{k}")) {
                Some("yes") => ok.push(k),
                Some("ro") => read_only.push(k.as_str()),
                _ => unknown.push(k.as_str()),
            }
        }
        let mut skipped = Vec::new();
        if !read_only.is_empty() {
            let why = match &obs.facts.container {
                Some(c) => format!("read-only inside a container ({c})"),
                None => "read-only on this host (/proc/sys)".to_string(),
            };
            let n = read_only.len();
            let what = if n == 1 {
                "1 kernel setting is".to_string()
            } else {
                format!("{n} kernel settings are")
            };
            skipped.push(format!("sysctl: {what} {why}: {}", read_only.join(", ")));
        }
        if !unknown.is_empty() {
            skipped.push(format!(
                "sysctl: this kernel has no such setting: {}",
                unknown.join(", ")
            ));
        }
        (ok, skipped)
    }
}

impl Resource for Sysctl {
    fn id(&self) -> String {
        format!("sysctl:{}", self.name)
    }

    /// The drop-in, and every key: two drop-ins setting one key leave it to
    /// the file that sorts last.
    fn manages(&self) -> Vec<super::Managed> {
        let mut out = vec![super::Managed::sole(super::Thing::Path, self.path())];
        out.extend(
            self.settings
                .keys()
                .map(|k| super::Managed::sole(super::Thing::SysctlKey, k)),
        );
        out
    }

    fn probe(&self) -> String {
        let mut sh = self.drop_in().probe();
        for k in self.settings.keys() {
            let p = q(&proc_path(k));
            let key = q(k);
            sh.push_str(&format!(
                "if [ -w {p} ]; then printf 'w.%s=yes\\n' {key}; elif [ -e {p} ]; then printf 'w.%s=ro\\n' {key}; fi\n\
                 if [ -r {p} ] && IFS= read -r v < {p}; then printf 'v.%s=%s\\n' {key} \"$v\"; fi\n"
            ));
        }
        sh
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let (keys, skipped) = self.applicable(obs);
        let mut attrs = Vec::new();
        if let Some(c) = self.drop_in().plan(obs).change {
            attrs.push(Attr::new("file", None::<String>, Some(c.summary)));
        }
        for k in &keys {
            let seen = obs.get(&format!("v.{k}")).map(normalize);
            let want = normalize(&self.settings[*k]);
            if seen.as_deref() != Some(want.as_str()) {
                attrs.push(Attr::new(k, seen, Some(want)));
            }
        }
        let summary = format!("set kernel settings ({})", self.name);
        let mut outcome = Outcome::update(self.id(), summary, attrs);
        outcome.skipped = skipped;
        outcome
    }

    fn apply(&self, change: &Change, observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        if change.attrs.iter().any(|a| a.name == "file") {
            // Rewriting the whole file is right for both a new and a changed drop-in.
            let rewrite = Change::new(String::new(), Action::Create, String::new());
            s.append(self.drop_in().apply(&rewrite, observed));
        }
        for a in change.attrs.iter().filter(|a| a.name != "file") {
            s.line(format!(
                "sysctl -q -w {}",
                q(&format!("{}={}", a.name, self.settings[&a.name]))
            ));
        }
        s
    }
}
