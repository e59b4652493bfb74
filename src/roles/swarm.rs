//! `swarm` puts each host in the swarm (the first host of the managers group
//! initialises it; other managers and the workers join). `swarm_cluster`
//! runs on that leader after everyone joined: every node Ready in the right
//! role, node labels from inventory variables, overlay networks.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{RoleContext, TypedRole};
use crate::config::Host;
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;
use crate::resource::swarm::{
    ExpectedNode, Leader, Network, SwarmCluster as ClusterResource, SwarmNode, SwarmRole,
};

pub struct Swarm;
pub struct SwarmCluster;

/// One entry of `swarm_networks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkVar {
    pub name: String,
    pub encrypted: bool,
    pub attachable: bool,
}

impl Default for NetworkVar {
    fn default() -> Self {
        Self {
            name: String::new(),
            encrypted: true,
            attachable: false,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    pub swarm_managers_group: String,
    pub swarm_workers_group: String,
    /// The address this node advertises to the others; empty means its inventory address.
    pub swarm_advertise_addr: String,
    /// Labels of this node (set from the leader by swarm_cluster).
    pub swarm_node_labels: BTreeMap<String, String>,
    /// Overlay networks created by swarm_cluster: { name, encrypted (true), attachable (false) }.
    pub swarm_networks: Vec<NetworkVar>,
    /// Seconds swarm_cluster waits for joined nodes to become Ready.
    pub swarm_ready_timeout: u32,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            swarm_managers_group: "managers".into(),
            swarm_workers_group: "workers".into(),
            swarm_advertise_addr: String::new(),
            swarm_node_labels: BTreeMap::new(),
            swarm_networks: Vec::new(),
            swarm_ready_timeout: 90,
        }
    }
}

/// Where a host can be reached by the other nodes: its `swarm_advertise_addr`
/// variable, else its inventory address; an IP address either way.
fn node_address(host: &Host, ctx: &RoleContext<'_>) -> InputResult<String> {
    let set = host
        .vars
        .get("swarm_advertise_addr")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty());
    let addr = set.unwrap_or(&host.address);
    addr.parse::<IpAddr>().map(|_| addr.to_string()).map_err(|_| {
        let message = format!(
            "swarm: {} has no IP address to advertise (`{addr}`): set its address to an IP, or swarm_advertise_addr",
            host.name
        );
        match set {
            Some(_) => ctx.host_var_error(&host.name, "swarm_advertise_addr", message),
            None => InputError::plain(message),
        }
    })
}

fn role_of(v: &Vars, host: &Host) -> Option<SwarmRole> {
    if host.groups.contains(&v.swarm_managers_group) {
        Some(SwarmRole::Manager)
    } else if host.groups.contains(&v.swarm_workers_group) {
        Some(SwarmRole::Worker)
    } else {
        None
    }
}

/// The first host of the managers group, in inventory order: it starts the
/// swarm, and runs what is done once for all of it.
pub(super) fn leader<'c>(managers: &str, ctx: &'c RoleContext<'_>) -> InputResult<&'c Host> {
    ctx.inventory
        .groups
        .get(managers)
        .and_then(|m| m.first())
        .and_then(|name| ctx.inventory.host(name))
        .ok_or_else(|| {
            InputError::plain(format!(
                "swarm: the inventory has no host in group `{managers}`, so there is no manager to lead the swarm"
            ))
        })
}

impl TypedRole for Swarm {
    type Vars = Vars;
    const NAME: &'static str = "swarm";
    const ABOUT: &'static str = "Swarm membership: the first manager initialises, other managers and workers join with tokens kept in memory";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let host = ctx.host;
        let role = role_of(&v, host).ok_or_else(|| {
            InputError::plain(format!(
                "swarm: {} is in neither `{}` nor `{}`, so its role in the swarm is unknown",
                host.name, v.swarm_managers_group, v.swarm_workers_group
            ))
        })?;
        let lead = leader(&v.swarm_managers_group, ctx)?;
        let leader_address = node_address(lead, ctx)?;
        let is_leader = lead.name == host.name;
        Ok(vec![Box::new(SwarmNode {
            role,
            leader: (!is_leader).then(|| Leader {
                host: lead.name.clone(),
                address: leader_address.clone(),
            }),
            advertise_addr: node_address(host, ctx)?,
            leader_address,
        })])
    }
}

impl TypedRole for SwarmCluster {
    type Vars = Vars;
    const NAME: &'static str = "swarm_cluster";
    const ABOUT: &'static str =
        "on the swarm leader: every node Ready in the right role, node labels, overlay networks";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        if leader(&v.swarm_managers_group, ctx)?.name != ctx.host.name {
            return Ok(Vec::new());
        }
        let mut nodes = Vec::new();
        for host in &ctx.inventory.hosts {
            let Some(role) = role_of(&v, host) else {
                continue;
            };
            let labels = host
                .vars
                .get("swarm_node_labels")
                .map(|l| serde_json::from_value::<BTreeMap<String, String>>(l.clone()))
                .transpose()
                .map_err(|e| {
                    ctx.host_var_error(
                        &host.name,
                        "swarm_node_labels",
                        format!("swarm: {}: swarm_node_labels: {e}", host.name),
                    )
                })?
                .unwrap_or_default();
            nodes.push(ExpectedNode {
                name: host.name.clone(),
                address: node_address(host, ctx)?,
                role,
                labels,
            });
        }
        let networks = v
            .swarm_networks
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let ok = !n.name.is_empty()
                    && n.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                ok.then(|| Network {
                    name: n.name.clone(),
                    encrypted: n.encrypted,
                    attachable: n.attachable,
                })
                .ok_or_else(|| {
                    ctx.var_error(
                        &format!("swarm_networks[{i}].name"),
                        format!(
                            "role swarm_cluster on {}: swarm_networks[{i}].name: `{}` is not a valid network name",
                            ctx.host.name, n.name
                        ),
                    )
                })
            })
            .collect::<InputResult<Vec<_>>>()?;
        Ok(vec![Box::new(ClusterResource {
            nodes,
            networks,
            wait: v.swarm_ready_timeout,
        })])
    }
}
