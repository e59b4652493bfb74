//! File diffs for plans: unified text diffs, or sizes and hashes when a diff
//! would not help a reader (binary or very large content).

use std::time::Duration;

use similar::TextDiff;

use crate::digest::sha256_hex;
use crate::plan::change::{Blob, Diff};

/// Above this, content is summarised instead of diffed.
pub const MAX_TEXT: usize = 512 * 1024;

pub fn is_text(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_TEXT && !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

pub fn blob(bytes: &[u8]) -> Blob {
    Blob {
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    }
}

/// `old` is None when the file does not exist yet.
pub fn file_diff(path: &str, old: Option<&[u8]>, new: &[u8]) -> Diff {
    let old_text = old.unwrap_or_default();
    if !is_text(old_text) || !is_text(new) {
        return Diff::Binary {
            path: path.to_string(),
            old: old.map(blob),
            new: blob(new),
        };
    }
    let old_text = std::str::from_utf8(old_text).expect("checked utf-8");
    let new_text = std::str::from_utf8(new).expect("checked utf-8");
    let diff = TextDiff::configure()
        .timeout(Duration::from_millis(500))
        .diff_lines(old_text, new_text);
    let (a, b) = match old {
        Some(_) => (format!("{path} (on host)"), format!("{path} (planned)")),
        None => ("/dev/null".to_string(), format!("{path} (planned)")),
    };
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .to_string();
    Diff::Text {
        path: path.to_string(),
        unified,
    }
}

/// The content of the file a text diff creates (one made by [`file_diff`] for
/// a file not there yet), rebuilt from its added lines, so a renderer can
/// summarise it without the plan carrying the text twice. None for any other diff.
pub fn created_text(unified: &str) -> Option<String> {
    let mut lines = unified.split_inclusive('\n');
    if lines.next()? != "--- /dev/null\n" || !lines.next()?.starts_with("+++ ") {
        return None;
    }
    if !lines.next()?.starts_with("@@ -0,0 ") {
        return None;
    }
    let mut text = String::new();
    for line in lines {
        if let Some(added) = line.strip_prefix('+') {
            text.push_str(added);
        } else if line.starts_with("\\ ") {
            // `\ No newline at end of file`: the line before ends the file.
            text.pop();
        } else {
            return None;
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_diff_has_path_in_header() {
        let Diff::Text { unified, .. } = file_diff("/etc/motd", Some(b"a\nb\n"), b"a\nc\n") else {
            panic!("expected text")
        };
        assert!(unified.contains("--- /etc/motd (on host)"), "{unified}");
        assert!(unified.contains("-b\n+c\n"), "{unified}");
    }

    #[test]
    fn binary_content_is_summarised() {
        let d = file_diff("/x", None, b"\0\x01\x02");
        assert!(matches!(
            d,
            Diff::Binary {
                old: None,
                new: Blob { size: 3, .. },
                ..
            }
        ));
    }

    #[test]
    fn a_created_files_text_is_rebuilt_exactly_from_its_diff() {
        let long: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        for text in [
            "one\n",
            "no newline at the end",
            "a\r\nb\r\n",
            "\n\n",
            "+plus\n-minus\n\\ backslash\n@@ at\n",
            long.as_str(),
        ] {
            let Diff::Text { unified, .. } = file_diff("/f", None, text.as_bytes()) else {
                panic!("expected text")
            };
            assert_eq!(created_text(&unified).as_deref(), Some(text), "{unified}");
        }
        let Diff::Text { unified, .. } = file_diff("/f", Some(b"a\n"), b"a\nb\n") else {
            panic!("expected text")
        };
        assert_eq!(created_text(&unified), None, "a changed file: {unified}");
        // An empty file's diff is empty: there is nothing to summarise.
        let Diff::Text { unified, .. } = file_diff("/f", None, b"") else {
            panic!("expected text")
        };
        assert_eq!((unified.as_str(), created_text(&unified)), ("", None));
    }
}
