//! Template rendering (minijinja, Jinja2 syntax) with errors that name the
//! template, line and column. A template is looked up in the user's
//! templates/ directory first, then among the templates built into slipway,
//! so any built-in one is overridden by a file of the same name.

mod builtin;

use std::error::Error as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use crate::diag::{InputError, SourceFile};

pub struct Templates {
    env: Environment<'static>,
    dir: Option<PathBuf>,
    /// Directories looked for when there is no `dir`, for "not found" errors.
    candidates: Vec<PathBuf>,
    /// What the loader could not load, with its location (a template file
    /// that is not UTF-8): minijinja's own error cannot carry it.
    loader_error: Arc<Mutex<Option<InputError>>>,
}

impl Templates {
    pub fn new(dir: Option<PathBuf>) -> Self {
        let mut env = Environment::new();
        // A typo in a variable name must fail the plan, not render an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Errors must name line and column in release builds too (minijinja keeps
        // that information only in debug builds unless told).
        env.set_debug(true);
        // Config files are not HTML: minijinja would otherwise escape .yaml/.json output.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default delimiters are valid"),
        );
        let user_dir = dir.clone();
        let loader_error = Arc::new(Mutex::new(None));
        let failed = loader_error.clone();
        env.set_loader(move |name| {
            if let Some(path) = user_dir.as_deref().and_then(|d| user_file(d, name)) {
                let fail =
                    |message: String| minijinja::Error::new(ErrorKind::InvalidOperation, message);
                let bytes = std::fs::read(&path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                return match SourceFile::from_bytes(&path, bytes) {
                    Ok(src) => Ok(Some(src.text.to_string())),
                    Err(e) => {
                        let message = e.message().to_string();
                        *failed.lock().expect("loader lock") = Some(e);
                        Err(fail(message))
                    }
                };
            }
            Ok(builtin::get(name).map(String::from))
        });
        Self {
            env,
            dir,
            candidates: Vec::new(),
            loader_error,
        }
    }

    /// Records the directories looked for when none was found, for errors.
    pub fn looked_in(mut self, candidates: Vec<PathBuf>) -> Self {
        self.candidates = candidates;
        self
    }

    /// `template `NAME` not found in ...`, naming every place looked in.
    fn not_found(&self, name: &str) -> InputError {
        let (message, help) = match &self.dir {
            Some(d) => (
                format!(
                    "template `{name}` not found in {} nor among the built-in templates",
                    d.display()
                ),
                "check the name: it is relative to the templates directory (no leading / or ..)"
                    .to_string(),
            ),
            None => {
                let looked: Vec<String> = self
                    .candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                let looked = if looked.is_empty() {
                    String::new()
                } else {
                    format!(" (looked for {}: none exists)", looked.join(" and "))
                };
                (
                    format!(
                        "template `{name}` not found: no templates directory{looked}, and no built-in template of that name"
                    ),
                    "create templates/ beside the playbook, or pass --templates DIR".to_string(),
                )
            }
        };
        InputError::plain(message).with_help(help)
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether a template of that name exists, the user's or built in (it may
    /// still fail to parse).
    pub fn exists(&self, name: &str) -> bool {
        self.dir
            .as_deref()
            .and_then(|d| user_file(d, name))
            .is_some()
            || builtin::get(name).is_some()
    }

    /// Where a template comes from, for error messages: the user's file, or
    /// `<built-in>/NAME`.
    fn origin(&self, name: &str) -> PathBuf {
        self.dir
            .as_deref()
            .and_then(|d| user_file(d, name))
            .unwrap_or_else(|| Path::new("<built-in>").join(name))
    }

    /// Renders the template file `name`. Errors point into the template.
    pub fn render_file(&self, name: &str, ctx: &Value) -> Result<String, InputError> {
        let tmpl = self.env.get_template(name).map_err(|e| {
            if e.kind() == ErrorKind::TemplateNotFound {
                self.not_found(name)
            } else {
                self.error(&e, None)
            }
        })?;
        tmpl.render(ctx).map_err(|e| self.error(&e, None))
    }

    /// Renders an inline string. `origin` is the file and byte offset where the
    /// string's text starts, so errors point at the right place in the TOML.
    pub fn render_str(
        &self,
        text: &str,
        ctx: &Value,
        origin: (&SourceFile, usize),
    ) -> Result<String, InputError> {
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return Ok(text.to_string());
        }
        self.env
            .render_str(text, ctx)
            .map_err(|e| self.error(&e, Some(origin)))
    }

    fn error(&self, e: &minijinja::Error, origin: Option<(&SourceFile, usize)>) -> InputError {
        if let Some(loaded) = self.loader_error.lock().expect("loader lock").take() {
            return loaded;
        }
        // An error inside an included template is reported where it is, the
        // include that led there named in the message.
        let mut at = e;
        let mut included_from = Vec::new();
        while let Some(inner) = at
            .source()
            .and_then(|s| s.downcast_ref::<minijinja::Error>())
            .filter(|i| i.name().is_some() && i.line().is_some())
        {
            if let (Some(name), Some(line)) = (at.name(), at.line()) {
                included_from.push(self.place(name, line, origin.map(|o| o.0)));
            }
            at = inner;
        }
        let not_found = std::iter::successors(Some(e), |&x| {
            x.source()
                .and_then(|s| s.downcast_ref::<minijinja::Error>())
        })
        .find(|x| x.kind() == ErrorKind::TemplateNotFound);
        let mut detail = match (not_found, at.detail()) {
            (Some(nf), _) => {
                let name = nf.detail().and_then(quoted).unwrap_or("?");
                self.not_found(name).message().to_string()
            }
            (None, Some(d)) => format!("{}: {d}", at.kind()),
            (None, None) => at.kind().to_string(),
        };
        let mut range = at.range().unwrap_or(0..0);
        let source = at.template_source().unwrap_or_default();
        if at.kind() == ErrorKind::SyntaxError
            && detail.contains("unexpected end of input")
            && let Some((opener, tag, end)) = unclosed_block(source)
        {
            detail = format!("syntax error: `{{% {tag} %}}` is never closed: add `{{% {end} %}}`");
            range = opener;
        }
        if !included_from.is_empty() {
            detail = format!("{detail} (included from {})", included_from.join(", "));
        }
        match origin.filter(|_| std::ptr::eq(at, e)) {
            Some((src, start)) => src.error(start + range.start..start + range.end, detail),
            None => {
                let path = self.origin(at.name().unwrap_or("template"));
                let src = SourceFile::from_text(&path, source.to_string());
                let range = if range.is_empty() {
                    line_range(&src.text, at.line().unwrap_or(1))
                } else {
                    range
                };
                src.error(range, detail)
            }
        }
    }

    /// `FILE:LINE` of a line of template `name` (the inline string's file for `<string>`).
    fn place(&self, name: &str, line: usize, inline: Option<&SourceFile>) -> String {
        match inline {
            Some(src) if name == "<string>" => src.name(),
            _ => format!("{}:{line}", self.origin(name).display()),
        }
    }
}

/// The text between the first pair of quotes (single or double).
fn quoted(text: &str) -> Option<&str> {
    let open = text.find(['"', '\''])?;
    let quote = &text[open..=open];
    let start = open + 1;
    let len = text[start..].find(quote)?;
    Some(&text[start..start + len])
}

/// The innermost block tag of `source` that is never closed: its byte range,
/// its keyword and the tag that would close it.
fn unclosed_block(source: &str) -> Option<(std::ops::Range<usize>, String, String)> {
    const BLOCKS: &[&str] = &[
        "if",
        "for",
        "macro",
        "call",
        "filter",
        "with",
        "block",
        "autoescape",
        "raw",
        "set",
    ];
    let mut open: Vec<(std::ops::Range<usize>, &str)> = Vec::new();
    let mut at = 0;
    while let Some(i) = source[at..].find("{%") {
        let start = at + i;
        let Some(len) = source[start..].find("%}") else {
            break;
        };
        let end = start + len + 2;
        let inner = source[start + 2..end - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let word = inner.split_whitespace().next().unwrap_or_default();
        at = end;
        if let Some(closed) = word.strip_prefix("end") {
            if let Some(pos) = open.iter().rposition(|(_, w)| *w == closed) {
                open.truncate(pos);
            }
        } else if BLOCKS.contains(&word) && !(word == "set" && inner.contains('=')) {
            if word == "raw" {
                // Nothing inside a raw block is a tag.
                match source[at..].find("endraw") {
                    Some(j) => at += j + "endraw".len(),
                    None => return Some((start..end, "raw".into(), "endraw".into())),
                }
                continue;
            }
            open.push((start..end, word));
        }
    }
    let (range, word) = open.pop()?;
    Some((range, word.to_string(), format!("end{word}")))
}

/// The user's template file `name` under `dir`, if there is one. Names stay
/// inside the directory: no absolute paths, no `..`.
fn user_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dir.join(rel)).filter(|p| p.is_file())
}

/// Byte range of a 1-based line, for errors that carry only a line number.
fn line_range(text: &str, line: usize) -> std::ops::Range<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let len = text[start..].find('\n').unwrap_or(text.len() - start);
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_variable_names_template_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("motd.j2"), "hello\nworld {{ nope }}\n").unwrap();
        let t = Templates::new(Some(dir.path().to_path_buf()));
        let err = t.render_file("motd.j2", &Value::from(())).unwrap_err();
        let msg = err.message();
        assert!(msg.contains("motd.j2:2:"), "{msg}");
        assert!(msg.contains("undefined"), "{msg}");
    }

    fn dir_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let t = Templates::new(Some(dir.path().to_path_buf()));
        (dir, t)
    }

    #[test]
    fn an_error_in_an_included_template_is_reported_where_it_is() {
        let (_d, t) = dir_with(&[
            ("outer.j2", b"a\n{% include 'inner.j2' %}\n"),
            ("inner.j2", b"x\ny {{ missing_var }}\n"),
            ("gone.j2", b"a\n\n{% include 'nowhere.j2' %}\n"),
        ]);
        let msg = t
            .render_file("outer.j2", &Value::from(()))
            .unwrap_err()
            .message()
            .to_string();
        assert!(msg.contains("inner.j2:2:6: undefined value"), "{msg}");
        assert!(msg.contains("missing_var"), "{msg}");
        assert!(
            msg.contains("(included from ") && msg.contains("outer.j2:2)"),
            "{msg}"
        );
        let msg = t
            .render_file("gone.j2", &Value::from(()))
            .unwrap_err()
            .message()
            .to_string();
        assert!(msg.contains("gone.j2:3:"), "{msg}");
        assert!(msg.contains("template `nowhere.j2` not found in "), "{msg}");
    }

    #[test]
    fn an_unclosed_block_is_reported_at_its_tag() {
        let (_d, t) = dir_with(&[(
            "u.j2",
            b"{% for x in y %}{{ x }}{% endfor %}\n{% if a %}\n{% raw %}{% if %}{% endraw %}\n",
        )]);
        let msg = t
            .render_file("u.j2", &Value::from(()))
            .unwrap_err()
            .message()
            .to_string();
        assert!(
            msg.contains("u.j2:2:1: syntax error: `{% if %}` is never closed"),
            "{msg}"
        );
        assert_eq!(
            unclosed_block("{% if a %}{% for x in y %}{% endfor %}")
                .unwrap()
                .1,
            "if"
        );
        assert_eq!(
            unclosed_block("{% set x %}a{% endset %}{%- with -%}")
                .unwrap()
                .1,
            "with"
        );
        assert!(unclosed_block("{% set x = 1 %}{% if a %}{% endif %}").is_none());
    }

    #[test]
    fn a_template_that_is_not_utf8_is_an_error_at_the_byte() {
        let (_d, t) = dir_with(&[("b.j2", b"ok\nab\xff\n"), ("i.j2", b"{% include 'b.j2' %}")]);
        for name in ["b.j2", "i.j2"] {
            let msg = t
                .render_file(name, &Value::from(()))
                .unwrap_err()
                .message()
                .to_string();
            assert!(msg.contains("b.j2:2:3: not UTF-8 text"), "{msg}");
        }
    }

    #[test]
    fn not_found_names_where_it_looked() {
        let t =
            Templates::new(None).looked_in(vec!["pb/templates".into(), "pb/../templates".into()]);
        let msg = t
            .render_file("x.j2", &Value::from(()))
            .unwrap_err()
            .message()
            .to_string();
        assert!(msg.contains("pb/templates and pb/../templates"), "{msg}");
    }

    #[test]
    fn user_templates_override_built_in_ones() {
        let name = builtin::names().next().expect("some built-in templates");
        let ctx = Value::from(());
        let none = Templates::new(None);
        assert!(none.exists(name));
        let dir = tempfile::tempdir().unwrap();
        let t = Templates::new(Some(dir.path().to_path_buf()));
        let built_in = t.env.get_template(name).unwrap().source().to_string();
        assert_eq!(built_in, builtin::get(name).unwrap());
        let file = dir.path().join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "mine {{ 1 + 1 }}\n").unwrap();
        let t = Templates::new(Some(dir.path().to_path_buf()));
        assert_eq!(t.render_file(name, &ctx).unwrap(), "mine 2\n");
        assert!(!t.exists("../etc/passwd") && !t.exists("/etc/passwd"));
    }

    #[test]
    fn errors_in_built_in_templates_say_so() {
        let t = Templates::new(None);
        assert_eq!(
            t.origin("monitoring/x.j2"),
            Path::new("<built-in>/monitoring/x.j2")
        );
    }

    #[test]
    fn keeps_trailing_newline_and_does_not_escape() {
        let t = Templates::new(None);
        let src = SourceFile::from_text(Path::new("p.toml"), String::new());
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({"x": "<a&b>"})));
        assert_eq!(
            t.render_str("{{ x }}\n", &ctx, (&src, 0)).unwrap(),
            "<a&b>\n"
        );
    }
}
