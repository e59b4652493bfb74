//! The test lab for integration tests: systemd hosts as Docker containers on a private Docker
//! network, reached with the OpenSSH client. A thin wrapper over `tests/lab/lab.sh`. Hosts run
//! Ubuntu 24.04 made like a cloud server image (the default) or Debian 12 ([`LabOs`]).
//!
//! Prerequisites (once per machine, as root): `tests/lab/lab.sh deps` (docker, debootstrap) and
//! `tests/lab/lab.sh image all`; `scripts/test.sh` does both. A lab test without docker FAILS: it
//! never passes silently.
//!
//! ```ignore
//! mod common;
//! use common::lab::Lab;
//!
//! #[test]
//! fn converges_two_hosts() {
//!     let lab = Lab::start("converges_two_hosts", 2);
//!     // run slipway with `lab.inventory`, then look at the hosts out of band:
//!     let out = lab.ssh_ok(0, "systemctl is-active ssh");
//!     assert_eq!(out.trim(), "active");
//! } // dropped: `lab.sh down NAME` removes containers, network and keys
//!
//! #[test]
//! fn converges_ubuntu() {
//!     let lab = Lab::start_os("converges_ubuntu", 1, LabOs::Ubuntu);
//!     // sshd is socket-activated there: ssh.socket is active, ssh.service only once used.
//! }
//! ```
//!
//! Set `SLIPWAY_LAB_KEEP=1` to keep a lab after the test (then `tests/lab/lab.sh down NAME`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One lab host: container and host name `NAME-i`, address on the lab network.
#[derive(Debug, Clone)]
pub struct LabHost {
    pub name: String,
    pub ip: String,
}

/// The OS of a lab's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabOs {
    /// Debian 12 (bookworm), minimal: image `slipway-lab:bookworm`.
    Debian,
    /// Ubuntu 24.04 (noble) as made from a cloud image: updated, sshd socket-activated
    /// (ssh.socket enabled, ssh.service disabled), `PasswordAuthentication yes` in
    /// sshd_config.d/50-cloud-init.conf, ufw installed but inactive, rsyslog,
    /// unattended-upgrades, needrestart, no apt lists. Image `slipway-lab:noble`. What
    /// users run, so the default.
    #[default]
    Ubuntu,
}

impl LabOs {
    /// The name lab.sh takes (`image OS`, `up --os OS`).
    pub fn as_str(self) -> &'static str {
        match self {
            LabOs::Debian => "debian",
            LabOs::Ubuntu => "ubuntu",
        }
    }
}

impl std::fmt::Display for LabOs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for [`Lab::start_with`].
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// The hosts' OS (default Ubuntu).
    pub os: LabOs,
    /// Leave `known_hosts` (the one the inventory names) empty, for tests of first-contact
    /// policies. `ssh`/`exec` still verify host keys, against `known_hosts_full`.
    pub no_known_hosts: bool,
    /// Use 172.28.K.0/24 (the next free one if taken) instead of one derived from the name.
    pub subnet_index: Option<u8>,
}

/// A running lab. Dropping it tears the lab down.
#[derive(Debug)]
pub struct Lab {
    /// Unique lab name: containers are `NAME-1..NAME-COUNT`, the network `slipway-NAME`.
    pub name: String,
    /// The hosts' OS.
    pub os: LabOs,
    pub hosts: Vec<LabHost>,
    /// Private key (ed25519) authorized for root on every host.
    pub key: PathBuf,
    /// known_hosts named by the inventory (empty with `no_known_hosts`).
    pub known_hosts: PathBuf,
    /// known_hosts with every host's ed25519, ecdsa and rsa host keys, made out of band.
    pub known_hosts_full: PathBuf,
    /// Inventory in slipway's format: first host in `managers`, the others in `workers`.
    pub inventory: PathBuf,
    pub state_dir: PathBuf,
}

/// Path of `tests/lab/lab.sh`.
pub fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

/// Panics with a clear message unless `docker info` answers. Lab tests call it first, so that
/// on a machine without docker they fail instead of passing without testing anything.
pub fn require_docker() {
    let status = Command::new("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "lab tests need a running docker, and `docker info` failed ({s}): \
             run tests/lab/lab.sh deps (as root), or scripts/test.sh which runs it"
        ),
        Err(e) => panic!(
            "lab tests need docker, and it could not be run ({e}): \
             run tests/lab/lab.sh deps (as root), or scripts/test.sh which runs it"
        ),
    }
}

/// A lab name unique across test threads and test binaries: the test name, sanitized to
/// `[a-z0-9-]`, plus the process id (plus a counter after the first lab of a process).
pub fn unique_name(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = if n == 0 {
        format!("-{}", std::process::id())
    } else {
        format!("-{}-{n}", std::process::id())
    };
    let mut base = String::new();
    for c in test.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            base.push(c);
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
    }
    // lab.sh accepts 40 characters (host names NAME-i must stay valid host names).
    base.truncate(40 - suffix.len());
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "lab" } else { base };
    format!("{base}{suffix}")
}

fn run_script(args: &[&str]) -> Output {
    let script = lab_script();
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    // Progress lines; libtest shows them when the test fails.
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn run_script_ok(args: &[&str]) -> String {
    let out = run_script(args);
    if !out.status.success() {
        panic!(
            "tests/lab/lab.sh {} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Lab {
    /// Starts `count` hosts for the test `test` (any string; made unique with the process id).
    /// Assumes `lab.sh deps` was run; builds the image if missing (a no-op when cached).
    /// Panics, with lab.sh's output, on failure.
    pub fn start(test: &str, count: usize) -> Lab {
        Lab::start_with(test, count, &LabOptions::default())
    }

    /// [`Lab::start`] with hosts of the OS `os`.
    pub fn start_os(test: &str, count: usize, os: LabOs) -> Lab {
        Lab::start_with(
            test,
            count,
            &LabOptions {
                os,
                ..LabOptions::default()
            },
        )
    }

    pub fn start_with(test: &str, count: usize, opts: &LabOptions) -> Lab {
        require_docker();
        run_script_ok(&["image", opts.os.as_str()]);
        let name = unique_name(test);
        let count_s = count.to_string();
        let k;
        let mut args = vec![
            "up",
            name.as_str(),
            count_s.as_str(),
            "--os",
            opts.os.as_str(),
        ];
        if let Some(i) = opts.subnet_index {
            k = i.to_string();
            args.extend(["--subnet-index", k.as_str()]);
        }
        if opts.no_known_hosts {
            args.push("--no-known-hosts");
        }
        let mut out = run_script(&args);
        if !out.status.success() {
            // A container that did not boot is the lab's failure, not the
            // test's (`up` removed it): one more try, and its first words kept.
            eprintln!(
                "lab: up failed once, trying again:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out = run_script(&args);
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            panic!(
                "tests/lab/lab.sh {} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let lab = Lab::parse_summary(&name, opts.os, &stdout);
        assert_eq!(lab.hosts.len(), count, "lab.sh up printed {stdout}");
        lab
    }

    fn parse_summary(name: &str, os: LabOs, summary: &str) -> Lab {
        let mut lab = Lab {
            name: name.to_string(),
            os,
            hosts: Vec::new(),
            key: PathBuf::new(),
            known_hosts: PathBuf::new(),
            known_hosts_full: PathBuf::new(),
            inventory: PathBuf::new(),
            state_dir: PathBuf::new(),
        };
        for line in summary.lines() {
            let Some((word, rest)) = line.split_once(' ') else {
                continue;
            };
            match word {
                "host" => {
                    let (host, ip) = rest
                        .split_once(' ')
                        .unwrap_or_else(|| panic!("bad line from lab.sh up: {line}"));
                    lab.hosts.push(LabHost {
                        name: host.to_string(),
                        ip: ip.trim().to_string(),
                    });
                }
                "os" => assert_eq!(rest, os.as_str(), "lab.sh up started hosts of another OS"),
                "key" => lab.key = PathBuf::from(rest),
                "known_hosts" => lab.known_hosts = PathBuf::from(rest),
                "known_hosts_full" => lab.known_hosts_full = PathBuf::from(rest),
                "inventory" => lab.inventory = PathBuf::from(rest),
                "state_dir" => lab.state_dir = PathBuf::from(rest),
                _ => {}
            }
        }
        for (what, p) in [
            ("key", &lab.key),
            ("known_hosts", &lab.known_hosts),
            ("known_hosts_full", &lab.known_hosts_full),
            ("inventory", &lab.inventory),
            ("state_dir", &lab.state_dir),
        ] {
            assert!(
                !p.as_os_str().is_empty(),
                "lab.sh up printed no {what}:\n{summary}"
            );
        }
        lab
    }

    /// Host `i`, 0-based: `host(0)` is `NAME-1`.
    pub fn host(&self, i: usize) -> &LabHost {
        self.hosts.get(i).unwrap_or_else(|| {
            panic!(
                "lab {} has {} hosts, no index {i} (0-based)",
                self.name,
                self.hosts.len()
            )
        })
    }

    /// The OpenSSH client command for host `i` (0-based), as root with the lab key, checking
    /// the host key strictly against `known_hosts_full`; append a remote command.
    pub fn ssh_command(&self, i: usize) -> Command {
        self.ssh_command_as(i, "root")
    }

    /// [`Lab::ssh_command`] as another user (the lab key must be authorized for it).
    pub fn ssh_command_as(&self, i: usize, user: &str) -> Command {
        let host = self.host(i);
        let mut c = Command::new("ssh");
        c.arg("-F").arg("/dev/null");
        c.arg("-i").arg(&self.key);
        for o in [
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "StrictHostKeyChecking=yes",
            "GlobalKnownHostsFile=/dev/null",
            "ConnectTimeout=10",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=6",
            "LogLevel=ERROR",
        ] {
            c.arg("-o").arg(o);
        }
        c.arg("-o").arg(format!(
            "UserKnownHostsFile={}",
            self.known_hosts_full.display()
        ));
        c.arg(format!("{user}@{}", host.ip));
        c.stdin(Stdio::null());
        c
    }

    /// Runs `cmd` (a shell command line) on host `i` (0-based) over SSH, out of band of
    /// slipway (for changes and checks in tests).
    pub fn ssh(&self, i: usize, cmd: &str) -> Output {
        self.ssh_command(i)
            .arg("--")
            .arg(cmd)
            .output()
            .unwrap_or_else(|e| panic!("could not run ssh: {e}"))
    }

    /// [`Lab::ssh`] as another user; whether it got in is for the caller to judge.
    pub fn ssh_as(&self, i: usize, user: &str, cmd: &str) -> Output {
        self.ssh_command_as(i, user)
            .arg("--")
            .arg(cmd)
            .output()
            .unwrap_or_else(|e| panic!("could not run ssh: {e}"))
    }

    /// [`Lab::ssh`], panicking unless the command exits 0; returns its stdout.
    pub fn ssh_ok(&self, i: usize, cmd: &str) -> String {
        let out = self.ssh(i, cmd);
        checked(&format!("ssh {} {cmd:?}", self.host(i).name), out)
    }

    /// Runs `cmd` with `sh -c` on host `i` (0-based) with `docker exec` (no SSH involved).
    pub fn exec(&self, i: usize, cmd: &str) -> Output {
        Command::new("docker")
            .args(["exec", &self.host(i).name, "sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("could not run docker exec: {e}"))
    }

    /// [`Lab::exec`], panicking unless the command exits 0; returns its stdout.
    pub fn exec_ok(&self, i: usize, cmd: &str) -> String {
        let out = self.exec(i, cmd);
        checked(&format!("docker exec {} {cmd:?}", self.host(i).name), out)
    }

    /// An inventory of every host in the shape of inventories/lab.toml: the deploy
    /// user with sudo and the lab's key, the first host a manager and the others
    /// workers, with Docker as the lab runs it and `vars` added to `[vars]`. A first
    /// converge connects with `--user root`.
    pub fn deploy_inventory(&self, vars: &str) -> String {
        let mut s = format!(
            "[defaults]\nuser = \"deploy\"\nbecome = \"sudo\"\nidentity_file = \"{key}\"\nknown_hosts = \"{kh}\"\n\n\
             [vars]\ndeploy_key_files = [\"{key}.pub\"]\ndocker_source = \"distribution\"\ndocker_storage_driver = \"vfs\"\n{vars}\n",
            key = self.key.display(),
            kh = self.known_hosts.display(),
        );
        for (i, h) in self.hosts.iter().enumerate() {
            let group = if i == 0 { "managers" } else { "workers" };
            s.push_str(&format!(
                "\n[hosts.{}]\naddress = \"{}\"\ngroups = [\"{group}\"]\n",
                h.name, h.ip
            ));
        }
        s
    }
}

fn checked(what: &str, out: Output) -> String {
    if !out.status.success() {
        panic!(
            "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var_os("SLIPWAY_LAB_KEEP").is_some_and(|v| v == "1") {
            eprintln!(
                "lab {} kept (SLIPWAY_LAB_KEEP=1): tests/lab/lab.sh down {}",
                self.name, self.name
            );
            return;
        }
        let out = run_script(&["down", &self.name]);
        if !out.status.success() {
            eprintln!(
                "warning: tests/lab/lab.sh down {} failed ({})",
                self.name, out.status
            );
        }
    }
}
