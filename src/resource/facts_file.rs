//! A file whose content depends on the host (its OS release, its
//! architecture): rendered from the facts the probe brings back, then planned
//! and written like any file.

use std::sync::Arc;

use super::file::File;
use super::{Observed, Outcome, Resource};
use crate::facts::HostFacts;
use crate::plan::change::Change;
use crate::shell::Script;

pub type Render = Arc<dyn Fn(&HostFacts) -> Vec<u8> + Send + Sync>;

#[derive(Clone)]
pub struct FactsFile {
    /// Everything but the content, which `render` supplies per host.
    pub file: File,
    pub render: Render,
}

impl std::fmt::Debug for FactsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactsFile")
            .field("path", &self.file.path)
            .finish_non_exhaustive()
    }
}

impl FactsFile {
    fn file_for(&self, facts: &HostFacts) -> File {
        File {
            content: Some((self.render)(facts)),
            ..self.file.clone()
        }
    }
}

impl Resource for FactsFile {
    fn id(&self) -> String {
        self.file.id()
    }

    fn manages(&self) -> Vec<super::Managed> {
        self.file.manages()
    }

    fn probe(&self) -> String {
        self.file.probe()
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        self.file_for(obs.facts).plan(obs)
    }

    fn apply(&self, change: &Change, observed: &Observed<'_>) -> Script {
        self.file_for(observed.facts).apply(change, observed)
    }

    fn notify(&self) -> &[String] {
        &self.file.notify
    }

    fn diff_source(&self, change: &Change) -> Option<String> {
        self.file.diff_source(change)
    }

    fn set_diff(&self, change: &mut Change, old: Option<&[u8]>, facts: &HostFacts) {
        self.file_for(facts).set_diff(change, old, facts);
    }
}
