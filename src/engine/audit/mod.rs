//! `slipway audit`: a read-only report per host. What each host should be is
//! taken from the resources its plays would give it (the ssh_hardening
//! drop-in, the firewall's rules, the daemon.json keys, the fail2ban jails),
//! so the audit follows the roles; what it is comes from one remote command
//! over one connection (see [`remote`]), which writes nothing on the host.

mod docker;
mod fail2ban;
mod ports;
mod remote;
mod sshd;
mod swarm;
mod updates;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Engine, Progress, connect, connect_runner};
use crate::audit::{Audit, Check, HostAudit};
use crate::config::{Inventory, VarMap, vars};
use crate::desired::HostState;
use crate::resource::json_keys::JsonKeys;
use crate::resource::stack::Stack;
use crate::resource::ufw::Ufw;

pub use ports::Declared;

const DAEMON_JSON: &str = "/etc/docker/daemon.json";
const JAILS: &str = "/etc/fail2ban/jail.d/";
/// How long a port may take to answer a connection from here.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

/// What one host should be, per check; `None`: no role of its plays covers it.
#[derive(Debug, Default)]
pub struct Expect {
    pub sshd_drop_in: Option<String>,
    /// `None` also when the firewall role turns UFW off.
    pub firewall: Option<Declared>,
    pub daemon_json: Option<Map<String, Value>>,
    pub jails: Option<Vec<String>>,
    /// On a swarm manager: how many nodes the swarm should have.
    pub swarm_nodes: Option<usize>,
}

impl Expect {
    pub fn of(state: &mut HostState, inventory: &Inventory) -> Self {
        let mut e = Expect::default();
        let mut swarm_node = false;
        // Stack files by path, and the directories of the stacks deployed.
        let mut stack_files = BTreeMap::new();
        let mut stack_dirs = Vec::new();
        for play in &mut state.plays {
            for r in &mut play.resources {
                let id = r.id();
                if let Some(c) = r.content() {
                    let text = String::from_utf8_lossy(c.bytes);
                    if id.starts_with("sshd:") {
                        e.sshd_drop_in = Some(text.into_owned());
                    } else if c.path.ends_with("/stack.yml") {
                        stack_files.insert(c.path.to_string(), text.into_owned());
                    } else if c.path.starts_with(JAILS) {
                        e.jails
                            .get_or_insert_with(Vec::new)
                            .extend(fail2ban::enabled_jails(&text));
                    }
                }
                swarm_node |= id == "swarm:node";
                let Some(any) = r.as_any_mut() else {
                    continue;
                };
                if let Some(keys) = any.downcast_ref::<JsonKeys>()
                    && keys.path == DAEMON_JSON
                {
                    e.daemon_json = Some(keys.keys.clone());
                } else if let Some(stack) = any.downcast_ref::<Stack>() {
                    stack_dirs.push(stack.dir.clone());
                } else if let Some(ufw) = any.downcast_ref::<Ufw>()
                    && ufw.enabled
                {
                    e.firewall = Some(Declared {
                        rules: ufw.rules.clone(),
                        published: ufw.docker_published.clone().unwrap_or_default(),
                        stacks: Vec::new(),
                    });
                }
            }
        }
        if let Some(firewall) = &mut e.firewall {
            for dir in stack_dirs {
                if let Some(text) = stack_files.get(&format!("{dir}/stack.yml")) {
                    firewall.stacks.extend(ports::stack_published(text));
                }
            }
        }
        if swarm_node {
            e.swarm_nodes = swarm_size(&state.host.vars, &state.host.name, inventory);
        }
        e
    }
}

/// On a manager, the number of hosts in the swarm role's manager and worker
/// groups (read through the role's own defaults); `None` on a worker.
fn swarm_size(host_vars: &VarMap, host: &str, inventory: &Inventory) -> Option<usize> {
    let role = crate::roles::lookup("swarm")?;
    let mut v = role.defaults();
    vars::layer(&mut v, host_vars);
    let group = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default();
    let (managers, workers) = (group("swarm_managers_group"), group("swarm_workers_group"));
    let in_group = |h: &crate::config::Host, g: &str| h.groups.iter().any(|x| x == g);
    let me = inventory.host(host)?;
    if !in_group(me, managers) {
        return None;
    }
    Some(
        inventory
            .hosts
            .iter()
            .filter(|h| in_group(h, managers) || in_group(h, workers))
            .count(),
    )
}

impl Engine {
    /// Audits every host, at most `forks` at once.
    pub async fn audit_all(
        &self,
        hosts: Vec<(HostState, Expect)>,
        progress: &dyn Progress,
    ) -> Audit {
        let hosts = self
            .each(hosts, |(state, expect)| async move {
                let name = state.host.name.clone();
                progress.update(&name, "connecting and reading");
                let report = audit_host(&state, &expect).await;
                let msg = match &report.error {
                    Some(e) => e.lines().next().unwrap_or_default().to_string(),
                    None if report.differs() => "differs".into(),
                    None => "as planned".into(),
                };
                progress.finish(&name, &msg, report.error.is_none());
                report
            })
            .await;
        Audit { hosts }
    }
}

async fn audit_host(state: &HostState, expect: &Expect) -> HostAudit {
    let mut report = HostAudit {
        host: state.host.name.clone(),
        address: state.host.address.clone(),
        ..HostAudit::default()
    };
    let runner = match connect_runner(state).await {
        Ok(r) => r,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let out = runner.run(&remote::script()).await;
    report.remote_commands = runner.commands();
    runner.transport().close().await;
    let readings = match out {
        Ok(o) if o.success() => remote::parse(&o.stdout_str()),
        Ok(o) => Err(format!(
            "the audit command exited {}: {}",
            o.status,
            o.stderr_str().trim()
        )),
        Err(e) => Err(e.to_string()),
    };
    match readings {
        Ok(r) => report.checks = checks(state, expect, &r).await,
        Err(e) => report.error = Some(e),
    }
    report
}

async fn checks(state: &HostState, expect: &Expect, r: &BTreeMap<String, String>) -> Vec<Check> {
    let read = |name: &str| r.get(name).map_or("", String::as_str);
    let skipped = |name: &str, role: &str| {
        Check::skipped(name, format!("no {role} role in this host's plays"))
    };
    let mut out = Vec::new();
    out.push(match &expect.sshd_drop_in {
        Some(d) => sshd::check(d, read("sshd")),
        None => skipped("sshd", "ssh_hardening"),
    });
    out.push(match &expect.firewall {
        Some(declared) => {
            let exposed = ports::exposed(read("listening"), read("containers"), read("services"));
            let tcp: Vec<u16> = ports::undeclared(&exposed, declared)
                .into_iter()
                .filter(|p| p.proto == crate::resource::ufw::Proto::Tcp)
                .map(|p| p.port)
                .collect();
            let reach = reach(state, &tcp).await;
            ports::check(&exposed, declared, &reach)
        }
        None => Check::skipped(
            "ports",
            "no firewall role in this host's plays, or it is off",
        ),
    });
    out.push(updates::check(read("updates")));
    out.push(match &expect.jails {
        Some(j) => fail2ban::check(j, read("fail2ban")),
        None => skipped("fail2ban", "fail2ban"),
    });
    out.push(match &expect.daemon_json {
        Some(keys) => docker::check(keys, read("docker"), read("daemon_json")),
        None => skipped("docker", "docker"),
    });
    out.push(match expect.swarm_nodes {
        Some(n) => swarm::check(n, read("nodes")),
        None => Check::skipped("swarm", "not a swarm manager in this host's plays"),
    });
    out
}

/// Connects to each port from here, all at once, and says how it answered.
async fn reach(state: &HostState, ports: &[u16]) -> BTreeMap<u16, String> {
    let address = connect::spec(&state.host)
        .map(|s| s.address)
        .unwrap_or_else(|_| state.host.address.clone());
    let tries = ports.iter().map(|&port| {
        let address = address.clone();
        async move {
            let answer = match tokio::time::timeout(
                REACH_TIMEOUT,
                tokio::net::TcpStream::connect((address.as_str(), port)),
            )
            .await
            {
                Ok(Ok(_)) => "open (a connection was accepted)".to_string(),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    "refused".to_string()
                }
                Ok(Err(e)) => format!("no connection ({e})"),
                Err(_) => format!("filtered (no answer in {} s)", REACH_TIMEOUT.as_secs()),
            };
            (port, answer)
        }
    });
    futures::future::join_all(tries).await.into_iter().collect()
}
