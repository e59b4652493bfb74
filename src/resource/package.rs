//! `package`: Debian packages through apt. The apt cache is refreshed only
//! when it is older than `cache_valid_time`, and only when something is installed.

use serde::Deserialize;

use super::{BuildContext, Observed, Outcome, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    #[default]
    Present,
    Absent,
    Latest,
}

#[derive(Debug, Clone)]
pub struct Package {
    pub names: Vec<String>,
    pub state: PackageState,
    /// Seconds the apt cache stays fresh enough to install from.
    pub cache_valid_time: u64,
    pub install_recommends: bool,
}

impl Package {
    pub fn present(names: &[&str]) -> Self {
        Self {
            names: names.iter().map(|n| n.to_string()).collect(),
            state: PackageState::Present,
            cache_valid_time: DEFAULT_CACHE_VALID,
            install_recommends: false,
        }
    }
}

pub const DEFAULT_CACHE_VALID: u64 = 3600;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: toml::Spanned<Names>,
    #[serde(default)]
    state: PackageState,
    cache_valid_time: Option<u64>,
    #[serde(default)]
    install_recommends: bool,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    let span = spec.name.span();
    let names = match spec.name.into_inner() {
        Names::One(n) => vec![n],
        Names::Many(v) => v,
    };
    if names.is_empty() {
        return Err(ctx.doc.src.error(span, "name lists no packages"));
    }
    if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
        return Err(ctx.doc.src.error_within(
            span,
            bad,
            format!("`{bad}` is not a valid Debian package name"),
        ));
    }
    Ok(Box::new(Package {
        names,
        state: spec.state,
        cache_valid_time: spec.cache_valid_time.unwrap_or(DEFAULT_CACHE_VALID),
        install_recommends: spec.install_recommends,
    }))
}

fn valid_name(n: &str) -> bool {
    n.len() >= 2
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.:".contains(c))
}

impl Package {
    fn words(&self) -> String {
        self.names
            .iter()
            .map(|n| q(n))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn installed<'o>(&self, obs: &'o Observed<'_>) -> Vec<(&'o str, &'o str)> {
        // Lines: `pkg=NAME STATUS VERSION`; "ii" is installed and configured.
        obs.all("pkg")
            .into_iter()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let (name, status, version) = (it.next()?, it.next()?, it.next()?);
                (status == "ii").then_some((name.split(':').next().unwrap_or(name), version))
            })
            .collect()
    }
}

impl Resource for Package {
    fn id(&self) -> String {
        format!("package:{}", self.names.join(","))
    }

    /// Two resources may both install a package, or both remove it; not one each.
    fn manages(&self) -> Vec<super::Managed> {
        let want = match self.state {
            PackageState::Present | PackageState::Latest => "installed",
            PackageState::Absent => "absent",
        };
        self.names
            .iter()
            .map(|n| super::Managed::shared(super::Thing::Package, n, want))
            .collect()
    }

    fn packages(&self) -> &[String] {
        &self.names
    }

    fn probe(&self) -> String {
        if self.state != PackageState::Latest {
            return String::new();
        }
        format!(
            "apt-cache policy {} 2>/dev/null | sed -n 's/^\\([^ ].*\\):$/policy=\\1/p; s/^  Candidate: /candidate=/p'\n",
            self.words()
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let installed = self.installed(obs);
        let is_installed = |n: &str| installed.iter().any(|(name, _)| *name == n);
        let missing: Vec<&str> = self
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| !is_installed(n))
            .collect();
        match self.state {
            PackageState::Present if missing.is_empty() => Outcome::unchanged(),
            PackageState::Present => Outcome::change(Change::new(
                self.id(),
                Action::Create,
                format!("install {}", missing.join(", ")),
            )),
            PackageState::Absent => {
                let present: Vec<&str> = self
                    .names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| is_installed(n))
                    .collect();
                if present.is_empty() {
                    Outcome::unchanged()
                } else {
                    Outcome::change(Change::new(
                        self.id(),
                        Action::Delete,
                        format!("remove {}", present.join(", ")),
                    ))
                }
            }
            PackageState::Latest => {
                let candidates = candidates(obs);
                let mut attrs = Vec::new();
                for (name, version) in &installed {
                    if let Some(c) = candidates.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
                        && c != *version
                        && c != "(none)"
                    {
                        attrs.push(Attr::new(name, Some(version), Some(c)));
                    }
                }
                for name in &missing {
                    attrs.push(Attr::new(name, None::<String>, Some("latest")));
                }
                if attrs.is_empty() {
                    return Outcome::unchanged();
                }
                let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
                let action = if missing.is_empty() {
                    Action::Update
                } else {
                    Action::Create
                };
                Outcome::change(
                    Change::new(
                        self.id(),
                        action,
                        format!("install or upgrade {}", names.join(", ")),
                    )
                    .with_attrs(attrs),
                )
            }
        }
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        let apt = "apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
        if change.action == Action::Delete {
            s.line(format!("{apt} remove {}", self.words()));
            return s;
        }
        s.line(refresh_cache(self.cache_valid_time));
        let recommends = if self.install_recommends {
            ""
        } else {
            " --no-install-recommends"
        };
        s.line(format!("{apt}{recommends} install {}", self.words()));
        s
    }
}

/// Shell that runs `apt-get update` when the package lists are missing or
/// older than `max_age` seconds. The lists directory's mtime is the clock:
/// apt bumps it on every update that changes an index, and so do we.
pub fn refresh_cache(max_age: u64) -> String {
    format!(
        "if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || [ $(( $(date +%s) - $(stat -c %Y /var/lib/apt/lists) )) -gt {max_age} ]; then apt-get -q -o DPkg::Lock::Timeout=300 update && touch /var/lib/apt/lists; fi"
    )
}

fn candidates<'o>(obs: &'o Observed<'_>) -> Vec<(&'o str, &'o str)> {
    let policies = obs.all("policy");
    let cands = obs.all("candidate");
    policies.into_iter().zip(cands).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn plan(p: &Package, section: &str) -> Outcome {
        p.plan(&Observed::new(section, &HostFacts::default()))
    }

    #[test]
    fn installs_only_what_is_missing() {
        let p = Package::present(&["curl", "jq"]);
        let o = plan(&p, "pkg=curl ii 7.88.1-10\npkg=jq un \n");
        assert_eq!(o.change.unwrap().summary, "install jq");
        assert_eq!(
            plan(&p, "pkg=curl ii 1\npkg=jq ii 1\n"),
            Outcome::unchanged()
        );
    }

    #[test]
    fn latest_upgrades_when_candidate_is_newer() {
        let mut p = Package::present(&["curl"]);
        p.state = PackageState::Latest;
        let o = plan(&p, "pkg=curl ii 1.0\npolicy=curl\ncandidate=1.1\n");
        let c = o.change.unwrap();
        assert_eq!(c.attrs[0], Attr::new("curl", Some("1.0"), Some("1.1")));
    }

    #[test]
    fn rejects_bad_names() {
        assert!(!valid_name("Curl"));
        assert!(!valid_name("a;rm"));
        assert!(valid_name("libc6:amd64"));
    }
}
