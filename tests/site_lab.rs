//! The site playbook end to end on three fresh lab hosts (one manager, two
//! workers), and the lockout protection of ssh_hardening.

mod common;

use std::path::Path;

use common::lab::{Lab, LabOs};
use common::run::{Project, Run, on, site_playbook};

/// The lab's inventory with the site playbook's variables; the second host,
/// if any, carries the `db` node label.
fn inventory(lab: &Lab, extra_vars: &str) -> String {
    let mut s = lab.deploy_inventory(&format!(
        "swarm_networks = [{{ name = \"backend\", encrypted = true }}]\n\
         grafana_admin_password = {{ secret = true, value = \"{GRAFANA_PASSWORD}\" }}\n\
         monitoring_resolve_image = \"never\"\n{extra_vars}"
    ));
    if let Some(db) = lab.hosts.get(1) {
        s.push_str(&format!(
            "\n[hosts.{}.vars]\nswarm_node_labels = {{ db = \"true\" }}\n",
            db.name
        ));
    }
    s
}

const GRAFANA_PASSWORD: &str = "grafana-lab-Secret-42";

fn go(p: &Project, inventory: &Path, args: &[&str]) -> Run {
    on(p, inventory, site_playbook(), args)
}

#[test]
fn the_site_playbook_builds_a_hardened_swarm_from_fresh_debian_hosts() {
    the_site_playbook_builds_a_hardened_swarm(LabOs::Debian);
}

#[test]
fn the_site_playbook_builds_a_hardened_swarm_from_fresh_ubuntu_hosts() {
    the_site_playbook_builds_a_hardened_swarm(LabOs::Ubuntu);
}

fn the_site_playbook_builds_a_hardened_swarm(os: LabOs) {
    let lab = Lab::start_os(&format!("site-{os}"), 3, os);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab, ""));

    // On fresh hosts the plan lists the work, in order, with what is known only later.
    let plan = go(&p, &inv, &["plan", "--user", "root", "--detailed-exitcode"]).expect(2);
    let out = &plan.stdout;
    for expected in [
        "+ user:deploy  create user deploy",
        "sshd:/etc/ssh/sshd_config.d/00-slipway-hardening.conf",
        "+ package:docker.io,curl  install docker.io, curl",
        match os {
            // Ubuntu's server image has ufw installed, inactive.
            LabOs::Ubuntu => "~ ufw:firewall  enable the firewall (ufw)",
            LabOs::Debian => "+ ufw:firewall  install and enable the firewall (ufw)",
        },
        "initialise a new swarm, advertising",
        "join the swarm as a worker via",
        "token: (known after apply)",
        "bring the swarm to its planned shape",
        "+ file:/opt/monitoring/prometheus/prometheus.yml",
        "+ stack:monitoring  deploy stack monitoring (7 services)",
    ] {
        assert!(out.contains(expected), "missing `{expected}`:\n{out}");
    }
    assert!(
        !out.contains(GRAFANA_PASSWORD),
        "a secret in the plan:\n{out}"
    );

    let started = std::time::Instant::now();
    let applied = go(&p, &inv, &["apply", "--user", "root", "--yes"]).expect(0);
    eprintln!(
        "first converge of 3 {os} hosts: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );

    // Converged: as the deploy user now, nothing to do, one remote command per host.
    let started = std::time::Instant::now();
    let again = go(
        &p,
        &inv,
        &["plan", "--detailed-exitcode", "--format", "json"],
    )
    .expect(0);
    eprintln!(
        "no-op plan of 3 {os} hosts: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    for h in again.json()["hosts"].as_array().unwrap() {
        assert_eq!(h["remote_commands"], 1, "{h}");
    }
    let reapply = go(&p, &inv, &["apply", "--yes"]).expect(0);
    assert!(reapply.stdout.contains("No changes"), "{}", reapply.stdout);

    // The swarm: three Ready nodes, the first one the leader, labels and network in place.
    let nodes = lab.exec_ok(
        0,
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'",
    );
    let mut lines: Vec<&str> = nodes.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            format!("{} Ready Leader", lab.hosts[0].name).as_str(),
            format!("{} Ready ", lab.hosts[1].name).as_str(),
            format!("{} Ready ", lab.hosts[2].name).as_str(),
        ]
    );
    assert_eq!(
        lab.exec_ok(
            0,
            &format!(
                "docker node inspect {} --format '{{{{.Spec.Labels.db}}}}'",
                lab.hosts[1].name
            )
        )
        .trim(),
        "true"
    );
    assert!(
        lab.exec_ok(
            0,
            "docker network inspect backend --format '{{.Driver}} {{index .Options \"encrypted\"}}'"
        )
        .starts_with("overlay")
    );

    monitoring_stack_is_deployed_and_follows_its_files(&lab, &p, &inv);

    // SSH: root and passwords are refused (on Ubuntu despite cloud-init's drop-in that
    // allows passwords), the deploy user gets in with its key and reaches root through sudo.
    for i in 0..3 {
        let effective = lab.exec_ok(i, "sshd -T");
        for setting in ["passwordauthentication no", "permitrootlogin no"] {
            assert!(
                effective.lines().any(|l| l == setting),
                "{setting}:\n{effective}"
            );
        }
        assert!(
            !lab.ssh_as(i, "root", "true").status.success(),
            "root login must be refused"
        );
        let deploy = lab.ssh_as(i, "deploy", "sudo -n id -u");
        assert_eq!(
            String::from_utf8_lossy(&deploy.stdout).trim(),
            "0",
            "{deploy:?}"
        );
    }

    // The firewall is on: SSH open, the Swarm ports open to the other two nodes only.
    let ufw = lab.exec_ok(0, "ufw status");
    assert!(ufw.contains("Status: active"), "{ufw}");
    assert!(
        ufw.lines()
            .any(|l| l.starts_with("22/tcp") && l.contains("ALLOW") && l.contains("Anywhere")),
        "{ufw}"
    );
    for worker in [&lab.hosts[1].ip, &lab.hosts[2].ip] {
        assert!(
            ufw.lines()
                .any(|l| l.starts_with("2377/tcp") && l.contains(worker.as_str())),
            "{ufw}"
        );
    }
    assert!(
        !ufw.lines()
            .any(|l| l.starts_with("2377/tcp") && l.contains("Anywhere")),
        "{ufw}"
    );

    // fail2ban runs and bans a host that keeps failing to log in. Each attempt is
    // bounded: a ban that lands mid-connection leaves the client waiting on TCP.
    let attacker = &lab.hosts[1].ip;
    lab.exec_ok(
        1,
        &format!(
            "for i in 1 2 3 4 5 6 7; do timeout 10 ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=3 -o ServerAliveInterval=2 -o ServerAliveCountMax=2 nobody$i@{} true || true; done",
            lab.hosts[0].ip
        ),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = lab.exec_ok(0, "fail2ban-client status sshd");
        if status.contains(attacker.as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ban after repeated failures:\n{status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // fail2ban lists the ban before its action has run (the first ban also
    // creates its chain), so the block may land a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while lab
        .exec(
            1,
            &format!("timeout 3 bash -c '</dev/tcp/{}/22'", lab.hosts[0].ip),
        )
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a banned host still reaches sshd\n{}\n{}",
            lab.exec_ok(0, "iptables -S; iptables-legacy -S 2>/dev/null || true"),
            lab.exec_ok(0, "tail -n 30 /var/log/fail2ban.log || true")
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    lab.exec_ok(0, &format!("fail2ban-client set sshd unbanip {attacker}"));
}

#[test]
fn a_hardening_change_that_would_lock_out_is_rolled_back() {
    let lab = Lab::start("lockout", 1);
    let p = Project::new();
    // The deploy user gets a key the operator does not hold.
    let inv = p.write(
        "inventory.toml",
        &inventory(&lab, "").replace(
            "deploy_key_files = [",
            "deploy_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdyb25nIGtleSBub2JvZHkgaG9sZHMgdGhpcyE= stranger\"]\nunused = [",
        ),
    );
    // A later step fails too: the login change is in effect all the same, and proven.
    p.write(
        "harden.toml",
        "[[play]]\nhosts = \"all\"\nroles = [\"deploy_user\", \"ssh_hardening\"]\n\
         [[play.resources]]\ntype = \"command\"\nname = \"a later step that fails\"\nrun = \"exit 3\"\n",
    );
    let harden = p.path("harden.toml");
    let r = on(&p, &inv, &harden, &["apply", "--user", "root", "--yes"]).expect(1);
    let msg = r.all();
    assert!(msg.contains("a new login as deploy@"), "{msg}");
    assert!(msg.contains("the previous settings were restored"), "{msg}");
    assert!(msg.contains("a later step that fails"), "{msg}");
    // Still reachable the way it was, and the drop-in is gone.
    assert!(
        lab.ssh_as(0, "root", "true").status.success(),
        "root can no longer log in"
    );
    lab.exec_ok(
        0,
        "test ! -e /etc/ssh/sshd_config.d/00-slipway-hardening.conf",
    );
    assert_eq!(
        lab.exec_ok(0, "sshd -T | grep -i '^permitrootlogin'")
            .trim(),
        "permitrootlogin without-password"
    );
}

/// The lab reaches no registry, so the services cannot start: what is checked
/// is what Swarm holds (services, their modes and ports, configs and secrets
/// named by revision), and that a changed file reaches the service using it.
fn monitoring_stack_is_deployed_and_follows_its_files(lab: &Lab, p: &Project, inv: &Path) {
    let services = lab.exec_ok(
        0,
        "docker service ls --filter label=com.docker.stack.namespace=monitoring --format '{{.Name}} {{.Mode}} {{.Ports}}'",
    );
    let mut lines: Vec<&str> = services.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 7, "{services}");
    for (name, mode) in [
        ("monitoring_alertmanager", "replicated"),
        ("monitoring_cadvisor", "global"),
        ("monitoring_grafana", "replicated"),
        ("monitoring_loki", "replicated"),
        ("monitoring_node-exporter", "global"),
        ("monitoring_prometheus", "replicated"),
        ("monitoring_alloy", "global"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name} {mode}"))),
            "{name} {mode}:\n{services}"
        );
    }
    for port in ["*:3001->3000/tcp", "*:9090->9090/tcp", "*:3100->3100/tcp"] {
        assert!(services.contains(port), "{port}:\n{services}");
    }
    let secret = lab.exec_ok(0, "docker secret ls --format '{{.Name}}'");
    assert!(
        secret
            .lines()
            .any(|l| l.starts_with("monitoring_grafana_admin_password_")),
        "{secret}"
    );
    assert_eq!(
        lab.exec_ok(
            0,
            "stat -c %a /opt/monitoring/secrets/grafana_admin_password"
        )
        .trim(),
        "600"
    );
    let config_of_prometheus = || {
        lab.exec_ok(
            0,
            "docker service inspect monitoring_prometheus --format '{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}} {{end}}'",
        )
    };
    let before = config_of_prometheus();
    assert!(before.contains("monitoring_prometheus_alerts_"), "{before}");

    // A threshold changes: the plan shows the rules' diff and the stack update,
    // and after apply Prometheus uses a new revision of its rules.
    let plan = go(p, inv, &["plan", "-e", "alert_cpu_percent=85"]).expect(0);
    for expected in [
        "~ file:/opt/monitoring/prometheus/alerts.yml",
        "> 85",
        "~ stack:monitoring  update stack monitoring",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "missing `{expected}`:\n{}",
            plan.stdout
        );
    }
    go(p, inv, &["apply", "--yes", "-e", "alert_cpu_percent=85"]).expect(0);
    let after = config_of_prometheus();
    assert_ne!(before, after, "prometheus still uses the old rules");
    go(
        p,
        inv,
        &["plan", "--detailed-exitcode", "-e", "alert_cpu_percent=85"],
    )
    .expect(0);
}
