//! Input errors that point at the offending text: file, line, column.
//!
//! Everything a user wrote (inventory, playbook, templates, `-e`) is checked
//! before any connection is made; a failure becomes an [`InputError`], which
//! renders through miette with the source snippet underlined.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::redact::{Redactor, SENSITIVE};

/// A file the user wrote, kept whole so errors can quote it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<String>,
}

impl SourceFile {
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let bytes = std::fs::read(path).map_err(|e| {
            InputError::plain(format!("cannot read {}: {e}", path.display()))
                .with_help("check the path; it is taken relative to the current directory")
        })?;
        Self::from_bytes(path, bytes)
    }

    /// A file's bytes, which must be UTF-8 text: the first byte that is not
    /// is an error at its line and column.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, InputError> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Self::from_text(path, text)),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let byte = e.as_bytes()[at];
                // Up to the first bad byte the text is the same, offsets included.
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let src = Self::from_text(path, text);
                Err(src
                    .error(
                        at..at + char::REPLACEMENT_CHARACTER.len_utf8(),
                        format!("not UTF-8 text: byte 0x{byte:02x} cannot start a character here"),
                    )
                    .with_help("slipway reads UTF-8 only: convert the file (iconv -t UTF-8)"))
            }
        }
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
            src: Some(Snippet::whole(self.name(), self.text.clone())),
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
    src: Option<Snippet>,
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

    pub fn help(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// The error as it may be shown: no secret `redactor` knows, nor a value
    /// written inline in a secret's declaration in the quoted file, appears in
    /// its message, help or snippet; the snippet holds a few lines around the
    /// error, long lines cut to a window around it, so any input renders.
    pub fn for_display(&self, redactor: &Redactor) -> InputError {
        let inner = &self.0;
        let mut secrets = redactor.secrets();
        let (src, span) = match (&inner.src, inner.span) {
            (Some(snippet), Some(span)) => {
                let text = snippet.text.as_str();
                let masks = inline_secrets(text);
                secrets.extend(masks.iter().flat_map(|m| inline_values(text, m)));
                let start = span.offset();
                let (excerpt, at, first_line) =
                    excerpt(text, start..start + span.len(), &secrets, &masks);
                let (line, col) = snippet.line_col(start);
                let at = SourceSpan::new(at.start.into(), at.len());
                let shown = Snippet {
                    name: redact_with(&snippet.name, &secrets),
                    text: Arc::new(excerpt),
                    first_line,
                    primary: Some((at, line, col)),
                };
                (Some(shown), Some(at))
            }
            (src, span) => (src.clone(), span),
        };
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let shown = |text: &str| shorten(&redact_with(text, &secrets));
        InputError(Box::new(Inner {
            message: shown(&inner.message),
            src,
            span,
            help: inner.help.as_deref().map(shown),
        }))
    }
}

/// The text an error quotes: a whole file, or the lines of it around the
/// error (see [`InputError::for_display`]), numbered as in the file.
#[derive(Debug, Clone)]
pub struct Snippet {
    name: String,
    text: Arc<String>,
    /// Lines of the file before `text`.
    first_line: usize,
    /// The error's span in `text`, with its 0-based line and column in the
    /// file (the window of a cut line starts further right).
    primary: Option<(SourceSpan, usize, usize)>,
}

impl Snippet {
    fn whole(name: String, text: Arc<String>) -> Self {
        Self {
            name,
            text,
            first_line: 0,
            primary: None,
        }
    }

    /// 0-based line and byte column of an offset of `text`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char(&self.text, offset);
        let before = &self.text[..offset];
        let line = before.matches('\n').count();
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1);
        (self.first_line + line, col)
    }
}

impl SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let c = self.text.as_str().read_span(span, before, after)?;
        let (line, column) = match self.primary {
            Some((at, line, col)) if at == *span && before == 0 => (line, col),
            _ => (c.line() + self.first_line, c.column()),
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            *c.span(),
            line,
            column,
            c.line_count(),
        )))
    }
}

/// Lines quoted before and after the error's.
const CONTEXT_LINES: usize = 2;
/// A span over more lines than this is shown by its first line.
const MAX_SPAN_LINES: usize = 12;
/// Lines longer than this (in bytes) are cut to a window around the error.
const MAX_LINE: usize = 120;
/// Where the window starts, before the error's column.
const WINDOW_LEAD: usize = 50;
const CUT: &str = "\u{2026}";

/// The lines of `text` around `span`, with `secrets` and the `masks` (byte
/// ranges of `text`) shown as `(sensitive)` and long lines cut around the
/// error; returns them, the span within them, and how many lines of `text`
/// come before them.
fn excerpt(
    text: &str,
    span: Range<usize>,
    secrets: &[String],
    masks: &[Range<usize>],
) -> (String, Range<usize>, usize) {
    let start = floor_char(text, span.start);
    let mut end = floor_char(text, span.end.max(start));
    let line_end = |at: usize| text[at..].find('\n').map_or(text.len(), |i| at + i);
    if text[start..end].matches('\n').count() > MAX_SPAN_LINES {
        end = line_end(start);
    }
    // Whole lines, CONTEXT_LINES on either side.
    let mut from = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let mut first_line = text[..from].matches('\n').count();
    for _ in 0..CONTEXT_LINES {
        if from == 0 {
            break;
        }
        from = text[..from - 1].rfind('\n').map_or(0, |i| i + 1);
        first_line -= 1;
    }
    let mut to = line_end(end);
    for _ in 0..CONTEXT_LINES {
        if to >= text.len() {
            break;
        }
        to = line_end(to + 1);
    }
    let region = &text[from..to];

    // Secrets first, on whole lines, so no window shows part of one.
    let mut edits: Vec<(Range<usize>, String)> = masks
        .iter()
        .filter(|m| m.start < to && m.end > from)
        .map(|m| {
            let r = m.start.max(from) - from..m.end.min(to) - from;
            (r.clone(), masked(&region[r]))
        })
        .collect();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        for (i, _) in region.match_indices(s.as_str()) {
            edits.push((i..i + s.len(), masked(s)));
        }
    }
    let redacted = Edited::new(region, edits);
    let span = redacted.map(start - from, false)..redacted.map(end - from, true);

    // Then long lines: a window around the error's column, the same on every line.
    let text = redacted.text.as_str();
    let err_line = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let col = span.start - err_line;
    let mut cuts = Vec::new();
    let mut at = 0;
    for line in text.split('\n') {
        if line.len() > MAX_LINE {
            let lead = floor_char(line, col.saturating_sub(WINDOW_LEAD).min(line.len()));
            let tail = floor_char(line, (lead + MAX_LINE).min(line.len()));
            if lead > 0 {
                cuts.push((at..at + lead, CUT.to_string()));
            }
            if tail < line.len() {
                cuts.push((at + tail..at + line.len(), CUT.to_string()));
            }
        }
        at += line.len() + 1;
    }
    let cut = Edited::new(text, cuts);
    let start = cut.map(span.start, false);
    let span = start..cut.map(span.end, true).max(start);
    (cut.text, span, first_line)
}

/// What stands for a hidden value: `(sensitive)`, with the value's line
/// breaks kept so the lines after it keep their numbers.
fn masked(value: &str) -> String {
    format!("{SENSITIVE}{}", "\n".repeat(value.matches('\n').count()))
}

/// A text with some byte ranges replaced, and where each offset went.
struct Edited {
    text: String,
    /// (range in the original, range in `text`, copied as is).
    segments: Vec<(Range<usize>, Range<usize>, bool)>,
}

impl Edited {
    /// `edits` may overlap and come in any order; of overlapping ones the
    /// first (then the longest) wins.
    fn new(original: &str, mut edits: Vec<(Range<usize>, String)>) -> Self {
        edits.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
        let mut text = String::with_capacity(original.len());
        let mut segments = Vec::new();
        let mut at = 0;
        for (r, with) in edits {
            if r.start < at || r.is_empty() {
                continue;
            }
            if r.start > at {
                let n = text.len();
                text.push_str(&original[at..r.start]);
                segments.push((at..r.start, n..text.len(), true));
            }
            let n = text.len();
            text.push_str(&with);
            segments.push((r.clone(), n..text.len(), false));
            at = r.end;
        }
        let n = text.len();
        text.push_str(&original[at..]);
        segments.push((at..original.len(), n..text.len(), true));
        Self { text, segments }
    }

    /// Where offset `o` of the original is now; `end`: the offset ends a span.
    fn map(&self, o: usize, end: bool) -> usize {
        for (from, to, copied) in &self.segments {
            let inside = if end {
                from.start < o && o <= from.end
            } else {
                from.start <= o && o < from.end
            };
            if inside {
                return match (copied, end) {
                    (true, _) => to.start + (o - from.start),
                    (false, false) => to.start,
                    (false, true) => to.end,
                };
            }
        }
        if o == 0 { 0 } else { self.text.len() }
    }
}

/// Byte ranges of the string values written inline in secret declarations:
/// `value = "..."` in a table (inline or not) that has a `secret =` key.
/// Found in the text itself, so even a file that does not parse shows none
/// of them.
fn inline_secrets(text: &str) -> Vec<Range<usize>> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let has_key = |line: &str, key: &str| {
        line.match_indices(key).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = line[i + key.len()..].trim_start();
            !before.is_some_and(is_word) && after.starts_with('=') && !after.starts_with("==")
        })
    };
    let mut lines = Vec::new();
    let mut at = 0;
    for line in text.split('\n') {
        lines.push((at, line));
        at += line.len() + 1;
    }
    // Tables, from one `[header]` line to the next, that declare a secret.
    let mut section = 0;
    let mut sections = Vec::with_capacity(lines.len());
    let mut secret_sections = std::collections::BTreeSet::new();
    for (_, line) in &lines {
        if line.trim_start().starts_with('[') {
            section += 1;
        }
        sections.push(section);
        if has_key(line, "secret") {
            secret_sections.insert(section);
        }
    }
    let mut out: Vec<Range<usize>> = Vec::new();
    for (&(start, line), section) in lines.iter().zip(sections) {
        // Skip lines inside a multi-line value already masked.
        if !secret_sections.contains(&section) || out.last().is_some_and(|r| r.end > start) {
            continue;
        }
        for (i, _) in line.match_indices("value") {
            if line[..i].chars().next_back().is_some_and(is_word) {
                continue;
            }
            let rest = &line[i + "value".len()..];
            let Some(after_eq) = rest.trim_start().strip_prefix('=') else {
                continue;
            };
            let lit = after_eq.trim_start();
            if let Some(r) = string_body(text, start + line.len() - lit.len()) {
                out.push(r);
            }
        }
    }
    out
}

/// The body of the TOML string literal starting at `at`, up to its closing
/// quotes (or the end of the line, or of the text, when there are none).
fn string_body(text: &str, at: usize) -> Option<Range<usize>> {
    let rest = &text[at..];
    for quotes in ["\"\"\"", "'''"] {
        if let Some(body) = rest.strip_prefix(quotes) {
            let start = at + quotes.len();
            let end = body.find(quotes).map_or(text.len(), |i| start + i);
            return Some(start..end);
        }
    }
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let start = at + 1;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        match c {
            '\n' => return Some(start..start + i),
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(start..start + i),
            _ => escaped = false,
        }
    }
    Some(start..text.len())
}

/// The value a masked literal stands for: as written, and as TOML reads it.
fn inline_values(text: &str, body: &Range<usize>) -> Vec<String> {
    let raw = &text[body.clone()];
    let mut out = vec![raw.to_string()];
    if raw.contains('\\') {
        let literal = format!("v = \"{raw}\"");
        if let Ok(t) = toml::from_str::<toml::Table>(&literal)
            && let Some(toml::Value::String(s)) = t.get("v")
        {
            out.push(s.clone());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// `text` with every one of `secrets` (longest first) replaced.
fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), SENSITIVE);
        }
    }
    out
}

/// A message line longer than this is cut in its middle.
const MAX_MESSAGE_LINE: usize = 400;

/// `text` with overlong lines cut: a message may quote a huge value.
fn shorten(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_LINE {
        return text.to_string();
    }
    text.split('\n')
        .map(|line| {
            if line.len() <= MAX_MESSAGE_LINE {
                return line.to_string();
            }
            let head = floor_char(line, MAX_MESSAGE_LINE - 100);
            let tail = floor_char(line, line.len() - 80);
            format!("{}{CUT}{}", &line[..head], &line[tail..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The largest char boundary of `text` at or before `at`.
fn floor_char(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(e: &InputError, redactor: &Redactor) -> String {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::none())
            .render_report(&mut out, &e.for_display(redactor))
            .expect("renders");
        out
    }

    #[test]
    fn an_error_far_along_a_huge_line_shows_a_window_of_it() {
        let line = format!("{}oops{}\n", "a".repeat(100_000), "b".repeat(5_000_000));
        let src = SourceFile::from_text(Path::new("t.json"), format!("{{\n{line}}}\n"));
        let at = src.text.find("oops").unwrap();
        let e = src.error(at..at + 4, "bad");
        let out = shown(&e, &Redactor::default());
        assert!(out.len() < 2_000, "{}", out.len());
        assert!(out.contains("t.json:2:100001: bad"), "{out}");
        assert!(out.contains("[t.json:2:100001]"), "{out}");
        assert!(out.contains("\u{2026}aaaa"), "{out}");
        let snippet = out.lines().find(|l| l.contains("oops")).unwrap();
        let marks = out.lines().find(|l| l.contains('^')).unwrap();
        let col = marks.find('^').unwrap();
        assert_eq!(&snippet[snippet.find("oops").unwrap()..][..4], "oops");
        assert_eq!(
            snippet.chars().position(|c| c == 'o'),
            marks.chars().position(|c| c == '^'),
            "{out}"
        );
        assert!(col > 0);
    }

    #[test]
    fn known_and_inline_secrets_are_masked_in_message_and_snippet() {
        let text = "[vars]\ntoken = { secret = true, value = \"s3cr\\\"et-inline\" }\nport = [oops\n\n[vars.db]\nsecret = true\nvalue = '''multi\nline'''\n";
        let src = SourceFile::from_text(Path::new("i.toml"), text.into());
        let at = text.find("oops").unwrap();
        let r = Redactor::default();
        r.add("known-secret-xyz");
        let e = src
            .error(at..at + 4, "bad near s3cr\"et-inline and known-secret-xyz")
            .with_help("multi\nline");
        let out = shown(&e, &r);
        for s in ["s3cr", "known-secret", "multi"] {
            assert!(!out.contains(s), "{s} in {out}");
        }
        assert!(out.contains("value = \"(sensitive)\""), "{out}");
        assert!(
            out.contains("i.toml:3:9: bad near (sensitive) and (sensitive)"),
            "{out}"
        );
        // The multi-line secret below keeps the lines after it where they were.
        let e = src.error(text.len() - 1..text.len(), "end");
        let out = shown(&e, &r);
        assert!(!out.contains("multi") && !out.contains("line'''"), "{out}");
        assert!(
            out.contains("[i.toml:9:1]") || out.contains("[i.toml:8:"),
            "{out}"
        );
    }

    #[test]
    fn an_inline_secret_in_a_file_that_does_not_parse_is_masked() {
        let text = "[vars]\nsmtp = { secret = true, value = \"hunter2\"\nx = 1\n";
        let src = SourceFile::from_text(Path::new("i.toml"), text.into());
        let err = crate::config::doc::Doc::parse(&src)
            .err()
            .expect("does not parse");
        let out = shown(&err, &Redactor::default());
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("(sensitive)"), "{out}");
    }

    #[test]
    fn edits_map_offsets() {
        let e = Edited::new(
            "abcdefgh",
            vec![(2..4, "XYZ".into()), (6..7, String::new())],
        );
        assert_eq!(e.text, "abXYZefh");
        assert_eq!(e.map(1, false), 1);
        assert_eq!(e.map(3, false), 2);
        assert_eq!(e.map(3, true), 5);
        assert_eq!(e.map(4, false), 5);
        assert_eq!(e.map(8, true), 8);
    }

    #[test]
    fn non_utf8_bytes_are_an_error_at_their_line_and_column() {
        let e = SourceFile::from_bytes(Path::new("p.toml"), b"a = 1\nb = \"x\xffy\"\n".to_vec())
            .unwrap_err();
        assert!(
            e.message().starts_with("p.toml:2:7: not UTF-8"),
            "{}",
            e.message()
        );
        let out = shown(&e, &Redactor::default());
        assert!(out.contains("[p.toml:2:7]"), "{out}");
    }

    #[test]
    fn long_message_lines_are_cut() {
        let e = InputError::plain(format!("bad `{}`", "x".repeat(1_000_000)));
        let out = shown(&e, &Redactor::default());
        assert!(out.len() < 1_000, "{}", out.len());
    }
}
