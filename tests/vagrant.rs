//! The Vagrant environment: vagrant/Vagrantfile is valid, it and inventories/vagrant.toml
//! describe the same machines, and its docker variant (vagrant/docker/Vagrantfile) really comes
//! up and lets slipway in with the inventory's key, host keys checked strictly.
//!
//! Needs the Debian packages `vagrant` and `vagrant-libvirt` (no hypervisor: nothing here boots
//! a VM), and for the docker variant a running docker with the lab image (scripts/test.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::lab::require_docker;
use common::run::{run, slipway};
use slipway::config::{Become, Inventory};
use slipway::diag::SourceFile;
use slipway::redact::Redactor;
use slipway::transport::HostKeyPolicy;

const NAMES: [&str; 3] = ["manager1", "worker1", "worker2"];
/// The docker variant's subnet prefix, in place of the VMs' 192.168.56.
const DOCKER_PREFIX: &str = "172.28.251.";
const DOCKER_NETWORK: &str = "vagrant_network_172.28.251.0/24";
const DOCKER_LABEL: &str = "slipway-vagrant-docker=1";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics with what to install unless `vagrant` and its libvirt plugin are there: tests that
/// need them fail on a machine without them instead of passing without testing anything.
fn require_vagrant() {
    let hint = "install the Debian packages: apt-get install --no-install-recommends vagrant vagrant-libvirt";
    let out = Command::new("vagrant")
        .args(["plugin", "list", "--no-color"])
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("vagrant could not be run ({e}): {hint}"));
    assert!(
        out.status.success(),
        "vagrant plugin list failed: {hint}\n{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vagrant-libvirt"),
        "the vagrant-libvirt plugin is missing (the libvirt provider block goes unchecked): {hint}"
    );
}

/// `vagrant ARGS` in `dir`, with HOME and Vagrant's state under `home`: nothing lands in the
/// repository or the real home. Bounded in time; no update checks.
fn vagrant(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("600")
        .arg("vagrant")
        .args(args)
        .arg("--no-color")
        .current_dir(dir)
        .env("HOME", home)
        .env("VAGRANT_DOTFILE_PATH", home.join("dot"))
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .env("VAGRANT_BOX_UPDATE_CHECK_DISABLE", "1")
        .env_remove("VAGRANT_DEFAULT_PROVIDER")
        .env_remove("VAGRANT_CWD")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run vagrant")
}

fn vagrant_ok(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = vagrant(dir, home, env, args);
    assert!(
        out.status.success(),
        "vagrant {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Machine names and states as Vagrant itself sees them (`status --machine-readable`).
fn machine_states(dir: &Path, home: &Path, env: &[(&str, &str)]) -> Vec<(String, String)> {
    vagrant_ok(dir, home, env, &["status", "--machine-readable"])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() >= 4 && f[2] == "state").then(|| (f[1].to_string(), f[3].to_string()))
        })
        .collect()
}

/// The `HOSTS = { "name" => "address", ... }` table of a Vagrantfile, in order.
fn vagrantfile_hosts(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("HOSTS = {").expect("a HOSTS = { ... } table");
    let end = start + text[start..].find('}').unwrap();
    text[start..end]
        .lines()
        .filter_map(|l| {
            let (name, addr) = l.split_once("=>")?;
            let unquote = |s: &str| s.trim().trim_end_matches(',').trim_matches('"').to_string();
            Some((unquote(name), unquote(addr)))
        })
        .collect()
}

/// Loads an inventory as the offline commands do: its secrets need not be at hand.
fn load_inventory(path: &Path) -> Inventory {
    let src = SourceFile::read(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    Inventory::load(src, &Redactor::offline())
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

fn inventory_hosts(inv: &Inventory) -> Vec<(String, String)> {
    inv.hosts
        .iter()
        .map(|h| (h.name.clone(), h.address.clone()))
        .collect()
}

#[test]
fn the_vagrantfile_is_valid_for_both_providers() {
    require_vagrant();
    let home = tempfile::tempdir().unwrap();
    let dir = root().join("vagrant");
    // Without a provider's plugin Vagrant can still check everything but the provider blocks.
    let out = vagrant_ok(&dir, home.path(), &[], &["validate", "--ignore-provider"]);
    assert!(out.contains("validated successfully"), "{out}");
    // The libvirt block, against the plugin. The virtualbox block needs VirtualBox's VBoxManage
    // to be checked, which Debian does not ship.
    vagrant_ok(
        &dir,
        home.path(),
        &[("VAGRANT_DEFAULT_PROVIDER", "libvirt")],
        &["validate"],
    );
    // Memory and CPUs come from the environment, and nonsense there is refused.
    let out = vagrant(
        &dir,
        home.path(),
        &[("SLIPWAY_VM_MEMORY", "lots")],
        &["validate", "--ignore-provider"],
    );
    assert!(
        !out.status.success(),
        "SLIPWAY_VM_MEMORY=lots was accepted:\n{}",
        text(&out)
    );

    let vagrantfile = std::fs::read_to_string(dir.join("Vagrantfile")).unwrap();
    let default_box = vagrantfile
        .lines()
        .find_map(|l| {
            l.split_once(r#"ENV.fetch("SLIPWAY_VAGRANT_BOX", ""#)?
                .1
                .split('"')
                .next()
        })
        .expect("the box comes from SLIPWAY_VAGRANT_BOX with a default");
    assert!(
        default_box.contains("ubuntu-24.04"),
        "default box {default_box}"
    );
}

#[test]
fn the_inventory_describes_the_machines_of_the_vagrantfile() {
    require_vagrant();
    let home = tempfile::tempdir().unwrap();
    let dir = root().join("vagrant");
    let inv = load_inventory(&root().join("inventories/vagrant.toml"));
    let vagrant_hosts = vagrantfile_hosts(&dir.join("Vagrantfile"));
    assert_eq!(
        inventory_hosts(&inv),
        vagrant_hosts,
        "inventory vs Vagrantfile HOSTS"
    );
    // The machines Vagrant defines are exactly those of the table.
    let machines: Vec<String> = machine_states(
        &dir,
        home.path(),
        &[("VAGRANT_DEFAULT_PROVIDER", "libvirt")],
    )
    .into_iter()
    .map(|(name, _)| name)
    .collect();
    assert_eq!(machines, NAMES);
    assert_eq!(inv.groups["managers"], ["manager1"]);
    assert_eq!(inv.groups["workers"], ["worker1", "worker2"]);

    // One key for both providers: the file the Vagrantfile authorises is the inventory's key.
    let vagrantfile = std::fs::read_to_string(dir.join("Vagrantfile")).unwrap();
    assert!(vagrantfile.contains(r#"File.expand_path("~/.local/state/slipway-vagrant")"#));
    assert!(vagrantfile.contains(r#"File.join(STATE, "id_ed25519.pub")"#));
    let state = slipway::config::home_dir().join(".local/state/slipway-vagrant");
    for h in &inv.hosts {
        assert_eq!(h.user.as_deref(), Some("deploy"), "{}", h.name);
        assert_eq!(h.become_, Become::Sudo, "{}", h.name);
        assert_eq!(
            h.identity_file.as_deref(),
            Some(state.join("id_ed25519").as_path())
        );
        assert_eq!(h.known_hosts, state.join("known_hosts"));
        assert_eq!(
            h.host_key_policy,
            HostKeyPolicy::Strict,
            "strict stays the default"
        );
        assert_eq!(
            h.vars["deploy_key_files"],
            serde_json::json!(["~/.local/state/slipway-vagrant/id_ed25519.pub"])
        );
    }
}

/// Removes the docker variant's machines when a test ends, whatever happened.
struct DockerVariant {
    dir: PathBuf,
    home: tempfile::TempDir,
    destroyed: bool,
}

impl DockerVariant {
    fn remove_leftovers() {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label={DOCKER_LABEL}")])
            .output()
            .unwrap();
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        if !ids.trim().is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(ids.split_whitespace())
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", DOCKER_NETWORK])
            .output();
    }
}

impl Drop for DockerVariant {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = vagrant(&self.dir, self.home.path(), &[], &["destroy", "-f"]);
            Self::remove_leftovers();
        }
    }
}

#[test]
fn the_docker_variant_comes_up_and_lets_slipway_in_with_the_inventorys_key() {
    require_vagrant();
    require_docker();
    let image =
        std::env::var("SLIPWAY_LAB_UBUNTU_IMAGE").unwrap_or_else(|_| "slipway-lab:noble".into());
    let found = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "image {image} missing: run tests/lab/lab.sh image"
    );

    // A killed earlier run may have left machines on the variant's fixed addresses.
    DockerVariant::remove_leftovers();
    let mut variant = DockerVariant {
        dir: root().join("vagrant/docker"),
        home: tempfile::tempdir().unwrap(),
        destroyed: false,
    };
    let home = variant.home.path().to_path_buf();
    let state = home.join(".local/state/slipway-vagrant");
    std::fs::create_dir_all(&state).unwrap();
    let keygen = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "slipway-vagrant-test",
            "-f",
        ])
        .arg(state.join("id_ed25519"))
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));

    // The docker variant serves the inventory's machines on other addresses.
    let inventory = home.join("vagrant-docker.toml");
    let source = std::fs::read_to_string(root().join("inventories/vagrant.toml")).unwrap();
    std::fs::write(&inventory, source.replace("192.168.56.", DOCKER_PREFIX)).unwrap();
    let hosts = vagrantfile_hosts(&variant.dir.join("Vagrantfile"));
    assert_eq!(inventory_hosts(&load_inventory(&inventory)), hosts);

    // One machine at a time: the docker provider's parallel start races on the
    // shared network (a machine then fails with `docker inspect`: no such object).
    vagrant_ok(
        &variant.dir,
        &home,
        &[],
        &["up", "--provider=docker", "--no-parallel"],
    );
    let states = machine_states(&variant.dir, &home, &[]);
    let want: Vec<(String, String)> = NAMES
        .iter()
        .map(|n| (n.to_string(), "running".into()))
        .collect();
    assert_eq!(states, want);

    let plan = |detailed: bool| {
        let mut cmd = slipway(&home);
        cmd.arg("plan")
            .arg("-i")
            .arg(&inventory)
            .arg(root().join("playbooks/site.toml"));
        cmd.args(["--user", "root"]);
        if detailed {
            cmd.arg("--detailed-exitcode");
        }
        run(&mut cmd)
    };
    // Strict host key checking: unknown keys are refused while known_hosts is empty.
    let refused = plan(false).expect(1);
    assert!(refused.all().contains("is not known"), "{}", refused.all());

    // Record the host keys out of band (from inside each container, not over the network).
    let mut known = String::new();
    for (name, addr) in &hosts {
        let id_file = home.join("dot/machines").join(name).join("docker/id");
        let id = std::fs::read_to_string(&id_file).unwrap();
        let out = Command::new("docker")
            .args([
                "exec",
                id.trim(),
                "sh",
                "-c",
                "cat /etc/ssh/ssh_host_*_key.pub",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", text(&out));
        for key in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = key.split_whitespace();
            let (kind, blob) = (f.next().unwrap(), f.next().unwrap());
            known.push_str(&format!("{addr} {kind} {blob}\n"));
        }
    }
    std::fs::write(state.join("known_hosts"), known).unwrap();

    // In with the inventory's key and known_hosts: every host observed, changes planned.
    let planned = plan(true).expect(2);
    for (name, addr) in &hosts {
        assert!(
            planned.stdout.contains(&format!("{name} ({addr})")),
            "{}",
            planned.all()
        );
    }
    assert!(
        planned.stdout.contains("on 3 of 3 hosts"),
        "{}",
        planned.all()
    );

    vagrant_ok(&variant.dir, &home, &[], &["destroy", "-f"]);
    variant.destroyed = true;
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={DOCKER_LABEL}")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "containers left"
    );
    let net = Command::new("docker")
        .args(["network", "inspect", DOCKER_NETWORK])
        .output()
        .unwrap();
    assert!(!net.status.success(), "network {DOCKER_NETWORK} left");
}
