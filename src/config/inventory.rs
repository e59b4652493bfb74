//! The inventory: which hosts exist, how to reach them, and their variables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::doc::Doc;
use super::vars::{self, RawVars, VarMap};
use crate::diag::{InputResult, SourceFile};
use crate::redact::Redactor;
use crate::transport::HostKeyPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    /// Run everything through `sudo` (the password, if any, goes over stdin).
    Sudo,
    /// Connect as a user that needs no privilege escalation (root).
    None,
}

/// Connection settings, shared by `[defaults]`, `[groups.NAME]` and `[hosts.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    address: Option<Spanned<String>>,
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<String>,
    known_hosts: Option<String>,
    host_key_checking: Option<HostKeyPolicy>,
    #[serde(rename = "become")]
    become_: Option<Become>,
    become_password_env: Option<Spanned<String>>,
    connect_timeout: Option<u64>,
    proxy_jump: Option<String>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    vars: RawVars,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    defaults: Option<Spanned<Settings>>,
    #[serde(default)]
    vars: RawVars,
    // In file order: the first host of a group has a part to play (it starts the swarm).
    #[serde(default)]
    groups: IndexMap<String, Spanned<Settings>>,
    #[serde(default)]
    hosts: IndexMap<String, Spanned<Settings>>,
}

/// A host as the inventory describes it, with settings and variables merged.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub address: String,
    /// Whether `address` was written in the inventory, so ~/.ssh/config's
    /// HostName must not override it.
    pub address_given: bool,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub become_: Become,
    /// The environment variable holding the sudo password, where the inventory names it.
    pub become_password_env: Option<Spanned<String>>,
    pub connect_timeout: Duration,
    pub proxy_jump: Option<String>,
    /// A login password, only ever set by `bootstrap` for a first connection
    /// (the inventory has no place for passwords).
    pub password: Option<String>,
    pub groups: Vec<String>,
    /// Inventory variables (defaults < groups < host), before play vars and `-e`.
    pub vars: VarMap,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub source: SourceFile,
    pub hosts: Vec<Host>,
    /// Group name to member host names, in inventory order.
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Inventory {
    pub fn load(source: SourceFile, redactor: &Redactor) -> InputResult<Self> {
        let doc = Doc::parse(&source)?;
        let raw: RawInventory = doc.typed(&doc.root)?;
        let src = &source;
        let defaults = raw
            .defaults
            .unwrap_or_else(|| Spanned::new(0..0, Settings::default()));
        for (what, settings) in std::iter::once(("[defaults]", &defaults))
            .chain(raw.groups.values().map(|g| ("a group", g)))
        {
            if let Some(addr) = &settings.get_ref().address {
                return Err(src
                    .error(
                        addr.span(),
                        format!("`address` belongs to a host, not to {what}"),
                    )
                    .with_help("move it under [hosts.NAME]"));
            }
            if let Some(g) = settings.get_ref().groups.first() {
                return Err(src.error(
                    g.span(),
                    format!("`groups` belongs to a host, not to {what}"),
                ));
            }
        }
        if let Some((name, _)) = defaults.get_ref().vars.iter().next() {
            let span = defaults.get_ref().vars[name].span();
            return Err(src
                .error(
                    span,
                    "variables go in the top-level [vars] table, not in [defaults]",
                )
                .with_help("write [vars] instead of [defaults.vars]"));
        }
        if raw.hosts.is_empty() {
            return Err(src
                .error(0..0, "the inventory defines no hosts")
                .with_help("add a host:\n[hosts.web1]\naddress = \"192.0.2.10\""));
        }

        let base_dir = src
            .path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let global_vars = vars::resolve(&raw.vars, src, redactor)?;
        let mut group_vars = BTreeMap::new();
        for (name, g) in &raw.groups {
            check_name(src, name, g.span(), "group")?;
            group_vars.insert(
                name.clone(),
                vars::resolve(&g.get_ref().vars, src, redactor)?,
            );
        }

        let mut groups: BTreeMap<String, Vec<String>> =
            raw.groups.keys().map(|g| (g.clone(), Vec::new())).collect();
        let mut hosts = Vec::new();
        for (name, spanned) in &raw.hosts {
            check_name(src, name, spanned.span(), "host")?;
            let h = spanned.get_ref();
            let mut layers: Vec<&Settings> = vec![defaults.get_ref()];
            let mut merged_vars = global_vars.clone();
            for g in &h.groups {
                let gname = g.get_ref();
                if gname == "all" || raw.hosts.contains_key(gname) {
                    return Err(src.error(
                        g.span(),
                        format!(
                            "`{gname}` cannot be a group name: it is already a host name or `all`"
                        ),
                    ));
                }
                if let Some(gs) = raw.groups.get(gname) {
                    layers.push(gs.get_ref());
                }
                if let Some(gv) = group_vars.get(gname) {
                    vars::layer(&mut merged_vars, gv);
                }
                groups.entry(gname.clone()).or_default().push(name.clone());
            }
            layers.push(h);
            vars::layer(&mut merged_vars, &vars::resolve(&h.vars, src, redactor)?);
            let pick = |f: fn(&Settings) -> Option<String>| layers.iter().rev().find_map(|s| f(s));
            let known_hosts = pick(|s| s.known_hosts.clone())
                .map(|p| super::expand_path(&p, &base_dir))
                .unwrap_or_else(|| super::home_dir().join(".ssh/known_hosts"));
            hosts.push(Host {
                name: name.clone(),
                address: h
                    .address
                    .as_ref()
                    .map_or_else(|| name.clone(), |a| a.get_ref().clone()),
                address_given: h.address.is_some(),
                port: layers.iter().rev().find_map(|s| s.port),
                user: pick(|s| s.user.clone()),
                identity_file: pick(|s| s.identity_file.clone())
                    .map(|p| super::expand_path(&p, &base_dir)),
                known_hosts,
                host_key_policy: layers
                    .iter()
                    .rev()
                    .find_map(|s| s.host_key_checking)
                    .unwrap_or_default(),
                become_: layers
                    .iter()
                    .rev()
                    .find_map(|s| s.become_)
                    .unwrap_or(Become::None),
                become_password_env: layers
                    .iter()
                    .rev()
                    .find_map(|s| s.become_password_env.clone()),
                connect_timeout: Duration::from_secs(
                    layers
                        .iter()
                        .rev()
                        .find_map(|s| s.connect_timeout)
                        .unwrap_or(10),
                ),
                proxy_jump: pick(|s| s.proxy_jump.clone()),
                password: None,
                groups: h.groups.iter().map(|g| g.get_ref().clone()).collect(),
                vars: merged_vars,
            });
        }
        Ok(Self {
            source,
            hosts,
            groups,
        })
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Host names matching a pattern: `all`, a group, a host, or a comma list of those.
    /// Unknown names are returned as `Err(name)`.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for part in pattern.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let names: Vec<String> = if part == "all" {
                self.hosts.iter().map(|h| h.name.clone()).collect()
            } else if let Some(members) = self.groups.get(part) {
                members.clone()
            } else if self.host(part).is_some() {
                vec![part.to_string()]
            } else {
                return Err(part.to_string());
            };
            for n in names {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        // Inventory order, whatever order the pattern named them in.
        Ok(self
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .filter(|n| out.contains(n))
            .collect())
    }

    /// Every known name, for "did you mean" help.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = vec!["all".into()];
        v.extend(self.groups.keys().cloned());
        v.extend(self.hosts.iter().map(|h| h.name.clone()));
        v
    }
}

fn check_name(
    src: &SourceFile,
    name: &str,
    span: std::ops::Range<usize>,
    what: &str,
) -> InputResult<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(src.error(
            span,
            format!("`{name}` is not a valid {what} name (letters, digits, - _ .)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_group_members_keep_the_file_order() {
        let text =
            "[hosts.zeta]\ngroups = [\"managers\"]\n[hosts.alpha]\ngroups = [\"managers\"]\n";
        let inv = Inventory::load(
            SourceFile::from_text(std::path::Path::new("i.toml"), text.into()),
            &Redactor::default(),
        )
        .unwrap();
        let hosts: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(hosts, ["zeta", "alpha"]);
        assert_eq!(inv.groups["managers"], ["zeta", "alpha"]);
    }
}
