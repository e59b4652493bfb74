//! `slipway bootstrap` on fresh lab hosts: one becomes a single-node swarm
//! manager from a root key login; a second, reached with root's password the
//! first time, joins that swarm as a worker.

mod common;

use common::lab::{Lab, LabOptions, LabOs};
use common::run::{Project, run, slipway};

const PLAYBOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/site.toml");

#[test]
fn bootstrap_makes_a_manager_and_then_a_worker_that_joins_it_on_ubuntu() {
    bootstrap_makes_a_manager_and_then_a_worker_that_joins_it(LabOs::Ubuntu);
}

#[test]
fn bootstrap_makes_a_manager_and_then_a_worker_that_joins_it_on_debian() {
    bootstrap_makes_a_manager_and_then_a_worker_that_joins_it(LabOs::Debian);
}

fn bootstrap_makes_a_manager_and_then_a_worker_that_joins_it(os: LabOs) {
    let lab = Lab::start_with(
        &format!("bootstrap-{os}"),
        2,
        &LabOptions {
            os,
            no_known_hosts: true,
            ..LabOptions::default()
        },
    );
    let p = Project::new();
    let key = lab.key.display().to_string();
    let pubkey = format!("{key}.pub");
    let lab_vars = [
        "-e",
        "docker_source=distribution",
        "-e",
        "docker_storage_driver=vfs",
        "-e",
        "monitoring_resolve_image=never",
    ];

    // A fresh machine, root by key: a single-node swarm manager.
    let first = &lab.hosts[0];
    let r = run(slipway(p.dir.path())
        .arg("bootstrap")
        .arg(format!("root@{}", first.ip))
        .args([
            "--name",
            &first.name,
            "--identity",
            &key,
            "--deploy-key",
            &pubkey,
            "--playbook",
            PLAYBOOK,
            "--yes",
        ])
        .arg("--known-hosts")
        .arg(&lab.known_hosts)
        .args(lab_vars))
    .expect(0);
    let out = r.all();
    assert!(
        out.contains(&format!("{}: host key SHA256:", first.name)),
        "{out}"
    );
    assert!(
        out.contains("deploy@") && out.contains("logs in and reaches root"),
        "{out}"
    );
    assert!(out.contains(&format!("[hosts.{}]", first.name)), "{out}");
    assert!(
        std::fs::read_to_string(&lab.known_hosts)
            .unwrap()
            .contains(&first.ip)
    );
    assert!(
        !lab.ssh_as(0, "root", "true").status.success(),
        "root login must be closed"
    );
    assert_eq!(
        String::from_utf8_lossy(&lab.ssh_as(0, "deploy", "sudo -n id -u").stdout).trim(),
        "0"
    );
    assert_eq!(
        lab.exec_ok(
            0,
            "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'"
        )
        .trim(),
        "active true"
    );

    // The inventory entry bootstrap printed, kept as it is (it says how to log in
    // and which host keys to trust): a second machine joins that swarm.
    let entry = &r.stdout[r.stdout.find(&format!("[hosts.{}]", first.name)).unwrap()..];
    for line in [
        "identity_file = ",
        "known_hosts = ",
        "host_key_checking = \"strict\"",
    ] {
        assert!(entry.contains(line), "{entry}");
    }
    let inventory = p.write("inventory.toml", entry);
    let second = &lab.hosts[1];
    let password = "bootstrap-Pw-3141";
    lab.exec_ok(
        1,
        &format!(
            "echo 'root:{password}' | chpasswd && printf 'PermitRootLogin yes\\nPasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/01-first-login.conf && systemctl try-reload-or-restart ssh"
        ),
    );
    // The first login uses the password: no key of ours is on the machine yet.
    lab.exec_ok(1, "rm -f /root/.ssh/authorized_keys");
    let r = run(slipway(p.dir.path())
        .env("SLIPWAY_BOOTSTRAP_PASSWORD", password)
        .arg("bootstrap")
        .arg(format!("root@{}", second.ip))
        .args([
            "--name",
            &second.name,
            "--password",
            "--deploy-key",
            &pubkey,
            "--playbook",
            PLAYBOOK,
            "--yes",
        ])
        .arg("--join")
        .arg(&inventory)
        .arg("--known-hosts")
        .arg(&lab.known_hosts)
        .args(lab_vars))
    .expect(0);
    assert!(
        !r.all().contains(password),
        "the password leaked:\n{}",
        r.all()
    );
    assert!(
        r.all().contains("join the swarm as a worker"),
        "{}",
        r.all()
    );
    let nodes = lab.exec_ok(0, "docker node ls --format '{{.Hostname}} {{.Status}}'");
    assert!(nodes.contains(&format!("{} Ready", second.name)), "{nodes}");
    assert_eq!(
        String::from_utf8_lossy(&lab.ssh_as(1, "deploy", "sudo -n id -u").stdout).trim(),
        "0"
    );
    // Password and root logins are closed now, whatever the machine allowed before.
    let effective = lab.exec_ok(
        1,
        "sshd -T | grep -Ei '^(permitrootlogin|passwordauthentication) '",
    );
    assert!(effective.contains("permitrootlogin no"), "{effective}");
    assert!(
        effective.contains("passwordauthentication no"),
        "{effective}"
    );
}
