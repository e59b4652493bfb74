//! The inventories and playbooks shipped in the repository load and expand for
//! every host, offline (nothing here connects anywhere).

use std::path::Path;

use slipway::config::{LoadOptions, Project};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_lab_inventory_and_the_site_playbook_expand_for_every_host() {
    // deploy_key_files names the lab's key under the state directory: give it one.
    let state = tempfile::tempdir().unwrap();
    let keys = state.path().join("slipway-lab/lab");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(
        keys.join("id_ed25519.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qga2V5IGZvciB0aGUgbGFi lab\n",
    )
    .unwrap();
    std::fs::write(keys.join("grafana_admin_password"), "lab-grafana\n").unwrap();
    let inventory = std::fs::read_to_string(root().join("inventories/lab.toml"))
        .unwrap()
        .replace("~/.local/state", &state.path().display().to_string());
    let inv = state.path().join("lab.toml");
    std::fs::write(&inv, inventory).unwrap();

    let opts = LoadOptions {
        inventory: inv,
        playbook: root().join("playbooks/site.toml"),
        ..LoadOptions::default()
    };
    let project = Project::load(&opts).expect("inventories/lab.toml and playbooks/site.toml load");
    let hosts = slipway::desired::build(&project).expect("the site playbook expands");
    assert_eq!(hosts.len(), 3);
    let ids = |i: usize| hosts[i].resources().map(|r| r.id()).collect::<Vec<_>>();
    let manager = ids(0);
    assert!(manager.contains(&"swarm:node".to_string()));
    assert!(
        manager.contains(&"swarm:cluster".to_string()),
        "the leader runs swarm_cluster"
    );
    assert!(
        !ids(1).contains(&"swarm:cluster".to_string()),
        "a worker does not"
    );
    assert!(
        manager.contains(&"stack:monitoring".to_string()),
        "the leader deploys the monitoring stack"
    );
    assert!(ids(1).contains(&"directory:/app/logs".to_string()));
    assert!(!ids(1).iter().any(|id| id.contains("/opt/monitoring")));
    // daemon.json is one resource, though two roles own keys of it.
    assert_eq!(
        manager
            .iter()
            .filter(|id| id.as_str() == "json:/etc/docker/daemon.json")
            .count(),
        1
    );
}

#[test]
fn the_example_playbook_expands() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        "[hosts.web1]\naddress = \"192.0.2.10\"\ngroups = [\"managers\"]\n",
    )
    .unwrap();
    // SAFETY: this test binary sets no other environment variables concurrently.
    unsafe { std::env::set_var("EXAMPLE_DB_PASSWORD", "example-secret") };
    let opts = LoadOptions {
        inventory: inv,
        playbook: root().join("playbooks/example.toml"),
        ..LoadOptions::default()
    };
    let project = Project::load(&opts).unwrap();
    let hosts = slipway::desired::build(&project).unwrap();
    assert_eq!(hosts[0].resources().count(), 10);
}
