//! Mode and ownership, shared by files and directories.

use serde::Deserialize;

use super::{Observed, format_mode, parse_mode};
use crate::plan::change::Attr;
use crate::shell::q;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsAttrs {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// The TOML form, before mode, owner and group are checked.
#[derive(Debug, Default, Deserialize)]
pub struct RawAttrs {
    pub mode: Option<toml::Spanned<String>>,
    pub owner: Option<toml::Spanned<String>>,
    pub group: Option<toml::Spanned<String>>,
}

/// An owner or group: a user or group name, or a numeric id.
pub fn check_owner(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.len() <= 10 && name.chars().all(|c| c.is_ascii_digit()) {
        return Ok(());
    }
    super::group::check_account_name(name)
}

/// Shell printing `type=`, and for existing paths `mode=`, `owner=`, `group=`, of `$p`.
pub const PROBE_STAT: &str = r#"if [ -L "$p" ]; then echo type=link
elif [ -f "$p" ]; then echo type=file
elif [ -d "$p" ]; then echo type=directory
elif [ -e "$p" ]; then echo type=other
else echo type=absent; fi
if [ -e "$p" ] && [ ! -L "$p" ]; then stat --printf 'mode=%a\nowner=%U\ngroup=%G\nsize=%s\n' "$p"; fi
"#;

impl FsAttrs {
    /// `mode`, owned by root:root.
    pub fn root(mode: u32) -> Self {
        Self {
            mode: Some(mode),
            owner: Some("root".into()),
            group: Some("root".into()),
        }
    }

    /// Checks the TOML form; `error` makes an error at a value's span.
    pub fn from_raw(
        raw: RawAttrs,
        error: impl Fn(std::ops::Range<usize>, String) -> crate::diag::InputError,
    ) -> crate::diag::InputResult<Self> {
        let mode = match raw.mode {
            Some(m) => Some(parse_mode(m.get_ref()).map_err(|e| error(m.span(), e))?),
            None => None,
        };
        for (what, name) in [("owner", &raw.owner), ("group", &raw.group)] {
            if let Some(n) = name {
                check_owner(n.get_ref()).map_err(|e| error(n.span(), format!("{what}: {e}")))?;
            }
        }
        Ok(Self {
            mode,
            owner: raw.owner.map(toml::Spanned::into_inner),
            group: raw.group.map(toml::Spanned::into_inner),
        })
    }

    /// The attributes that differ from what the probe saw.
    pub fn changes(&self, obs: &Observed<'_>) -> Vec<Attr> {
        let mut out = Vec::new();
        if let Some(mode) = self.mode {
            let seen = obs.get("mode").and_then(|m| u32::from_str_radix(m, 8).ok());
            if seen != Some(mode) {
                out.push(Attr::new(
                    "mode",
                    seen.map(format_mode),
                    Some(format_mode(mode)),
                ));
            }
        }
        for (name, want) in [("owner", &self.owner), ("group", &self.group)] {
            if let Some(want) = want {
                let seen = obs.get(name);
                if seen != Some(want.as_str()) {
                    out.push(Attr::new(name, seen, Some(want)));
                }
            }
        }
        out
    }

    /// The attributes a new path gets, for the plan's listing.
    pub fn initial(&self, default_mode: u32) -> Vec<Attr> {
        let mut out = vec![Attr::new(
            "mode",
            None::<String>,
            Some(format_mode(self.mode.unwrap_or(default_mode))),
        )];
        for (name, want) in [("owner", &self.owner), ("group", &self.group)] {
            if let Some(want) = want {
                out.push(Attr::new(name, None::<String>, Some(want)));
            }
        }
        out
    }

    /// Shell setting mode and ownership of `target` (a shell word, e.g. `"$t"`).
    /// Unset attributes are copied from `reference` if it exists, else mode is `default_mode`.
    pub fn apply(&self, target: &str, reference: Option<&str>, default_mode: u32) -> String {
        let mut sh = String::new();
        let mode = format_mode(self.mode.unwrap_or(default_mode));
        match (self.mode, reference) {
            (None, Some(r)) => sh.push_str(&format!(
                "if [ -e {r} ]; then chmod --reference={r} {target}; else chmod {mode} {target}; fi\n"
            )),
            _ => sh.push_str(&format!("chmod {mode} {target}\n")),
        }
        if let Some(r) = reference
            && (self.owner.is_none() || self.group.is_none())
        {
            sh.push_str(&format!(
                "if [ -e {r} ]; then chown --reference={r} {target}; fi\n"
            ));
        }
        let owner = self.owner.as_deref().map(q).unwrap_or_default();
        let group = self.group.as_deref().map(q).unwrap_or_default();
        match (&self.owner, &self.group) {
            (Some(_), Some(_)) => sh.push_str(&format!("chown {owner}:{group} {target}\n")),
            (Some(_), None) => sh.push_str(&format!("chown {owner} {target}\n")),
            (None, Some(_)) => sh.push_str(&format!("chgrp {group} {target}\n")),
            (None, None) => {}
        }
        sh
    }
}
