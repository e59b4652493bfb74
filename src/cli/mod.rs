//! The `slipway` binary's edge: arguments, output, exit codes. All the work
//! happens in the library; this module decides how it is shown.

mod args;
mod audit;
mod backup;
mod bootstrap;
mod commands;
mod init;
mod manual;
mod notify;
mod offline;
mod progress;
mod restore;
mod unlock;

use std::io::IsTerminal;

use clap::Parser;

pub use args::{Cli, Color, Command, Format};

use crate::diag::InputError;
use crate::render::Palette;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;

/// How a command failed, for the edge to print.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Message(String),
}

/// Output settings shared by every command.
pub struct Ui {
    pub palette: Palette,
    pub format: Format,
    pub verbose: u8,
    /// Every line of created files in a human plan (`--full-diff`).
    pub full_diff: bool,
    /// Progress bars only on a terminal, for humans.
    pub bars: bool,
}

impl Ui {
    fn new(cli: &Cli) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let on = match cli.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => !no_color && std::io::stdout().is_terminal(),
        };
        Self {
            palette: Palette { on },
            format: cli.format,
            verbose: cli.verbose,
            full_diff: match &cli.command {
                Command::Plan(a) => a.view.full_diff,
                Command::Apply(a) => a.view.full_diff,
                Command::Bootstrap(a) => a.view.full_diff,
                _ => false,
            },
            bars: std::io::stderr().is_terminal() && cli.format == Format::Human,
        }
    }

    pub fn progress(&self) -> Box<dyn crate::engine::Progress> {
        match (self.bars, self.format) {
            (true, _) => Box::new(progress::Bars::new()),
            (false, Format::Human) => Box::new(progress::Lines),
            (false, Format::Json) => Box::new(progress::Quiet),
        }
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own code for a usage error is 2, which plan --detailed-exitcode
            // uses for "there are changes": a usage error is an error like any other.
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    let ui = Ui::new(&cli);
    init_tracing(ui.verbose, ui.palette.on && std::io::stderr().is_terminal());
    let color = ui.palette.on;
    miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .build(),
        )
    }))
    .ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Every error passes here, and every secret the run met is known by now.
    let redactor = crate::redact::global();
    match runtime.block_on(commands::run(cli.command, &ui)) {
        Ok(code) => code,
        Err(CliError::Input(e)) => {
            let report = miette::Report::new(e.for_display(redactor));
            eprintln!("{}", redactor.redact(&format!("{report:?}")));
            EXIT_ERROR
        }
        Err(CliError::Message(m)) => {
            eprintln!("{} {}", ui.palette.red("error:"), redactor.redact(&m));
            EXIT_ERROR
        }
    }
}

/// Log lines (warnings, -v, -vv) go to stderr through the redactor, one
/// event at a time, so no secret reaches them whatever logged it.
struct RedactedStderr(Vec<u8>);

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.0);
        let text = crate::redact::global().redact(&text);
        self.0.clear();
        std::io::stderr().write_all(text.as_bytes())
    }
}

impl Drop for RedactedStderr {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

fn init_tracing(verbose: u8, ansi: bool) {
    let level = match verbose {
        0 => "warn",
        1 => "info,russh=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLIPWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactedStderr(Vec::new()))
        .with_target(false)
        .with_ansi(ansi);
    // Timestamps help read a trace (-v); a warning on its own reads better without one.
    if verbose == 0 {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
}
