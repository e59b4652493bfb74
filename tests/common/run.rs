//! Running the real slipway binary in tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The result of one slipway run, with both streams as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A slipway command with a clean environment: no colour, no real ~/.ssh.
pub fn slipway(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    c
}

pub fn run(cmd: &mut Command) -> Run {
    cmd.output().expect("run slipway").into()
}

/// `slipway COMMAND -i INVENTORY PLAYBOOK REST...`, where `args` is COMMAND then REST.
pub fn on(p: &Project, inventory: &Path, playbook: &Path, args: &[&str]) -> Run {
    run(slipway(p.dir.path())
        .arg(args[0])
        .arg("-i")
        .arg(inventory)
        .arg(playbook)
        .args(&args[1..]))
}

/// This repository's site playbook.
pub fn site_playbook() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/site.toml"))
}

/// A project directory: playbook.toml, templates/, and whatever else a test writes.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("templates")).expect("templates dir");
        Project { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
}
