//! Containers of the lab images on this machine's dockerd, on a network of
//! their own, for tests of what the images serve.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::lab::unique_name;

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker runs")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Containers on a network of their own, removed with it when dropped.
pub struct Scratch {
    net: String,
    /// A directory of files to mount, removed with the network.
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let net = unique_name(test);
        docker_ok(&[
            "network",
            "create",
            "--label",
            "slipway-lab.scratch=1",
            &net,
        ]);
        let dir = std::env::temp_dir().join(&net);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { net, dir }
    }

    /// Starts a detached container `NET-name` from `args` (options, image, command).
    pub fn start(&self, name: &str, args: &[&str]) -> String {
        let full = format!("{}-{name}", self.net);
        let mut all = vec!["run", "-d", "--name", &full, "--network", &self.net];
        all.extend_from_slice(args);
        docker_ok(&all);
        full
    }

    /// Runs a container to completion on the network.
    pub fn once(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--network", &self.net];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// `wget -q -O-` in container `name` until it succeeds (30 s); returns the body.
    pub fn get(&self, container: &str, url: &str) -> String {
        let cmd = ["exec", container, "wget", "-q", "-O-", url];
        eventually(&format!("GET {url} in {container}"), || {
            let out = docker(&cmd);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let ids = docker(&["ps", "-aq", "--filter", &format!("network={}", self.net)]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        docker(&["network", "rm", &self.net]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
