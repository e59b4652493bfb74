//! The firewall role against real lab hosts: UFW enabled with exactly the
//! planned rules, SSH kept open, the Swarm ports open to the other nodes only,
//! and a port published by a container reachable only from where the
//! playbook says, through `ufw reload`, a Docker restart and a reboot.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::lab::{Lab, LabOs};
use common::run::{Project, Run, on};

fn playbook(published_from: &str) -> String {
    format!(
        r#"
[[play]]
name = "docker hosts behind a firewall"
hosts = "all"
roles = ["docker", "firewall"]

[play.vars]
docker_source = "distribution"
docker_storage_driver = "vfs"
deploy_user = ""
firewall_rules = [{{ port = "80", comment = "web" }}]
firewall_docker_published = [{{ port = "8080", proto = "tcp", from = "{published_from}" }}]
# No monitoring stack here, and 8080 is cAdvisor's port: the exporters' rules stay out.
firewall_monitoring_exporters = false
"#
    )
}

fn slipway_run(lab: &Lab, p: &Project, args: &[&str]) -> Run {
    on(p, &lab.inventory, &p.path("playbook.toml"), args)
}

/// The lines of the plan printed for one host.
fn host_section<'a>(out: &'a str, host: &str) -> &'a str {
    let start = out
        .find(&format!("{host} ("))
        .unwrap_or_else(|| panic!("no section for {host} in\n{out}"));
    let rest = &out[start..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    &rest[..end]
}

/// `ufw status` as normalised lines: "22/tcp ALLOW Anywhere # slipway: ssh".
fn ufw_status(lab: &Lab, i: usize) -> (String, Vec<String>) {
    let out = lab.ssh_ok(i, "ufw status");
    let mut lines = out.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let mut rules: Vec<String> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty() && !l.starts_with("To ") && !l.starts_with("--"))
        .collect();
    rules.sort();
    (status, rules)
}

/// Whether host `from` (0-based) can open a TCP connection to `ip:port`.
fn reaches(lab: &Lab, from: usize, ip: &str, port: u16) -> bool {
    lab.ssh(from, &format!("timeout 3 bash -c '</dev/tcp/{ip}/{port}'"))
        .status
        .success()
}

/// Whether this machine (not a Swarm node: the lab network's gateway) can connect.
fn machine_reaches(ip: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Checks who reaches the port published by host 1's container.
fn assert_published_port_obeys_the_firewall(lab: &Lab, ip1: &str) {
    // Host 3 is allowed; wait for the container to be up behind it.
    wait_for("the published port to answer host 3", || {
        reaches(lab, 2, ip1, 8080)
    });
    assert!(
        !reaches(lab, 1, ip1, 8080),
        "host 2 reached the published port"
    );
    assert!(
        !machine_reaches(ip1, 8080),
        "a machine outside the Swarm reached the published port"
    );
}

#[test]
fn firewall_converges_and_published_ports_obey_it() {
    let t0 = Instant::now();
    let lab = Lab::start("firewall", 3);
    let names: Vec<String> = lab.hosts.iter().map(|h| h.name.clone()).collect();
    let ips: Vec<String> = lab.hosts.iter().map(|h| h.ip.clone()).collect();
    let (ip1, ip2, ip3) = (&ips[0], &ips[1], &ips[2]);
    let p = Project::new();
    p.write("playbook.toml", &playbook(ip3));

    // The plan says which ports are open to whom.
    let first = slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(2);
    let out = &first.stdout;
    let h1 = host_section(out, &names[0]);
    // Ubuntu's cloud images ship ufw installed but inactive; Debian has none.
    let (ufw_change, ufw_state) = match lab.os {
        LabOs::Ubuntu => ("~ ufw:firewall  enable the firewall (ufw)", "inactive"),
        LabOs::Debian => (
            "+ ufw:firewall  install and enable the firewall (ufw)",
            "not installed",
        ),
    };
    for want in [
        ufw_change.to_string(),
        format!("ufw: {ufw_state} -> active"),
        "22/tcp: from anywhere".to_string(),
        "80/tcp: from anywhere".to_string(),
        format!("2377/tcp: from {ip2}, {ip3}"),
        format!("4789/udp: from {ip2}, {ip3}"),
        format!("7946/tcp: from {ip2}, {ip3}"),
        format!("7946/udp: from {ip2}, {ip3}"),
        format!("esp: from {ip2}, {ip3}"),
        format!("published 8080/tcp: from {ip3}"),
    ] {
        assert!(h1.contains(&want), "no `{want}` in\n{h1}");
    }
    let h2 = host_section(out, &names[1]);
    assert!(h2.contains(&format!("7946/tcp: from {ip1}, {ip3}")), "{h2}");
    assert!(!h2.contains("2377/tcp"), "a worker opens 2377:\n{h2}");
    eprintln!("plan: {:?}", t0.elapsed());

    let t = Instant::now();
    let applied = slipway_run(&lab, &p, &["apply", "--yes"]).expect(0);
    assert!(
        applied.stdout.contains("changed, verified"),
        "{}",
        applied.stdout
    );
    eprintln!("apply: {:?}", t.elapsed());
    slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(0);

    // UFW is active with exactly the planned rules.
    for i in 0..3 {
        let peers: Vec<&String> = ips.iter().filter(|ip| *ip != &ips[i]).collect();
        let mut want = vec![
            "22/tcp ALLOW Anywhere # slipway: ssh".to_string(),
            "22/tcp (v6) ALLOW Anywhere (v6) # slipway: ssh".to_string(),
            "80/tcp ALLOW Anywhere # web".to_string(),
            "80/tcp (v6) ALLOW Anywhere (v6) # web".to_string(),
        ];
        let mut ports = vec!["7946/tcp", "7946/udp", "4789/udp"];
        if i == 0 {
            ports.push("2377/tcp");
        }
        for port in ports {
            for peer in &peers {
                want.push(format!("{port} ALLOW {peer} # slipway: swarm"));
            }
        }
        // ESP carries the encrypted overlay networks; it has no port.
        for peer in &peers {
            want.push(format!("Anywhere ALLOW {peer}/esp # slipway: swarm"));
        }
        want.sort();
        let (status, rules) = ufw_status(&lab, i);
        assert_eq!(status, "Status: active", "host {}", i + 1);
        assert_eq!(rules, want, "host {}", i + 1);
        // A new SSH connection still gets in.
        lab.ssh_ok(i, "true");
        // The rest of after.rules is what the package shipped.
        let kept = lab.ssh_ok(
            i,
            "sed '/^# BEGIN slipway DOCKER-USER$/,/^# END slipway DOCKER-USER$/d' /etc/ufw/after.rules | sha256sum; sha256sum < /usr/share/ufw/iptables/after.rules",
        );
        let sums: Vec<&str> = kept.lines().collect();
        assert_eq!(sums[0], sums[1], "after.rules lost its own content");
    }

    // Swarm ports: open to the other nodes, closed to anyone else.
    lab.ssh_ok(0, "apt-get install -y -q busybox-static >/dev/null 2>&1");
    lab.ssh_ok(0, "busybox httpd -p 7946 -h /");
    wait_for("a listener on 7946", || reaches(&lab, 0, "127.0.0.1", 7946));
    assert!(reaches(&lab, 1, ip1, 7946), "host 2 cannot reach 7946/tcp");
    assert!(reaches(&lab, 2, ip1, 7946), "host 3 cannot reach 7946/tcp");
    assert!(
        !machine_reaches(ip1, 7946),
        "a machine outside the Swarm reached 7946/tcp"
    );
    assert!(machine_reaches(ip1, 22), "SSH is closed to the machine");

    // A published container port: only host 3 may reach it.
    lab.ssh_ok(
        0,
        "mkdir -p /tmp/tiny/bin && cp /bin/busybox /tmp/tiny/bin/ && tar -C /tmp/tiny -c . | docker import - tiny >/dev/null",
    );
    lab.ssh_ok(
        0,
        "docker run -d --restart always --name web -p 8080:8080 tiny /bin/busybox httpd -f -p 8080 -h /",
    );
    assert_published_port_obeys_the_firewall(&lab, ip1);

    // The same after a UFW reload and a Docker restart, and no rule is duplicated.
    let chain = lab.ssh_ok(0, "iptables -S DOCKER-USER");
    let lines: Vec<&str> = chain.lines().collect();
    assert!(
        lines.contains(
            &format!(
                "-A DOCKER-USER -s {ip3}/32 -p tcp -m conntrack --ctorigdstport 8080 -j RETURN"
            )
            .as_str()
        ),
        "{chain}"
    );
    let unique: std::collections::BTreeSet<&&str> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "duplicated rules:\n{chain}");
    lab.ssh_ok(0, "ufw reload");
    assert_eq!(lab.ssh_ok(0, "iptables -S DOCKER-USER"), chain);
    assert_published_port_obeys_the_firewall(&lab, ip1);
    lab.ssh_ok(0, "systemctl restart docker");
    assert_eq!(lab.ssh_ok(0, "iptables -S DOCKER-USER"), chain);
    assert_published_port_obeys_the_firewall(&lab, ip1);
    lab.ssh_ok(0, "ufw reload");
    assert_eq!(lab.ssh_ok(0, "iptables -S DOCKER-USER"), chain);
    assert_published_port_obeys_the_firewall(&lab, ip1);
    // And after a reboot: UFW loads the chain at boot, before Docker starts and hooks it up.
    let reboot = std::process::Command::new("docker")
        .args(["restart", &names[0]])
        .output()
        .unwrap();
    assert!(reboot.status.success(), "{reboot:?}");
    wait_for("host 1 to boot", || {
        lab.ssh(0, "systemctl is-active --quiet docker")
            .status
            .success()
    });
    assert_eq!(lab.ssh_ok(0, "ufw status | head -1"), "Status: active\n");
    assert_eq!(lab.ssh_ok(0, "iptables -S DOCKER-USER"), chain);
    assert_published_port_obeys_the_firewall(&lab, ip1);
    // UFW's own route rules play no part in it.
    assert_eq!(
        lab.ssh_ok(0, "iptables -S ufw-user-forward"),
        "-N ufw-user-forward\n"
    );
    slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(0);

    // A rule added by hand is found and removed (firewall_exclusive).
    lab.ssh_ok(1, "ufw allow 9999/tcp >/dev/null");
    let drift = slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(2);
    let h2 = host_section(&drift.stdout, &names[1]);
    assert!(
        h2.contains("~ ufw:firewall  update the firewall (ufw)"),
        "{h2}"
    );
    assert!(h2.contains("9999/tcp: from anywhere -> (none)"), "{h2}");
    assert!(h2.contains("22/tcp: from anywhere (unchanged)"), "{h2}");
    assert!(
        drift.stdout.contains("to change on 1 of 3 hosts"),
        "{}",
        drift.stdout
    );
    slipway_run(&lab, &p, &["apply", "--yes"]).expect(0);
    slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(0);
    let (_, rules) = ufw_status(&lab, 1);
    assert!(!rules.iter().any(|r| r.contains("9999")), "{rules:?}");
    eprintln!("firewall lab test: {:?}", t0.elapsed());
}
