//! `file`: a file's content, mode and ownership, written atomically and
//! validated before it takes effect.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::fsattr::{FsAttrs, PROBE_STAT, RawAttrs};
use super::{BuildContext, Observed, Outcome, Presence, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::facts::HostFacts;
use crate::plan::change::{Action, Attr, Change, Diff};
use crate::shell::{REMOVE_TEMP_ON_EXIT, Script, q};

#[derive(Debug, Clone)]
pub struct File {
    pub path: String,
    /// None when the file must be absent.
    pub content: Option<Vec<u8>>,
    pub attrs: FsAttrs,
    /// A command run on the new content before it replaces the old; `{}` is its path.
    pub validate: Option<String>,
    pub notify: Vec<String>,
    /// Content involving a secret: no diff, no hash is shown.
    pub sensitive: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    path: Spanned<String>,
    content: Option<String>,
    template: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    validate: Option<Spanned<String>>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    state: Presence,
    #[serde(default)]
    sensitive: bool,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    let src = ctx.doc.src;
    check_abs(spec.path.get_ref()).map_err(|m| src.error(spec.path.span(), m))?;
    let given = [
        spec.content.is_some(),
        spec.template.is_some(),
        spec.source.is_some(),
    ];
    let content = match (spec.state, given.iter().filter(|g| **g).count()) {
        (Presence::Absent, 0) => None,
        (Presence::Absent, _) => {
            return Err(ctx.error(
                node,
                "a file with state = \"absent\" takes no content, template or source",
            ));
        }
        (Presence::Present, 1) => Some(if let Some(c) = spec.content {
            c.into_bytes()
        } else if let Some(t) = &spec.template {
            ctx.templates
                .render_file(t.get_ref(), ctx.vars)
                .map_err(|e| {
                    if ctx.templates.exists(t.get_ref()) {
                        e
                    } else {
                        let at = src.error(t.span(), e.message().to_string());
                        match e.help() {
                            Some(help) => at.with_help(help),
                            None => at,
                        }
                    }
                })?
                .into_bytes()
        } else {
            let s = spec.source.as_ref().expect("one of three");
            let path = crate::config::expand_path(s.get_ref(), ctx.base_dir);
            std::fs::read(&path)
                .map_err(|e| src.error(s.span(), format!("cannot read {}: {e}", path.display())))?
        }),
        (Presence::Present, _) => {
            return Err(ctx
                .error(node, "a file needs exactly one of content, template or source")
                .with_help("content = \"...\" inline, template = \"name.j2\" from templates/, or source = \"path\" for a local file copied as is"));
        }
    };
    if let Some(v) = &spec.validate
        && !v.get_ref().contains("{}")
    {
        return Err(src
            .error(
                v.span(),
                "validate command must contain {} (the path of the new content)",
            )
            .with_help("for example: validate = \"sshd -t -f {}\""));
    }
    let attrs = FsAttrs::from_raw(
        RawAttrs {
            mode: spec.mode,
            owner: spec.owner,
            group: spec.group,
        },
        |span, msg| src.error(span, msg),
    )?;
    let sensitive = spec.sensitive || content.as_deref().is_some_and(|c| ctx.redactor.touches(c));
    Ok(Box::new(File {
        path: spec.path.into_inner(),
        content,
        attrs,
        validate: spec.validate.map(Spanned::into_inner),
        notify: check_notify(spec.notify, src)?,
        sensitive,
    }))
}

/// `notify` entries: the units to restart, each a plain unit name.
pub fn check_notify(
    notify: Vec<Spanned<String>>,
    src: &crate::diag::SourceFile,
) -> InputResult<Vec<String>> {
    notify
        .into_iter()
        .map(|n| {
            super::service::check_unit_name(n.get_ref())
                .map_err(|m| src.error(n.span(), format!("notify: {m}")))?;
            Ok(n.into_inner())
        })
        .collect()
}

/// A path on the host: absolute, one line, no `.` or `..` parts, no empty
/// part, no trailing `/` (it names a file or a directory, not a pattern).
pub fn check_abs(path: &str) -> Result<(), String> {
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!(
            "path {path:?} contains the control character {c:?}: a path is one line of text"
        ));
    }
    if !Path::new(path).is_absolute() {
        return Err(format!("path `{path}` must be absolute (start with /)"));
    }
    if path == "/" {
        return Err("path `/` is not allowed here".into());
    }
    if path.ends_with('/') {
        return Err(format!(
            "path `{path}` ends with `/`: write it without, `{}`",
            path.trim_end_matches('/')
        ));
    }
    if let Some(part) = path[1..]
        .split('/')
        .find(|p| p.is_empty() || *p == "." || *p == "..")
    {
        let part = if part.is_empty() { "//" } else { part };
        return Err(format!(
            "path `{path}` contains `{part}`: write the path it stands for"
        ));
    }
    Ok(())
}

impl File {
    /// A file owned by root with fixed content: what roles and derived resources write.
    pub fn root_owned(path: &str, content: Vec<u8>, mode: u32) -> Self {
        Self {
            path: path.to_string(),
            content: Some(content),
            attrs: FsAttrs::root(mode),
            validate: None,
            notify: Vec::new(),
            sensitive: false,
        }
    }

    fn new_content(&self) -> &[u8] {
        self.content.as_deref().unwrap_or_default()
    }
}

impl Resource for File {
    fn id(&self) -> String {
        format!("file:{}", self.path)
    }

    fn manages(&self) -> Vec<super::Managed> {
        vec![super::Managed::sole(super::Thing::Path, &self.path)]
    }

    fn probe(&self) -> String {
        format!(
            "p={}\n{PROBE_STAT}if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then printf 'sha256='; sha256sum < \"$p\"; fi\n",
            q(&self.path)
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let kind = obs.get("type").unwrap_or("absent");
        let Some(content) = &self.content else {
            return match kind {
                "absent" => Outcome::unchanged(),
                "file" | "link" => Outcome::change(Change::new(
                    self.id(),
                    Action::Delete,
                    format!("remove {}", self.path),
                )),
                other => Outcome::blocked(format!(
                    "{} is a {other}, not a file; refusing to remove it",
                    self.path
                )),
            };
        };
        match kind {
            "absent" | "link" => {
                let verb = if kind == "link" {
                    "replace symlink"
                } else {
                    "create"
                };
                let mut change =
                    Change::new(self.id(), Action::Create, format!("{verb} {}", self.path))
                        .with_attrs(self.attrs.initial(0o644));
                change.diff = Some(self.diff_of(None, content));
                Outcome::change(change)
            }
            "file" => {
                let mut attrs = self.attrs.changes(obs);
                // `sha256sum` prints `HASH  -`: one process, where cutting the hash out took two more.
                let seen = obs.get("sha256").and_then(|v| v.split_whitespace().next());
                let same = seen == Some(crate::digest::sha256_hex(content).as_str());
                if same && attrs.is_empty() {
                    return Outcome::unchanged();
                }
                if !same {
                    attrs.insert(
                        0,
                        Attr::new(
                            "content",
                            None::<String>,
                            Some(if self.sensitive {
                                "(sensitive)".to_string()
                            } else {
                                format!("{} bytes", content.len())
                            }),
                        ),
                    );
                }
                Outcome::change(
                    Change::new(self.id(), Action::Update, format!("update {}", self.path))
                        .with_attrs(attrs),
                )
            }
            other => Outcome::blocked(format!("{} is a {other}, not a file", self.path)),
        }
    }

    fn content(&self) -> Option<super::FileContent<'_>> {
        Some(super::FileContent {
            path: &self.path,
            bytes: self.content.as_deref()?,
            sensitive: self.sensitive,
        })
    }

    fn diff_source(&self, change: &Change) -> Option<String> {
        let content_changes = change.attrs.iter().any(|a| a.name == "content");
        (change.action == Action::Update && content_changes && !self.sensitive)
            .then(|| self.path.clone())
    }

    fn set_diff(&self, change: &mut Change, old: Option<&[u8]>, _facts: &HostFacts) {
        change.diff = Some(self.diff_of(old, self.new_content()));
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        s.line(format!("p={}", q(&self.path)));
        if change.action == Action::Delete {
            s.line("rm -f \"$p\"");
            return s;
        }
        let content_changes =
            change.action == Action::Create || change.attrs.iter().any(|a| a.name == "content");
        if !content_changes {
            s.line(self.attrs.apply("\"$p\"", None, 0o644));
            return s;
        }
        s.line("d=$(dirname \"$p\"); mkdir -p \"$d\"");
        // The temp file lives beside the target so the final rename is atomic; it is
        // removed on any failure, including a dropped connection (HUP, PIPE).
        s.line("t=$(mktemp \"$d/.slipway.XXXXXX\")");
        s.line(REMOVE_TEMP_ON_EXIT);
        let content = self.new_content();
        let write = s.payload(content.to_vec());
        s.line(format!("{write} > \"$t\""));
        // A connection that broke mid-transfer leaves a short file: never install it.
        s.line(format!(
            "printf '%s  %s\\n' {} \"$t\" | sha256sum -c --status || {{ echo {} >&2; exit 1; }}",
            crate::digest::sha256_hex(content),
            q(&format!(
                "the new content of {} arrived incomplete; the file was left unchanged",
                self.path
            ))
        ));
        s.line(self.attrs.apply("\"$t\"", Some("\"$p\""), 0o644));
        if let Some(v) = &self.validate {
            let cmd = v.replace("{}", "\"$t\"");
            s.line(format!(
                "if ! ( {cmd} ) >&2; then echo {} >&2; exit 1; fi",
                q(&format!(
                    "validation failed: `{v}`; {} was left unchanged",
                    self.path
                ))
            ));
        }
        s.line("sync \"$t\"; mv -f \"$t\" \"$p\"; sync \"$d\" 2>/dev/null || true");
        s
    }

    fn notify(&self) -> &[String] {
        &self.notify
    }
}

impl File {
    fn diff_of(&self, old: Option<&[u8]>, new: &[u8]) -> Diff {
        if self.sensitive {
            Diff::Sensitive {
                path: self.path.clone(),
            }
        } else {
            crate::diff::file_diff(&self.path, old, new)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_are_absolute_single_lines_without_dot_parts() {
        for ok in ["/etc/motd", "/srv/app.d/x.conf", "/a/.hidden", "/a/..b"] {
            assert_eq!(check_abs(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("etc/motd", "absolute"),
            ("", "absolute"),
            ("/", "not allowed"),
            ("/etc/../shadow", "`..`"),
            ("/etc/./motd", "`.`"),
            ("/etc//motd", "`//`"),
            ("/etc/motd/", "ends with `/`"),
            ("/etc/motd\nx", "control character '\\n'"),
            ("/etc/mo\0td", "control character"),
        ] {
            let e = check_abs(bad).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn owners_are_names_or_ids() {
        use super::super::fsattr::check_owner;
        assert!(check_owner("www-data").is_ok());
        assert!(check_owner("1000").is_ok());
        for bad in ["", "Root", "a b", "root:root", "x;rm", "12345678901"] {
            assert!(check_owner(bad).is_err(), "{bad}");
        }
    }
}
