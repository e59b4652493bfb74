//! Interruptions at chosen moments of real applies on lab hosts: slipway
//! killed, the sshd session serving it killed, the network cut, a run
//! suspended. No lockout, no overlapping runs, no stale lock, no temp file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::lab::{Lab, LabOptions, LabOs};
use common::run::{Project, Run, run, slipway};

const DROP_IN: &str = "/etc/ssh/sshd_config.d/00-slipway-hardening.conf";
/// The revert window the tests set: short, yet long enough for a re-run to
/// prove a change on a busy machine.
const WINDOW: u64 = 20;

fn lab(test: &str, os: LabOs) -> Lab {
    Lab::start_with(
        test,
        1,
        &LabOptions {
            os,
            ..LabOptions::default()
        },
    )
}

/// An inventory for one lab host, connecting as root unless the deploy user
/// is asked for; the deploy user's key is the lab key.
fn inventory(lab: &Lab, vars: &str) -> String {
    format!(
        "[defaults]\nuser = \"root\"\nidentity_file = \"{key}\"\nknown_hosts = \"{kh}\"\n\n\
         [vars]\ndeploy_key_files = [\"{key}.pub\"]\nssh_revert_window = {WINDOW}\n{vars}\n\n\
         [hosts.{name}]\naddress = \"{ip}\"\n",
        key = lab.key.display(),
        kh = lab.known_hosts.display(),
        name = lab.hosts[0].name,
        ip = lab.hosts[0].ip,
    )
}

fn start(p: &Project, inv: &Path, playbook: &Path, args: &[&str]) -> Child {
    slipway(p.dir.path())
        .arg("apply")
        .arg("-i")
        .arg(inv)
        .arg(playbook)
        .args(args)
        .arg("--yes")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start slipway")
}

fn apply(p: &Project, inv: &Path, playbook: &Path, args: &[&str]) -> Run {
    run(slipway(p.dir.path())
        .arg("apply")
        .arg("-i")
        .arg(inv)
        .arg(playbook)
        .args(args)
        .arg("--yes"))
}

/// The lab host's file system as this machine sees it: a watch costs no
/// process on the host, so it reacts within milliseconds.
fn host_root(lab: &Lab) -> PathBuf {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", &lab.hosts[0].name])
        .output()
        .expect("docker inspect");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    PathBuf::from(format!("/proc/{pid}/root"))
}

/// Waits until `cond` holds, failing the test after `secs`.
fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

fn can_login(lab: &Lab, user: &str) -> bool {
    lab.ssh_as(0, user, "true").status.success()
}

fn finished(child: Child) -> Run {
    child.wait_with_output().expect("slipway output").into()
}

/// The hardening play (deploy user and sshd drop-in), then a step that
/// takes a while, so that a run killed after the drop-in has work left.
fn hardening_playbook(p: &Project) -> PathBuf {
    p.write(
        "harden.toml",
        "[[play]]\nhosts = \"all\"\nroles = [\"deploy_user\", \"ssh_hardening\"]\n\
         [[play.resources]]\ntype = \"command\"\nname = \"more work\"\nrun = \"sleep 3\"\n",
    )
}

/// How a test cuts slipway off right after the drop-in is in place.
#[derive(Clone, Copy)]
enum Cut {
    /// The local slipway process dies.
    KillSlipway,
    /// The sshd session serving it on the host dies.
    KillSession,
}

/// Applies a hardening that locks out everyone (the deploy user is left out
/// of AllowGroups, root login is refused) and cuts slipway off the moment
/// the drop-in lands, before any proof. The host must lock out, then come
/// back by itself within the revert window with the previous settings.
fn a_lockout_reverts_by_itself(os: LabOs, cut: Cut, test: &str) {
    let lab = lab(test, os);
    let p = Project::new();
    let root = host_root(&lab);
    let locking = p.write(
        "locking.toml",
        &inventory(&lab, "ssh_allow_groups = [\"nobody-is-in-this-group\"]"),
    );
    let playbook = hardening_playbook(&p);
    let mut child = start(&p, &locking, &playbook, &[]);
    let drop_in = root.join(DROP_IN.trim_start_matches('/'));
    wait_for("the drop-in lands", 120, || drop_in.exists());
    let cut_at = Instant::now();
    let broken = match cut {
        Cut::KillSlipway => {
            child.kill().expect("kill slipway");
            child.wait().ok();
            None
        }
        Cut::KillSession => {
            lab.exec_ok(0, "pkill -KILL -f '^sshd: root@notty' || true");
            Some(finished(child))
        }
    };
    // The change really locks out: the script finished its step (sshd took the
    // new settings) although its connection was gone.
    wait_for("the lockout", 20, || !can_login(&lab, "root"));
    assert!(!can_login(&lab, "deploy"), "the deploy user still gets in");
    if let Some(r) = broken {
        assert_eq!(r.code, 1, "{}", r.all());
        let msg = r.all();
        assert!(msg.contains("broke"), "{msg}");
        assert!(
            msg.contains("puts the previous settings back by itself"),
            "{msg}"
        );
    }
    // Within the window (and sshd's reload), the host is back as it was.
    wait_for("the host reverts", WINDOW + 20, || can_login(&lab, "root"));
    let back = cut_at.elapsed();
    assert!(
        back < Duration::from_secs(WINDOW + 20),
        "reverted only after {back:?}"
    );
    assert!(!drop_in.exists(), "the drop-in is still there");
    // The timer writes its record once the restore (and sshd's reload) is
    // done, so a login can get in a moment before the record exists.
    let record = || {
        let out = lab.exec(0, "cat /var/lib/slipway/reverted/* 2>/dev/null");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for("the revert's record", 20, || record().contains("restored"));
    let log = record();
    assert!(log.contains("sshd:") && log.contains("restored"), "{log}");

    // The next apply says what happened, tries again, and fails cleanly: the
    // proof fails, the previous settings come back at once.
    let again = apply(&p, &locking, &playbook, &[]).expect(1);
    let msg = again.all();
    assert!(
        msg.contains("the host put back the previous sshd:"),
        "no word of the revert:\n{msg}"
    );
    assert!(msg.contains("a new login as deploy@"), "{msg}");
    assert!(msg.contains("the previous settings were restored"), "{msg}");
    assert!(
        can_login(&lab, "root"),
        "root is locked out after a clean failure"
    );
    assert!(!drop_in.exists());

    // With the inventory fixed, it converges; from now on as the deploy user.
    let fixed = p.write("fixed.toml", &inventory(&lab, ""));
    apply(&p, &fixed, &playbook, &[]).expect(0);
    assert!(can_login(&lab, "deploy"));
    assert!(!can_login(&lab, "root"), "root login should now be refused");
}

#[test]
fn killing_slipway_after_a_locking_sshd_change_reverts_it_on_debian() {
    a_lockout_reverts_by_itself(LabOs::Debian, Cut::KillSlipway, "revert-kill-debian");
}

#[test]
fn killing_slipway_after_a_locking_sshd_change_reverts_it_on_ubuntu() {
    a_lockout_reverts_by_itself(LabOs::Ubuntu, Cut::KillSlipway, "revert-kill-ubuntu");
}

#[test]
fn killing_the_sshd_session_after_a_locking_change_reverts_it_on_debian() {
    a_lockout_reverts_by_itself(LabOs::Debian, Cut::KillSession, "revert-session-debian");
}

#[test]
fn killing_the_sshd_session_after_a_locking_change_reverts_it_on_ubuntu() {
    a_lockout_reverts_by_itself(LabOs::Ubuntu, Cut::KillSession, "revert-session-ubuntu");
}

/// A good change whose run died before its proof: a re-run within the window
/// proves it first, and the host keeps it.
#[test]
fn a_rerun_proves_a_change_an_interrupted_run_left_unproven() {
    let lab = lab("prove-later", LabOs::Ubuntu);
    let p = Project::new();
    let root = host_root(&lab);
    let inv = p.write("inventory.toml", &inventory(&lab, ""));
    let playbook = hardening_playbook(&p);
    let mut child = start(&p, &inv, &playbook, &[]);
    let drop_in = root.join(DROP_IN.trim_start_matches('/'));
    wait_for("the drop-in lands", 120, || drop_in.exists());
    child.kill().expect("kill slipway");
    child.wait().ok();
    // Root is refused now (the hardening), the deploy user gets in.
    let deploy = p.write(
        "deploy.toml",
        &inventory(&lab, "").replace("user = \"root\"", "user = \"deploy\"\nbecome = \"sudo\""),
    );
    let r = apply(&p, &deploy, &playbook, &[]).expect(0);
    let msg = r.all();
    assert!(
        msg.contains("was changed by an interrupted run and never proven; a new login as deploy on port 22 proved it now"),
        "{msg}"
    );
    std::thread::sleep(Duration::from_secs(WINDOW + 3));
    assert!(drop_in.exists(), "the proven change was reverted");
    assert!(can_login(&lab, "deploy"));
    assert_eq!(
        lab.exec_ok(0, "ls /var/lib/slipway/guard/*.pending 2>/dev/null | wc -l")
            .trim(),
        "0"
    );
}

/// Each step appends `start N` and `end N` to /root/marks around a sleep.
fn marking_playbook(p: &Project, steps: usize, secs: u32) -> PathBuf {
    let mut s = String::from("[[play]]\nhosts = \"all\"\n");
    for i in 1..=steps {
        s.push_str(&format!(
            "[[play.resources]]\ntype = \"command\"\nname = \"step {i}\"\n\
             run = \"echo start {i} >> /root/marks; sleep {secs}; echo end {i} >> /root/marks\"\n"
        ));
    }
    p.write("marks.toml", &s)
}

/// Whether any step started while another was still running.
fn overlaps(marks: &str) -> Option<String> {
    let mut open: Option<&str> = None;
    for line in marks.lines() {
        match (line.split_whitespace().next(), open) {
            (Some("start"), Some(o)) => return Some(format!("`{line}` while `{o}` ran")),
            (Some("start"), None) => open = Some(line),
            (Some("end"), _) => open = None,
            _ => {}
        }
    }
    None
}

#[test]
fn a_run_started_after_a_killed_one_never_overlaps_its_remaining_steps() {
    let lab = lab("no-overlap", LabOs::Debian);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab, ""));
    let playbook = marking_playbook(&p, 4, 3);
    let marks = host_root(&lab).join("root/marks");
    let mut first = start(&p, &inv, &playbook, &[]);
    wait_for("step 2 starts", 120, || {
        std::fs::read_to_string(&marks).is_ok_and(|m| m.contains("start 2"))
    });
    first.kill().expect("kill slipway");
    first.wait().ok();
    // At once, a new run: it waits for the dead run's step 2, which then stops.
    let second = apply(&p, &inv, &playbook, &[]).expect(0);
    assert!(
        second
            .all()
            .contains("waited for the remaining script of an interrupted run"),
        "{}",
        second.all()
    );
    let m = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(overlaps(&m), None, "runs overlapped:\n{m}");
    // The dead run stopped after step 2: its steps 3 and 4 never ran.
    let starts: Vec<&str> = m.lines().filter(|l| l.starts_with("start")).collect();
    assert_eq!(
        starts,
        [
            "start 1", "start 2", "start 1", "start 2", "start 3", "start 4"
        ],
        "{m}"
    );
    let log = lab.exec_ok(0, "cat /var/log/slipway/apply.log");
    assert!(
        log.contains("stopped before step 2 command:step 3: the host lock of this run is gone"),
        "{log}"
    );
}

/// Cuts the host's network both ways until the guard is dropped.
struct Partition<'a>(&'a Lab, String);

impl<'a> Partition<'a> {
    fn start(lab: &'a Lab) -> Self {
        let pid = host_root(lab)
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for chain in ["INPUT", "OUTPUT"] {
            let ok = std::process::Command::new("nsenter")
                .args(["-t", &pid, "-n", "iptables", "-I", chain, "-j", "DROP"])
                .status()
                .expect("nsenter");
            assert!(ok.success(), "could not cut the network");
        }
        Partition(lab, pid)
    }
}

impl Drop for Partition<'_> {
    fn drop(&mut self) {
        let _ = self.0;
        for chain in ["INPUT", "OUTPUT"] {
            let _ = std::process::Command::new("nsenter")
                .args(["-t", &self.1, "-n", "iptables", "-D", chain, "-j", "DROP"])
                .status();
        }
    }
}

#[test]
fn a_long_partition_leaves_no_stale_lock_and_no_temp_file() {
    let lab = lab("partition", LabOs::Debian);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab, ""));
    // First the hardening: sshd then drops a dead session within a minute.
    apply(&p, &inv, &hardening_playbook(&p), &[]).expect(0);
    let deploy = p.write(
        "deploy.toml",
        &inventory(&lab, "").replace("user = \"root\"", "user = \"deploy\"\nbecome = \"sudo\""),
    );
    // A slow step, then a big file: its content waits in flight behind the step.
    let big: Vec<u8> = (0..24_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 9) as u8)
        .collect();
    std::fs::create_dir_all(p.path("files")).unwrap();
    std::fs::write(p.path("files/big.bin"), &big).unwrap();
    let playbook = p.write(
        "big.toml",
        "[[play]]\nhosts = \"all\"\n\
         [[play.resources]]\ntype = \"command\"\nname = \"slow\"\nrun = \"sleep 4\"\n\
         [[play.resources]]\ntype = \"file\"\npath = \"/var/tmp/big.bin\"\nsource = \"files/big.bin\"\n",
    );
    let root = host_root(&lab);
    let step = root.join("run/slipway/step");
    let child = start(&p, &deploy, &playbook, &[]);
    wait_for("the slow step starts", 60, || {
        std::fs::read_to_string(&step).is_ok_and(|s| s.contains("command:slow"))
    });
    // The host records the step before it tells slipway: a moment for that
    // word to arrive, well within the step's 4 s, before the network goes.
    std::thread::sleep(Duration::from_secs(1));
    let cut = Partition::start(&lab);
    let cut_at = Instant::now();
    // The file step starts writing what reached the host, then waits for more.
    let temp_seen = || {
        std::fs::read_dir(root.join("var/tmp")).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".slipway."))
        })
    };
    wait_for("the temp file appears", 30, temp_seen);
    let r = finished(child);
    assert_eq!(r.code, 1, "{}", r.all());
    let msg = r.all();
    assert!(
        msg.contains("the network stopped answering: no reply to keepalives for 45 s"),
        "{msg}"
    );
    // What reached slipway: the slow step started; the file step's start was
    // cut off with the network.
    assert!(
        msg.contains("the last step heard of was command:slow"),
        "{msg}"
    );
    let remaining = Duration::from_secs(90).saturating_sub(cut_at.elapsed());
    std::thread::sleep(remaining);
    drop(cut);
    // sshd dropped the dead session during the partition: no stale lock, and
    // the writer took its temp file with it.
    assert!(!temp_seen(), "a temp file outlived the partition");
    let again = apply(&p, &deploy, &playbook, &[]).expect(0);
    assert!(!again.all().contains("locked by"), "{}", again.all());
    assert!(!temp_seen());
    assert_eq!(
        lab.exec_ok(0, "sha256sum < /var/tmp/big.bin | cut -c1-64")
            .trim(),
        hex_sha256(&big)
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Starts an apply and suspends it (SIGSTOP) once `marks` shows `mark`, as a
/// closed laptop lid would: the connection lives on, the run makes no progress.
fn start_and_suspend(
    p: &Project,
    inv: &Path,
    playbook: &Path,
    marks: &Path,
    mark: &str,
) -> (Child, String) {
    let child = start(p, inv, playbook, &[]);
    wait_for(mark, 60, || {
        std::fs::read_to_string(marks).is_ok_and(|m| m.contains(mark))
    });
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    (child, pid)
}

fn unlock(p: &Project, inv: &Path, host: &str, args: &[&str]) -> Run {
    run(slipway(p.dir.path())
        .arg("unlock")
        .arg("-i")
        .arg(inv)
        .arg(host)
        .args(args))
}

#[test]
fn unlock_shows_the_holder_and_releases_a_suspended_runs_lock() {
    let lab = lab("unlock", LabOs::Debian);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab, ""));
    let host = lab.hosts[0].name.clone();
    unlock(&p, &inv, &host, &[]).expect(0);
    let playbook = marking_playbook(&p, 2, 6);
    let marks = host_root(&lab).join("root/marks");
    let (mut suspended, pid) = start_and_suspend(&p, &inv, &playbook, &marks, "start 1");
    let refused = apply(&p, &inv, &playbook, &[]).expect(1);
    assert!(
        refused
            .all()
            .contains("host is locked by slipway apply by "),
        "{}",
        refused.all()
    );

    // Without a terminal and without --yes, unlock only shows.
    let shown = unlock(&p, &inv, &host, &[]).expect(1);
    let msg = shown.all();
    assert!(
        msg.contains(&format!("{host} is locked by slipway apply by ")),
        "{msg}"
    );
    assert!(msg.contains(&format!("(pid {pid}, run ")), "{msg}");
    assert!(
        msg.contains("an apply script is still running (step 0 of run"),
        "{msg}"
    );
    assert!(msg.contains("pass --yes"), "{msg}");
    unlock(&p, &inv, &host, &["--yes"]).expect(0);

    // The next run waits for the suspended run's current step, which stops after it.
    let next = apply(&p, &inv, &playbook, &[]).expect(0);
    assert!(
        next.all().contains("waited for the remaining script"),
        "{}",
        next.all()
    );
    let m = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(overlaps(&m), None, "{m}");
    assert_eq!(m.matches("start 2").count(), 1, "{m}");
    suspended.kill().ok();
    suspended.wait().ok();
    unlock(&p, &inv, &host, &[]).expect(0);
}

/// A run that vanished where sshd does not notice (a session older than the
/// hardening's ClientAlive settings, here a host without them): its lock goes
/// once its heartbeats stop, without `unlock`.
#[test]
fn a_lock_whose_run_stopped_beating_goes_by_itself() {
    let lab = lab("heartbeat", LabOs::Debian);
    let p = Project::new();
    let inv = p.write("inventory.toml", &inventory(&lab, ""));
    let playbook = marking_playbook(&p, 1, 1);
    let marks = host_root(&lab).join("root/marks");
    let (mut frozen, _) = start_and_suspend(&p, &inv, &playbook, &marks, "end 1");
    let stopped = Instant::now();
    apply(&p, &inv, &playbook, &[]).expect(1);
    // The holder waits 90 s for a beat; then the next run gets in.
    std::thread::sleep(Duration::from_secs(95).saturating_sub(stopped.elapsed()));
    let next = apply(&p, &inv, &playbook, &[]).expect(0);
    assert!(!next.all().contains("locked by"), "{}", next.all());
    frozen.kill().ok();
    frozen.wait().ok();
}
