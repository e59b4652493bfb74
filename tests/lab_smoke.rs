//! The test lab itself works: hosts boot systemd, answer SSH with the lab's key and pinned host
//! keys, reach each other over the lab network, and are gone after the lab is dropped; Ubuntu
//! hosts look like servers made from a 24.04 cloud image, and apt works on them.

mod common;

use common::lab::{Lab, LabOs, require_docker};
use std::process::Command;

#[test]
fn lab_hosts_boot_answer_ssh_and_reach_each_other() {
    require_docker();
    let lab = Lab::start_os("lab_smoke", 2, LabOs::Debian);
    assert_eq!(lab.hosts.len(), 2);
    assert_eq!(lab.os, LabOs::Debian);
    let os = lab.ssh_ok(0, ". /etc/os-release && echo \"$ID $VERSION_ID\"");
    assert_eq!(os.trim(), "debian 12");

    for (i, host) in lab.hosts.iter().enumerate() {
        // Over SSH with the generated key, host keys checked strictly.
        let out = lab.ssh_ok(i, "hostname; id -un");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [host.name.as_str(), "root"],
            "host {i}"
        );

        // is-system-running exits non-zero when degraded: read what it prints.
        let out = lab.ssh(i, "systemctl is-system-running --wait");
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            state == "running" || state == "degraded",
            "{}: systemd is {state:?}; failed units: {}",
            host.name,
            lab.exec_ok(i, "systemctl --failed --no-legend --plain")
        );
        assert_eq!(lab.exec_ok(i, "systemctl is-active ssh").trim(), "active");
    }

    // The inventory's known_hosts is complete, so strict checking works with it alone.
    let out = lab
        .ssh_command(1)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", lab.known_hosts.display()))
        .arg("true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Hosts reach each other's sshd over the lab network (no ping in the image).
    for (from, to) in [(0, 1), (1, 0)] {
        let ip = &lab.hosts[to].ip;
        lab.ssh_ok(from, &format!("timeout 5 bash -c '</dev/tcp/{ip}/22'"));
    }

    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    for host in &lab.hosts {
        assert!(
            inventory.contains(&format!("[hosts.{}]", host.name)),
            "{inventory}"
        );
        assert!(
            inventory.contains(&format!("address = \"{}\"", host.ip)),
            "{inventory}"
        );
    }
    assert!(inventory.contains(&format!("identity_file = \"{}\"", lab.key.display())));

    // Teardown removes containers, network and state.
    let (name, state_dir) = (lab.name.clone(), lab.state_dir.clone());
    drop(lab);
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=slipway-lab.name={name}"),
        ])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "containers left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let net = Command::new("docker")
        .args(["network", "inspect", &format!("slipway-{name}")])
        .output()
        .unwrap();
    assert!(!net.status.success(), "network slipway-{name} left");
    assert!(!state_dir.exists(), "{} left", state_dir.display());
}

#[test]
fn ubuntu_lab_host_is_like_a_cloud_server() {
    require_docker();
    let lab = Lab::start_os("lab_smoke_ubuntu", 1, LabOs::Ubuntu);
    assert_eq!(lab.os, LabOs::Ubuntu);
    let name = lab.host(0).name.clone();

    let out = lab.ssh_ok(0, "hostname; id -un");
    assert_eq!(out.lines().collect::<Vec<_>>(), [name.as_str(), "root"]);
    let os = lab.ssh_ok(
        0,
        ". /etc/os-release && echo \"$ID $VERSION_ID $VERSION_CODENAME\"",
    );
    assert_eq!(os.trim(), "ubuntu 24.04 noble");

    let out = lab.ssh(0, "systemctl is-system-running --wait");
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        state == "running" || state == "degraded",
        "{name}: systemd is {state:?}; failed units: {}",
        lab.exec_ok(0, "systemctl --failed --no-legend --plain")
    );

    // sshd as on 24.04: started by the first connection to ssh.socket, not at boot.
    assert_eq!(
        lab.ssh_ok(0, "systemctl is-active ssh.socket").trim(),
        "active"
    );
    let enabled = lab.ssh(0, "systemctl is-enabled ssh.service");
    let enabled = String::from_utf8_lossy(&enabled.stdout).trim().to_string();
    assert_ne!(enabled, "enabled", "ssh.service is enabled");
    assert_eq!(
        lab.ssh_ok(0, "systemctl is-active ssh.service").trim(),
        "active"
    );

    // What the cloud image and cloud-init leave.
    let conf = lab.ssh_ok(0, "cat /etc/ssh/sshd_config.d/50-cloud-init.conf");
    assert!(conf.contains("PasswordAuthentication yes"), "{conf}");
    let effective = lab.ssh_ok(0, "sshd -T | grep -i '^passwordauthentication '");
    assert_eq!(effective.trim(), "passwordauthentication yes");
    assert_eq!(
        lab.ssh_ok(0, "dpkg-query -W -f='${Status}' ufw").trim(),
        "install ok installed"
    );
    let ufw = lab.ssh_ok(0, "ufw status");
    assert_eq!(ufw.trim(), "Status: inactive");
    let lists = lab.ssh_ok(
        0,
        "find /var/lib/apt/lists -type f \\( -name '*Packages*' -o -name '*Release*' \\)",
    );
    assert_eq!(lists.trim(), "", "apt lists in the image");

    // apt works against the machine's mirror, signatures checked.
    let out = lab.ssh_ok(
        0,
        "apt-get update -q && \
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends jq \
         </dev/null && echo '{\"a\":1}' | jq -c .a",
    );
    assert_eq!(out.lines().last(), Some("1"), "{out}");
}
