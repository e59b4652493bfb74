//! Template rendering (minijinja, Jinja2 syntax) with errors that name the
//! template, line and column. A template is looked up in the user's
//! templates/ directory first, then among the templates built into slipway,
//! so any built-in one is overridden by a file of the same name.

mod builtin;

use std::path::{Component, Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::diag::{InputError, SourceFile};

pub struct Templates {
    env: Environment<'static>,
    dir: Option<PathBuf>,
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
        env.set_loader(move |name| {
            if let Some(path) = user_dir.as_deref().and_then(|d| user_file(d, name)) {
                return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read {}: {e}", path.display()),
                    )
                });
            }
            Ok(builtin::get(name).map(String::from))
        });
        Self { env, dir }
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
            if e.kind() == minijinja::ErrorKind::TemplateNotFound {
                InputError::plain(format!("template `{name}` not found")).with_help(
                    match &self.dir {
                        Some(d) => format!("looked in {} and the built-in templates", d.display()),
                        None => "no templates/ directory beside the playbook, and no built-in template of that name; pass --templates DIR"
                            .into(),
                    },
                )
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
        let detail = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        let range = e.range().unwrap_or(0..0);
        match origin {
            Some((src, start)) => src.error(start + range.start..start + range.end, detail),
            None => {
                let path = self.origin(e.name().unwrap_or("template"));
                let text = e.template_source().unwrap_or_default().to_string();
                let src = SourceFile::from_text(&path, text);
                let range = if range.is_empty() {
                    line_range(&src.text, e.line().unwrap_or(1))
                } else {
                    range
                };
                src.error(range, detail)
            }
        }
    }
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
