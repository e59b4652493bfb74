//! Docker Swarm membership. A [`SwarmNode`] puts one host in the swarm: the
//! leader initialises it, the others join with a token read from the leader
//! at apply time (kept in memory only). A node in another swarm is an error,
//! never a silent leave. [`SwarmCluster`] runs on the leader once everyone
//! joined: every node Ready in the right role, node labels, overlay networks.

use std::collections::BTreeMap;

use super::{Need, Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwarmRole {
    Manager,
    Worker,
}

impl SwarmRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SwarmRole::Manager => "manager",
            SwarmRole::Worker => "worker",
        }
    }
}

/// The host that initialises the swarm, as the others reach it.
#[derive(Debug, Clone)]
pub struct Leader {
    pub host: String,
    pub address: String,
}

#[derive(Debug, Clone)]
pub struct SwarmNode {
    pub role: SwarmRole,
    /// None when this host is the leader.
    pub leader: Option<Leader>,
    pub advertise_addr: String,
    /// The leader's address, to recognise this swarm from a node's manager list.
    pub leader_address: String,
}

/// Docker's API over its socket (curl, not the docker CLI: a probe runs on
/// every plan, and each CLI call costs tens of milliseconds of CPU).
pub(crate) const API: &str = "curl -sf --unix-socket /run/docker.sock http://localhost";

/// The swarm fields of Docker's /info as key=value lines, sorted so the
/// section is stable.
fn probe_info() -> String {
    format!(
        r#"if [ -S /run/docker.sock ] && command -v curl >/dev/null 2>&1; then
{API}/info | grep -o '"LocalNodeState":"[a-z]*"\|"ControlAvailable":[a-z]*\|"NodeAddr":"[^"]*"\|"Addr":"[^"]*"' | sed 's/"//g; s/^LocalNodeState:/state=/; s/^ControlAvailable:/control=/; s/^NodeAddr:/addr=/; s/^Addr:/manager=/' | sort
else echo state=no-docker; fi
"#
    )
}

impl SwarmNode {
    fn token_key(&self, leader: &Leader) -> String {
        format!("swarm-{}-token@{}", self.role.as_str(), leader.host)
    }
}

impl Resource for SwarmNode {
    fn id(&self) -> String {
        "swarm:node".into()
    }

    fn probe(&self) -> String {
        probe_info()
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let state = obs.get("state").unwrap_or("no-docker");
        let managers = obs.all("manager");
        let id = self.id();
        match (state, &self.leader) {
            ("no-docker" | "inactive" | "", None) => Outcome::change(Change::new(
                id,
                Action::Create,
                format!(
                    "initialise a new swarm, advertising {}",
                    self.advertise_addr
                ),
            )),
            ("no-docker" | "inactive" | "", Some(l)) => Outcome::change(
                Change::new(
                    id,
                    Action::Create,
                    format!(
                        "join the swarm as a {} via {}:2377",
                        self.role.as_str(),
                        l.address
                    ),
                )
                .with_attrs(vec![Attr::new(
                    "token",
                    None::<String>,
                    Some("(known after apply)"),
                )]),
            ),
            ("active", _) => {
                let ours = managers
                    .iter()
                    .any(|m| m.split(':').next() == Some(self.leader_address.as_str()));
                let control = obs.get("control") == Some("true");
                let leads_this_swarm = self.leader.is_none() && control;
                if !(ours || leads_this_swarm) {
                    return Outcome::blocked(format!(
                        "this host is in another swarm (managers: {}); slipway never leaves a swarm: \
                         run `docker swarm leave` on it yourself if it should join this one",
                        managers.join(", ")
                    ));
                }
                match (self.role, control) {
                    (SwarmRole::Manager, false) => Outcome::blocked(
                        "this host is a worker but should be a manager; the swarm_cluster role promotes it".to_string(),
                    ),
                    _ => Outcome::unchanged(),
                }
            }
            (other, _) => Outcome::blocked(format!(
                "Docker reports the swarm state `{other}`; fix it by hand first"
            )),
        }
    }

    fn apply(&self, _change: &Change, observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        let addr = q(&self.advertise_addr);
        match &self.leader {
            None => {
                s.line(format!(
                    "docker swarm init --advertise-addr {addr} --listen-addr {addr}:2377"
                ));
            }
            Some(l) => {
                // The token travels as a payload, never inside the script text.
                let token = s.payload(observed.runtime(&self.token_key(l)).as_bytes().to_vec());
                s.line(format!("token=$({token})"));
                s.line(format!(
                    "docker swarm join --token \"$token\" --advertise-addr {addr} --listen-addr {addr}:2377 {}:2377",
                    q(&l.address)
                ));
            }
        }
        s
    }

    fn needs(&self, _change: &Change) -> Vec<Need> {
        match &self.leader {
            None => Vec::new(),
            Some(l) => vec![Need {
                host: l.host.clone(),
                key: self.token_key(l),
                command: format!("docker swarm join-token -q {}", self.role.as_str()),
            }],
        }
    }
}

/// A node the inventory expects in the swarm.
#[derive(Debug, Clone)]
pub struct ExpectedNode {
    pub name: String,
    pub address: String,
    pub role: SwarmRole,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub encrypted: bool,
    pub attachable: bool,
}

#[derive(Debug, Clone)]
pub struct SwarmCluster {
    pub nodes: Vec<ExpectedNode>,
    pub networks: Vec<Network>,
    /// Seconds to wait for nodes that just joined to become Ready.
    pub wait: u32,
}

/// The leader's nodes and overlay networks, as Docker's API returns them.
fn probe_cluster() -> String {
    format!(
        r#"case "$({API}/info 2>/dev/null)" in *'"ControlAvailable":true'*)
printf 'nodes=%s\n' "$({API}/nodes | base64 -w0)"
printf 'networks=%s\n' "$({API}/networks | base64 -w0)";;
*) echo leader=no;; esac
"#
    )
}

/// The nodes and networks of a cluster probe as stable lines:
/// `node=ADDR|ROLE|STATE|label=value,...` and `network=NAME|ENCRYPTED|ATTACHABLE`.
/// Docker's JSON carries timestamps and versions that change without the
/// swarm changing; these lines are what plans and fingerprints look at.
fn normalize(section: &str) -> String {
    use base64::Engine as _;
    use serde_json::Value;
    let decode = |b64: &str| -> Value {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or(Value::Null)
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut lines = Vec::new();
    for line in section.lines() {
        if let Some(b64) = line.strip_prefix("nodes=") {
            for n in decode(b64).as_array().into_iter().flatten() {
                let addr = match n["ManagerStatus"]["Addr"].as_str() {
                    Some(a) => a.rsplit_once(':').map_or(a, |(host, _)| host).to_string(),
                    None => text(&n["Status"]["Addr"]),
                };
                let labels: String = n["Spec"]["Labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={},", text(v)))
                    .collect();
                lines.push(format!(
                    "node={addr}|{}|{}|{labels}",
                    text(&n["Spec"]["Role"]),
                    text(&n["Status"]["State"])
                ));
            }
        } else if let Some(b64) = line.strip_prefix("networks=") {
            for n in decode(b64)
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["Driver"] == "overlay")
            {
                let encrypted = n["Options"].get("encrypted").is_some();
                lines.push(format!(
                    "network={}|{}|{}",
                    text(&n["Name"]),
                    if encrypted { "true" } else { "" },
                    n["Attachable"] == true
                ));
            }
        } else {
            lines.push(line.to_string());
        }
    }
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

struct SeenNode<'a> {
    role: &'a str,
    state: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
}

fn seen_nodes<'o>(obs: &'o Observed<'_>) -> BTreeMap<&'o str, SeenNode<'o>> {
    obs.all("node")
        .into_iter()
        .filter_map(|l| {
            let mut f = l.split('|');
            let (addr, role, state, labels) =
                (f.next()?, f.next()?, f.next()?, f.next().unwrap_or(""));
            let labels = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            Some((
                addr,
                SeenNode {
                    role,
                    state,
                    labels,
                },
            ))
        })
        .collect()
}

/// Shell that prints the node ID for an address (empty until it joined).
fn node_id(addr: &str) -> String {
    format!(
        "docker node ls -q | xargs -r docker node inspect --format '{{{{.ID}}}} {{{{if .ManagerStatus}}}}{{{{.ManagerStatus.Addr}}}}{{{{else}}}}{{{{.Status.Addr}}}}{{{{end}}}}' | sed 's/:[0-9]*$//' | awk -v a={} '$2 == a {{ print $1 }}'",
        q(addr)
    )
}

impl Resource for SwarmCluster {
    fn id(&self) -> String {
        "swarm:cluster".into()
    }

    fn probe(&self) -> String {
        probe_cluster()
    }

    fn stable(&self, section: &str) -> String {
        normalize(section)
    }

    fn plan(&self, raw: &Observed<'_>) -> Outcome {
        let normalized = normalize(raw.section);
        let obs = &Observed::new(&normalized, raw.facts);
        let seen = seen_nodes(obs);
        let mut attrs = Vec::new();
        let mut skipped = Vec::new();
        for n in &self.nodes {
            let want_role = n.role.as_str();
            match seen.get(n.address.as_str()) {
                None => attrs.push(Attr::new(
                    &n.name,
                    None::<String>,
                    Some(format!("{want_role}, ready (after it joins)")),
                )),
                Some(s) if s.state != "ready" => {
                    attrs.push(Attr::new(&n.name, Some(s.state), Some("ready")));
                }
                Some(s) if s.role != want_role => {
                    attrs.push(Attr::new(&n.name, Some(s.role), Some(want_role)))
                }
                Some(_) => {}
            }
            let have = seen.get(n.address.as_str()).map(|s| &s.labels);
            for (k, v) in &n.labels {
                let current = have.and_then(|l| l.get(k.as_str())).copied();
                if current != Some(v.as_str()) {
                    attrs.push(Attr::new(
                        &format!("{} label {k}", n.name),
                        current,
                        Some(v),
                    ));
                }
            }
        }
        let known: Vec<&str> = self.nodes.iter().map(|n| n.address.as_str()).collect();
        for addr in seen.keys().filter(|a| !known.contains(a)) {
            skipped.push(format!(
                "swarm node at {addr} is not in the inventory; left alone"
            ));
        }
        let networks: BTreeMap<&str, (bool, bool)> = obs
            .all("network")
            .into_iter()
            .filter_map(|l| {
                let mut f = l.split('|');
                let name = f.next()?;
                let encrypted = f.next() == Some("true");
                let attachable = f.next() == Some("true");
                Some((name, (encrypted, attachable)))
            })
            .collect();
        for net in &self.networks {
            match networks.get(net.name.as_str()) {
                None => attrs.push(Attr::new(
                    &format!("network {}", net.name),
                    None::<String>,
                    Some(format!(
                        "overlay{}{}",
                        if net.encrypted { ", encrypted" } else { "" },
                        if net.attachable { ", attachable" } else { "" }
                    )),
                )),
                Some(&(encrypted, attachable))
                    if encrypted != net.encrypted || attachable != net.attachable =>
                {
                    return Outcome::blocked(format!(
                        "overlay network {} exists with other options (encrypted: {encrypted}, attachable: {attachable}); \
                         remove it by hand to have it recreated",
                        net.name
                    ));
                }
                Some(_) => {}
            }
        }
        let mut outcome = Outcome::update(self.id(), "bring the swarm to its planned shape", attrs);
        outcome.skipped = skipped;
        outcome
    }

    fn apply(&self, _change: &Change, _observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        for n in &self.nodes {
            s.line(format!(
                "i=0; until [ -n \"$({id})\" ] && [ \"$(docker node inspect --format '{{{{.Status.State}}}}' \"$({id})\")\" = ready ]; do i=$((i+1)); if [ $i -ge {} ]; then echo {} >&2; exit 1; fi; sleep 1; done",
                self.wait,
                q(&format!("swarm node {} ({}) did not become Ready in {} s", n.name, n.address, self.wait)),
                id = node_id(&n.address),
            ));
            s.line(format!("id=$({})", node_id(&n.address)));
            let role = n.role.as_str();
            s.line(format!(
                "if [ \"$(docker node inspect --format '{{{{.Spec.Role}}}}' \"$id\")\" != {role} ]; then docker node {} \"$id\"; fi",
                if n.role == SwarmRole::Manager { "promote" } else { "demote" }
            ));
            for (k, v) in &n.labels {
                s.line(format!(
                    "docker node update --label-add {} \"$id\" >/dev/null",
                    q(&format!("{k}={v}"))
                ));
            }
        }
        for net in &self.networks {
            let mut opts = String::new();
            if net.encrypted {
                opts.push_str(" --opt encrypted");
            }
            if net.attachable {
                opts.push_str(" --attachable");
            }
            s.line(format!(
                "docker network inspect {n} >/dev/null 2>&1 || docker network create --driver overlay{opts} {n}",
                n = q(&net.name)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn worker() -> SwarmNode {
        SwarmNode {
            role: SwarmRole::Worker,
            leader: Some(Leader {
                host: "m1".into(),
                address: "10.0.0.1".into(),
            }),
            advertise_addr: "10.0.0.2".into(),
            leader_address: "10.0.0.1".into(),
        }
    }

    fn plan(r: &dyn Resource, section: &str) -> Outcome {
        r.plan(&Observed::new(section, &HostFacts::default()))
    }

    #[test]
    fn a_fresh_worker_joins_with_a_token_known_after_apply() {
        let w = worker();
        let c = plan(&w, "state=no-docker\n").change.unwrap();
        assert_eq!(c.summary, "join the swarm as a worker via 10.0.0.1:2377");
        let needs = w.needs(&c);
        assert_eq!(needs[0].command, "docker swarm join-token -q worker");
        let mut runtime = crate::resource::Runtime::new();
        runtime.insert(needs[0].key.clone(), "SWMTKN-secret".into());
        let facts = HostFacts::default();
        let mut obs = Observed::new("", &facts);
        obs.runtime = Some(&runtime);
        let script = w.apply(&c, &obs);
        assert!(
            !script.sh.contains("SWMTKN"),
            "the token must not be in the script text"
        );
        assert_eq!(script.payloads, vec![b"SWMTKN-secret".to_vec()]);
    }

    #[test]
    fn a_member_of_this_swarm_needs_nothing_and_another_swarm_is_refused() {
        let w = worker();
        assert_eq!(
            plan(
                &w,
                "addr=10.0.0.2\ncontrol=false\nmanager=10.0.0.1:2377\nstate=active\n"
            ),
            Outcome::unchanged()
        );
        let o = plan(
            &w,
            "addr=10.0.0.2\ncontrol=false\nmanager=192.0.2.9:2377\nstate=active\n",
        );
        assert!(o.blocked.unwrap().contains("another swarm"));
    }

    #[test]
    fn cluster_waits_for_nodes_labels_them_and_creates_networks() {
        let c = SwarmCluster {
            nodes: vec![
                ExpectedNode {
                    name: "m1".into(),
                    address: "10.0.0.1".into(),
                    role: SwarmRole::Manager,
                    labels: BTreeMap::new(),
                },
                ExpectedNode {
                    name: "w1".into(),
                    address: "10.0.0.2".into(),
                    role: SwarmRole::Worker,
                    labels: BTreeMap::from([("db".to_string(), "true".to_string())]),
                },
            ],
            networks: vec![Network {
                name: "backend".into(),
                encrypted: true,
                attachable: false,
            }],
            wait: 60,
        };
        let fresh = plan(&c, "leader=no\n").change.unwrap();
        assert_eq!(fresh.attrs.len(), 4, "{:?}", fresh.attrs);
        let done = "node=10.0.0.1|manager|ready|\nnode=10.0.0.2|worker|ready|db=true,\nnetwork=backend|true|false\nnetwork=ingress||false\n";
        assert_eq!(plan(&c, done), Outcome::unchanged());
    }

    #[test]
    fn docker_api_json_becomes_stable_lines() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let nodes = r#"[{"ID":"a","UpdatedAt":"2026-01-01T00:00:00Z","Spec":{"Labels":{"db":"true"},"Role":"worker"},"Status":{"State":"ready","Addr":"10.0.0.2"}},
            {"ID":"b","UpdatedAt":"2026-01-02T00:00:00Z","Spec":{"Labels":{},"Role":"manager"},"Status":{"State":"ready","Addr":"0.0.0.0"},"ManagerStatus":{"Leader":true,"Addr":"10.0.0.1:2377"}}]"#;
        let networks = r#"[{"Name":"backend","Driver":"overlay","Attachable":false,"Options":{"encrypted":""}},{"Name":"bridge","Driver":"bridge","Options":{}}]"#;
        let section = format!("nodes={}\nnetworks={}\n", b64(nodes), b64(networks));
        assert_eq!(
            normalize(&section),
            "network=backend|true|false\nnode=10.0.0.1|manager|ready|\nnode=10.0.0.2|worker|ready|db=true,\n"
        );
        // Timestamps do not move the fingerprint.
        let later = format!(
            "nodes={}\nnetworks={}\n",
            b64(&nodes.replace("2026-01-01", "2026-03-03")),
            b64(networks)
        );
        assert_eq!(normalize(&section), normalize(&later));
    }
}
