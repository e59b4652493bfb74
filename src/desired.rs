//! The desired state of each host: every play's roles and resources, with
//! templates rendered and variables resolved. Built for all hosts before any
//! connection is made, so bad input never reaches a host: a variable no role
//! or template reads (see [`names`]) and two resources managing one thing
//! (see [`conflicts`]) are errors too.

mod conflicts;
mod names;

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::Value;
use serde_json::json;

use crate::config::doc::Doc;
use crate::config::playbook::resource_node;
use crate::config::vars::{Origin, Origins};
use crate::config::{Host, Project, VarMap, vars};
use crate::diag::InputResult;
use crate::resource::json_keys::JsonKeys;
use crate::resource::{self, BuildContext, Resource};
use crate::roles::{self, RoleContext};

#[derive(Debug)]
pub struct PlayState {
    pub index: usize,
    pub name: String,
    pub resources: Vec<Box<dyn Resource>>,
}

#[derive(Debug)]
pub struct HostState {
    pub host: Host,
    pub plays: Vec<PlayState>,
    /// What the roles want said in the host's plan.
    pub notices: Vec<String>,
}

impl HostState {
    pub fn resources(&self) -> impl Iterator<Item = &dyn Resource> {
        self.plays
            .iter()
            .flat_map(|p| p.resources.iter().map(|r| r.as_ref()))
    }
}

/// Desired state for every host `--limit` selects, in inventory order.
pub fn build(project: &Project) -> InputResult<Vec<HostState>> {
    let doc = Doc::parse(&project.playbook.source)?;
    let base_dir = project
        .playbook
        .source
        .path
        .parent()
        .unwrap_or(Path::new("."));
    names::check(project, &doc)?;
    let inventory_origins = vars::inventory_origins(&project.inventory)?;
    let extra_origins: Origins = project
        .extra
        .keys()
        .map(|k| (k.clone(), Origin::Extra))
        .collect();
    let mut out = Vec::new();
    for name in &project.limit {
        let host = project
            .inventory
            .host(name)
            .expect("limit names inventory hosts");
        check_sudo_password(host, project)?;
        let mut claims = conflicts::Claims::new(name, &project.playbook.source);
        let mut plays = Vec::new();
        let notices = std::cell::RefCell::new(Vec::new());
        for play in project
            .playbook
            .plays
            .iter()
            .filter(|p| p.hosts.contains(name))
        {
            let play_vars = vars::resolve(&play.vars, &project.playbook.source, &project.redactor)?;
            let play_origins = play_vars_node(&doc, play.index)
                .map(|n| vars::origins(&project.playbook.source, n))
                .unwrap_or_default();
            let mut resources: Vec<Box<dyn Resource>> = Vec::new();
            let merged = merge(&[&play_vars, &host.vars, &project.extra]);
            let origins = merge(&[&play_origins, &inventory_origins[name], &extra_origins]);
            for role_name in &play.roles {
                let role = roles::lookup(role_name.get_ref()).expect("checked at load");
                let mut v = role.defaults();
                vars::layer(&mut v, &merged);
                let made = role.resources(&RoleContext {
                    host,
                    vars: &v,
                    inventory: &project.inventory,
                    templates: &project.templates,
                    template_vars: context(project, host, &v),
                    offline: project.redactor.is_offline(),
                    origins: &origins,
                    inventory_origins: &inventory_origins,
                    notices: &notices,
                })?;
                let owner = conflicts::Owner::Role {
                    role: role.name(),
                    play: play.index,
                };
                for r in &made {
                    claims.add(r.as_ref(), &owner)?;
                }
                resources.extend(made);
            }
            let ctx_value = Value::from(minijinja::value::Serde(context(project, host, &merged)));
            let ctx = BuildContext {
                doc: &doc,
                templates: &project.templates,
                vars: &ctx_value,
                redactor: &project.redactor,
                base_dir,
            };
            for i in 0..play.resource_count {
                let node = resource_node(&doc, play.index, i).expect("counted at load");
                let r = resource::build(&node, &ctx)?;
                claims.add(r.as_ref(), &conflicts::Owner::Inline { node: &node })?;
                resources.push(r);
            }
            plays.push(PlayState {
                index: play.index,
                name: play.name.clone(),
                resources,
            });
        }
        merge_json_keys(&mut plays);
        out.push(HostState {
            host: host.clone(),
            plays,
            notices: notices.into_inner(),
        });
    }
    Ok(out)
}

/// The `vars` table of play `play`.
fn play_vars_node<'d, 'a>(
    doc: &'d Doc<'a>,
    play: usize,
) -> Option<&'d crate::config::doc::Node<'a>> {
    crate::config::playbook::play_node(doc, play)?
        .get_ref()
        .get("vars")
}

/// Several roles may own keys of one JSON file (daemon.json): they become one
/// resource, where the first of them stood, so the file is written once.
fn merge_json_keys(plays: &mut [PlayState]) {
    let mut first: Vec<(String, usize, usize)> = Vec::new();
    for p in 0..plays.len() {
        let mut r = 0;
        while r < plays[p].resources.len() {
            let keys = as_json_keys(plays[p].resources[r].as_mut()).cloned();
            let Some(keys) = keys else {
                r += 1;
                continue;
            };
            match first.iter().find(|(path, _, _)| *path == keys.path) {
                Some(&(_, p0, r0)) => {
                    as_json_keys(plays[p0].resources[r0].as_mut())
                        .expect("recorded as JSON keys")
                        .merge(&keys);
                    plays[p].resources.remove(r);
                }
                None => {
                    first.push((keys.path.clone(), p, r));
                    r += 1;
                }
            }
        }
    }
}

fn as_json_keys(r: &mut dyn Resource) -> Option<&mut JsonKeys> {
    r.as_any_mut().and_then(|a| a.downcast_mut::<JsonKeys>())
}

/// A sudo password must be at hand before connecting, and is a secret from then on.
fn check_sudo_password(host: &Host, project: &Project) -> InputResult<()> {
    let Some(var) = &host.become_password_env else {
        return Ok(());
    };
    match std::env::var(var.get_ref()) {
        Ok(pw) => {
            project.redactor.add(&pw);
            Ok(())
        }
        Err(_) if project.redactor.is_offline() => {
            crate::diag::warn_once(format!(
                "host {}: become_password_env names {}, which is not set (needed to connect, not to check)",
                host.name,
                var.get_ref()
            ));
            Ok(())
        }
        Err(_) => Err(project
            .inventory
            .source
            .error(
                var.span(),
                format!(
                    "host {}: become_password_env names {}, which is not set",
                    host.name,
                    var.get_ref()
                ),
            )
            .with_help(format!(
                "export {} with the sudo password, or remove become_password_env for NOPASSWD sudo",
                var.get_ref()
            ))),
    }
}

/// Layers variables, or their origins, lowest precedence first.
fn merge<T: Clone>(layers: &[&BTreeMap<String, T>]) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    for l in layers {
        vars::layer(&mut out, l);
    }
    out
}

/// What templates see: the host's variables at the top level, plus `host`,
/// `hosts` (every inventory host) and `groups` (group name to host names).
pub fn context(project: &Project, host: &Host, vars: &VarMap) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in vars {
        map.insert(k.clone(), v.clone());
    }
    let describe = |h: &Host| json!({"name": h.name, "address": h.address, "groups": h.groups});
    map.insert("inventory_hostname".into(), json!(host.name));
    map.insert("host".into(), describe(host));
    map.insert(
        "hosts".into(),
        json!(
            project
                .inventory
                .hosts
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
        ),
    );
    map.insert("groups".into(), json!(project.inventory.groups));
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{LoadOptions, Project};

    /// The shipped site playbook builds for the lab and the example inventory:
    /// no variable nothing reads, no two owners of one thing, and every
    /// resource of a kind `KINDS` declares.
    #[test]
    fn the_site_playbook_builds_with_declared_kinds_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for inventory in ["inventories/lab.toml", "inventories/example.toml"] {
            let project = Project::load(&LoadOptions {
                inventory: root.join(inventory),
                playbook: root.join("playbooks/site.toml"),
                offline: true,
                ..LoadOptions::default()
            })
            .unwrap();
            let states = super::build(&project).unwrap_or_else(|e| panic!("{inventory}: {e:?}"));
            for r in states.iter().flat_map(|s| s.resources()) {
                let id = r.id();
                let kind = id.split(':').next().unwrap();
                assert!(
                    crate::resource::KINDS.iter().any(|k| k.name == kind),
                    "{id}: kind `{kind}` is not in KINDS"
                );
            }
        }
    }
}
