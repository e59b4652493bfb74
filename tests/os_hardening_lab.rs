//! The os_hardening role on fresh lab hosts: every control checked out of
//! band (with docker exec, not through slipway), a second plan with nothing
//! to do in one remote command, and a control switched off by a variable
//! leaving the plan.

mod common;

use common::lab::{Lab, LabOs};
use common::run::{Project, Run, on};

const PLAYBOOK: &str = r#"
[[play]]
name = "CIS hardening"
hosts = "all"
roles = ["os_hardening"]
"#;

fn go(lab: &Lab, p: &Project, args: &[&str]) -> Run {
    on(p, &lab.inventory, &p.path("playbook.toml"), args)
}

/// The ids of the changes planned for the only host, from a JSON plan.
fn planned(plan: &Run) -> Vec<String> {
    plan.json()["hosts"][0]["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {}", plan.stdout))
        .iter()
        .map(|c| c["resource"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn os_hardening_converges_a_fresh_ubuntu_host() {
    converges(LabOs::Ubuntu);
}

#[test]
fn os_hardening_converges_a_fresh_debian_host() {
    converges(LabOs::Debian);
}

fn converges(os: LabOs) {
    let lab = Lab::start_os(&format!("osh-{os}"), 1, os);
    let p = Project::new();
    p.write("playbook.toml", PLAYBOOK);
    let original_defs = lab.exec_ok(0, "cat /etc/login.defs");

    // The fresh plan edits login.defs in place, shown as a diff, and says
    // why the audit rules are not loaded here.
    let plan = go(&lab, &p, &["plan", "--detailed-exitcode"]).expect(2);
    let out = &plan.stdout;
    for expected in [
        "~ file:/etc/login.defs  set 5 keys in /etc/login.defs",
        "+PASS_MAX_DAYS\t365",
        "-PASS_MAX_DAYS\t99999",
        "+SHA_CRYPT_MIN_ROUNDS 65536",
        "+ file:/etc/modprobe.d/60-slipway-filesystems.conf",
        "command:install pending security updates",
        "command:load the audit rules: the kernel refuses audit rules inside a container (docker)",
    ] {
        assert!(out.contains(expected), "missing `{expected}`:\n{out}");
    }

    // A control switched off leaves the plan, the others stay.
    let all = planned(&go(&lab, &p, &["plan", "--format", "json"]).expect(0));
    let without = planned(
        &go(
            &lab,
            &p,
            &[
                "plan",
                "--format",
                "json",
                "-e",
                "os_hardening_banners=false",
            ],
        )
        .expect(0),
    );
    assert!(all.contains(&"file:/etc/issue.net".to_string()), "{all:?}");
    let mut expected = all.clone();
    expected.retain(|id| id != "file:/etc/issue" && id != "file:/etc/issue.net");
    assert_eq!(without, expected);

    let started = std::time::Instant::now();
    let applied = go(&lab, &p, &["apply", "--yes"]).expect(0);
    eprintln!(
        "os_hardening, first converge of one fresh {os} host: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );

    // auditd: the rules file, merged by augenrules; the package.
    let rules = lab.exec_ok(0, "cat /etc/audit/rules.d/50-slipway-cis.rules");
    for line in [
        "-w /etc/shadow -p wa -k identity",
        "-w /etc/sudoers.d -p wa -k scope",
        "-w /etc/ssh/sshd_config -p wa -k sshd",
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change",
        "-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k kernel_modules",
    ] {
        assert!(rules.lines().any(|l| l == line), "{line}:\n{rules}");
    }
    lab.exec_ok(0, "augenrules --check");
    // Compiling (not loading: the kernel refuses a container) takes our file.
    lab.exec_ok(0, "augenrules && augenrules --check | grep -q 'No change'");
    lab.exec_ok(
        0,
        "grep -qx -- '-w /usr/bin/kmod -p x -k kernel_modules' /etc/audit/audit.rules",
    );
    assert_eq!(
        lab.exec_ok(
            0,
            "stat -c %a:%U:%G /etc/audit/rules.d/50-slipway-cis.rules"
        )
        .trim(),
        "640:root:root"
    );

    // login.defs: the keys set, the rest of the distribution's file kept.
    let defs = lab.exec_ok(0, "cat /etc/login.defs");
    for (key, value) in [
        ("UMASK", "027"),
        ("PASS_MAX_DAYS", "365"),
        ("PASS_MIN_DAYS", "1"),
        ("PASS_WARN_AGE", "7"),
        ("ENCRYPT_METHOD", "SHA512"),
        ("SHA_CRYPT_MIN_ROUNDS", "65536"),
        ("SHA_CRYPT_MAX_ROUNDS", "65536"),
    ] {
        let set: Vec<&str> = defs
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(key))
            .collect();
        assert!(
            !set.is_empty()
                && set
                    .iter()
                    .all(|l| l.split_whitespace().nth(1) == Some(value)),
            "{key}: {set:?}"
        );
    }
    let comments = |t: &str| t.lines().filter(|l| l.starts_with('#')).count();
    assert_eq!(comments(&defs), comments(&original_defs));
    assert!(defs.lines().count() >= original_defs.lines().count());

    // Modules: loading them runs /bin/false.
    for m in ["cramfs", "usb-storage", "sctp", "tipc"] {
        let out = lab.exec_ok(0, &format!("modprobe -n -v {m}"));
        assert!(out.contains("install /bin/false"), "{m}: {out}");
    }

    // Core dumps.
    lab.exec_ok(
        0,
        "grep -qx '\\* hard core 0' /etc/security/limits.d/60-slipway-coredump.conf",
    );
    let coredump = lab.exec_ok(0, "cat /etc/systemd/coredump.conf.d/60-slipway.conf");
    assert!(
        coredump.contains("[Coredump]\nStorage=none\nProcessSizeMax=0\n"),
        "{coredump}"
    );

    // Banners, with nothing about the OS.
    for f in ["/etc/issue", "/etc/issue.net"] {
        let text = lab.exec_ok(0, &format!("cat {f}"));
        assert_eq!(
            text,
            "Authorized uses only. All activity may be monitored and reported.\n"
        );
    }

    // Permissions of cron, at and the account files.
    let stat = |paths: &str| lab.exec_ok(0, &format!("stat -c %n=%a:%U:%G {paths}"));
    assert_eq!(
        stat(
            "/etc/cron.hourly /etc/cron.daily /etc/cron.weekly /etc/cron.monthly /etc/cron.d /etc/cron.allow /etc/at.allow"
        ),
        "/etc/cron.hourly=700:root:root\n/etc/cron.daily=700:root:root\n/etc/cron.weekly=700:root:root\n\
         /etc/cron.monthly=700:root:root\n/etc/cron.d=700:root:root\n/etc/cron.allow=640:root:root\n/etc/at.allow=640:root:root\n"
    );
    lab.exec_ok(0, "[ ! -e /etc/cron.deny ] && [ ! -e /etc/at.deny ]");
    assert_eq!(
        stat("/etc/passwd /etc/group /etc/shadow /etc/gshadow"),
        "/etc/passwd=644:root:root\n/etc/group=644:root:root\n/etc/shadow=640:root:shadow\n/etc/gshadow=640:root:shadow\n"
    );
    let keys = lab.exec_ok(
        0,
        "stat -c %n=%a:%U:%G /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub",
    );
    for line in keys.lines() {
        let want = if line.contains(".pub=") {
            "644:root:root"
        } else {
            "600:root:root"
        };
        assert!(line.ends_with(want), "{line}");
    }

    lab.exec_ok(0, "dpkg-query -W -f '${Status}\\n' libpam-tmpdir auditd | grep -c 'install ok installed' | grep -qx 2");
    lab.exec_ok(0, "grep -q pam_tmpdir /etc/pam.d/common-session");
    lab.exec_ok(0, "[ -f /var/lib/slipway/os-hardening-security-updates ]");
    // No security update is left pending (the lists are as fresh as apply made them).
    let pending = lab.exec_ok(0, "apt-get -s upgrade | grep '^Inst .*ecurity' || true");
    assert_eq!(pending, "", "security updates still pending");

    // Converged: nothing to do, in one remote command.
    let started = std::time::Instant::now();
    let again = go(
        &lab,
        &p,
        &["plan", "--detailed-exitcode", "--format", "json"],
    )
    .expect(0);
    eprintln!(
        "os_hardening, no-op plan of one {os} host: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        again.json()["hosts"][0]["remote_commands"],
        1,
        "{}",
        again.stdout
    );
    let skipped = again.json()["hosts"][0]["skipped"].to_string();
    assert!(skipped.contains("load the audit rules"), "{skipped}");
}
