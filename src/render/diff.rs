//! File diffs in the human plan. A created file longer than a screenful
//! shows a summary and its first lines: a first converge would otherwise
//! print every line of every dashboard. `--full-diff` shows them all; JSON
//! always carries the whole diff.

use std::fmt::Write;

use super::Palette;
use super::human::Human;
use crate::plan::change::Diff;

/// A created file with more lines than this is summarised.
pub const CREATED_LINES_MAX: usize = 40;
/// How many of a summarised file's first lines are shown.
pub const HEAD_LINES: usize = 10;

impl Human {
    pub(super) fn diff(&self, out: &mut String, diff: &Diff) {
        let p = &self.palette;
        match diff {
            Diff::Text { path, unified } => {
                if self.full_diff || !self.summary(out, path, unified) {
                    for line in unified.lines() {
                        writeln!(out, "      {}", paint(p, line)).ok();
                    }
                }
            }
            Diff::Binary { path, old, new } => {
                let old = old.as_ref().map_or("absent".to_string(), |b| {
                    format!("{} bytes, sha256 {}", b.size, &b.sha256[..16])
                });
                writeln!(
                    out,
                    "      {}",
                    p.dim(&format!(
                        "{path}: binary or large; {old} -> {} bytes, sha256 {}",
                        new.size,
                        &new.sha256[..16]
                    ))
                )
                .ok();
            }
            Diff::Sensitive { path } => {
                writeln!(
                    out,
                    "      {}",
                    p.dim(&format!("{path}: (sensitive) content not shown"))
                )
                .ok();
            }
        }
    }

    /// For a created file over the bound: its path, size, line count and
    /// sha256, then its first lines. False, and nothing written, for any other diff.
    fn summary(&self, out: &mut String, path: &str, unified: &str) -> bool {
        let Some(text) = crate::diff::created_text(unified) else {
            return false;
        };
        let lines = text.lines().count();
        if lines <= CREATED_LINES_MAX {
            return false;
        }
        let p = &self.palette;
        let blob = crate::diff::blob(text.as_bytes());
        let head = format!(
            "{path} (new file): {lines} lines, {} bytes, sha256 {}",
            blob.size, blob.sha256
        );
        writeln!(out, "      {}", p.bold(&head)).ok();
        // The added lines follow the `@@` line of the one hunk.
        for line in unified
            .lines()
            .skip_while(|l| !l.starts_with("@@"))
            .skip(1)
            .take(HEAD_LINES)
        {
            writeln!(out, "      {}", paint(p, line)).ok();
        }
        let rest = format!(
            "... {} more lines hidden; --full-diff shows all",
            lines - HEAD_LINES
        );
        writeln!(out, "      {}", p.dim(&rest)).ok();
        true
    }
}

/// One line of a unified diff, coloured by what it is.
fn paint(p: &Palette, line: &str) -> String {
    if line.starts_with("+++") || line.starts_with("---") {
        p.bold(line)
    } else if line.starts_with('+') {
        p.green(line)
    } else if line.starts_with('-') {
        p.red(line)
    } else if line.starts_with("@@") {
        p.cyan(line)
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::file_diff;

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    fn render(diff: &Diff, full_diff: bool, colour: bool) -> String {
        let human = Human {
            palette: Palette { on: colour },
            verbose: false,
            full_diff,
        };
        let mut out = String::new();
        human.diff(&mut out, diff);
        out
    }

    #[test]
    fn a_long_created_file_shows_a_summary_and_its_first_lines() {
        let text = numbered(60);
        let out = render(&file_diff("/etc/big", None, text.as_bytes()), false, false);
        let sha = crate::digest::sha256_hex(text.as_bytes());
        let mut want = format!(
            "      /etc/big (new file): 60 lines, {} bytes, sha256 {sha}\n",
            text.len()
        );
        for i in 1..=HEAD_LINES {
            want.push_str(&format!("      +line {i}\n"));
        }
        want.push_str("      ... 50 more lines hidden; --full-diff shows all\n");
        assert_eq!(out, want);
    }

    #[test]
    fn full_diff_shows_every_line_of_a_created_file() {
        let text = numbered(60);
        let out = render(&file_diff("/etc/big", None, text.as_bytes()), true, false);
        assert!(out.starts_with("      --- /dev/null\n"), "{out}");
        assert!(out.contains("      @@ -0,0 +1,60 @@\n"), "{out}");
        assert!(out.ends_with("      +line 59\n      +line 60\n"), "{out}");
        assert!(!out.contains("hidden"), "{out}");
        assert_eq!(out.lines().count(), 63, "{out}");
    }

    #[test]
    fn the_bound_is_inclusive() {
        let at = render(
            &file_diff("/f", None, numbered(CREATED_LINES_MAX).as_bytes()),
            false,
            false,
        );
        assert!(at.contains(&format!("+line {CREATED_LINES_MAX}\n")), "{at}");
        assert!(!at.contains("hidden"), "{at}");
        let over = render(
            &file_diff("/f", None, numbered(CREATED_LINES_MAX + 1).as_bytes()),
            false,
            false,
        );
        assert!(over.contains("... 31 more lines hidden"), "{over}");
    }

    #[test]
    fn a_changed_file_keeps_its_diff_with_context() {
        let old = numbered(60);
        let new = old.replace("line 30\n", "line thirty\n");
        let d = file_diff("/etc/big", Some(old.as_bytes()), new.as_bytes());
        let out = render(&d, false, false);
        let Diff::Text { unified, .. } = &d else {
            panic!("expected text")
        };
        let want: String = unified.lines().map(|l| format!("      {l}\n")).collect();
        assert_eq!(out, want);
        assert!(out.contains("      -line 30\n      +line thirty\n       line 31\n"));
    }

    #[test]
    fn sensitive_and_binary_files_are_shown_as_before() {
        let sensitive = render(&Diff::Sensitive { path: "/s".into() }, false, false);
        assert_eq!(sensitive, "      /s: (sensitive) content not shown\n");
        let mut bytes = numbered(60).into_bytes();
        bytes.push(0);
        let out = render(&file_diff("/b", None, &bytes), false, false);
        let sha = crate::digest::sha256_hex(&bytes);
        assert_eq!(
            out,
            format!(
                "      /b: binary or large; absent -> {} bytes, sha256 {}\n",
                bytes.len(),
                &sha[..16]
            )
        );
    }

    #[test]
    fn the_summary_is_coloured_like_the_diff() {
        let out = render(&file_diff("/f", None, numbered(50).as_bytes()), false, true);
        assert!(out.contains("\u{1b}[32m+line 1\u{1b}[0m"), "{out}");
        assert!(out.contains("\u{1b}[1m/f (new file): 50 lines"), "{out}");
    }
}
