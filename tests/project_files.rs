//! The inventories and playbooks shipped in the repository load and expand for
//! every host, offline (nothing here connects anywhere).

use std::path::{Path, PathBuf};

use slipway::config::{LoadOptions, Project};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped inventory, its state directory (`~/.local/state`) moved to a
/// temporary one that holds the files it names: keys and the Grafana password.
fn shipped(name: &str, state_dir: &str) -> (tempfile::TempDir, PathBuf) {
    let state = tempfile::tempdir().unwrap();
    let files = state.path().join(state_dir);
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("id_ed25519.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qga2V5IGZvciB0aGUgbGFi test\n",
    )
    .unwrap();
    std::fs::write(files.join("grafana_admin_password"), "test-grafana\n").unwrap();
    // Only its existence is checked before connecting.
    std::fs::write(files.join("id_ed25519"), "not a real key\n").unwrap();
    let text = std::fs::read_to_string(root().join(format!("inventories/{name}.toml")))
        .unwrap()
        .replace("~/.local/state", &state.path().display().to_string());
    let inv = state.path().join(format!("{name}.toml"));
    std::fs::write(&inv, text).unwrap();
    (state, inv)
}

#[test]
fn the_lab_inventory_and_the_site_playbook_expand_for_every_host() {
    let (_state, inv) = shipped("lab", "slipway-lab/lab");
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
fn the_vagrant_inventory_and_the_site_playbook_expand_for_every_host() {
    let (_state, inventory) = shipped("vagrant", "slipway-vagrant");
    let opts = LoadOptions {
        inventory,
        playbook: root().join("playbooks/site.toml"),
        user: Some("vagrant".into()),
        ..LoadOptions::default()
    };
    let project =
        Project::load(&opts).expect("inventories/vagrant.toml and playbooks/site.toml load");
    let hosts = slipway::desired::build(&project).expect("the site playbook expands");
    assert_eq!(hosts.len(), 3);
    let ids: Vec<String> = hosts[0].resources().map(|r| r.id()).collect();
    assert!(
        ids.contains(&"swarm:cluster".to_string()),
        "manager1 leads the swarm"
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
