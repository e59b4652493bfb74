//! Everything the user wrote, parsed and checked before any host is touched.

pub mod doc;
pub mod inventory;
pub mod notify;
pub mod playbook;
pub mod vars;

use std::path::{Path, PathBuf};

use crate::diag::{InputError, InputResult, SourceFile};
use crate::redact::Redactor;
use crate::template::Templates;
pub use inventory::{Become, Host, Inventory};
pub use notify::Notify;
pub use playbook::{Play, Playbook};
pub use vars::VarMap;

/// What the command line says to load.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LoadOptions {
    pub inventory: PathBuf,
    pub playbook: PathBuf,
    pub extra_vars: Vec<String>,
    /// Overrides every host's `user`.
    #[serde(default)]
    pub user: Option<String>,
    pub limit: Option<String>,
    pub templates_dir: Option<PathBuf>,
    /// Rendering or checking without hosts: a secret that cannot be read
    /// stands in as a placeholder (no host ever sees it), and local key files
    /// only hosts need may be missing.
    #[serde(default)]
    pub offline: bool,
}

pub struct Project {
    pub inventory: Inventory,
    pub playbook: Playbook,
    pub templates: Templates,
    pub extra: VarMap,
    pub redactor: Redactor,
    /// Hosts selected by `--limit` (all hosts without it), in inventory order.
    pub limit: Vec<String>,
}

impl Project {
    pub fn load(opts: &LoadOptions) -> InputResult<Self> {
        let redactor = if opts.offline {
            Redactor::offline()
        } else {
            Redactor::default()
        };
        if let Some(user) = &opts.user {
            inventory::check_user(user).map_err(|m| InputError::plain(format!("--user: {m}")))?;
        }
        let mut inventory = Inventory::load(SourceFile::read(&opts.inventory)?, &redactor)?;
        if let Some(user) = &opts.user {
            for h in &mut inventory.hosts {
                h.user = Some(user.clone());
            }
        }
        let playbook = Playbook::load(SourceFile::read(&opts.playbook)?, &inventory)?;
        let mut extra = VarMap::new();
        for arg in &opts.extra_vars {
            let (k, v) = vars::parse_extra(arg)?;
            extra.insert(k, v);
        }
        let limit = match &opts.limit {
            None => inventory.hosts.iter().map(|h| h.name.clone()).collect(),
            Some(pattern) => inventory.select(pattern).map_err(|unknown| {
                let message = if unknown.is_empty() {
                    format!("--limit {pattern:?} names no host or group")
                } else {
                    format!("--limit: no host or group named `{unknown}`")
                };
                InputError::plain(message)
                    .with_help(format!("known: {}", inventory.names().join(", ")))
            })?,
        };
        check_identity_files(&inventory, &limit, redactor.is_offline())?;
        let templates_dir = opts
            .templates_dir
            .clone()
            .or_else(|| default_templates_dir(&opts.playbook));
        let templates =
            Templates::new(templates_dir).looked_in(templates_candidates(&opts.playbook));
        Ok(Self {
            inventory,
            playbook,
            templates,
            extra,
            redactor,
            limit,
        })
    }
}

/// Every selected host's `identity_file` must exist before connecting; only
/// hosts need it, so offline commands warn.
fn check_identity_files(inventory: &Inventory, limit: &[String], offline: bool) -> InputResult<()> {
    for name in limit {
        let Some(host) = inventory.host(name) else {
            continue;
        };
        let Some(path) = &host.identity_file else {
            continue;
        };
        if path.is_file() {
            continue;
        }
        let why = if path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        let message = format!("host {name}: identity_file {} {why}", path.display());
        if offline {
            crate::diag::warn_once(format!("{message} (needed to connect, not to check)"));
            continue;
        }
        let span = inventory
            .identity_file_spans
            .get(name)
            .cloned()
            .unwrap_or(0..0);
        return Err(inventory.source.error(span, message).with_help(
            "a relative path is taken from the inventory's directory; ~/ is your home",
        ));
    }
    Ok(())
}

/// `templates/` beside the playbook, or beside its directory (`playbooks/../templates`).
fn default_templates_dir(playbook: &Path) -> Option<PathBuf> {
    templates_candidates(playbook)
        .into_iter()
        .find(|p| p.is_dir())
}

/// Where a templates directory is looked for without --templates.
fn templates_candidates(playbook: &Path) -> Vec<PathBuf> {
    let dir = playbook.parent().unwrap_or(Path::new("."));
    vec![dir.join("templates"), dir.join("../templates")]
}

pub fn home_dir() -> PathBuf {
    std::env::home_dir().unwrap_or_else(|| PathBuf::from("/root"))
}

/// Expands `~/` and makes relative paths relative to `base` (the file that named them).
pub fn expand_path(p: &str, base: &Path) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        home_dir().join(rest)
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        base.join(p)
    }
}
