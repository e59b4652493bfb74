//! Saved plans (`plan --out FILE`): the plan plus what it was computed from,
//! so `apply FILE` can redo exactly that work, or refuse when it went stale.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::config::LoadOptions;

const FORMAT: &str = "slipway-plan";
const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub version: u32,
    /// The slipway version that made it.
    pub slipway: String,
    /// Seconds since the epoch.
    pub created: u64,
    pub inputs: LoadOptions,
    /// Hex salt of the plan's change digests.
    pub salt: String,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read plan file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a slipway plan file: {reason}")]
    Format { path: String, reason: String },
    #[error("cannot write plan file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl SavedPlan {
    pub fn new(inputs: LoadOptions, plan: Plan, salt: &[u8]) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            slipway: env!("CARGO_PKG_VERSION").into(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            inputs,
            salt: hex::encode(salt),
            plan,
        }
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), SavedPlanError> {
        let err = |source| SavedPlanError::Write {
            path: path.display().to_string(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        serde_json::to_writer_pretty(&mut tmp, self).map_err(|e| err(e.into()))?;
        tmp.write_all(b"\n").map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self, SavedPlanError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
            path: p.clone(),
            source,
        })?;
        let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| SavedPlanError::Format {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if saved.format != FORMAT {
            return Err(SavedPlanError::Format {
                path: p,
                reason: format!("format is `{}`", saved.format),
            });
        }
        if saved.version != VERSION {
            return Err(SavedPlanError::Format {
                path: p,
                reason: format!(
                    "plan format version {} (this slipway reads {VERSION}); run plan again",
                    saved.version
                ),
            });
        }
        Ok(saved)
    }
}
