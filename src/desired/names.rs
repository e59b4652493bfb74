//! Variables nothing reads. A variable whose name begins like the built-in
//! roles' variables (`firewall_`, `ssh_`, `grafana_`...; see
//! [`roles::variable_prefixes`]) must be one of them, or be read by a template:
//! `firewall_ssh_form = [...]` would otherwise leave SSH open to everyone
//! without a word. Other names are the user's own, and stay free.

use std::collections::BTreeSet;
use std::path::Path;

use toml::de::DeValue;

use crate::config::Project;
use crate::config::doc::{Doc, Node};
use crate::config::vars::{self, Origin};
use crate::diag::InputResult;
use crate::roles;

/// Every variable the inventory, the playbook's plays and `-e` set is a role
/// variable, is read by a template, or carries no role's prefix.
pub(super) fn check(project: &Project, playbook: &Doc<'_>) -> InputResult<()> {
    let known = roles::variables();
    let prefixes = roles::variable_prefixes();
    let mut read: Option<BTreeSet<String>> = None;
    for (name, origin) in definitions(project, playbook)? {
        let Some((prefix, _)) = name.split_once('_') else {
            continue;
        };
        if !prefixes.contains(prefix) || known.contains_key(&name) {
            continue;
        }
        // Read only when some name needs it: the templates directory may be large.
        let read = read.get_or_insert_with(|| read_by_templates(project, playbook));
        if read.contains(&name) {
            continue;
        }
        let help = match closest(&name, prefix, known.keys()) {
            Some(c) => format!(
                "did you mean `{c}`? (a variable of {}; every role variable: docs/roles.md)",
                role_list(&known[c])
            ),
            None => "every role variable: docs/roles.md".to_string(),
        };
        return Err(origin
            .name_error(
                &name,
                format!(
                    "`{name}` is set, but no role has a variable of that name and no template reads it"
                ),
            )
            .with_help(help));
    }
    Ok(())
}

/// The role variable `name` most likely stands for: one it begins with
/// (`ssh_port` for `ssh_port_typo`), else the nearest by edit distance among
/// those of the same prefix.
fn closest<'k>(
    name: &str,
    prefix: &str,
    known: impl Iterator<Item = &'k String>,
) -> Option<&'k String> {
    let candidates: Vec<&String> = known
        .filter(|k| k.strip_prefix(prefix).is_some_and(|r| r.starts_with('_')))
        .collect();
    let extended = candidates
        .iter()
        .filter(|k| {
            name.strip_prefix(k.as_str())
                .is_some_and(|rest| rest.starts_with('_'))
        })
        .max_by_key(|k| k.len());
    extended
        .or_else(|| {
            candidates
                .iter()
                .min_by_key(|k| strsim::levenshtein(k, name))
        })
        .copied()
}

fn role_list(roles: &[&str]) -> String {
    let names: Vec<String> = roles.iter().map(|r| format!("role {r}")).collect();
    names.join(", ")
}

/// Every variable set anywhere, where it was set: the inventory's `[vars]`,
/// group and host vars, each play's `vars`, `-e`, in that order (each file in
/// file order).
fn definitions(project: &Project, playbook: &Doc<'_>) -> InputResult<Vec<(String, Origin)>> {
    let mut out = Vec::new();
    let inventory_src = &project.inventory.source;
    let inventory = Doc::parse(inventory_src)?;
    let mut tables: Vec<(&crate::diag::SourceFile, &Node<'_>)> = Vec::new();
    let root = inventory.root.get_ref();
    if let Some(v) = root.get("vars") {
        tables.push((inventory_src, v));
    }
    for section in ["groups", "hosts"] {
        if let Some(DeValue::Table(entries)) = root.get(section).map(|s| s.get_ref()) {
            for entry in entries.values() {
                if let Some(v) = entry.get_ref().get("vars") {
                    tables.push((inventory_src, v));
                }
            }
        }
    }
    if let Some(DeValue::Array(plays)) = playbook.root.get_ref().get("play").map(|p| p.get_ref()) {
        for play in plays {
            if let Some(v) = play.get_ref().get("vars") {
                tables.push((&project.playbook.source, v));
            }
        }
    }
    for (src, table) in tables {
        let mut entries: Vec<(String, Origin)> = vars::origins(src, table).into_iter().collect();
        entries.sort_by_key(|(_, o)| match o {
            Origin::File { key, .. } => key.start,
            Origin::Extra => 0,
        });
        out.extend(entries);
    }
    out.extend(project.extra.keys().map(|k| (k.clone(), Origin::Extra)));
    Ok(out)
}

/// The variables templates read: those of every file in the templates
/// directory (whether or not this playbook renders it), and of every string of
/// the playbook's resources.
fn read_by_templates(project: &Project, playbook: &Doc<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(dir) = project.templates.dir() {
        let mut texts = Vec::new();
        files(dir, 0, &mut texts);
        for text in texts {
            out.extend(variables_of(&text));
        }
    }
    if let Some(DeValue::Array(plays)) = playbook.root.get_ref().get("play").map(|p| p.get_ref()) {
        for play in plays {
            if let Some(resources) = play.get_ref().get("resources") {
                strings(resources, &mut |s| out.extend(variables_of(s)));
            }
        }
    }
    out
}

/// The top-level variables a template reads; when it does not parse (its
/// error comes when it is rendered), every word in it.
fn variables_of(text: &str) -> BTreeSet<String> {
    if !text.contains("{{") && !text.contains("{%") {
        return BTreeSet::new();
    }
    let env = minijinja::Environment::new();
    match env.template_from_str(text) {
        Ok(t) => t.undeclared_variables(false).into_iter().collect(),
        Err(_) => text
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect(),
    }
}

/// Every string in a TOML value.
fn strings(node: &Node<'_>, f: &mut impl FnMut(&str)) {
    match node.get_ref() {
        DeValue::String(s) => f(s),
        DeValue::Array(items) => items.iter().for_each(|i| strings(i, f)),
        DeValue::Table(t) => t.values().for_each(|v| strings(v, f)),
        _ => {}
    }
}

/// The text files below `dir` (not hidden, at most 1 MiB each).
fn files(dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() && depth < 16 {
            files(&path, depth + 1, out);
        } else if path
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() <= 1 << 20)
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_role_variable_is_suggested() {
        let known = roles::variables();
        let suggest = |name: &str| {
            let prefix = name.split_once('_').unwrap().0;
            closest(name, prefix, known.keys()).cloned()
        };
        assert_eq!(
            suggest("firewall_ssh_form").as_deref(),
            Some("firewall_ssh_from")
        );
        assert_eq!(suggest("ssh_port_typo").as_deref(), Some("ssh_port"));
        assert_eq!(
            suggest("grafana_admin_pasword").as_deref(),
            Some("grafana_admin_password")
        );
        assert_eq!(suggest("swarm_network").as_deref(), Some("swarm_networks"));
    }

    #[test]
    fn templates_read_their_top_level_variables() {
        let read = variables_of("{% for r in firewall_extra %}{{ r.port }}{% endfor %}{{ motd }}");
        assert!(read.contains("firewall_extra") && read.contains("motd"));
        assert!(!read.contains("r") && !read.contains("port"));
        assert!(variables_of("no template here: firewall_x").is_empty());
        // A template that does not parse counts every word in it.
        assert!(variables_of("{% if ssh_banner %}").contains("ssh_banner"));
    }

    /// The built-in templates read no variable that begins like a role's
    /// without being one, so a user setting it is never refused.
    #[test]
    fn built_in_templates_read_only_role_variables_with_a_role_prefix() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/monitoring");
        let mut texts = Vec::new();
        files(&dir, 0, &mut texts);
        assert!(texts.len() >= 10, "{}", dir.display());
        let known = roles::variables();
        let prefixes = roles::variable_prefixes();
        // What the monitoring role passes its templates itself, over any variable.
        let injected = ["postgres_exporter_targets"];
        let mut stray = BTreeSet::new();
        for text in &texts {
            for name in variables_of(text) {
                let prefixed = name
                    .split_once('_')
                    .is_some_and(|(p, _)| prefixes.contains(p));
                if prefixed && !known.contains_key(&name) && !injected.contains(&name.as_str()) {
                    stray.insert(name);
                }
            }
        }
        assert!(stray.is_empty(), "{stray:?}");
    }
}
