//! `directory`: a directory with mode and ownership, or its absence.

use serde::Deserialize;
use toml::Spanned;

use super::fsattr::{FsAttrs, PROBE_STAT, RawAttrs};
use super::{BuildContext, Observed, Outcome, Presence, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Directory {
    pub path: String,
    pub state: Presence,
    pub attrs: FsAttrs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    path: Spanned<String>,
    mode: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    #[serde(default)]
    state: Presence,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    let src = ctx.doc.src;
    super::file::check_abs(spec.path.get_ref()).map_err(|m| src.error(spec.path.span(), m))?;
    let attrs = FsAttrs::from_raw(
        RawAttrs {
            mode: spec.mode,
            owner: spec.owner,
            group: spec.group,
        },
        |span, msg| src.error(span, msg),
    )?;
    Ok(Box::new(Directory {
        path: spec.path.into_inner(),
        state: spec.state,
        attrs,
    }))
}

const DEFAULT_MODE: u32 = 0o755;

impl Resource for Directory {
    fn id(&self) -> String {
        format!("directory:{}", self.path)
    }

    fn manages(&self) -> Vec<super::Managed> {
        vec![super::Managed::sole(super::Thing::Path, &self.path)]
    }

    fn probe(&self) -> String {
        format!("p={}\n{PROBE_STAT}", q(&self.path))
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let kind = obs.get("type").unwrap_or("absent");
        match (self.state, kind) {
            (Presence::Absent, "absent") => Outcome::unchanged(),
            (Presence::Absent, "directory") => Outcome::change(Change::new(
                self.id(),
                Action::Delete,
                format!("remove directory {} and everything in it", self.path),
            )),
            (Presence::Present, "absent") => Outcome::change(
                Change::new(
                    self.id(),
                    Action::Create,
                    format!("create directory {}", self.path),
                )
                .with_attrs(self.attrs.initial(DEFAULT_MODE)),
            ),
            (Presence::Present, "directory") => {
                let summary = format!("update directory {}", self.path);
                Outcome::update(self.id(), summary, self.attrs.changes(obs))
            }
            (_, other) => Outcome::blocked(format!("{} is a {other}, not a directory", self.path)),
        }
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        s.line(format!("p={}", q(&self.path)));
        match change.action {
            Action::Delete => s.line("rm -rf -- \"$p\""),
            Action::Create => {
                s.line("mkdir -p -- \"$p\"")
                    .line(self.attrs.apply("\"$p\"", None, DEFAULT_MODE))
            }
            _ => s.line(self.attrs.apply("\"$p\"", None, DEFAULT_MODE)),
        };
        s
    }
}
