//! The monitoring stack live: three lab hosts converged by the site playbook pull the
//! stack's images (built from distribution packages) from the lab registry, with the lab
//! CA and registry credentials set by slipway. Prometheus scrapes every node through the
//! firewall, an alert fires and reaches a webhook receiver outside the swarm, and a changed
//! threshold rolls out as a new content-hashed Swarm config.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lab::{Lab, LabOs};
use common::receiver::Receiver;
use common::registry::LabRegistry;
use common::run::{Project, Run, on, site_playbook};

const POSTGRES_PASSWORD: &str = "pg-lab-Secret-17";
const DISABLED: &[&str] = &["grafana", "loki", "alloy", "cadvisor"];

fn go(p: &Project, inventory: &Path, args: &[&str]) -> Run {
    on(p, inventory, site_playbook(), args)
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn inventory(lab: &Lab, reg: &LabRegistry, receiver: &str) -> String {
    let img = |n: &str| toml_str(&reg.image(n));
    lab.deploy_inventory(&format!(
        "swarm_networks = [{{ name = \"backend\", encrypted = false }}]\n\
         ca_certificates = {{ lab = {ca} }}\n\
         docker_registries = [{{ address = {addr}, ca = {ca}, username = {user}, password = {{ secret = true, value = {pw} }} }}]\n\
         monitoring_images = {{ prometheus = {prom}, alertmanager = {am}, node_exporter = {ne}, postgres_exporter = {pe} }}\n\
         monitoring_disabled_services = {disabled:?}\n\
         monitoring_endpoint_mode = \"dnsrr\"\n\
         monitoring_api_targets = [\"api:8000\"]\n\
         monitoring_scrape_interval = \"5s\"\nmonitoring_evaluation_interval = \"5s\"\n\
         alert_node_down_for = \"15s\"\nalert_target_down_for = \"15s\"\n\
         alertmanager_webhook_url = {{ secret = true, value = {hook} }}\n\
         monitoring_postgres_exporter = true\nmonitoring_postgres_host = \"labdb\"\nmonitoring_postgres_user = \"postgres\"\n\
         monitoring_postgres_network = \"backend\"\n\
         monitoring_postgres_password = {{ secret = true, value = {pgpw} }}\n",
        ca = toml_str(&reg.ca_pem),
        addr = toml_str(&reg.address),
        user = toml_str(&reg.username),
        pw = toml_str(&reg.password),
        prom = img("prometheus"),
        am = img("alertmanager"),
        ne = img("node-exporter"),
        pe = img("postgres-exporter"),
        disabled = DISABLED,
        hook = toml_str(receiver),
        pgpw = toml_str(POSTGRES_PASSWORD),
    ))
}

/// Polls `probe` every 2 s until it returns `Ok`, or panics after `limit` with the last
/// thing it saw (its `Err`).
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => {
                eprintln!("{what}: after {:.0} s", start.elapsed().as_secs_f64());
                return v;
            }
            Err(last) if start.elapsed() > limit => {
                panic!(
                    "{what}: not within {} s; last seen:\n{last}",
                    limit.as_secs()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// A GET on the manager's published Prometheus port, from the manager.
fn prometheus_api(lab: &Lab, path: &str) -> serde_json::Value {
    let ip = &lab.hosts[0].ip;
    let out = lab.exec(0, &format!("curl -fsS 'http://{ip}:9090{path}'"));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// `docker service ls` on the manager: name -> replicas ("3/3").
fn services(lab: &Lab) -> Vec<(String, String)> {
    lab.exec_ok(
        0,
        "docker service ls --filter label=com.docker.stack.namespace=monitoring --format '{{.Name}} {{.Replicas}}'",
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(n, r)| (n.to_string(), r.to_string()))
    .collect()
}

#[test]
fn the_monitoring_stack_runs_scrapes_every_node_and_delivers_an_alert_on_ubuntu() {
    the_monitoring_stack_runs_scrapes_every_node_and_delivers_an_alert(LabOs::Ubuntu);
}

#[test]
fn the_monitoring_stack_runs_scrapes_every_node_and_delivers_an_alert_on_debian() {
    the_monitoring_stack_runs_scrapes_every_node_and_delivers_an_alert(LabOs::Debian);
}

fn the_monitoring_stack_runs_scrapes_every_node_and_delivers_an_alert(os: LabOs) {
    let reg = LabRegistry::ensure();
    let lab = Lab::start_os(&format!("monitoring-{os}"), 3, os);
    let receiver = Receiver::start(&lab, &reg);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab, &reg, &receiver.url));

    let started = Instant::now();
    let applied = go(&p, &inv, &["apply", "--user", "root", "--yes"]).expect(0);
    eprintln!("site apply: {:.0} s", started.elapsed().as_secs_f64());
    for secret in [
        reg.password.as_str(),
        POSTGRES_PASSWORD,
        receiver.url.as_str(),
    ] {
        assert!(!applied.all().contains(secret), "a secret in the output");
    }

    // The database postgres-exporter watches: the lab's postgres image as a service on the
    // backend network, its password a Swarm secret (the same value slipway gave the exporter).
    // The backend is not encrypted here: the lab's kernel has no ESP for IPsec, and the lab's
    // kernel has no IPVS either, hence `dnsrr` (no virtual IPs) for every service.
    lab.exec_ok(
        0,
        &format!(
            "printf %s '{POSTGRES_PASSWORD}' | docker secret create labdb_password - && \
             docker service create -d --with-registry-auth --name labdb --endpoint-mode dnsrr --network backend \
             --secret source=labdb_password,target=labdb_password,uid=999,mode=0400 \
             -e POSTGRES_PASSWORD_FILE=/run/secrets/labdb_password {}",
            reg.image("postgres")
        ),
    );

    // Every service with a lab image converges to its declared replicas.
    let expected = [
        ("monitoring_prometheus", "1/1"),
        ("monitoring_alertmanager", "1/1"),
        ("monitoring_node-exporter", "3/3"),
        ("monitoring_postgres-exporter", "1/1"),
    ];
    wait_for("services converged", Duration::from_secs(240), || {
        let now = services(&lab);
        let ok = expected
            .iter()
            .all(|(n, r)| now.iter().any(|(m, s)| m == n && s == r));
        if ok { Ok(()) } else { Err(format!("{now:?}")) }
    });
    let names: Vec<String> = services(&lab).into_iter().map(|(n, _)| n).collect();
    for disabled in DISABLED {
        assert!(
            !names.contains(&format!("monitoring_{disabled}")),
            "{names:?}"
        );
    }

    // Prometheus scrapes node-exporter on every node through the firewall, itself,
    // Alertmanager and postgres-exporter, which reaches the database.
    wait_for("every target up", Duration::from_secs(180), || {
        let t = prometheus_api(&lab, "/api/v1/targets?state=active");
        let targets = t["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up = |job: &str| {
            targets
                .iter()
                .filter(|t| t["labels"]["job"] == job && t["health"] == "up")
                .map(|t| t["labels"]["instance"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        let mut nodes = up("node");
        nodes.sort();
        let want: Vec<String> = lab.hosts.iter().map(|h| h.name.clone()).collect();
        if nodes == want
            && up("prometheus").len() == 1
            && up("alertmanager").len() == 1
            && up("postgres").len() == 1
        {
            Ok(())
        } else {
            Err(serde_json::to_string_pretty(&targets).unwrap())
        }
    });
    wait_for(
        "postgres-exporter reaches the database",
        Duration::from_secs(120),
        || {
            let q = prometheus_api(&lab, "/api/v1/query?query=pg_up");
            match q["data"]["result"][0]["value"][1].as_str() {
                Some("1") => Ok(()),
                _ => Err(q.to_string()),
            }
        },
    );
    let rules = prometheus_api(&lab, "/api/v1/rules");
    let rules = rules.to_string();
    for alert in ["NodeDown", "TargetDown", "HostHighCpu"] {
        assert!(rules.contains(alert), "{alert} not loaded: {rules}");
    }

    // Converged: nothing left to do.
    go(&p, &inv, &["plan", "--detailed-exitcode"]).expect(0);

    // A worker's node-exporter goes dark (its port blocked where Docker's published ports
    // pass): the alert reaches the receiver, with its name, severity and instance.
    let worker = &lab.hosts[2].name;
    lab.exec_ok(2, "iptables -I DOCKER-USER 1 -p tcp --dport 9100 -j DROP");
    let blocked = Instant::now();
    let (route, alert) = wait_for("the alert delivered", Duration::from_secs(180), || {
        let got = receiver.received();
        got.iter()
            .flat_map(|p| {
                let alerts = p["alerts"].as_array().cloned().unwrap_or_default();
                alerts.into_iter().map(|a| (p["receiver"].clone(), a))
            })
            .find(|(_, a)| {
                a["status"] == "firing"
                    && a["labels"]["instance"] == worker.as_str()
                    && matches!(
                        a["labels"]["alertname"].as_str(),
                        Some("NodeDown" | "TargetDown")
                    )
            })
            .ok_or_else(|| format!("{got:?}"))
    });
    eprintln!(
        "alert {} for {worker} delivered {:.0} s after the block",
        alert["labels"]["alertname"],
        blocked.elapsed().as_secs_f64()
    );
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    // Through the route Alertmanager's config gives critical alerts.
    assert_eq!(route, "critical", "{alert}");
    lab.exec_ok(2, "iptables -D DOCKER-USER -p tcp --dport 9100 -j DROP");
    // No API runs here, so its target is down all along: a warning, through the warning route.
    wait_for("the warning delivered", Duration::from_secs(120), || {
        let got = receiver.received();
        let warned = got.iter().any(|p| {
            p["receiver"] == "warning"
                && p["alerts"].as_array().is_some_and(|a| {
                    a.iter().any(|a| {
                        a["labels"]["alertname"] == "TargetDown"
                            && a["labels"]["instance"] == "api:8000"
                            && a["labels"]["severity"] == "warning"
                    })
                })
        });
        if warned {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });

    // A changed threshold rolls out as a new rules config; the old one is pruned, and
    // Prometheus reports the new threshold.
    let config_of_prometheus = || {
        lab.exec_ok(
            0,
            "docker service inspect monitoring_prometheus --format '{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}} {{end}}'",
        )
    };
    let rules_config = |names: &str| {
        names
            .split_whitespace()
            .find(|n| n.starts_with("monitoring_prometheus_alerts_"))
            .unwrap()
            .to_string()
    };
    let before = rules_config(&config_of_prometheus());
    go(&p, &inv, &["apply", "--yes", "-e", "alert_cpu_percent=77"]).expect(0);
    let after = rules_config(&config_of_prometheus());
    assert_ne!(before, after);
    let configs = lab.exec_ok(0, "docker config ls --format '{{.Name}}'");
    assert!(
        !configs.lines().any(|l| l == before),
        "{before} not pruned: {configs}"
    );
    wait_for(
        "Prometheus reports the new threshold",
        Duration::from_secs(120),
        || {
            let r = prometheus_api(&lab, "/api/v1/rules").to_string();
            if r.contains("> 77") { Ok(()) } else { Err(r) }
        },
    );
    go(
        &p,
        &inv,
        &["plan", "--detailed-exitcode", "-e", "alert_cpu_percent=77"],
    )
    .expect(0);
}
