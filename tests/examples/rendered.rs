//! examples/api-stack rendered offline by the real binary, as its README
//! does it, for the tests that check what it renders.

use std::path::{Path, PathBuf};

use crate::common::run::{run, slipway};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/api-stack")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A rendering of the example, as its README runs it: from its directory,
/// with no secret in the environment (placeholders stand in) and no host.
pub struct Rendered {
    _home: tempfile::TempDir,
    out: PathBuf,
}

impl Rendered {
    pub fn new(extra: &[&str]) -> Rendered {
        let home = tempfile::tempdir().unwrap();
        let out = home.path().join("out");
        let mut cmd = slipway(home.path());
        cmd.current_dir(example_dir())
            .args(["render", "-i", "inventory.toml", "playbook.toml", "--out"])
            .arg(&out)
            .env_remove("POSTGRES_PASSWORD")
            .env_remove("REDIS_PASSWORD")
            .env_remove("GHCR_TOKEN");
        for e in extra {
            cmd.args(["-e", e]);
        }
        run(&mut cmd).expect(0);
        Rendered { _home: home, out }
    }

    /// Every rendered file.
    pub fn files(&self) -> Vec<PathBuf> {
        files(&self.out)
    }

    /// The rendered file whose name is `name`, wherever the role put it.
    pub fn file_named(&self, name: &str) -> PathBuf {
        let found: Vec<PathBuf> = self
            .files()
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == name))
            .collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found.into_iter().next().unwrap()
    }
}
