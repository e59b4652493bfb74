//! Renderers of plans and apply reports. They only read the values they are
//! given; the human and JSON forms carry the same facts.

pub mod audit;
pub mod diff;
pub mod human;
pub mod json;

use owo_colors::{OwoColorize, Style};

/// Colours on or off, decided once from `--color`, `NO_COLOR` and the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub on: bool,
}

impl Palette {
    pub fn paint(&self, text: &str, style: Style) -> String {
        if self.on {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }
    pub fn green(&self, t: &str) -> String {
        self.paint(t, Style::new().green())
    }
    pub fn red(&self, t: &str) -> String {
        self.paint(t, Style::new().red())
    }
    pub fn yellow(&self, t: &str) -> String {
        self.paint(t, Style::new().yellow())
    }
    pub fn cyan(&self, t: &str) -> String {
        self.paint(t, Style::new().cyan())
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint(t, Style::new().bold())
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint(t, Style::new().dimmed())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
