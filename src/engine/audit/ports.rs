//! Ports: what listens on the host (`ss`) and what Docker publishes
//! (containers and Swarm services), against what the firewall role declares:
//! a host port needs a `firewall_rules` entry (or the SSH and Swarm rules the
//! role adds), a published port a `firewall_docker_published` one. Ports bound
//! to loopback only are nobody's business.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::audit::{Check, Finding};
use crate::resource::ufw::{Proto, Published, Rule, port_covers};

/// What the firewall role declares for a host, and what slipway's own stacks
/// publish there (the firewall keeps those closed unless declared too, but
/// they are expected).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub rules: Vec<Rule>,
    pub published: Vec<Published>,
    /// Ports published by the stacks the host's plays deploy.
    pub stacks: Vec<(u16, Proto)>,
}

/// The ports a compose file's services publish: `"3001:3000"`, `"53:53/udp"`
/// or `{ target, published, protocol }`.
pub fn stack_published(compose: &str) -> Vec<(u16, Proto)> {
    use serde_yaml_ng::Value;
    let Ok(doc) = serde_yaml_ng::from_str::<Value>(compose) else {
        return Vec::new();
    };
    let proto = |p: &str| if p == "udp" { Proto::Udp } else { Proto::Tcp };
    let mut out = Vec::new();
    let services = doc.get("services").and_then(Value::as_mapping);
    for service in services.into_iter().flat_map(|m| m.values()) {
        let ports = service.get("ports").and_then(Value::as_sequence);
        for entry in ports.into_iter().flatten() {
            let found = match entry {
                Value::String(short) => {
                    let (spec, p) = short.split_once('/').unwrap_or((short, "tcp"));
                    let parts: Vec<&str> = spec.split(':').collect();
                    // HOST:CONTAINER or IP:HOST:CONTAINER; a lone port is not published.
                    (parts.len() >= 2)
                        .then(|| parts[parts.len() - 2].parse().ok())
                        .flatten()
                        .map(|n| (n, proto(p)))
                }
                Value::Mapping(_) => {
                    let p = entry
                        .get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("tcp");
                    entry
                        .get("published")
                        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                        .and_then(|n| u16::try_from(n).ok())
                        .map(|n| (n, proto(p)))
                }
                _ => None,
            };
            out.extend(found);
        }
    }
    out
}

/// A port reachable from outside the host, and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub port: u16,
    pub proto: Proto,
    /// Processes, containers and services, as `sshd`, `container web (0.0.0.0:8088->80/tcp)`.
    pub by: Vec<String>,
    /// Published by Docker: DOCKER-USER, not UFW's input rules, decides.
    pub published: bool,
}

impl Port {
    pub fn label(&self) -> String {
        format!("{}/{}", self.port, self.proto.as_str())
    }

    fn declared(&self, d: &Declared) -> bool {
        let covers = |port: &str, proto: Proto| {
            (proto == self.proto || proto == Proto::Any) && port_covers(port, self.port)
        };
        if self.published {
            d.published.iter().any(|p| covers(&p.port, p.proto))
                || d.stacks.contains(&(self.port, self.proto))
        } else {
            d.rules.iter().any(|r| covers(&r.port, r.proto))
        }
    }
}

fn loopback(addr: &str) -> bool {
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = addr.split('%').next().unwrap_or(addr);
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// `ADDR:PORT` (`0.0.0.0:22`, `[::]:22`, `*:2377`, `127.0.0.53%lo:53`, `:::8088`).
fn split_local(local: &str) -> Option<(&str, &str)> {
    local.rsplit_once(':')
}

/// `users:(("sshd",pid=1,fd=3))` -> `sshd`.
fn process(rest: &str) -> Option<String> {
    let start = rest.find("((\"")? + 3;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}

/// Every non-loopback port, from `ss -Hltnup`, `docker ps` and `docker service ls`.
pub fn exposed(ss: &str, containers: &str, services: &str) -> Vec<Port> {
    let mut ports: BTreeMap<(u16, Proto), Port> = BTreeMap::new();
    let mut add = |port: u16, proto: Proto, by: String, published: bool| {
        let p = ports.entry((port, proto)).or_insert_with(|| Port {
            port,
            proto,
            by: Vec::new(),
            published,
        });
        p.published |= published;
        if !p.by.contains(&by) {
            p.by.push(by);
        }
    };
    for line in ss.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let proto = match cols.first() {
            Some(&"tcp") => Proto::Tcp,
            Some(&"udp") => Proto::Udp,
            _ => continue,
        };
        let Some((addr, port)) = cols.get(4).and_then(|l| split_local(l)) else {
            continue;
        };
        let (Ok(port), false) = (port.parse::<u16>(), loopback(addr)) else {
            continue;
        };
        let who = process(line).unwrap_or_else(|| "a process".into());
        add(port, proto, who, false);
    }
    for (list, kind) in [(containers, "container"), (services, "service")] {
        for line in list.lines() {
            let Some((name, mappings)) = line.split_once('\t') else {
                continue;
            };
            for m in mappings.split(", ") {
                let Some((host, inner)) = m.split_once("->") else {
                    continue;
                };
                let proto = if inner.ends_with("/udp") {
                    Proto::Udp
                } else {
                    Proto::Tcp
                };
                let Some((addr, range)) = split_local(host) else {
                    continue;
                };
                if loopback(addr) {
                    continue;
                }
                let n = |s: &str| s.parse::<u16>().ok();
                let bounds = match range.split_once('-') {
                    Some((a, b)) => (n(a), n(b)),
                    None => (n(range), n(range)),
                };
                let (Some(a), Some(b)) = bounds else {
                    continue;
                };
                for port in a..=b {
                    add(port, proto, format!("{kind} {name} ({m})"), true);
                }
            }
        }
    }
    ports.into_values().collect()
}

/// The exposed ports the firewall role does not declare.
pub fn undeclared<'p>(ports: &'p [Port], declared: &Declared) -> Vec<&'p Port> {
    ports.iter().filter(|p| !p.declared(declared)).collect()
}

/// `reach`: how each undeclared TCP port answered a connection from here.
pub fn check(ports: &[Port], declared: &Declared, reach: &BTreeMap<u16, String>) -> Check {
    let findings = undeclared(ports, declared)
        .into_iter()
        .map(|p| {
            let expected = if p.published {
                "not published, or declared in firewall_docker_published"
            } else {
                "not listening, or declared in firewall_rules"
            };
            let from_here = match (p.proto, reach.get(&p.port)) {
                (Proto::Udp, _) => "not tried (udp)".to_string(),
                (_, Some(r)) => r.clone(),
                (_, None) => "not tried".to_string(),
            };
            Finding::new(
                p.label(),
                expected,
                format!("{}; from here: {from_here}", p.by.join(", ")),
            )
        })
        .collect();
    let declared_ones: Vec<String> = ports
        .iter()
        .filter(|p| p.declared(declared))
        .map(|p| format!("{} ({})", p.label(), p.by.join(", ")))
        .collect();
    let notes = if declared_ones.is_empty() {
        Vec::new()
    } else {
        vec![format!("declared: {}", declared_ones.join("; "))]
    };
    Check::new("ports", findings, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;
    use crate::resource::ufw::Source;

    const SS: &str = include_str!("fixtures/ss.txt");

    /// The forms the monitoring stack uses, and the ones it does not.
    #[test]
    fn a_stacks_published_ports_are_read_from_its_compose_file() {
        let compose = "services:\n  grafana:\n    ports:\n      - \"3001:3000\"\n\
                       \x20 dns:\n    ports:\n      - \"127.0.0.1:5353:53/udp\"\n      - \"9000\"\n\
                       \x20 node:\n    ports:\n      - target: 9100\n        published: 9100\n        mode: host\n\
                       \x20 quiet: {}\n";
        assert_eq!(
            stack_published(compose),
            vec![(3001, Proto::Tcp), (5353, Proto::Udp), (9100, Proto::Tcp)]
        );
        assert!(stack_published("not: [yaml").is_empty());
    }
    const CONTAINERS: &str = "web\t0.0.0.0:8088->80/tcp, [::]:8088->80/tcp\n\
                              local\t127.0.0.1:5432->5432/tcp\n\
                              quiet\t80/tcp\n";
    const SERVICES: &str = "monitoring_grafana\t*:3001->3000/tcp\nmedia\t*:5000-5001->5000-5001/udp\n\
         monitoring_prometheus\t*:9090->9090/tcp\n";

    fn rule(port: &str, proto: Proto) -> Rule {
        Rule {
            port: port.into(),
            proto,
            from: Source::Any,
            comment: None,
        }
    }

    fn declared() -> Declared {
        Declared {
            rules: vec![
                rule("22", Proto::Tcp),
                rule("2377", Proto::Tcp),
                rule("7946", Proto::Any),
            ],
            published: vec![Published {
                port: "3001".into(),
                proto: Proto::Tcp,
                from: Source::Net("10.0.0.1".into()),
            }],
            stacks: vec![(9090, Proto::Tcp)],
        }
    }

    #[test]
    fn loopback_is_nobodys_business_and_docker_publishes_ranges() {
        let ports = exposed(SS, CONTAINERS, SERVICES);
        let labels: Vec<String> = ports.iter().map(Port::label).collect();
        assert_eq!(
            labels,
            [
                "22/tcp", "2377/tcp", "3001/tcp", "5000/udp", "5001/udp", "7946/tcp", "7946/udp",
                "8088/tcp", "9090/tcp"
            ]
        );
        let web = ports.iter().find(|p| p.port == 8088).unwrap();
        assert!(web.published);
        assert_eq!(
            web.by,
            [
                "docker-proxy",
                "container web (0.0.0.0:8088->80/tcp)",
                "container web ([::]:8088->80/tcp)"
            ]
        );
    }

    #[test]
    fn an_undeclared_published_port_is_named_with_its_answer() {
        let ports = exposed(SS, CONTAINERS, SERVICES);
        let reach = BTreeMap::from([(8088, "filtered (no answer in 2 s)".to_string())]);
        let c = check(&ports, &declared(), &reach);
        assert_eq!(c.status, Status::Differs);
        let subjects: Vec<&str> = c.findings.iter().map(|f| f.subject.as_str()).collect();
        // 9090 is published by one of slipway's own stacks: expected.
        assert_eq!(subjects, ["5000/udp", "5001/udp", "8088/tcp"]);
        let web = &c.findings[2];
        assert!(web.expected.contains("firewall_docker_published"));
        assert!(web.found.contains("container web"), "{web:?}");
        assert!(
            web.found
                .ends_with("from here: filtered (no answer in 2 s)")
        );
        assert!(c.findings[0].found.ends_with("not tried (udp)"));
    }

    #[test]
    fn a_host_port_needs_a_rule_and_a_published_one_an_entry() {
        // docker-proxy's listener alone, Docker unheard of, is a host port like any.
        let c = check(&exposed(SS, "", ""), &declared(), &BTreeMap::new());
        assert_eq!(c.findings.len(), 1);
        assert_eq!(c.findings[0].found, "docker-proxy; from here: not tried");
        // A firewall rule does not open a published port (DOCKER-USER decides).
        let mut d = declared();
        d.rules.push(rule("8080:8090", Proto::Tcp));
        assert_eq!(
            check(&exposed(SS, "", ""), &d, &BTreeMap::new()).status,
            Status::Ok
        );
        let c = check(&exposed(SS, CONTAINERS, ""), &d, &BTreeMap::new());
        assert_eq!(c.findings.len(), 1);
        d.published.push(Published {
            port: "8000:9000".into(),
            proto: Proto::Any,
            from: Source::Any,
        });
        let c = check(&exposed(SS, CONTAINERS, ""), &d, &BTreeMap::new());
        assert_eq!(c.status, Status::Ok, "{c:?}");
        // Without the SSH rule, sshd's port is undeclared.
        d.rules.remove(0);
        let c = check(&exposed(SS, CONTAINERS, ""), &d, &BTreeMap::new());
        assert_eq!(c.findings.len(), 1);
        assert_eq!(c.findings[0].subject, "22/tcp");
        assert_eq!(c.findings[0].found, "sshd; from here: not tried");
    }
}
