//! The engine against real lab hosts: plan, apply, verify, saved plans,
//! validation, host keys, locking and secrets.

mod common;

use common::lab::{Lab, LabOptions};
use common::run::{Project, Run, run, slipway};

const SECRET: &str = "hunter2-Zq8v1LmX";

/// Everything the core resources can do, on a fresh host.
const FULL: &str = r#"
[[play]]
name = "core resources"
hosts = "all"

[play.vars]
app_dir = "/opt/app"
api_token = { secret = true, env = "TEST_API_TOKEN" }

[[play.resources]]
type = "package"
name = ["tree"]

[[play.resources]]
type = "group"
name = "app"

[[play.resources]]
type = "user"
name = "app"
groups = ["app"]
shell = "/bin/bash"
password_locked = true
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZlcnkgZmFrZSBrZXkgZm9yIHRlc3Rpbmc app@test"]

[[play.resources]]
type = "directory"
path = "{{ app_dir }}"
owner = "app"
group = "app"
mode = "0750"

[[play.resources]]
type = "file"
path = "/etc/motd"
template = "motd.j2"
mode = "0644"

[[play.resources]]
type = "file"
path = "{{ app_dir }}/token"
content = "TOKEN={{ api_token }}\n"
owner = "app"
mode = "0600"

[[play.resources]]
type = "file"
path = "/etc/ssh/sshd_config.d/10-test.conf"
content = "ClientAliveInterval 120\n"
validate = "/usr/sbin/sshd -t -f {}"
notify = ["ssh"]

[[play.resources]]
type = "service"
name = "ssh"
enabled = true
state = "running"

[[play.resources]]
type = "sysctl"
name = "test"
settings = { "kernel.kptr_restrict" = 2 }

[[play.resources]]
type = "command"
name = "stamp"
run = "date > {{ app_dir }}/stamp"
creates = "{{ app_dir }}/stamp"
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("playbook.toml", FULL);
    p.write(
        "templates/motd.j2",
        "{{ inventory_hostname }} is managed by slipway\n",
    );
    p
}

fn plan(lab: &Lab, p: &Project, extra: &[&str]) -> Run {
    run(slipway(p.dir.path())
        .env("TEST_API_TOKEN", SECRET)
        .arg("plan")
        .arg("-i")
        .arg(&lab.inventory)
        .arg(p.path("playbook.toml"))
        .args(extra))
}

fn apply(lab: &Lab, p: &Project, extra: &[&str]) -> Run {
    run(slipway(p.dir.path())
        .env("TEST_API_TOKEN", SECRET)
        .arg("apply")
        .arg("-i")
        .arg(&lab.inventory)
        .arg(p.path("playbook.toml"))
        .args(extra))
}

fn assert_no_secret(r: &Run) {
    assert!(!r.all().contains(SECRET), "the secret leaked:\n{}", r.all());
}

#[test]
fn converges_fresh_hosts_and_a_second_run_changes_nothing() {
    let lab = Lab::start("converges", 2);
    let p = project();

    let first = plan(&lab, &p, &["--detailed-exitcode"]).expect(2);
    assert_no_secret(&first);
    let out = &first.stdout;
    assert!(out.contains("+ package:tree  install tree"), "{out}");
    assert!(out.contains("+++ /etc/motd (planned)"), "{out}");
    assert!(out.contains("(sensitive)"), "{out}");
    assert!(out.contains("restart ssh"), "{out}");
    assert!(
        out.contains(
            "1 kernel setting is read-only inside a container (docker): kernel.kptr_restrict"
        ),
        "{out}"
    );
    assert!(out.contains("to change on 2 of 2 hosts"), "{out}");

    let json = plan(&lab, &p, &["--format", "json"]).expect(0);
    assert_no_secret(&json);
    for h in json.json()["hosts"].as_array().unwrap() {
        assert!(h["remote_commands"].as_u64().unwrap() <= 2, "{h}");
    }

    let applied = apply(&lab, &p, &["--yes"]).expect(0);
    assert_no_secret(&applied);
    assert!(
        applied.stdout.contains("changed, verified"),
        "{}",
        applied.stdout
    );

    for i in 0..2 {
        assert_eq!(
            lab.ssh_ok(i, "cat /opt/app/token"),
            format!("TOKEN={SECRET}\n")
        );
        assert_eq!(
            lab.ssh_ok(i, "stat -c '%a %U %G' /opt/app").trim(),
            "750 app app"
        );
        assert_eq!(
            lab.ssh_ok(i, "stat -c '%a %U' /opt/app/token").trim(),
            "600 app"
        );
        assert!(
            lab.ssh_ok(i, "cat /etc/motd")
                .contains("is managed by slipway")
        );
        assert!(lab.ssh_ok(i, "id -Gn app").contains("app"));
        assert!(
            lab.ssh_ok(i, "cat ~app/.ssh/authorized_keys")
                .contains("app@test")
        );
        assert_eq!(
            lab.ssh_ok(i, "stat -c %a ~app/.ssh/authorized_keys").trim(),
            "600"
        );
        assert!(
            lab.ssh_ok(i, "dpkg-query -W -f='${Status}' tree")
                .contains("ok installed")
        );
        lab.ssh_ok(i, "test -f /opt/app/stamp");
        // No temp files are left beside written files.
        assert_eq!(
            lab.ssh_ok(
                i,
                "ls -a /etc/ssh/sshd_config.d /opt/app | grep -c slipway || true"
            )
            .trim(),
            "0"
        );
    }

    let again = plan(&lab, &p, &["--detailed-exitcode", "-v"]).expect(0);
    assert_no_secret(&again);
    assert!(again.stderr.contains("remote command"), "{}", again.stderr);
    assert!(again.stderr.contains("connected"), "{}", again.stderr);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert!(
        again.stdout.contains("[1 remote command]"),
        "{}",
        again.stdout
    );
    let json = plan(&lab, &p, &["--format", "json"]).expect(0);
    for h in json.json()["hosts"].as_array().unwrap() {
        assert_eq!(h["remote_commands"], 1, "{h}");
        assert_eq!(h["changes"].as_array().unwrap().len(), 0, "{h}");
    }

    let reapply = apply(&lab, &p, &["--yes"]).expect(0);
    assert!(reapply.stdout.contains("No changes"), "{}", reapply.stdout);

    // Drift is found and repaired, and only the drifted resource changes.
    lab.ssh_ok(1, "echo tampered > /etc/motd; chmod 0640 /etc/motd");
    let drift = plan(&lab, &p, &["--detailed-exitcode"]).expect(2);
    assert!(
        drift.stdout.contains("to change on 1 of 2 hosts"),
        "{}",
        drift.stdout
    );
    assert!(drift.stdout.contains("-tampered"), "{}", drift.stdout);
    assert!(
        drift.stdout.contains("mode: 0640 -> 0644"),
        "{}",
        drift.stdout
    );
    apply(&lab, &p, &["--yes"]).expect(0);
    plan(&lab, &p, &["--detailed-exitcode"]).expect(0);
}

#[test]
fn saved_plan_applies_exactly_and_refuses_when_stale() {
    let lab = Lab::start("saved-plan", 1);
    let p = Project::new();
    let playbook = |text: &str| {
        p.write(
            "playbook.toml",
            &format!(
                "[[play]]\nhosts = \"all\"\n[play.vars]\ntoken = {{ secret = true, env = \"TEST_API_TOKEN\" }}\n\
                 [[play.resources]]\ntype = \"file\"\npath = \"/etc/saved-plan.conf\"\ncontent = \"{text} {{{{ token }}}}\\n\"\n"
            ),
        )
    };
    playbook("first");
    let planfile = p.path("plan.json");
    plan(&lab, &p, &["--out", planfile.to_str().unwrap()]).expect(0);
    let saved = std::fs::read_to_string(&planfile).unwrap();
    assert!(
        !saved.contains(SECRET),
        "secret in the saved plan:\n{saved}"
    );
    assert!(saved.contains("file:/etc/saved-plan.conf"));

    // Without a terminal, apply wants --yes; a saved plan needs no confirmation.
    apply(&lab, &p, &[]).expect(1);
    let r = run(slipway(p.dir.path())
        .env("TEST_API_TOKEN", SECRET)
        .arg("apply")
        .arg(&planfile))
    .expect(0);
    assert_no_secret(&r);
    assert_eq!(
        lab.ssh_ok(0, "cat /etc/saved-plan.conf"),
        format!("first {SECRET}\n")
    );

    // A plan made, then the host changed behind its back: refused, nothing touched.
    playbook("second");
    plan(&lab, &p, &["--out", planfile.to_str().unwrap()]).expect(0);
    lab.ssh_ok(0, "echo by-hand > /etc/saved-plan.conf");
    let stale = run(slipway(p.dir.path())
        .env("TEST_API_TOKEN", SECRET)
        .arg("apply")
        .arg(&planfile))
    .expect(1);
    let msg = stale.all();
    assert!(msg.contains("stale plan"), "{msg}");
    assert!(msg.contains("file:/etc/saved-plan.conf"), "{msg}");
    assert!(msg.contains(&lab.hosts[0].name), "{msg}");
    assert_eq!(lab.ssh_ok(0, "cat /etc/saved-plan.conf"), "by-hand\n");

    // A plan whose playbook changed after it was made is refused too.
    plan(&lab, &p, &["--out", planfile.to_str().unwrap()]).expect(0);
    playbook("third");
    let changed = run(slipway(p.dir.path())
        .env("TEST_API_TOKEN", SECRET)
        .arg("apply")
        .arg(&planfile))
    .expect(1);
    assert!(
        changed.all().contains("no longer matches"),
        "{}",
        changed.all()
    );
}

#[test]
fn a_file_failing_validation_is_never_installed() {
    let lab = Lab::start("validate", 1);
    let p = Project::new();
    p.write(
        "playbook.toml",
        "[[play]]\nhosts = \"all\"\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/ssh/sshd_config.d/50-bad.conf\"\n\
         content = \"NoSuchOption yes\\n\"\nvalidate = \"/usr/sbin/sshd -t -f {}\"\nnotify = [\"ssh\"]\n",
    );
    lab.ssh_ok(0, "printf '# old\\n' > /etc/ssh/sshd_config.d/50-bad.conf");
    let before = lab.ssh_ok(0, "systemctl show ssh -p MainPID");
    let r = apply(&lab, &p, &["--yes"]).expect(1);
    assert!(r.stdout.contains("validation failed"), "{}", r.stdout);
    assert!(r.stdout.contains("NoSuchOption"), "{}", r.stdout);
    assert_eq!(
        lab.ssh_ok(0, "cat /etc/ssh/sshd_config.d/50-bad.conf"),
        "# old\n"
    );
    assert_eq!(
        lab.ssh_ok(0, "ls -a /etc/ssh/sshd_config.d | grep -c slipway || true")
            .trim(),
        "0"
    );
    // The handler did not run: sshd was not restarted.
    assert_eq!(lab.ssh_ok(0, "systemctl show ssh -p MainPID"), before);
}

#[test]
fn host_keys_are_checked() {
    let lab = Lab::start_with(
        "host-keys",
        1,
        &LabOptions {
            no_known_hosts: true,
            ..LabOptions::default()
        },
    );
    let p = Project::new();
    p.write("playbook.toml", "[[play]]\nhosts = \"all\"\n");

    // Unknown key under strict: refused, with the fingerprint.
    let r = plan(&lab, &p, &[]).expect(1);
    assert!(r.stdout.contains("is not known"), "{}", r.stdout);
    assert!(r.stdout.contains("SHA256:"), "{}", r.stdout);

    // accept-new records it; strict then accepts it.
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    let accept_new = p.write(
        "accept-new.toml",
        &inv.replace("\"strict\"", "\"accept-new\""),
    );
    let r = run(slipway(p.dir.path())
        .arg("plan")
        .arg("-i")
        .arg(&accept_new)
        .arg(p.path("playbook.toml")))
    .expect(0);
    assert!(r.stdout.contains("No changes"), "{}", r.all());
    assert!(
        std::fs::read_to_string(&lab.known_hosts)
            .unwrap()
            .contains(&lab.hosts[0].ip)
    );
    plan(&lab, &p, &[]).expect(0);

    // A changed key is refused under both policies, naming the known_hosts line.
    lab.exec_ok(
        0,
        "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; systemctl restart ssh",
    );
    for inventory in [lab.inventory.clone(), accept_new] {
        let r = run(slipway(p.dir.path())
            .arg("plan")
            .arg("-i")
            .arg(&inventory)
            .arg(p.path("playbook.toml")))
        .expect(1);
        assert!(r.stdout.contains("CHANGED"), "{}", r.stdout);
        assert!(r.stdout.contains("SHA256:"), "{}", r.stdout);
        // The message names the known_hosts line that holds the old key.
        let prefix = format!("{}:", lab.known_hosts.display());
        let at = r
            .stdout
            .find(&prefix)
            .unwrap_or_else(|| panic!("{}", r.stdout));
        let line: usize = r.stdout[at + prefix.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", r.stdout));
        let recorded = std::fs::read_to_string(&lab.known_hosts).unwrap();
        let entry = recorded.lines().nth(line - 1).unwrap_or_default();
        assert!(entry.contains(&lab.hosts[0].ip), "line {line} is `{entry}`");
    }
}

#[test]
fn a_second_apply_on_a_locked_host_is_refused() {
    let lab = Lab::start("lock", 1);
    let p = Project::new();
    p.write(
        "playbook.toml",
        "[[play]]\nhosts = \"all\"\n[[play.resources]]\ntype = \"command\"\nname = \"slow\"\nrun = \"sleep 6\"\n",
    );
    let mut first = slipway(p.dir.path());
    first
        .arg("apply")
        .arg("-i")
        .arg(&lab.inventory)
        .arg(p.path("playbook.toml"))
        .arg("--yes");
    let child = first
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lab.exec(0, "test -f /run/lock/slipway.owner").status.code() != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first apply never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let second = apply(&lab, &p, &["--yes"]).expect(1);
    assert!(
        second.stdout.contains("locked by slipway apply by"),
        "{}",
        second.all()
    );
    let first: Run = child.wait_with_output().unwrap().into();
    let first = first.expect(0);
    assert!(first.stdout.contains("1 changed"), "{}", first.stdout);
    // The lock is gone with the first run.
    lab.exec_ok(0, "test ! -f /run/lock/slipway.owner");
    apply(&lab, &p, &["--yes"]).expect(0);
}

#[test]
fn a_non_root_user_works_through_sudo_with_a_password() {
    let lab = Lab::start("sudo", 1);
    let password = "Pw-for-sudo-9x7";
    lab.exec_ok(
        0,
        &format!(
            "useradd -m -s /bin/bash ops && echo 'ops:{password}' | chpasswd && usermod -aG sudo ops && \
             install -d -m 700 -o ops -g ops ~ops/.ssh && install -m 600 -o ops -g ops /root/.ssh/authorized_keys ~ops/.ssh/"
        ),
    );
    let p = Project::new();
    let inv = std::fs::read_to_string(&lab.inventory).unwrap().replace(
        "user = \"root\"",
        "user = \"ops\"\nbecome = \"sudo\"\nbecome_password_env = \"OPS_SUDO\"",
    );
    let inventory = p.write("inventory.toml", &inv);
    p.write(
        "playbook.toml",
        "[[play]]\nhosts = \"all\"\n[[play.resources]]\ntype = \"file\"\npath = \"/root/through-sudo\"\ncontent = \"ok\\n\"\nmode = \"0600\"\n",
    );
    let go = |cmd: &str| {
        run(slipway(p.dir.path())
            .env("OPS_SUDO", password)
            .arg(cmd)
            .arg("-i")
            .arg(&inventory)
            .arg(p.path("playbook.toml"))
            .arg("--yes"))
    };
    let r = go("apply").expect(0);
    assert!(!r.all().contains(password), "{}", r.all());
    assert_eq!(
        lab.exec_ok(0, "stat -c '%U %a' /root/through-sudo").trim(),
        "root 600"
    );
    // Not on any command line: sudo logs its commands; the password must not be there.
    assert!(
        !lab.exec_ok(0, "journalctl -q --no-pager 2>/dev/null || true")
            .contains(password)
    );

    // Passwordless sudo with the password still configured works too.
    lab.exec_ok(
        0,
        "echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops && chmod 0440 /etc/sudoers.d/ops",
    );
    lab.exec_ok(0, "rm /root/through-sudo");
    go("apply").expect(0);
    lab.exec_ok(0, "test -f /root/through-sudo");

    // A wrong password fails the host with a clear error.
    lab.exec_ok(0, "rm /etc/sudoers.d/ops");
    let bad = run(slipway(p.dir.path())
        .env("OPS_SUDO", "wrong")
        .arg("plan")
        .arg("-i")
        .arg(&inventory)
        .arg(p.path("playbook.toml")))
    .expect(1);
    assert!(bad.stdout.contains("error"), "{}", bad.all());
    assert!(
        bad.all().contains("sudo refused the password"),
        "{}",
        bad.all()
    );
    // One attempt, not three: sudo never reads the script's lines as more tries.
    let log = lab.exec_ok(0, "journalctl -q --no-pager _COMM=sudo");
    assert!(log.contains("1 incorrect password attempt"), "{log}");
    assert!(!log.contains("3 incorrect password attempts"), "{log}");
}

#[test]
fn facts_describe_the_host() {
    let lab = Lab::start("facts", 1);
    let p = Project::new();
    let r = run(slipway(p.dir.path())
        .arg("facts")
        .arg("-i")
        .arg(&lab.inventory)
        .arg(&lab.hosts[0].name)
        .arg("--format")
        .arg("json"))
    .expect(0);
    let f = r.json();
    assert_eq!(f["os_id"], "ubuntu");
    assert_eq!(f["os_version"], "24.04");
    assert_eq!(f["container"], "docker");
    assert_eq!(f["uid"], 0);
    assert_eq!(f["hostname"], lab.hosts[0].name.as_str());
}

#[test]
fn limit_extra_vars_binary_files_and_a_failed_host() {
    let lab = Lab::start("limit", 2);
    let p = Project::new();
    let blob: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::create_dir_all(p.path("files")).unwrap();
    std::fs::write(p.path("files/blob.bin"), &blob).unwrap();
    p.write(
        "playbook.toml",
        "[[play]]\nhosts = \"all\"\n[play.vars]\ngreeting = \"hello\"\n\
         [[play.resources]]\ntype = \"file\"\npath = \"/etc/greeting\"\ncontent = \"{{ greeting }} from {{ inventory_hostname }}\\n\"\n\
         [[play.resources]]\ntype = \"file\"\npath = \"/opt/blob.bin\"\nsource = \"files/blob.bin\"\n",
    );
    let (one, two) = (lab.hosts[0].name.clone(), lab.hosts[1].name.clone());

    let r = plan(&lab, &p, &["--limit", &two, "-e", "greeting=bye"]).expect(0);
    assert!(!r.stdout.contains(&one), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("+bye from {two}")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("/opt/blob.bin: binary or large; absent -> 300000 bytes"),
        "{}",
        r.stdout
    );

    apply(&lab, &p, &["--limit", &two, "-e", "greeting=bye", "--yes"]).expect(0);
    assert_eq!(
        lab.ssh_ok(1, "cat /etc/greeting"),
        format!("bye from {two}\n")
    );
    assert_eq!(
        lab.ssh_ok(1, "sha256sum < /opt/blob.bin | cut -c1-64")
            .trim(),
        sha256(&blob)
    );
    lab.ssh_ok(0, "test ! -e /etc/greeting");

    // A host that cannot be reached fails alone; the others are planned and applied.
    lab.exec_ok(
        1,
        "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh",
    );
    let r = apply(&lab, &p, &["--yes", "--forks", "1"]).expect(1);
    assert!(
        r.stdout.contains(&format!("{one} 2 changed, verified")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("{two} failed")), "{}", r.stdout);
    assert!(r.stdout.contains("1 host failed"), "{}", r.stdout);
    assert_eq!(
        lab.ssh_ok(0, "cat /etc/greeting"),
        format!("hello from {one}\n")
    );
}

#[test]
fn a_dropped_connection_never_leaves_a_partial_file() {
    let lab = Lab::start("dropped", 1);
    let p = Project::new();
    let big: Vec<u8> = (0..64_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    std::fs::create_dir_all(p.path("files")).unwrap();
    std::fs::write(p.path("files/big.bin"), &big).unwrap();
    p.write(
        "playbook.toml",
        "[[play]]\nhosts = \"all\"\n[[play.resources]]\ntype = \"file\"\npath = \"/var/tmp/big.bin\"\nsource = \"files/big.bin\"\n",
    );
    let mut child = slipway(p.dir.path())
        .arg("apply")
        .arg("-i")
        .arg(&lab.inventory)
        .arg(p.path("playbook.toml"))
        .arg("--yes")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill slipway once the transfer has started: the temp file exists beside the target.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lab
        .exec(0, "ls /var/tmp/.slipway.* >/dev/null 2>&1")
        .status
        .code()
        != Some(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the transfer never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply ended before the transfer was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lab
        .exec(0, "ls /var/tmp/.slipway.* >/dev/null 2>&1")
        .status
        .code()
        == Some(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the temp file was never removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    lab.exec_ok(0, "test ! -e /var/tmp/big.bin");
    // The lock died with the connection: a new apply goes through.
    apply(&lab, &p, &["--yes"]).expect(0);
    assert_eq!(
        lab.exec_ok(0, "sha256sum < /var/tmp/big.bin | cut -c1-64")
            .trim(),
        sha256(&big)
    );
}

fn sha256(bytes: &[u8]) -> String {
    slipway::digest::sha256_hex(bytes)
}
