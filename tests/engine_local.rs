//! The engine without a network: the same sessions, probes, plans and apply
//! scripts, run by a transport that executes commands on this machine with
//! `sh -c`. Resources point into a temporary directory.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::local::{Local, Silent};
use slipway::config::{Become, LoadOptions, Project};
use slipway::desired::{self, HostState};
use slipway::engine::runner::Runner;
use slipway::engine::{Engine, HostReport, Session, StepStatus};
use slipway::redact::Redactor;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(resources: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("inventory.toml"),
            "[hosts.local]\naddress = \"127.0.0.1\"\n",
        )
        .unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let playbook = format!(
            "[[play]]\nhosts = \"all\"\n[play.vars]\nroot = \"{}\"\n{resources}",
            root.display()
        );
        std::fs::write(dir.path().join("playbook.toml"), playbook).unwrap();
        Fixture { dir }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    fn state(&self) -> HostState {
        let opts = LoadOptions {
            inventory: self.dir.path().join("inventory.toml"),
            playbook: self.dir.path().join("playbook.toml"),
            ..LoadOptions::default()
        };
        let project = Project::load(&opts).expect("valid input");
        desired::build(&project)
            .expect("builds")
            .pop()
            .expect("one host")
    }

    async fn session(&self, lock: bool) -> Session {
        let runner = Runner::new("local", Arc::new(Local), Become::None, None);
        Session::start(self.state(), runner, lock, &Redactor::default(), b"salt").await
    }
}

/// Applies the sessions with one fork: one host at a time.
async fn apply_each(sessions: Vec<Session>) -> Vec<HostReport> {
    let engine = Engine {
        forks: 1,
        redactor: Redactor::default(),
        salt: b"salt".to_vec(),
    };
    engine.apply_all(sessions, &Silent).await
}

async fn apply(session: Session) -> HostReport {
    apply_each(vec![session]).await.pop().expect("one host")
}

const FILES: &str = r#"
[[play.resources]]
type = "directory"
path = "{{ root }}/etc"
mode = "0700"

[[play.resources]]
type = "file"
path = "{{ root }}/etc/app.conf"
content = "port = 8080\n"
mode = "0640"
"#;

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn plan_apply_verify_and_a_clean_second_plan() {
    let f = Fixture::new(FILES);
    let s = f.session(false).await;
    assert_eq!(s.plan.error, None);
    assert_eq!(s.plan.changes.len(), 2);
    assert_eq!(
        s.plan.remote_commands, 1,
        "a new file needs no content fetch"
    );
    let report = apply(s).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.verified, Some(true));
    assert_eq!(report.remote_commands, 3, "probe, apply, verify");
    let conf = f.root().join("etc/app.conf");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "port = 8080\n");
    assert_eq!(mode(&conf), 0o640);
    assert_eq!(mode(&f.root().join("etc")), 0o700);

    let again = f.session(false).await;
    assert!(again.plan.changes.is_empty(), "{:?}", again.plan.changes);
    assert_eq!(again.plan.remote_commands, 1);

    // Changed content: a second command fetches the current text for the diff.
    std::fs::write(&conf, "port = 9090\n").unwrap();
    let drift = f.session(false).await;
    assert_eq!(drift.plan.remote_commands, 2);
    let diff = serde_json::to_string(&drift.plan.changes[0].change.diff).unwrap();
    assert!(
        diff.contains("-port = 9090") && diff.contains("+port = 8080"),
        "{diff}"
    );
}

#[tokio::test]
async fn apply_stops_at_the_first_failure() {
    let f = Fixture::new(
        r#"
[[play.resources]]
type = "command"
name = "fails"
run = "echo about to fail; exit 3"

[[play.resources]]
type = "file"
path = "{{ root }}/after"
content = "never\n"
"#,
    );
    let report = apply(f.session(false).await).await;
    assert!(!report.ok());
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert!(
        report.steps[0].output.contains("about to fail"),
        "{report:?}"
    );
    assert_eq!(report.steps[1].status, StepStatus::NotRun);
    assert!(!f.root().join("after").exists());
}

#[tokio::test]
async fn a_saved_plan_is_stale_once_the_host_changed() {
    let f = Fixture::new(FILES);
    let saved = f.session(false).await.plan;
    assert!(f.session(false).await.check_saved(&saved).is_ok());
    std::fs::create_dir(f.root().join("etc")).unwrap();
    let err = f.session(false).await.check_saved(&saved).unwrap_err();
    assert!(err.contains("stale plan"), "{err}");
    assert!(
        err.contains(&format!("directory:{}/etc", f.root().display())),
        "{err}"
    );
}

#[tokio::test]
async fn the_host_lock_refuses_a_second_holder_and_frees_on_close() {
    let f = Fixture::new(FILES);
    let mut first = f.session(true).await;
    assert_eq!(first.plan.error, None);
    let second = f.session(true).await;
    let err = second.plan.error.clone().unwrap_or_default();
    assert!(err.contains("locked by slipway apply by"), "{err}");
    first.close().await;
    let mut third = f.session(true).await;
    assert_eq!(third.plan.error, None);
    third.close().await;
}

/// `--forks` bounds apply as well as planning: with one fork, hosts apply one
/// after the other (a second host at the same time would find the first's mark).
#[tokio::test]
async fn forks_bound_how_many_hosts_apply_at_once() {
    let f = Fixture::new(
        r#"
[[play.resources]]
type = "command"
name = "one at a time"
run = "mkdir {{ root }}/busy || exit 9; sleep 0.3; rmdir {{ root }}/busy"
"#,
    );
    let sessions = vec![
        f.session(false).await,
        f.session(false).await,
        f.session(false).await,
    ];
    let reports = apply_each(sessions).await;
    for r in &reports {
        assert!(r.error.is_none(), "{r:?}");
        assert_eq!(r.changed(), 1);
    }
}
