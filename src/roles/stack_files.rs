//! What the roles that deploy a stack (monitoring, app) share: the files of
//! a stack's Swarm configs and secrets on the managers, named by revision.
//!
//! Swarm configs and secrets cannot change once created, so each gets a
//! name with a revision, `STACK_KEY_${KEY_REV}`, that the deploy sets from
//! the content's digest (see `resource::stack`): a changed file becomes a
//! new config, and only the services that use it roll.

use serde_json::json;

use super::config_file;
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::resource::directory::Directory;
use crate::resource::fsattr::FsAttrs;
use crate::resource::{Presence, file::File};

/// The files, revisions and stack entries gathered for one stack.
#[derive(Default)]
pub struct StackFiles {
    pub resources: Vec<Box<dyn Resource>>,
    /// The environment variable and revision of each config and secret.
    pub revisions: Vec<(String, String)>,
    /// `{"key", "file", "env"}` of each config, for the stack template.
    pub configs: Vec<serde_json::Value>,
    /// The same for each secret.
    pub secrets: Vec<serde_json::Value>,
}

impl StackFiles {
    /// A config, written to `dir/file` and shipped as Swarm config `key`.
    pub fn config(&mut self, dir: &str, key: &str, file: &str, text: String) {
        self.add(key, text.as_bytes());
        self.configs.push(entry(key, file));
        self.resources
            .push(Box::new(config_file(&format!("{dir}/{file}"), text, 0o644)));
    }

    /// A secret: mode 0600 on the managers, never shown in a plan.
    pub fn secret(&mut self, dir: &str, key: &str, file: &str, value: String) {
        self.add(key, value.as_bytes());
        self.secrets.push(entry(key, file));
        let mut f: File = config_file(&format!("{dir}/{file}"), value, 0o600);
        f.sensitive = true;
        self.resources.push(Box::new(f));
    }

    /// A file that holds a secret the way a config is rendered (a template
    /// with a secret in it): a Swarm secret, shown in a plan while it holds none.
    pub fn secret_file(&mut self, dir: &str, key: &str, file: &str, text: String) {
        self.add(key, text.as_bytes());
        self.secrets.push(entry(key, file));
        self.resources
            .push(Box::new(config_file(&format!("{dir}/{file}"), text, 0o600)));
    }

    /// A random password made once on the host, for a secret the user did not
    /// set: it never leaves the host (`sudo cat PATH` shows it there).
    pub fn generated_secret(&mut self, dir: &str, key: &str, file: &str) {
        // Made once and never changed: one revision for good.
        self.revisions.push((env_var(key), "generated".into()));
        self.secrets.push(entry(key, file));
        let path = format!("{dir}/{file}");
        self.resources.push(Box::new(Command {
            name: format!("generate a password into {path}"),
            run: format!(
                "umask 077; tr -dc A-Za-z0-9 </dev/urandom | head -c 32 >{p}.tmp && mv {p}.tmp {p}",
                p = crate::shell::q(&path)
            ),
            creates: Some(path),
            unless: None,
            notify: Vec::new(),
        }));
    }

    fn add(&mut self, key: &str, content: &[u8]) {
        self.revisions.push((env_var(key), revision(content)));
    }

    /// The digest of a stack file and every revision: what a deploy records.
    pub fn digest(&self, stack: &str) -> String {
        let mut all = stack.to_string();
        for (var, rev) in &self.revisions {
            all.push_str(&format!("\n{var}={rev}"));
        }
        crate::digest::sha256_hex(all.as_bytes())
    }
}

fn entry(key: &str, file: &str) -> serde_json::Value {
    json!({"key": key, "file": file, "env": env_var(key)})
}

/// `prometheus_yml` -> `PROMETHEUS_YML_REV`, the variable the stack file names it with.
pub fn env_var(key: &str) -> String {
    format!("{}_REV", key.to_ascii_uppercase())
}

fn revision(content: &[u8]) -> String {
    crate::digest::sha256_hex(content)[..12].to_string()
}

pub fn directory(path: &str, mode: u32) -> Directory {
    Directory {
        path: path.to_string(),
        state: Presence::Present,
        attrs: FsAttrs::root(mode),
    }
}
