//! `command`: a shell command, guarded by `creates` (a path it makes) and/or
//! `unless` (a check that, when it succeeds, means the work is done).

use serde::Deserialize;

use super::{BuildContext, Observed, Outcome, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone)]
pub struct Command {
    /// Names the command in plans; defaults to its first line.
    pub name: String,
    pub run: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: Option<String>,
    run: toml::Spanned<String>,
    creates: Option<toml::Spanned<String>>,
    unless: Option<String>,
    #[serde(default)]
    notify: Vec<toml::Spanned<String>>,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    if spec.run.get_ref().trim().is_empty() {
        return Err(ctx.doc.src.error(spec.run.span(), "`run` is empty"));
    }
    if let Some(c) = &spec.creates {
        super::file::check_abs(c.get_ref()).map_err(|m| ctx.doc.src.error(c.span(), m))?;
    }
    let run = spec.run.into_inner();
    let name = spec.name.unwrap_or_else(|| {
        let first = run.lines().next().unwrap_or_default().trim();
        if first.chars().count() > 60 {
            format!("{}...", first.chars().take(57).collect::<String>())
        } else {
            first.to_string()
        }
    });
    Ok(Box::new(Command {
        name,
        run,
        creates: spec.creates.map(|c| c.into_inner()),
        unless: spec.unless,
        notify: super::file::check_notify(spec.notify, ctx.doc.src)?,
    }))
}

impl Resource for Command {
    fn id(&self) -> String {
        format!("command:{}", self.name)
    }

    fn probe(&self) -> String {
        let mut sh = String::new();
        if let Some(c) = &self.creates {
            sh.push_str(&format!(
                "if [ -e {} ]; then echo creates=exists; fi\n",
                q(c)
            ));
        }
        if let Some(u) = &self.unless {
            sh.push_str(&format!(
                "if ( {u}\n ) >/dev/null 2>&1 </dev/null; then echo unless=ok; else echo unless=failed; fi\n"
            ));
        }
        sh
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        if obs.get("creates") == Some("exists") || obs.get("unless") == Some("ok") {
            return Outcome::unchanged();
        }
        let mut why = Vec::new();
        if let Some(c) = &self.creates {
            why.push(format!("{c} does not exist"));
        }
        if self.unless.is_some() {
            why.push("the `unless` check failed".to_string());
        }
        let summary = if why.is_empty() {
            format!("run `{}`", self.name)
        } else {
            format!("run `{}` ({})", self.name, why.join(", "))
        };
        Outcome::change(Change::new(self.id(), Action::Run, summary))
    }

    fn apply(&self, _change: &Change, _observed: &Observed<'_>) -> Script {
        Script::new(format!("{}\n", self.run))
    }

    fn notify(&self) -> &[String] {
        &self.notify
    }

    /// With a guard, the guard must hold after the run; without one there is
    /// nothing to check.
    fn converges(&self) -> bool {
        self.creates.is_some() || self.unless.is_some()
    }
}
