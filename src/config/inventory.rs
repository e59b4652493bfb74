//! The inventory: which hosts exist, how to reach them, and their variables.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::doc::Doc;
use super::notify::{self, Notify};
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
    port: Option<Spanned<u16>>,
    user: Option<Spanned<String>>,
    identity_file: Option<Spanned<String>>,
    known_hosts: Option<Spanned<String>>,
    host_key_checking: Option<HostKeyPolicy>,
    #[serde(rename = "become")]
    become_: Option<Become>,
    become_password_env: Option<Spanned<String>>,
    connect_timeout: Option<u64>,
    proxy_jump: Option<Spanned<String>>,
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
    notify: Option<Spanned<super::notify::RawNotify>>,
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
    /// Where each host's `identity_file` is written, by host name.
    pub identity_file_spans: BTreeMap<String, Range<usize>>,
    /// Where apply outcomes and drift are reported (`[notify]`).
    pub notify: Option<Notify>,
}

impl Inventory {
    pub fn load(source: SourceFile, redactor: &Redactor) -> InputResult<Self> {
        let doc = Doc::parse(&source)?;
        let raw: RawInventory = doc.typed(&doc.root)?;
        let src = &source;
        let defaults = raw
            .defaults
            .unwrap_or_else(|| Spanned::new(0..0, Settings::default()));
        for settings in std::iter::once(&defaults)
            .chain(raw.groups.values())
            .chain(raw.hosts.values())
        {
            check_settings(src, settings.get_ref())?;
        }
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
        let mut identity_file_spans = BTreeMap::new();
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
            let pick = |f: fn(&Settings) -> Option<&Spanned<String>>| {
                layers
                    .iter()
                    .rev()
                    .find_map(|s| f(s))
                    .map(|v| v.get_ref().clone())
            };
            if let Some(f) = layers.iter().rev().find_map(|s| s.identity_file.as_ref()) {
                identity_file_spans.insert(name.clone(), f.span());
            }
            let known_hosts = pick(|s| s.known_hosts.as_ref())
                .map(|p| super::expand_path(&p, &base_dir))
                .unwrap_or_else(|| super::home_dir().join(".ssh/known_hosts"));
            hosts.push(Host {
                name: name.clone(),
                address: h
                    .address
                    .as_ref()
                    .map_or_else(|| name.clone(), |a| a.get_ref().clone()),
                address_given: h.address.is_some(),
                port: layers
                    .iter()
                    .rev()
                    .find_map(|s| s.port.as_ref().map(|p| *p.get_ref())),
                user: pick(|s| s.user.as_ref()),
                identity_file: pick(|s| s.identity_file.as_ref())
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
                proxy_jump: pick(|s| s.proxy_jump.as_ref()),
                password: None,
                groups: h.groups.iter().map(|g| g.get_ref().clone()).collect(),
                vars: merged_vars,
            });
        }
        let notify = raw
            .notify
            .as_ref()
            .map(|n| notify::resolve(n.get_ref(), n.span(), src, redactor))
            .transpose()?;
        Ok(Self {
            source,
            hosts,
            groups,
            identity_file_spans,
            notify,
        })
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Host names matching a pattern: `all`, a group, a host, or a comma list of those.
    /// Unknown names are returned as `Err(name)`; a pattern naming nothing at
    /// all (empty, or only commas) as `Err("")`.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, String> {
        if pattern.split(',').all(|p| p.trim().is_empty()) {
            return Err(String::new());
        }
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

/// Values of connection settings that cannot work, refused where they are written.
fn check_settings(src: &SourceFile, s: &Settings) -> InputResult<()> {
    if let Some(port) = &s.port
        && *port.get_ref() == 0
    {
        return Err(src.error(port.span(), "port 0 is not a port: use 1 to 65535"));
    }
    if let Some(user) = &s.user {
        check_user(user.get_ref()).map_err(|m| src.error(user.span(), format!("user: {m}")))?;
    }
    if let Some(addr) = &s.address {
        check_address(addr.get_ref()).map_err(|(m, help)| {
            src.error(addr.span(), format!("address: {m}"))
                .with_help(help)
        })?;
    }
    for (key, value) in [
        ("identity_file", &s.identity_file),
        ("known_hosts", &s.known_hosts),
    ] {
        if let Some(v) = value
            && v.get_ref().trim().is_empty()
        {
            return Err(src.error(v.span(), format!("{key} is empty: give the path of a file")));
        }
    }
    if let Some(jump) = &s.proxy_jump {
        check_proxy_jump(jump.get_ref()).map_err(|m| {
            src.error(jump.span(), format!("proxy_jump: {m}"))
                .with_help(
                    "write [user@]host[:port], several hops separated by commas, or \"none\"",
                )
        })?;
    }
    Ok(())
}

/// A login name for SSH: not empty, no spaces, no `@` or `:` (which would
/// read as part of an address).
pub fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name is empty".into());
    }
    if let Some(c) = user
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ':' | '/'))
    {
        return Err(format!("`{user}` is not a user name: it contains {c:?}"));
    }
    Ok(())
}

/// A host name or an IP address, without a port (which has its own setting).
fn check_address(addr: &str) -> Result<(), (String, &'static str)> {
    let port_help = "write the port separately: port = 2222";
    if addr.trim().is_empty() {
        return Err((
            "the address is empty".into(),
            "give a host name or an IP address, or leave address out to use the host's name",
        ));
    }
    if addr.starts_with('[') || addr.matches(':').count() == 1 {
        return Err((
            format!("`{addr}` holds a port; the address is the host alone"),
            port_help,
        ));
    }
    if addr.contains(':') && addr.parse::<std::net::Ipv6Addr>().is_err() {
        return Err((format!("`{addr}` is not an IPv6 address"), port_help));
    }
    if let Some(c) = addr
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | '/'))
    {
        return Err((
            format!("`{addr}` is not a host name or IP address: it contains {c:?}"),
            "give a host name or an IP address; the user has its own setting: user = \"deploy\"",
        ));
    }
    Ok(())
}

/// `none`, or one or more hops `[user@]host[:port]` separated by commas.
fn check_proxy_jump(jump: &str) -> Result<(), String> {
    if jump == "none" {
        return Ok(());
    }
    if jump.trim().is_empty() {
        return Err("it is empty".into());
    }
    for hop in jump.split(',') {
        let j = crate::transport::ssh_config::parse_jump(hop)?;
        if let Some(c) = j
            .host
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | '/'))
        {
            return Err(format!(
                "bad ProxyJump hop {hop:?}: the host contains {c:?}"
            ));
        }
        if j.port == Some(0) {
            return Err(format!("bad ProxyJump hop {hop:?}: port 0"));
        }
        if let Some(user) = &j.user {
            check_user(user).map_err(|m| format!("bad ProxyJump hop {hop:?}: {m}"))?;
        }
    }
    Ok(())
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

    #[test]
    fn connection_values_that_cannot_work_are_refused() {
        for ok in ["192.0.2.10", "web1.example.org", "2001:db8::10", "::1"] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "192.0.2.10:22",
            "[::1]:22",
            "ops@web1",
            "web 1",
            "a:b:c",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        assert!(check_user("deploy").is_ok());
        for bad in ["", "de ploy", "ops@web1", "a:b"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "none",
            "bastion",
            "ops@bastion:2222",
            "a,ops@[2001:db8::1]:22",
        ] {
            assert!(check_proxy_jump(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "bastion host",
            "bastion:ssh",
            "a,,b",
            "@bastion",
            "bastion:0",
        ] {
            assert!(check_proxy_jump(bad).is_err(), "{bad:?}");
        }
        let text = "[hosts.web1]\nport = 0\n";
        let e = Inventory::load(
            SourceFile::from_text(std::path::Path::new("i.toml"), text.into()),
            &Redactor::default(),
        )
        .unwrap_err();
        assert!(
            e.message().starts_with("i.toml:2:8: port 0"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_pattern_naming_nothing_is_not_an_empty_selection() {
        let inv = Inventory::load(
            SourceFile::from_text(std::path::Path::new("i.toml"), "[hosts.a]\n".into()),
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(inv.select(""), Err(String::new()));
        assert_eq!(inv.select(" , ,"), Err(String::new()));
        assert_eq!(inv.select("a,"), Ok(vec!["a".to_string()]));
    }
}
