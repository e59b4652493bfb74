//! Built-in roles: named, typed bundles of resources parameterised by variables.
//!
//! A play lists roles by name; each role turns the host's variables (its own
//! defaults under everything the user set) into resources, in order. A role's
//! variables are one serde struct whose `Default` is the documented defaults.

mod app;
mod base;
mod deploy_user;
mod docker;
mod edge;
mod fail2ban;
mod firewall;
mod logrotate;
mod monitoring;
mod os_hardening;
pub mod postgres_backup;
mod registries;
mod ssh_hardening;
mod stack_files;
mod swarm;
mod sysctl;
mod trust;
mod units;

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::VarMap;
use crate::config::vars::{Origins, split_path};
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;

/// What a role sees of the host it is expanded for.
pub struct RoleContext<'a> {
    pub host: &'a crate::config::Host,
    /// Every variable of the host for this play, the role's defaults underneath.
    pub vars: &'a VarMap,
    pub inventory: &'a crate::config::Inventory,
    pub templates: &'a crate::template::Templates,
    /// What templates see (see `desired::context`), the role's defaults included.
    pub template_vars: serde_json::Value,
    /// Rendering without hosts (render, check): inputs only a host needs
    /// (local key files) may be missing.
    pub offline: bool,
    /// Where each of `vars` was set (a role's defaults were set nowhere).
    pub origins: &'a Origins,
    /// Where every host's inventory variables were set, by host name, for
    /// roles that read other hosts' variables.
    pub inventory_origins: &'a BTreeMap<String, Origins>,
    /// What the roles want said in the host's plan (see [`RoleContext::notice`]).
    pub notices: &'a RefCell<Vec<String>>,
}

impl RoleContext<'_> {
    /// Says `message` in the host's plan, once; offline (render, check),
    /// where no plan is shown, as a warning.
    pub fn notice(&self, message: String) {
        if self.offline {
            crate::diag::warn_once(message);
            return;
        }
        let mut notices = self.notices.borrow_mut();
        if !notices.contains(&message) {
            notices.push(message);
        }
    }

    /// Renders template `name` with the host's variables, plus `extra` ones.
    pub fn render(&self, name: &str, extra: serde_json::Value) -> InputResult<String> {
        let mut vars = self.template_vars.clone();
        if let (Some(map), serde_json::Value::Object(extra)) = (vars.as_object_mut(), extra) {
            map.extend(extra);
        }
        self.templates
            .render_file(name, &minijinja::Value::from(minijinja::value::Serde(vars)))
    }

    /// An error about the variable at `path` (`firewall_rules[0].from`), at
    /// where the value that won was set; without a location for a default.
    pub fn var_error(&self, path: &str, message: impl Into<String>) -> InputError {
        locate(self.origins, path, false, message.into())
    }

    /// Like [`RoleContext::var_error`], for an inventory variable of `host`.
    pub fn host_var_error(&self, host: &str, path: &str, message: impl Into<String>) -> InputError {
        match self.inventory_origins.get(host) {
            Some(origins) => locate(origins, path, false, message.into()),
            None => InputError::plain(message),
        }
    }
}

/// An error at where the variable `path` begins with was set; `key`: at the
/// key its last step names (an unknown key) rather than at a value.
fn locate(origins: &Origins, path: &str, key: bool, message: String) -> InputError {
    let (name, steps) = split_path(path);
    match origins.get(name) {
        Some(origin) => origin.error(name, &steps, key, message),
        None => InputError::plain(message),
    }
}

pub trait Role: Sync {
    fn name(&self) -> &'static str;
    /// One line for listings.
    fn about(&self) -> &'static str;
    /// Variables the role reads, with their defaults (lowest precedence).
    fn defaults(&self) -> VarMap;
    fn resources(&self, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>>;
}

/// A role written against its typed variables; [`Role`] comes with it.
pub trait TypedRole: Sync {
    type Vars: Serialize + DeserializeOwned + Default;
    const NAME: &'static str;
    const ABOUT: &'static str;
    fn build(&self, vars: Self::Vars, ctx: &RoleContext<'_>)
    -> InputResult<Vec<Box<dyn Resource>>>;
}

impl<T: TypedRole> Role for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn about(&self) -> &'static str {
        T::ABOUT
    }

    fn defaults(&self) -> VarMap {
        match serde_json::to_value(T::Vars::default()).expect("role defaults serialize") {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => VarMap::new(),
        }
    }

    fn resources(&self, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let value = serde_json::Value::Object(ctx.vars.clone().into_iter().collect());
        let vars = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let (name, _) = split_path(&path);
            let mut detail = e.inner().to_string();
            // serde quotes the value it could not take: never a secret's.
            let secret = matches!(
                ctx.origins.get(name),
                Some(crate::config::vars::Origin::File { secret: true, .. })
            );
            if let (true, Some(serde_json::Value::String(s))) = (secret, ctx.vars.get(name))
                && !s.is_empty()
            {
                detail = detail.replace(s.as_str(), crate::redact::SENSITIVE);
            }
            let unknown_key = detail.starts_with("unknown field");
            let message = format!(
                "role {} on {}: variable `{path}`: {detail}",
                T::NAME,
                ctx.host.name,
            );
            locate(ctx.origins, &path, unknown_key, message)
                .with_help("see docs/roles.md for every role variable and its type")
        })?;
        self.build(vars, ctx)
    }
}

/// Every built-in role, in the order they are documented.
static ROLES: &[&dyn Role] = &[
    &base::Base,
    &deploy_user::DeployUser,
    &ssh_hardening::SshHardening,
    &sysctl::Sysctl,
    &os_hardening::OsHardening,
    &firewall::Firewall,
    &logrotate::Logrotate,
    &fail2ban::Fail2ban,
    &docker::Docker,
    &swarm::Swarm,
    &swarm::SwarmCluster,
    &monitoring::MonitoringNode,
    &monitoring::Monitoring,
    &app::App,
    &postgres_backup::PostgresBackup,
    &edge::Edge,
];

pub fn lookup(name: &str) -> Option<&'static dyn Role> {
    ROLES.iter().copied().find(|r| r.name() == name)
}

pub fn all() -> &'static [&'static dyn Role] {
    ROLES
}

/// Every role variable, with the roles that read it.
pub fn variables() -> BTreeMap<String, Vec<&'static str>> {
    let mut out: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for role in ROLES {
        for name in role.defaults().into_keys() {
            out.entry(name).or_default().push(role.name());
        }
    }
    out
}

/// The words role variables begin with (`firewall` of `firewall_rules`): a
/// variable beginning with one of them must be a role's, or read by a
/// template. Taken from the roles themselves, so a new role's count too.
pub fn variable_prefixes() -> std::collections::BTreeSet<String> {
    variables()
        .keys()
        .filter_map(|name| name.split_once('_').map(|(word, _)| word.to_string()))
        .collect()
}

pub fn known_help() -> String {
    let names: Vec<&str> = ROLES.iter().map(|r| r.name()).collect();
    format!("built-in roles: {}", names.join(", "))
}

/// A root-owned config file with fixed content, the most common thing a role writes.
/// A file a role renders. One that holds a secret (a template using a
/// secret variable) shows no diff: the value it replaces, the previous
/// secret, is known to no redactor any more.
fn config_file(path: &str, content: String, mode: u32) -> crate::resource::file::File {
    let sensitive = crate::redact::global().touches(content.as_bytes());
    let mut file = crate::resource::file::File::root_owned(path, content.into_bytes(), mode);
    file.sensitive = sensitive;
    file
}

/// Header of every file a role writes.
const MANAGED: &str = "# Managed by slipway: changes made here are reverted on the next apply.";

/// A role's defaults as TOML lines, `name = value`, in name order.
pub fn defaults_toml(role: &dyn Role) -> String {
    let mut out = String::new();
    for (k, v) in role.defaults() {
        let value =
            json_to_toml(&v).map_or_else(|| "\"\"  # not set".to_string(), |t| t.to_string());
        out.push_str(&format!("{k} = {value}\n"));
    }
    out
}

fn json_to_toml(v: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => n
            .as_i64()
            .map(toml::Value::Integer)
            .unwrap_or_else(|| toml::Value::Float(n.as_f64().unwrap_or_default())),
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        J::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::config::Inventory;
    use crate::diag::SourceFile;
    use crate::redact::Redactor;
    use crate::template::Templates;

    pub(super) fn inventory(vars: &str) -> Inventory {
        let text = format!(
            "[vars]\n{vars}\n[hosts.m1]\naddress = \"10.0.0.1\"\ngroups = [\"managers\"]\n"
        );
        let src = SourceFile::from_text(Path::new("i.toml"), text);
        Inventory::load(src, &Redactor::default()).unwrap()
    }

    /// How many resources `role` makes on m1 (see [`resources`]).
    fn run(role: &dyn Role, inv: &Inventory, top: serde_json::Value) -> InputResult<usize> {
        resources(role, inv, top).map(|r| r.len())
    }

    /// `role`'s resources on m1, with `top` over the inventory's variables over the defaults.
    pub(super) fn resources(
        role: &dyn Role,
        inv: &Inventory,
        top: serde_json::Value,
    ) -> InputResult<Vec<Box<dyn Resource>>> {
        let host = inv.host("m1").unwrap();
        let mut v = role.defaults();
        crate::config::vars::layer(&mut v, &host.vars);
        let top: VarMap = serde_json::from_value(top).unwrap();
        crate::config::vars::layer(&mut v, &top);
        let origins = crate::config::vars::inventory_origins(inv).unwrap();
        let ctx = RoleContext {
            host,
            vars: &v,
            inventory: inv,
            templates: &Templates::new(None),
            template_vars: serde_json::Value::Object(v.clone().into_iter().collect()),
            offline: true,
            origins: &origins["m1"],
            inventory_origins: &origins,
            notices: &Default::default(),
        };
        role.resources(&ctx)
    }

    fn unknown_key(result: InputResult<usize>) -> bool {
        result.is_err_and(|e| e.message().contains("unknown field `bogus_key`"))
    }

    #[test]
    fn prefixes_are_the_first_words_of_role_variables() {
        let p = variable_prefixes();
        for word in [
            "firewall",
            "ssh",
            "deploy",
            "docker",
            "swarm",
            "monitoring",
            "grafana",
            "alert",
            "alertmanager",
            "prometheus",
            "loki",
            "promtail",
            "fail2ban",
            "sysctl",
            "base",
            "app",
            "journald",
        ] {
            assert!(p.contains(word), "{word}: {p:?}");
        }
        assert!(!p.contains("motd") && !p.contains("site"));
        assert_eq!(
            variables()["ssh_port"],
            ["ssh_hardening", "firewall", "fail2ban"]
        );
    }

    /// Every nested table of role variables is a struct that rejects unknown
    /// keys; the maps meant to be free-form (labels, options, settings) stay so.
    #[test]
    fn nested_tables_reject_unknown_keys_and_free_form_maps_stay_free() {
        let inv = inventory("deploy_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB x\"]");
        let mut checked = 0;
        for role in all() {
            for (name, default) in role.defaults() {
                let serde_json::Value::Object(mut table) = default else {
                    continue;
                };
                let free = table.is_empty();
                table.insert("bogus_key".into(), json!("1"));
                let result = run(*role, &inv, json!({ name.clone(): table }));
                assert_eq!(unknown_key(result), !free, "{} {name}", role.name());
                checked += 1;
            }
        }
        assert!(checked >= 5, "{checked}");
        for (role, name, item) in [
            (
                "swarm_cluster",
                "swarm_networks",
                json!({"name": "backend"}),
            ),
            ("firewall", "firewall_rules", json!({"port": 80})),
            ("firewall", "firewall_docker_published", json!({"port": 80})),
        ] {
            let role = lookup(role).unwrap();
            assert!(
                run(role, &inv, json!({ name: [item.clone()] })).is_ok(),
                "{name}"
            );
            let mut bad = item;
            bad["bogus_key"] = json!(true);
            assert!(
                unknown_key(run(role, &inv, json!({ name: [bad] }))),
                "{name}"
            );
        }
    }

    #[test]
    fn a_variable_error_points_where_the_value_was_set() {
        let inv =
            inventory("swarm_networks = [{ name = \"a\" }, { name = \"b\", atachable = true }]");
        let e = run(lookup("swarm_cluster").unwrap(), &inv, json!({})).unwrap_err();
        assert!(
            e.message().starts_with(
                "i.toml:2:49: role swarm_cluster on m1: variable `swarm_networks[1].atachable`: unknown field `atachable`"
            ),
            "{}",
            e.message()
        );
        let inv = inventory("firewall_rules = [{ port = 80 }, { port = 99999 }]");
        let e = run(lookup("firewall").unwrap(), &inv, json!({})).unwrap_err();
        assert!(
            e.message()
                .starts_with("i.toml:2:43: role firewall on m1: firewall_rules[1].port:"),
            "{}",
            e.message()
        );
        // A secret of the wrong type: located at its name, its value never quoted.
        let inv = inventory("ssh_port = { secret = true, value = \"s-77\" }");
        let e = run(lookup("fail2ban").unwrap(), &inv, json!({})).unwrap_err();
        assert!(e.message().starts_with("i.toml:2:1: "), "{}", e.message());
        assert!(!e.message().contains("s-77"), "{}", e.message());
        // A default is set nowhere: no location.
        let e = run(
            lookup("docker").unwrap(),
            &inventory(""),
            json!({"docker_repo_url": "http://x"}),
        )
        .unwrap_err();
        assert!(
            e.message().starts_with("role docker on m1: "),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_rendered_file_holding_a_secret_shows_no_diff() {
        crate::redact::global().add("role-file-secret-7d2a");
        let secret = config_file("/etc/x", "token: role-file-secret-7d2a\n".into(), 0o600);
        assert!(secret.content().unwrap().sensitive);
        let plain = config_file("/etc/y", "token: none\n".into(), 0o644);
        assert!(!plain.content().unwrap().sensitive);
    }
}
