//! Input errors that point at the offending text: file, line, column.
//!
//! Everything a user wrote (inventory, playbook, templates, `-e`) is checked
//! before any connection is made; a failure becomes an [`InputError`], which
//! renders through miette with the source snippet underlined.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// A file the user wrote, kept whole so errors can quote it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<String>,
}

impl SourceFile {
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InputError::plain(format!("cannot read {}: {e}", path.display()))
                .with_help("check the path; it is taken relative to the current directory")
        })?;
        Ok(Self::from_text(path, text))
    }

    pub fn from_text(path: &Path, text: String) -> Self {
        Self {
            path: path.to_path_buf(),
            text: Arc::new(text),
        }
    }

    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    /// An error about the text at `span` (byte range).
    pub fn error(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> InputError {
        let (line, col) = self.line_col(span.start);
        let message = format!("{}:{line}:{col}: {}", self.name(), message.into());
        let len = span.end.saturating_sub(span.start).max(1);
        let start = span.start.min(self.text.len().saturating_sub(1));
        InputError(Box::new(Inner {
            message,
            src: Some(NamedSource::new(self.name(), self.text.clone())),
            span: Some(SourceSpan::new(start.into(), len)),
            help: None,
        }))
    }

    /// An error about `needle` inside the text at `span` (an item in a list or a
    /// pattern); points at the whole span when `needle` is not found there.
    pub fn error_within(
        &self,
        span: std::ops::Range<usize>,
        needle: &str,
        message: impl Into<String>,
    ) -> InputError {
        let text = self.text.get(span.clone()).unwrap_or_default();
        let at = text
            .match_indices(needle)
            .find(|(i, _)| {
                let before = text[..*i].chars().next_back();
                let after = text[i + needle.len()..].chars().next();
                let boundary = |c: Option<char>| {
                    c.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
                };
                boundary(before) && boundary(after)
            })
            .map(|(i, _)| span.start + i);
        match at {
            Some(start) => self.error(start..start + needle.len(), message),
            None => self.error(span, message),
        }
    }

    /// Converts a TOML parse or type error into one pointing at this file.
    pub fn toml_error(&self, err: &toml::de::Error) -> InputError {
        let span = err.span().unwrap_or(0..0);
        self.error(span, err.message().trim_end().to_string())
    }
}

/// Boxed: it travels through every parser's `Result`, and the source text
/// and spans make it large.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct InputError(Box<Inner>);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Inner {
    message: String,
    #[source_code]
    src: Option<NamedSource<Arc<String>>>,
    #[label("here")]
    span: Option<SourceSpan>,
    #[help]
    help: Option<String>,
}

impl InputError {
    /// An error with no location (a missing file, a bad command-line value).
    pub fn plain(message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            message: message.into(),
            src: None,
            span: None,
            help: None,
        }))
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }
}

/// Shorthand used by parsers that walk a document.
pub type InputResult<T> = Result<T, InputError>;

/// Warns once per distinct message: offline commands meet the same missing
/// file for every host and role that reads it.
pub fn warn_once(message: String) {
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    if SEEN.lock().expect("warnings lock").insert(message.clone()) {
        tracing::warn!("{message}");
    }
}
