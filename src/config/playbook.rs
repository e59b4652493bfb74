//! The playbook: ordered plays, each a host pattern with roles and resources.

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::doc::{Doc, Node};
use super::inventory::Inventory;
use super::vars::RawVars;
use crate::diag::{InputResult, SourceFile};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    #[serde(default)]
    play: Vec<Spanned<RawPlay>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlay {
    name: Option<String>,
    hosts: Spanned<String>,
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    vars: RawVars,
    // Typed per host, after templating; see `desired`.
    #[serde(default)]
    resources: Vec<IgnoredAny>,
}

#[derive(Debug, Clone)]
pub struct Play {
    pub index: usize,
    pub name: String,
    pub pattern: Spanned<String>,
    pub roles: Vec<Spanned<String>>,
    pub vars: RawVars,
    pub resource_count: usize,
    /// Host names the pattern selects, in inventory order.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub source: SourceFile,
    pub plays: Vec<Play>,
}

impl Playbook {
    pub fn load(source: SourceFile, inventory: &Inventory) -> InputResult<Self> {
        let doc = Doc::parse(&source)?;
        let raw: RawPlaybook = doc.typed(&doc.root)?;
        if raw.play.is_empty() {
            return Err(source
                .error(0..0, "the playbook has no plays")
                .with_help("add one:\n[[play]]\nhosts = \"all\"\nroles = [\"base\"]"));
        }
        let mut plays = Vec::new();
        for (index, spanned) in raw.play.into_iter().enumerate() {
            let p = spanned.into_inner();
            let hosts = inventory.select(p.hosts.get_ref()).map_err(|unknown| {
                if unknown.is_empty() {
                    return source
                        .error(p.hosts.span(), "`hosts` names no host or group")
                        .with_help(format!(
                            "name hosts or groups, comma-separated, or \"all\"; known: {}",
                            inventory.names().join(", ")
                        ));
                }
                source
                    .error_within(
                        p.hosts.span(),
                        &unknown,
                        format!(
                            "no host or group named `{unknown}` in {}",
                            inventory.source.name()
                        ),
                    )
                    .with_help(format!("known: {}", inventory.names().join(", ")))
            })?;
            for role in &p.roles {
                if crate::roles::lookup(role.get_ref()).is_none() {
                    return Err(source
                        .error(role.span(), format!("unknown role `{}`", role.get_ref()))
                        .with_help(crate::roles::known_help()));
                }
            }
            plays.push(Play {
                index,
                name: p
                    .name
                    .unwrap_or_else(|| format!("play {} ({})", index + 1, p.hosts.get_ref())),
                pattern: p.hosts,
                roles: p.roles,
                vars: p.vars,
                resource_count: p.resources.len(),
                hosts,
            });
        }
        Ok(Self { source, plays })
    }
}

/// The TOML node of play `play`.
pub fn play_node<'d, 'a>(doc: &'d Doc<'a>, play: usize) -> Option<&'d Node<'a>> {
    doc.root.get_ref().get("play")?.get_ref().get(play)
}

/// The TOML node of resource `res` of play `play`, for typed parsing after templating.
pub fn resource_node<'a>(doc: &Doc<'a>, play: usize, res: usize) -> Option<Node<'a>> {
    play_node(doc, play)?
        .get_ref()
        .get("resources")?
        .get_ref()
        .get(res)
        .cloned()
}
