//! `slipway audit` on Ubuntu lab hosts converged with the site playbook: a
//! converged swarm audits clean, out-of-band changes (a container published
//! on a port nobody declared, a weak sshd cipher) are named, and the audit
//! itself changes nothing on the hosts.

mod common;

use std::path::Path;
use std::time::Instant;

use common::lab::{Lab, LabOs};
use common::run::{Project, Run, on, run, site_playbook, slipway};

/// A manager and a worker in the shape of inventories/lab.toml. The
/// monitoring stack publishes its ports: declared, as docs/roles-monitoring.md
/// says to.
fn inventory(lab: &Lab) -> String {
    lab.deploy_inventory(
        "monitoring_resolve_image = \"never\"\n\
         firewall_docker_published = [{ port = 3001 }, { port = 9090 }, { port = 3100 }, { port = 9100 }, { port = 8080 }]",
    )
}

fn audit(p: &Project, inv: &Path, extra: &[&str]) -> Run {
    run(slipway(p.dir.path())
        .args(["audit", "-i"])
        .arg(inv)
        .arg("--playbook")
        .arg(site_playbook())
        .args(extra))
}

/// Files written under these directories since `marker` (on host `i`); not
/// directories, which change when a file in them comes and goes (the audit's
/// private directory in /tmp): one left behind would hold the audit's files.
fn written_since(lab: &Lab, i: usize, marker: &str) -> String {
    lab.exec_ok(
        i,
        &format!(
            "find /etc /var/lib/slipway /var/cache/apt /tmp /var/tmp /root /home -xdev ! -type d -newer {marker} 2>/dev/null || true"
        ),
    )
}

#[test]
fn audit_names_out_of_band_changes_and_changes_nothing() {
    let lab = Lab::start_os("audit", 2, LabOs::Ubuntu);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab));
    on(
        &p,
        &inv,
        site_playbook(),
        &["apply", "--user", "root", "--yes"],
    )
    .expect(0);
    // apt's lists come from the mirror at converge time: the audit counts the
    // security updates they hold, so the hosts take them first.
    for i in 0..2 {
        lab.exec_ok(
            i,
            "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confold upgrade >/dev/null",
        );
    }

    // Converged: the audit finds nothing, with one remote command per host.
    for i in 0..2 {
        lab.exec_ok(i, "touch /run/audit-marker; sleep 1");
    }
    let started = Instant::now();
    let clean = audit(&p, &inv, &[]);
    eprintln!(
        "audit of 2 converged Ubuntu hosts: {:.2} s\n{}",
        started.elapsed().as_secs_f64(),
        clean.stdout
    );
    let clean = clean.expect(0);
    assert!(
        clean
            .stdout
            .contains("Audit: 2 hosts are as their roles set."),
        "{}",
        clean.stdout
    );
    let json = audit(&p, &inv, &["--format", "json"]).expect(0).json();
    for h in json["hosts"].as_array().unwrap() {
        assert_eq!(h["remote_commands"], 1, "{h}");
        let names: Vec<&str> = h["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["sshd", "ports", "updates", "fail2ban", "docker", "swarm"]
        );
    }
    let manager = &json["hosts"][0]["checks"];
    assert_eq!(manager[5]["status"], "ok", "{manager}");
    assert_eq!(json["hosts"][1]["checks"][5]["status"], "skipped");
    // Nothing written, and nothing for apply to do.
    for i in 0..2 {
        let written = written_since(&lab, i, "/run/audit-marker");
        assert_eq!(written, "", "the audit wrote on host {i}");
    }
    on(&p, &inv, site_playbook(), &["plan", "--detailed-exitcode"]).expect(0);

    // Out of band, on the manager: a port published by Docker that nobody
    // declared (a Swarm service: a container on a bridge network cannot start
    // in the Ubuntu lab, where the nested dockerd cannot set IPv6 up), and a
    // weak cipher first in sshd's configuration. On the worker: a process
    // listening on a port no firewall rule opens.
    for i in 0..2 {
        lab.exec_ok(i, "apt-get install -y -q busybox-static >/dev/null 2>&1");
    }
    lab.exec_ok(
        0,
        "mkdir -p /root/tiny/bin && cp /bin/busybox /root/tiny/bin/ && tar -C /root/tiny -c . | docker import - tiny >/dev/null && rm -rf /root/tiny",
    );
    lab.exec_ok(
        0,
        "docker service create --detach --quiet --name stray --publish 8088:80 tiny /bin/busybox httpd -f -p 80 -h / 2>/dev/null",
    );
    lab.exec_ok(1, "busybox httpd -p 8090 -h /");
    lab.exec_ok(
        0,
        "printf 'Ciphers aes128-cbc,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr\\n' > /etc/ssh/sshd_config.d/00-aa-weak.conf && systemctl reload ssh",
    );

    let drift = audit(&p, &inv, &[]);
    eprintln!("{}", drift.stdout);
    let drift = drift.expect(2);
    let out = &drift.stdout;
    assert!(out.contains("Audit: 2 of 2 hosts differ."), "{out}");
    let json = audit(&p, &inv, &["--format", "json"]).expect(2).json();
    let finding = |host: usize, check: usize| json["hosts"][host]["checks"][check].clone();
    let sshd = finding(0, 0);
    assert_eq!(sshd["status"], "differs", "{sshd}");
    assert_eq!(sshd["findings"].as_array().unwrap().len(), 1, "{sshd}");
    assert_eq!(sshd["findings"][0]["subject"], "ciphers");
    assert!(
        sshd["findings"][0]["found"]
            .as_str()
            .unwrap()
            .starts_with("aes128-cbc,"),
        "{sshd}"
    );
    // Each undeclared port is named, and answers no connection from here:
    // DOCKER-USER drops the published one, UFW the other.
    for (host, port, by, declare) in [
        (
            0,
            "8088/tcp",
            "service stray (*:8088->80/tcp)",
            "firewall_docker_published",
        ),
        (1, "8090/tcp", "busybox", "firewall_rules"),
    ] {
        let ports = finding(host, 1);
        assert_eq!(ports["status"], "differs", "{ports}");
        assert_eq!(ports["findings"].as_array().unwrap().len(), 1, "{ports}");
        let f = &ports["findings"][0];
        assert_eq!(f["subject"], port, "{ports}");
        assert!(f["expected"].as_str().unwrap().contains(declare), "{f}");
        assert_eq!(
            f["found"],
            format!("{by}; from here: filtered (no answer in 2 s)"),
            "{f}"
        );
    }
    // Everything else is still as the roles set.
    for (host, check) in [
        (0, 2),
        (0, 3),
        (0, 4),
        (0, 5),
        (1, 0),
        (1, 2),
        (1, 3),
        (1, 4),
    ] {
        assert_eq!(
            finding(host, check)["status"],
            "ok",
            "{host} {check}: {json}"
        );
    }

    // A host that cannot be reached is an error, whatever the others say.
    let gone = p.write(
        "gone.toml",
        &format!(
            "{}\n[hosts.gone]\naddress = \"127.0.0.1\"\nport = 1\ngroups = [\"others\"]\n",
            inventory(&lab)
        ),
    );
    let failed = audit(&p, &gone, &[]).expect(1);
    assert!(
        failed.stdout.contains("1 host could not be audited"),
        "{}",
        failed.stdout
    );
}
