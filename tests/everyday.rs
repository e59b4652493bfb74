//! The commands around plan and apply: init, check, completions, man.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use common::run::{run, slipway};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn init_scaffolds_a_project_that_checks_and_never_overwrites() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("infra");
    let r = run(slipway(home.path()).arg("init").arg(&dir)).expect(0);
    for f in [
        "inventories/example.toml",
        "playbooks/site.toml",
        "playbooks/example.toml",
        "templates/motd.j2",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing:\n{}", r.stdout);
    }
    // The scaffold is valid as it stands, checked from anywhere.
    let inv = dir.join("inventories/example.toml");
    for playbook in ["playbooks/site.toml", "playbooks/example.toml"] {
        run(slipway(home.path())
            .arg("check")
            .arg("-i")
            .arg(&inv)
            .arg(dir.join(playbook)))
        .expect(0);
    }
    // A second init leaves the user's edits alone.
    std::fs::write(&inv, "# mine\n").unwrap();
    let again = run(slipway(home.path()).arg("init").arg(&dir)).expect(1);
    assert!(again.stderr.contains("not overwriting"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&inv).unwrap(), "# mine\n");
}

#[test]
fn check_validates_offline_and_reports_where_input_is_wrong() {
    // A host on a loopback port nobody may connect to: check must not.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        format!(
            "[hosts.web]\naddress = \"127.0.0.1\"\nport = {port}\ngroups = [\"managers\"]\n\
             become = \"sudo\"\nbecome_password_env = \"SLIPWAY_TEST_UNSET_SUDO_PASSWORD\"\n"
        ),
    )
    .unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[[play]]\nhosts = \"all\"\nroles = [\"base\"]\n").unwrap();
    let ok = run(slipway(dir.path())
        .args(["check", "--format", "json", "-i"])
        .arg(&inv)
        .arg(&good))
    .expect(0);
    assert_eq!(ok.json()["ok"], true);
    assert_eq!(ok.json()["hosts"], 1);

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[play]]\nhosts = \"all\"\nroles = [\"base\", \"bsae\"]\n",
    )
    .unwrap();
    let r = run(slipway(dir.path())
        .args(["check", "-i"])
        .arg(&inv)
        .arg(&bad))
    .expect(1);
    assert!(r.stderr.contains("bad.toml:3:"), "{}", r.stderr);
    assert!(r.stderr.contains("bsae"), "{}", r.stderr);
    assert!(
        listener.accept().is_err(),
        "check connected to the inventory's host"
    );
}

#[test]
fn the_shipped_inventories_check_with_the_site_playbook() {
    let home = tempfile::tempdir().unwrap();
    for inv in ["lab", "vagrant", "example"] {
        let r = run(slipway(home.path()).current_dir(root()).args([
            "check",
            "-i",
            &format!("inventories/{inv}.toml"),
            "playbooks/site.toml",
        ]))
        .expect(0);
        assert!(r.stdout.contains("no host was contacted"), "{}", r.stdout);
    }
}

#[test]
fn completions_cover_every_subcommand() {
    let home = tempfile::tempdir().unwrap();
    let subcommands = [
        "plan",
        "apply",
        "facts",
        "audit",
        "bootstrap",
        "render",
        "check",
        "init",
        "completions",
        "man",
        "roles",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let r = run(slipway(home.path()).args(["completions", shell])).expect(0);
        for sub in subcommands {
            assert!(r.stdout.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let bash = run(slipway(home.path()).args(["completions", "bash"])).expect(0);
    let file = home.path().join("slipway.bash");
    std::fs::write(&file, &bash.stdout).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(syntax.success(), "bash completions do not parse");
}

#[test]
fn the_man_page_renders_with_groff() {
    let home = tempfile::tempdir().unwrap();
    let r = run(slipway(home.path()).arg("man")).expect(0);
    assert!(r.stdout.contains(".TH slipway 1"), "{}", r.stdout);
    assert!(r.stdout.contains("EXIT STATUS"));
    let page = home.path().join("slipway.1");
    std::fs::write(&page, &r.stdout).unwrap();
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&page)
        .output()
        .expect("groff (Debian's groff-base)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff warns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_usage_error_exits_1_not_the_changes_code() {
    let home = tempfile::tempdir().unwrap();
    let r = run(slipway(home.path()).args(["plan", "--bogus"])).expect(1);
    assert!(r.stderr.contains("--bogus"), "{}", r.stderr);
    run(slipway(home.path()).arg("--help")).expect(0);
    run(slipway(home.path()).arg("--version")).expect(0);
}

#[test]
fn printing_to_a_reader_that_stopped_early_is_not_an_error() {
    let home = tempfile::tempdir().unwrap();
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = slipway(home.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -0`: the reader is gone before slipway writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn render_writes_the_sysctl_drop_in_of_every_host() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let r = run(slipway(home.path())
        .current_dir(root())
        .args([
            "render",
            "-i",
            "inventories/lab.toml",
            "playbooks/site.toml",
            "--out",
        ])
        .arg(&out))
    .expect(0);
    // The drop-in holds the whole hardening set (docs/roles.md): what a full
    // host gets. A container gets the same file; only applying it live is skipped.
    let check = |got: &str| {
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "# Managed by slipway.", "{got}");
        assert_eq!(lines.len(), 1 + 22, "{got}");
        assert!(lines[1..].is_sorted(), "{got}");
        for line in [
            "net.ipv4.ip_forward = 1",
            "net.ipv4.conf.all.rp_filter = 2",
            "kernel.kptr_restrict = 2",
            "fs.suid_dumpable = 0",
        ] {
            assert!(lines.contains(&line), "{line} missing:\n{got}");
        }
    };
    for host in ["lab-1", "lab-2", "lab-3"] {
        let path = out
            .join(host)
            .join("etc/sysctl.d/60-slipway-hardening.conf");
        let got = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), r.stdout));
        check(&got);
        assert!(
            r.stdout.contains(&path.display().to_string()),
            "{}",
            r.stdout
        );
    }
}
