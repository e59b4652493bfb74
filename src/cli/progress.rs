//! Per-host progress: bars on a terminal, plain lines otherwise (CI logs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::Progress;

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, host: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("progress lock");
        bars.entry(host.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                        .expect("valid template"),
                );
                b.set_prefix(host.to_string());
                b.enable_steady_tick(Duration::from_millis(100));
                b
            })
            .clone()
    }
}

/// A progress message as it may be shown: host errors reach here first.
fn shown(message: &str) -> String {
    crate::redact::global().redact(message)
}

impl Progress for Bars {
    fn update(&self, host: &str, message: &str) {
        self.bar(host).set_message(shown(message));
    }
    fn finish(&self, host: &str, message: &str, ok: bool) {
        let message = shown(message);
        let b = self.bar(host);
        b.set_style(ProgressStyle::with_template("{prefix:.bold} {msg}").expect("valid template"));
        b.finish_with_message(format!(
            "{} {message}",
            if ok { "done:" } else { "FAILED:" }
        ));
    }
}

/// One line per event on stderr.
pub struct Lines;

impl Progress for Lines {
    fn update(&self, host: &str, message: &str) {
        eprintln!("{host}: {}", shown(message));
    }
    fn finish(&self, host: &str, message: &str, ok: bool) {
        let message = shown(message);
        eprintln!("{host}: {} {message}", if ok { "done:" } else { "FAILED:" });
    }
}

/// Nothing at all (machine-readable output on a terminal).
pub struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: &str, _: bool) {}
}
