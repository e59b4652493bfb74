//! `sysctl`: kernel settings, persisted in a drop-in under /etc/sysctl.d and
//! applied live. Settings the host cannot change (read-only inside a
//! container) are reported as skipped with the reason, never forced.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::file::File;
use super::{BuildContext, FileContent, Observed, Outcome, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::facts::HostFacts;
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Sysctl {
    /// Names the drop-in: /etc/sysctl.d/60-NAME.conf.
    name: String,
    settings: BTreeMap<String, String>,
    /// The drop-in, made once from the settings (see [`Sysctl::new`]).
    drop_in: File,
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
        check_setting(k, &value).map_err(|m| src.error(spanned.span(), m))?;
        settings.insert(k.clone(), value);
    }
    let mut sysctl = Sysctl::new(spec.name.into_inner(), settings);
    sysctl.drop_in.sensitive = ctx
        .redactor
        .touches(sysctl.drop_in.content.as_deref().unwrap_or_default());
    Ok(Box::new(sysctl))
}

/// A key is a path under /proc/sys written with dots; a value is one line
/// (the drop-in has one setting per line).
pub fn check_setting(key: &str, value: &str) -> Result<(), String> {
    let key_ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !key_ok {
        return Err(format!("`{key}` is not a sysctl key"));
    }
    if value.contains(['\n', '\r']) {
        return Err(format!("`{key}`: the value must be one line"));
    }
    Ok(())
}

/// sysctl prints multi-value settings separated by tabs; compare them by words.
fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

impl Sysctl {
    /// The drop-in holds every setting, so it is the same on every host,
    /// containers included, and known without one (`slipway render`); only
    /// applying the settings live depends on what the host allows.
    pub fn new(name: String, settings: BTreeMap<String, String>) -> Self {
        let mut content = String::from("# Managed by slipway.\n");
        for (k, v) in &settings {
            content.push_str(&format!("{k} = {v}\n"));
        }
        let path = format!("/etc/sysctl.d/60-{name}.conf");
        Self {
            drop_in: File::root_owned(&path, content.into_bytes(), 0o644),
            name,
            settings,
        }
    }

    pub fn path(&self) -> &str {
        &self.drop_in.path
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
        let mut sh = self.drop_in.probe();
        let mut keys = Vec::new();
        for k in self.settings.keys() {
            let p = q(&proc_path(k));
            let key = q(k);
            sh.push_str(&format!(
                "if [ -w {p} ]; then printf 'w.%s=yes\\n' {key}; elif [ -e {p} ]; then printf 'w.%s=ro\\n' {key}; fi\n"
            ));
            keys.push(key);
        }
        // One `sysctl` for every value: the shell's `read` takes a /proc/sys
        // file a byte at a time, and the kernel ends such a file after its
        // first byte, so `32768 60999` would read as `3`.
        if !keys.is_empty() {
            sh.push_str(&format!(
                "sysctl -e {} 2>/dev/null | sed -n 's/^\\([^ ]*\\) = /v.\\1=/p'\n",
                keys.join(" ")
            ));
        }
        sh
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let (keys, skipped) = self.applicable(obs);
        let mut attrs = Vec::new();
        // A new drop-in comes with its diff; a changed one gets it from `set_diff`.
        let mut diff = None;
        if let Some(c) = self.drop_in.plan(obs).change {
            attrs.push(Attr::new("file", None::<String>, Some(c.summary)));
            diff = c.diff;
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
        if let Some(c) = &mut outcome.change {
            c.diff = diff;
        }
        outcome.skipped = skipped;
        outcome
    }

    fn content(&self) -> Option<FileContent<'_>> {
        self.drop_in.content()
    }

    /// The drop-in exists but differs (content, or only mode or owner: then
    /// `set_diff` finds the content equal and adds no diff).
    fn diff_source(&self, change: &Change) -> Option<String> {
        let file_changes = change.attrs.iter().any(|a| a.name == "file");
        (file_changes && change.diff.is_none() && !self.drop_in.sensitive)
            .then(|| self.drop_in.path.clone())
    }

    fn set_diff(&self, change: &mut Change, old: Option<&[u8]>, facts: &HostFacts) {
        if old != self.drop_in.content.as_deref() {
            self.drop_in.set_diff(change, old, facts);
        }
    }

    fn apply(&self, change: &Change, observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        if change.attrs.iter().any(|a| a.name == "file") {
            // Rewriting the whole file is right for both a new and a changed drop-in.
            let rewrite = Change::new(String::new(), Action::Create, String::new());
            s.append(self.drop_in.apply(&rewrite, observed));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::change::Diff;

    fn resource() -> Sysctl {
        let settings = [("kernel.dmesg_restrict", "1"), ("vm.swappiness", "10")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Sysctl::new("app".into(), settings)
    }

    const WANT: &str = "# Managed by slipway.\nkernel.dmesg_restrict = 1\nvm.swappiness = 10\n";

    /// What the probe prints for a drop-in with `content` (None: no drop-in).
    fn section(content: Option<&str>, mode: &str, keys: &str) -> String {
        let file = match content {
            None => "type=absent\n".to_string(),
            Some(c) => format!(
                "type=file\nmode={mode}\nowner=root\ngroup=root\nsize={}\nsha256={}\n",
                c.len(),
                crate::digest::sha256_hex(c.as_bytes())
            ),
        };
        format!("{file}{keys}")
    }

    fn unified(change: &Change) -> &str {
        match &change.diff {
            Some(Diff::Text { unified, .. }) => unified,
            other => panic!("expected a text diff, got {other:?}"),
        }
    }

    /// The probe against this machine's own kernel: a value of several
    /// characters (and a tab) reads whole.
    #[test]
    fn the_probe_reads_whole_values_from_a_real_kernel() {
        let key = "net.ipv4.ip_local_port_range";
        let r = Sysctl::new("t".into(), [(key.to_string(), "1 2".to_string())].into());
        let out = std::process::Command::new("sh")
            .args(["-c", &r.probe()])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        let want = std::fs::read_to_string(proc_path(key)).unwrap();
        let seen = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("v.{key}=")))
            .unwrap_or_else(|| panic!("no value in {out}"));
        assert_eq!(normalize(seen), normalize(&want));
        assert!(normalize(seen).len() > 1, "{seen}");
    }

    #[test]
    fn a_setting_is_one_line_under_a_real_key() {
        assert_eq!(check_setting("net.core.somaxconn", "4096"), Ok(()));
        assert_eq!(
            check_setting("net.ipv4.ip_local_port_range", "1024\t65000"),
            Ok(())
        );
        assert!(check_setting("vm swappiness", "10").is_err());
        assert!(check_setting("", "10").is_err());
        // A second line would be a setting nobody asked for.
        let e = check_setting("vm.swappiness", "10\nkernel.modules_disabled = 1").unwrap_err();
        assert_eq!(e, "`vm.swappiness`: the value must be one line");
    }

    #[test]
    fn the_drop_in_is_known_without_a_host() {
        let r = resource();
        let c = r.content().unwrap();
        assert_eq!(c.path, "/etc/sysctl.d/60-app.conf");
        assert_eq!(std::str::from_utf8(c.bytes).unwrap(), WANT);
        assert!(!c.sensitive);
    }

    #[test]
    fn a_new_drop_in_comes_with_its_diff() {
        let facts = HostFacts::default();
        let s = section(
            None,
            "",
            "w.kernel.dmesg_restrict=yes\nv.kernel.dmesg_restrict=0\nw.vm.swappiness=yes\nv.vm.swappiness=60\n",
        );
        let r = resource();
        let c = r.plan(&Observed::new(&s, &facts)).change.unwrap();
        assert_eq!(
            c.attrs[0],
            Attr::new(
                "file",
                None::<String>,
                Some("create /etc/sysctl.d/60-app.conf")
            )
        );
        assert!(
            c.attrs
                .contains(&Attr::new("vm.swappiness", Some("60"), Some("10")))
        );
        let diff = unified(&c);
        assert!(diff.contains("--- /dev/null"), "{diff}");
        assert!(
            diff.contains("+++ /etc/sysctl.d/60-app.conf (planned)"),
            "{diff}"
        );
        assert!(diff.contains("+vm.swappiness = 10\n"), "{diff}");
        // Nothing to fetch: the diff is complete.
        assert_eq!(r.diff_source(&c), None);
    }

    #[test]
    fn a_changed_drop_in_is_diffed_against_the_host_copy() {
        let facts = HostFacts::default();
        let old = "# Managed by slipway.\nkernel.dmesg_restrict = 1\nvm.swappiness = 60\n";
        // The live values are right already: only the file differs.
        let s = section(
            Some(old),
            "644",
            "w.kernel.dmesg_restrict=yes\nv.kernel.dmesg_restrict=1\nw.vm.swappiness=yes\nv.vm.swappiness=10\n",
        );
        let r = resource();
        let mut c = r.plan(&Observed::new(&s, &facts)).change.unwrap();
        assert_eq!(c.attrs.len(), 1, "{:?}", c.attrs);
        assert_eq!(c.diff, None);
        assert_eq!(
            r.diff_source(&c).as_deref(),
            Some("/etc/sysctl.d/60-app.conf")
        );
        r.set_diff(&mut c, Some(old.as_bytes()), &facts);
        let diff = unified(&c);
        assert!(
            diff.contains("--- /etc/sysctl.d/60-app.conf (on host)"),
            "{diff}"
        );
        assert!(
            diff.contains("-vm.swappiness = 60\n+vm.swappiness = 10\n"),
            "{diff}"
        );
        // Applying rewrites the file and sets nothing live.
        let sh = r.apply(&c, &Observed::new(&s, &facts)).sh;
        assert!(!sh.contains("sysctl -q -w"), "{sh}");
    }

    #[test]
    fn a_mode_change_alone_shows_no_diff() {
        let facts = HostFacts::default();
        let s = section(
            Some(WANT),
            "600",
            "w.kernel.dmesg_restrict=yes\nv.kernel.dmesg_restrict=1\nw.vm.swappiness=yes\nv.vm.swappiness=10\n",
        );
        let r = resource();
        let mut c = r.plan(&Observed::new(&s, &facts)).change.unwrap();
        r.set_diff(&mut c, Some(WANT.as_bytes()), &facts);
        assert_eq!(c.diff, None);
        let converged = section(
            Some(WANT),
            "644",
            "w.kernel.dmesg_restrict=yes\nv.kernel.dmesg_restrict=1\nw.vm.swappiness=yes\nv.vm.swappiness=10\n",
        );
        assert_eq!(
            r.plan(&Observed::new(&converged, &facts)),
            Outcome::unchanged()
        );
    }

    #[test]
    fn in_a_container_kernel_settings_are_skipped_but_the_drop_in_holds_them_all() {
        let facts = HostFacts {
            container: Some("docker".into()),
            ..HostFacts::default()
        };
        let s = section(
            None,
            "",
            "w.kernel.dmesg_restrict=ro\nv.kernel.dmesg_restrict=0\nw.vm.swappiness=yes\nv.vm.swappiness=60\n",
        );
        let r = resource();
        let o = r.plan(&Observed::new(&s, &facts));
        assert_eq!(
            o.skipped,
            [
                "sysctl: 1 kernel setting is read-only inside a container (docker): kernel.dmesg_restrict"
            ]
        );
        let c = o.change.unwrap();
        assert!(!c.attrs.iter().any(|a| a.name == "kernel.dmesg_restrict"));
        let diff = unified(&c);
        assert!(diff.contains("+kernel.dmesg_restrict = 1\n"), "{diff}");
        // The same file `slipway render` writes.
        assert!(diff.ends_with(&WANT.lines().map(|l| format!("+{l}\n")).collect::<String>()));
        let sh = r.apply(&c, &Observed::new(&s, &facts)).sh;
        assert!(sh.contains("sysctl -q -w 'vm.swappiness=10'"), "{sh}");
        assert!(!sh.contains("sysctl -q -w kernel.dmesg_restrict"), "{sh}");
    }
}
