//! `group`: a local group.

use serde::Deserialize;

use super::{BuildContext, Observed, Outcome, Presence, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub gid: Option<u32>,
    pub system: bool,
    pub state: Presence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: toml::Spanned<String>,
    gid: Option<u32>,
    #[serde(default)]
    system: bool,
    #[serde(default)]
    state: Presence,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    check_account_name(spec.name.get_ref()).map_err(|m| ctx.doc.src.error(spec.name.span(), m))?;
    Ok(Box::new(Group {
        name: spec.name.into_inner(),
        gid: spec.gid,
        system: spec.system,
        state: spec.state,
    }))
}

/// The names useradd and groupadd accept on Debian and Ubuntu.
pub fn check_account_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid user or group name"))
    }
}

impl Resource for Group {
    fn id(&self) -> String {
        format!("group:{}", self.name)
    }

    fn manages(&self) -> Vec<super::Managed> {
        vec![super::Managed::sole(super::Thing::Group, &self.name)]
    }

    fn probe(&self) -> String {
        format!(
            "getent group {} | cut -d: -f3 | sed 's/^/gid=/'\n",
            q(&self.name)
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let gid = obs.get("gid");
        match (self.state, gid) {
            (Presence::Absent, None) => Outcome::unchanged(),
            (Presence::Absent, Some(_)) => Outcome::change(Change::new(
                self.id(),
                Action::Delete,
                format!("remove group {}", self.name),
            )),
            (Presence::Present, None) => Outcome::change(
                Change::new(
                    self.id(),
                    Action::Create,
                    format!("create group {}", self.name),
                )
                .with_attrs(
                    self.gid
                        .map(|g| vec![Attr::new("gid", None::<u32>, Some(g))])
                        .unwrap_or_default(),
                ),
            ),
            (Presence::Present, Some(seen)) => match self.gid {
                Some(want) if seen != want.to_string() => Outcome::change(
                    Change::new(
                        self.id(),
                        Action::Update,
                        format!("change gid of group {}", self.name),
                    )
                    .with_attrs(vec![Attr::new("gid", Some(seen), Some(want))]),
                ),
                _ => Outcome::unchanged(),
            },
        }
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let n = q(&self.name);
        let gid = self.gid.map(|g| format!(" -g {g}")).unwrap_or_default();
        Script::new(match change.action {
            Action::Delete => format!("groupdel {n}\n"),
            Action::Create => {
                let system = if self.system { " --system" } else { "" };
                format!("groupadd{system}{gid} {n}\n")
            }
            _ => format!("groupmod{gid} {n}\n"),
        })
    }
}
