//! The lab registry for integration tests: images built from Ubuntu 24.04 packages, served by
//! the distribution registry over TLS (lab CA) with htpasswd auth, on this machine's dockerd.
//! A thin wrapper over `tests/lab/images.sh registry`, run once per test process.
//!
//! Lab hosts reach it as `slipway-registry.test:5443` (lab.sh maps the name to their network's
//! gateway); they must trust [`LabRegistry::ca_pem`] (`/etc/docker/certs.d/ADDRESS/ca.crt`) and
//! log in with [`LabRegistry::username`] and [`LabRegistry::password`] to pull.
//!
//! ```ignore
//! let registry = LabRegistry::ensure();
//! let image = registry.image("prometheus"); // slipway-registry.test:5443/lab/prometheus:2.45.3
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The lab registry's address, credentials and images. No `Debug`: it holds the password.
#[derive(Clone)]
pub struct LabRegistry {
    /// `HOST:PORT` as lab hosts reach it: `slipway-registry.test:5443`.
    pub address: String,
    /// The lab CA that signed the registry's certificate (PEM).
    pub ca_pem: String,
    pub username: String,
    pub password: String,
    /// Image name (`prometheus`, `app:1.1`, ...) -> reference lab hosts pull.
    images: BTreeMap<String, String>,
}

/// Path of `tests/lab/images.sh`.
pub fn images_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/images.sh")
}

impl LabRegistry {
    /// Builds the images and starts the registry if needed (cached: a no-op when current),
    /// once per test process. Panics with images.sh's output on failure.
    pub fn ensure() -> LabRegistry {
        static REGISTRY: OnceLock<LabRegistry> = OnceLock::new();
        REGISTRY.get_or_init(start).clone()
    }

    /// The full reference lab hosts pull for an image: `prometheus`, `alertmanager`,
    /// `node-exporter`, `postgres-exporter`, `postgres`, `redis`, `nginx`, `caddy`, `pebble`,
    /// `registry`, `receiver`, `app:1.0`, `app:1.1`, `app:broken`.
    pub fn image(&self, name: &str) -> String {
        self.images.get(name).cloned().unwrap_or_else(|| {
            panic!(
                "no lab image {name:?}; known: {:?}",
                self.images.keys().collect::<Vec<_>>()
            )
        })
    }

    /// The same image as tagged on this machine's dockerd (`slipway-lab/NAME:TAG`), for
    /// containers run on the machine itself.
    pub fn local_image(&self, name: &str) -> String {
        let image = self.image(name);
        let prefix = format!("{}/lab/", self.address);
        let rest = image
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{image} is not under {prefix}"));
        format!("slipway-lab/{rest}")
    }
}

fn start() -> LabRegistry {
    let script = images_script();
    let out = Command::new("bash")
        .arg(&script)
        .arg("registry")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tests/lab/images.sh registry failed ({})\n--- stdout\n{stdout}",
        out.status
    );
    parse(&stdout)
}

fn parse(stdout: &str) -> LabRegistry {
    let mut fields = BTreeMap::new();
    let mut images = BTreeMap::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("image"), Some(name), Some(reference)) => {
                images.insert(name.to_string(), reference.to_string());
            }
            (Some(key), Some(value), None) => {
                fields.insert(key.to_string(), value.to_string());
            }
            _ => panic!("unexpected line from images.sh registry: {line:?}"),
        }
    }
    let field = |key: &str| {
        fields
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("images.sh registry printed no {key:?} line"))
    };
    let read = |key: &str| {
        let path = field(key);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    };
    LabRegistry {
        address: field("registry"),
        ca_pem: read("ca"),
        username: field("username"),
        password: read("password_file").trim().to_string(),
        images,
    }
}
