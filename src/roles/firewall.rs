//! `firewall`: UFW installed and active, incoming denied by default, SSH
//! allowed (before the firewall goes up), the user's rules, the Swarm ports
//! open only to the other Swarm nodes, and ports published by containers made
//! to obey the firewall (DOCKER-USER rules in /etc/ufw/after.rules).
//! Every address and port is checked here, before any host is contacted.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{RoleContext, TypedRole};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::package::Package;
use crate::resource::ufw::{Proto, Published, Rule, Source, Ufw, parse_port};

pub struct Firewall;

/// A port as the user writes it: `80`, `"80"` or `"8000:8100"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortVar {
    Number(i64),
    Text(String),
}

impl PortVar {
    fn text(&self) -> String {
        match self {
            PortVar::Number(n) => n.to_string(),
            PortVar::Text(s) => s.clone(),
        }
    }
}

fn tcp() -> String {
    "tcp".into()
}

fn any() -> String {
    "any".into()
}

/// One entry of `firewall_rules`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleVar {
    pub port: PortVar,
    #[serde(default = "tcp")]
    pub proto: String,
    #[serde(default = "any")]
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One entry of `firewall_docker_published`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedVar {
    pub port: PortVar,
    #[serde(default = "tcp")]
    pub proto: String,
    #[serde(default = "any")]
    pub from: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// false: UFW is made inactive and slipway's DOCKER-USER rules are removed.
    pub firewall_enabled: bool,
    /// The SSH port, allowed before the firewall is enabled (shared with
    /// ssh_hardening and fail2ban).
    pub ssh_port: u16,
    /// Who may reach SSH: "any" or addresses and networks (CIDR).
    pub firewall_ssh_from: Vec<String>,
    /// More incoming rules.
    pub firewall_rules: Vec<RuleVar>,
    /// Open the Swarm ports to the other Swarm nodes of the inventory.
    pub firewall_swarm: bool,
    /// The inventory groups whose hosts are Swarm managers and workers.
    pub swarm_managers_group: String,
    pub swarm_workers_group: String,
    /// Remove every UFW rule slipway did not plan.
    pub firewall_exclusive: bool,
    /// Ports published by containers that may be reached from outside, and from where.
    pub firewall_docker_published: Vec<PublishedVar>,
    /// Install the DOCKER-USER rules that make published ports obey the firewall.
    pub firewall_docker_user: bool,
    /// Let Prometheus reach the monitoring stack's exporters, which publish
    /// their ports on every node in host mode: from the other Swarm nodes,
    /// and from containers on the node itself.
    pub firewall_monitoring_exporters: bool,
    /// The exporters' published ports (shared with the monitoring role).
    pub monitoring_node_exporter_port: u16,
    pub monitoring_cadvisor_port: u16,
    /// On edge nodes (`swarm_node_labels` with `edge = "true"`), let anyone
    /// reach the edge stack's published 80 and 443.
    pub firewall_edge: bool,
    /// This host's node labels (shared with swarm and edge).
    pub swarm_node_labels: std::collections::BTreeMap<String, String>,
    /// Seconds after a firewall change before the host puts the previous
    /// rules back by itself, unless a new SSH login proved it first.
    pub firewall_revert_window: u32,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            firewall_enabled: true,
            ssh_port: 22,
            firewall_ssh_from: vec!["any".into()],
            firewall_rules: Vec::new(),
            firewall_swarm: true,
            swarm_managers_group: "managers".into(),
            swarm_workers_group: "workers".into(),
            firewall_exclusive: true,
            firewall_docker_published: Vec::new(),
            firewall_docker_user: true,
            firewall_monitoring_exporters: true,
            monitoring_node_exporter_port: 9100,
            monitoring_cadvisor_port: 8080,
            firewall_edge: true,
            swarm_node_labels: Default::default(),
            firewall_revert_window: 90,
        }
    }
}

/// How UFW's tuples name the port of a protocol without ports (ESP).
const ESP_PORT: &str = "any";

/// The comments slipway gives the rules it adds on its own.
pub const SSH_COMMENT: &str = "slipway: ssh";
pub const SWARM_COMMENT: &str = "slipway: swarm";

/// Pushes `rule` unless an equal one (port, protocol, source) is there already.
fn push(rules: &mut Vec<Rule>, rule: Rule) {
    if !rules
        .iter()
        .any(|r| r.port == rule.port && r.proto == rule.proto && r.from == rule.from)
    {
        rules.push(rule);
    }
}

/// Checks one entry's port, protocol and source; `what` names it in errors.
fn entry(
    what: &str,
    port: &PortVar,
    proto: &str,
    from: &str,
) -> Result<(String, Proto, Source), String> {
    let port = parse_port(&port.text()).map_err(|e| format!("{what}.port: {e}"))?;
    let proto = Proto::parse(proto)
        .ok()
        .filter(|p| *p != Proto::Esp)
        .ok_or_else(|| {
            format!("{what}.proto: `{proto}` is not a protocol: write tcp, udp or any")
        })?;
    if proto == Proto::Any && port.contains(':') {
        return Err(format!(
            "{what}: a port range needs proto = \"tcp\" or \"udp\" (UFW cannot write a range for both)"
        ));
    }
    let from = Source::parse(from).map_err(|e| format!("{what}.from: {e}"))?;
    Ok((port, proto, from))
}

/// The addresses of the other Swarm nodes: (all of them, the managers' only).
fn swarm_peers(v: &Vars, ctx: &RoleContext<'_>) -> Result<Vec<Source>, String> {
    let mut peers = BTreeSet::new();
    for h in &ctx.inventory.hosts {
        let node = h
            .groups
            .iter()
            .any(|g| *g == v.swarm_managers_group || *g == v.swarm_workers_group);
        if !node || h.name == ctx.host.name {
            continue;
        }
        let ip: IpAddr = h.address.parse().map_err(|_| {
            format!(
                "Swarm node {} has the address `{}`, which is not an IP address; firewall rules need IP addresses: set `address` in the inventory (or firewall_swarm = false)",
                h.name, h.address
            )
        })?;
        peers.insert(Source::Net(ip.to_string()));
    }
    Ok(peers.into_iter().collect())
}

pub fn rules(v: &Vars, ctx: &RoleContext<'_>) -> Result<Vec<Rule>, String> {
    if v.ssh_port == 0 {
        return Err("ssh_port: 0 is not a port".into());
    }
    if !(10..=3600).contains(&v.firewall_revert_window) {
        return Err(format!(
            "firewall_revert_window: {} is not between 10 and 3600 seconds",
            v.firewall_revert_window
        ));
    }
    let mut rules = Vec::new();
    if v.firewall_ssh_from.is_empty() {
        return Err(
            "firewall_ssh_from is empty: SSH would be closed and slipway locked out; list who may connect (\"any\" for everyone)".into(),
        );
    }
    for (i, from) in v.firewall_ssh_from.iter().enumerate() {
        let from = Source::parse(from).map_err(|e| format!("firewall_ssh_from[{i}]: {e}"))?;
        push(
            &mut rules,
            Rule {
                port: v.ssh_port.to_string(),
                proto: Proto::Tcp,
                from,
                comment: Some(SSH_COMMENT.into()),
            },
        );
    }
    let in_group = |g: &str| ctx.host.groups.iter().any(|x| x == g);
    let manager = in_group(&v.swarm_managers_group);
    if v.firewall_swarm && (manager || in_group(&v.swarm_workers_group)) {
        let peers = swarm_peers(v, ctx)?;
        let mut ports = Vec::new();
        if manager {
            ports.push(("2377", Proto::Tcp));
        }
        // ESP carries the encrypted overlay networks (`encrypted = true`).
        ports.extend([
            ("7946", Proto::Tcp),
            ("7946", Proto::Udp),
            ("4789", Proto::Udp),
            (ESP_PORT, Proto::Esp),
        ]);
        for (port, proto) in ports {
            for from in &peers {
                push(
                    &mut rules,
                    Rule {
                        port: port.into(),
                        proto,
                        from: from.clone(),
                        comment: Some(SWARM_COMMENT.into()),
                    },
                );
            }
        }
    }
    for (i, r) in v.firewall_rules.iter().enumerate() {
        let what = format!("firewall_rules[{i}]");
        let (port, proto, from) = entry(&what, &r.port, &r.proto, &r.from)?;
        if let Some(c) = &r.comment
            && (c.is_empty() || c.chars().any(char::is_control))
        {
            return Err(format!(
                "{what}.comment: write one line of text, or leave it out"
            ));
        }
        push(
            &mut rules,
            Rule {
                port,
                proto,
                from,
                comment: r.comment.clone(),
            },
        );
    }
    Ok(rules)
}

pub fn published(v: &Vars, ctx: &RoleContext<'_>) -> Result<Vec<Published>, String> {
    let mut out = v
        .firewall_docker_published
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (port, proto, from) = entry(
                &format!("firewall_docker_published[{i}]"),
                &p.port,
                &p.proto,
                &p.from,
            )?;
            Ok(Published { port, proto, from })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if exporters_open(v, ctx) {
        for from in swarm_peers(v, ctx)? {
            for port in exporter_ports(v) {
                let p = Published {
                    port,
                    proto: Proto::Tcp,
                    from: from.clone(),
                };
                // Inventories written before this opened them themselves.
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    if v.firewall_edge && super::edge::is_edge_node(&v.swarm_node_labels) {
        for port in ["80", "443"] {
            let p = Published {
                port: port.into(),
                proto: Proto::Tcp,
                from: Source::Any,
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The monitoring exporters' ports are opened on Swarm nodes only: the
/// stack's global services run nowhere else.
fn exporters_open(v: &Vars, ctx: &RoleContext<'_>) -> bool {
    let in_group = |g: &str| ctx.host.groups.iter().any(|x| x == g);
    v.firewall_monitoring_exporters
        && v.firewall_swarm
        && (in_group(&v.swarm_managers_group) || in_group(&v.swarm_workers_group))
}

fn exporter_ports(v: &Vars) -> Vec<String> {
    let mut ports = vec![v.monitoring_node_exporter_port.to_string()];
    if v.monitoring_cadvisor_port != v.monitoring_node_exporter_port {
        ports.push(v.monitoring_cadvisor_port.to_string());
    }
    ports
}

/// The firewall this role asks for.
pub fn ufw(v: &Vars, ctx: &RoleContext<'_>) -> Result<Ufw, String> {
    let rules = rules(v, ctx)?;
    let published = published(v, ctx)?;
    Ok(Ufw {
        enabled: v.firewall_enabled,
        rules,
        exclusive: v.firewall_exclusive,
        docker_published: v.firewall_docker_user.then_some(published),
        // Prometheus reaches its own node's exporters through the node's
        // address, from Swarm's gateway bridge back into it.
        docker_local: if exporters_open(v, ctx) {
            exporter_ports(v)
        } else {
            Vec::new()
        },
        ssh_port: v.ssh_port,
        revert_window: v.firewall_revert_window,
    })
}

impl TypedRole for Firewall {
    type Vars = Vars;
    const NAME: &'static str = "firewall";
    const ABOUT: &'static str = "UFW: deny incoming, SSH and listed ports allowed, Swarm ports between nodes only, published container ports filtered (DOCKER-USER)";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        // The messages begin with the variable they are about.
        let err = |e: String| {
            let path = e.split([':', ' ']).next().unwrap_or_default();
            ctx.var_error(path, format!("role firewall on {}: {e}", ctx.host.name))
                .with_help("see docs/roles-firewall.md for the firewall variables")
        };
        let ufw = ufw(&v, ctx).map_err(err)?;
        let mut out: Vec<Box<dyn Resource>> = Vec::new();
        if v.firewall_enabled {
            out.push(Box::new(Package::present(&["ufw"])));
        }
        out.push(Box::new(ufw));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Inventory, VarMap};
    use crate::diag::SourceFile;
    use crate::redact::Redactor;
    use crate::roles::Role;
    use serde_json::json;

    const INVENTORY: &str = r#"
[hosts.m1]
address = "172.28.5.11"
groups = ["managers"]

[hosts.w1]
address = "172.28.5.12"
groups = ["workers"]

[hosts.w2]
address = "172.28.5.13"
groups = ["workers"]

[hosts.db]
address = "db.example.com"
groups = ["databases"]
"#;

    fn inventory(text: &str) -> Inventory {
        Inventory::load(
            SourceFile::from_text(std::path::Path::new("inventory.toml"), text.into()),
            &Redactor::default(),
        )
        .unwrap()
    }

    /// The firewall role's resources for `host`, with `vars` over the defaults.
    fn build(inv: &Inventory, host: &str, vars: serde_json::Value) -> InputResult<Ufw> {
        let mut v = Firewall.defaults();
        let top: VarMap = serde_json::from_value(vars).unwrap();
        crate::config::vars::layer(&mut v, &top);
        let ctx = RoleContext {
            host: inv.host(host).unwrap(),
            vars: &v,
            inventory: inv,
            templates: &crate::template::Templates::new(None),
            template_vars: serde_json::Value::Null,
            offline: false,
            origins: &Default::default(),
            inventory_origins: &Default::default(),
            notices: &Default::default(),
        };
        let rs = Firewall.resources(&ctx)?;
        let ids: Vec<String> = rs.iter().map(|r| r.id()).collect();
        assert_eq!(rs.last().unwrap().id(), "ufw:firewall", "{ids:?}");
        // Build again through the typed path, to look inside.
        let vars: Vars =
            serde_json::from_value(serde_json::Value::Object(v.clone().into_iter().collect()))
                .unwrap();
        Ok(ufw(&vars, &ctx).unwrap())
    }

    fn shown(u: &Ufw) -> Vec<String> {
        u.rules
            .iter()
            .map(|r| {
                let from = match &r.from {
                    Source::Any => "any",
                    Source::Net(n) => n,
                };
                format!("{}/{} {from}", r.port, r.proto.as_str())
            })
            .collect()
    }

    #[test]
    fn defaults_open_ssh_and_the_swarm_ports_to_the_other_nodes_only() {
        let inv = inventory(INVENTORY);
        let m = build(&inv, "m1", json!({})).unwrap();
        assert_eq!(
            shown(&m),
            [
                "22/tcp any",
                "2377/tcp 172.28.5.12",
                "2377/tcp 172.28.5.13",
                "7946/tcp 172.28.5.12",
                "7946/tcp 172.28.5.13",
                "7946/udp 172.28.5.12",
                "7946/udp 172.28.5.13",
                "4789/udp 172.28.5.12",
                "4789/udp 172.28.5.13",
                "any/esp 172.28.5.12",
                "any/esp 172.28.5.13",
            ]
        );
        assert!(m.enabled && m.exclusive);
        // The monitoring exporters' published ports: from the other nodes,
        // and from this node's own containers.
        let exporters = |peer: &str| {
            ["9100", "8080"].map(|port| Published {
                port: port.into(),
                proto: Proto::Tcp,
                from: Source::Net(peer.into()),
            })
        };
        let mut want = exporters("172.28.5.12").to_vec();
        want.extend(exporters("172.28.5.13"));
        assert_eq!(m.docker_published, Some(want));
        assert_eq!(m.docker_local, ["9100", "8080"]);
        // Listed by hand as well: once.
        let listed =
            json!({"firewall_docker_published": [{"port": "9100", "from": "172.28.5.12"}]});
        assert_eq!(
            build(&inv, "m1", listed).unwrap().docker_published,
            m.docker_published
        );
        let off = build(&inv, "m1", json!({"firewall_monitoring_exporters": false})).unwrap();
        assert_eq!(off.docker_published, Some(Vec::new()));
        assert!(off.docker_local.is_empty());
        // Not a Swarm node: no exporter runs there.
        let db = build(&inv, "db", json!({})).unwrap();
        assert_eq!(db.docker_published, Some(Vec::new()));
        assert!(db.docker_local.is_empty());
        // A worker does not take Swarm management traffic.
        let w = build(&inv, "w1", json!({})).unwrap();
        assert_eq!(
            shown(&w),
            [
                "22/tcp any",
                "7946/tcp 172.28.5.11",
                "7946/tcp 172.28.5.13",
                "7946/udp 172.28.5.11",
                "7946/udp 172.28.5.13",
                "4789/udp 172.28.5.11",
                "4789/udp 172.28.5.13",
                "any/esp 172.28.5.11",
                "any/esp 172.28.5.13",
            ]
        );
        // Not a Swarm node: no Swarm ports, and its name-only address is not needed.
        let db = build(&inv, "db", json!({})).unwrap();
        assert_eq!(shown(&db), ["22/tcp any"]);
    }

    #[test]
    fn esp_is_opened_by_the_role_only() {
        let inv = inventory(INVENTORY);
        let e = build(
            &inv,
            "m1",
            json!({"firewall_rules": [{"port": "80", "proto": "esp"}]}),
        )
        .unwrap_err();
        assert!(
            format!("{e:?}").contains("`esp` is not a protocol: write tcp, udp or any"),
            "{e:?}"
        );
    }

    #[test]
    fn user_rules_ssh_sources_and_published_ports() {
        let inv = inventory(INVENTORY);
        let u = build(
            &inv,
            "db",
            json!({
                "ssh_port": 2222,
                "firewall_ssh_from": ["10.0.0.0/8", "192.0.2.7"],
                "firewall_rules": [
                    {"port": 443},
                    {"port": "8000:8100", "proto": "udp", "from": "2001:db8::/32", "comment": "media"},
                    {"port": "53", "proto": "any", "from": "10.0.0.0/8"},
                    {"port": 2222, "from": "10.0.0.0/8"},
                ],
                "firewall_docker_published": [{"port": 8080, "from": "192.0.2.0/24"}],
                "firewall_exclusive": false,
            }),
        )
        .unwrap();
        assert_eq!(
            shown(&u),
            [
                "2222/tcp 10.0.0.0/8",
                "2222/tcp 192.0.2.7",
                "443/tcp any",
                "8000:8100/udp 2001:db8::/32",
                "53/any 10.0.0.0/8",
            ]
        );
        assert_eq!(u.rules[0].comment.as_deref(), Some(SSH_COMMENT));
        assert_eq!(u.rules[3].comment.as_deref(), Some("media"));
        assert!(!u.exclusive);
        assert_eq!(
            u.docker_published,
            Some(vec![Published {
                port: "8080".into(),
                proto: Proto::Tcp,
                from: Source::Net("192.0.2.0/24".into()),
            }])
        );
        let off = build(&inv, "db", json!({"firewall_docker_user": false})).unwrap();
        assert_eq!(off.docker_published, None);
    }

    fn error(inv: &Inventory, host: &str, vars: serde_json::Value) -> String {
        match build(inv, host, vars) {
            Ok(_) => panic!("no error"),
            Err(e) => e.message().to_string(),
        }
    }

    #[test]
    fn bad_input_is_an_error_before_any_host_is_contacted() {
        let inv = inventory(INVENTORY);
        for (vars, want) in [
            (
                json!({"firewall_rules": [{"port": "80", "from": "10.0.0.1/8"}]}),
                "firewall_rules[0].from: `10.0.0.1/8` has host bits set",
            ),
            (
                json!({"firewall_rules": [{"port": 70000}]}),
                "firewall_rules[0].port: `70000` is not a port",
            ),
            (
                json!({"firewall_rules": [{"port": "1:2", "proto": "any"}]}),
                "firewall_rules[0]: a port range needs proto",
            ),
            (
                json!({"firewall_rules": [{"port": "1", "proto": "icmp"}]}),
                "firewall_rules[0].proto: `icmp` is not a protocol",
            ),
            (
                json!({"firewall_docker_published": [{"port": 80, "from": "nowhere"}]}),
                "firewall_docker_published[0].from: `nowhere`",
            ),
            (
                json!({"firewall_ssh_from": []}),
                "firewall_ssh_from is empty",
            ),
            (
                json!({"firewall_ssh_from": ["10.0.0.0/99"]}),
                "firewall_ssh_from[0]:",
            ),
        ] {
            let e = error(&inv, "m1", vars.clone());
            assert!(e.starts_with("role firewall on m1: "), "{e}");
            assert!(e.contains(want), "{vars}: {e}");
        }
        // Unknown keys in a rule are caught by serde, with the path.
        let e = error(
            &inv,
            "m1",
            json!({"firewall_rules": [{"port": 80, "source": "any"}]}),
        );
        assert!(
            e.contains("firewall_rules[0]") && e.contains("source"),
            "{e}"
        );

        // A Swarm node known by name only cannot be written into a rule.
        let named = INVENTORY.replace("groups = [\"databases\"]", "groups = [\"workers\"]");
        let e = error(&inventory(&named), "m1", json!({}));
        assert!(
            e.contains(
                "Swarm node db has the address `db.example.com`, which is not an IP address"
            ),
            "{e}"
        );
        build(&inventory(&named), "m1", json!({"firewall_swarm": false})).unwrap();
    }
}
