//! Template rendering (minijinja, Jinja2 syntax) with errors that name the
//! template, line and column.

use std::path::{Path, PathBuf};

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
        if let Some(dir) = &dir {
            env.set_loader(minijinja::path_loader(dir.clone()));
        }
        Self { env, dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether a template file of that name exists (it may still fail to parse).
    pub fn exists(&self, name: &str) -> bool {
        self.dir.as_ref().is_some_and(|d| d.join(name).is_file())
    }

    /// Renders the template file `name`. Errors point into the template.
    pub fn render_file(&self, name: &str, ctx: &Value) -> Result<String, InputError> {
        let tmpl = self.env.get_template(name).map_err(|e| {
            if e.kind() == minijinja::ErrorKind::TemplateNotFound {
                InputError::plain(format!("template `{name}` not found")).with_help(
                    match &self.dir {
                        Some(d) => format!("looked in {}", d.display()),
                        None => "no templates/ directory beside the playbook; pass --templates DIR"
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
                let name = e.name().unwrap_or("template");
                let path = self
                    .dir
                    .as_ref()
                    .map_or_else(|| PathBuf::from(name), |d| d.join(name));
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
