//! `registry_login`: root logged in to a container registry (`docker login`),
//! so `docker pull` and `docker stack deploy --with-registry-auth` on this
//! host reach its private images.
//!
//! The password is a secret: it reaches the host on the payload stream (never
//! on a command line, in a plan or in the script), and the probe reports only
//! the SHA-256 of the credential Docker stored, which `plan` compares with
//! the SHA-256 of the one wanted.

use base64::Engine as _;

use super::{Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::redact::SENSITIVE;
use crate::shell::{Script, q};

/// Where `docker login` run as root keeps its credentials.
const CONFIG: &str = "/root/.docker/config.json";

#[derive(Clone)]
pub struct RegistryLogin {
    /// `host[:port]`, the key of Docker's `auths`.
    pub address: String,
    pub username: String,
    pub password: String,
}

/// Without the password, which must not reach a log through `{:?}`.
impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &SENSITIVE)
            .finish()
    }
}

impl RegistryLogin {
    /// The SHA-256 of `auths[address].auth` as Docker writes it: base64 of `user:password`.
    fn wanted(&self) -> String {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        crate::digest::sha256_hex(auth.as_bytes())
    }
}

impl Resource for RegistryLogin {
    fn id(&self) -> String {
        format!("registry_login:{}", self.address)
    }

    /// Docker writes config.json indented, one key per line: the `auth` line
    /// after the registry's own line is its credential. sed and sha256sum,
    /// nothing else.
    fn probe(&self) -> String {
        let pattern = self.address.replace('.', "\\.");
        format!(
            "a=$(sed -n '/^[[:space:]]*\"{pattern}\": {{/,/}}/s/^[[:space:]]*\"auth\": \"\\([^\"]*\\)\".*/\\1/p' {CONFIG} 2>/dev/null)\n\
             if [ -n \"$a\" ]; then h=$(printf %s \"$a\" | sha256sum); printf 'auth=%s\\n' \"${{h%% *}}\"; fi\n"
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let stored = obs.get("auth");
        if stored == Some(self.wanted().as_str()) {
            return Outcome::unchanged();
        }
        let (action, from) = match stored {
            None => (Action::Create, None),
            Some(_) => (Action::Update, Some(SENSITIVE)),
        };
        let summary = format!("docker login {} as {}", self.address, self.username);
        let change = Change::new(self.id(), action, summary).with_attrs(vec![
            Attr::new("username", None::<&str>, Some(&self.username)),
            Attr::new("password", from, Some(SENSITIVE)),
        ]);
        Outcome::change(change)
    }

    fn apply(&self, _change: &Change, _obs: &Observed<'_>) -> Script {
        let mut s = Script::default();
        let password = s.payload(self.password.clone().into_bytes());
        // docker login says why (the registry's answer); the line after it
        // says which registry, whatever docker's message is.
        s.line(format!(
            "if ! {password} | docker login {addr} --username {user} --password-stdin >/dev/null; then printf 'docker login to %s as %s failed\\n' {addr} {user} >&2; exit 1; fi",
            addr = q(&self.address),
            user = q(&self.username),
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn login() -> RegistryLogin {
        RegistryLogin {
            address: "registry.example:5443".into(),
            username: "ci".into(),
            password: "pw-Registry-Secret-1".into(),
        }
    }

    fn plan(section: &str) -> Outcome {
        login().plan(&Observed::new(section, &HostFacts::default()))
    }

    /// base64("ci:pw-Registry-Secret-1"), as `docker login` stores it.
    const STORED: &str = "Y2k6cHctUmVnaXN0cnktU2VjcmV0LTE=";

    #[test]
    fn logged_in_when_the_stored_credential_hashes_to_the_wanted_one() {
        let hash = crate::digest::sha256_hex(STORED.as_bytes());
        assert_eq!(plan(&format!("auth={hash}\n")), Outcome::unchanged());
        let new = plan("").change.unwrap();
        assert_eq!(new.action, Action::Create);
        assert_eq!(new.summary, "docker login registry.example:5443 as ci");
        let changed = plan("auth=0123\n").change.unwrap();
        assert_eq!(changed.action, Action::Update);
        let password = &changed.attrs[1];
        assert_eq!(password.name, "password");
        assert_eq!(password.to.as_deref(), Some(SENSITIVE));
    }

    #[test]
    fn the_password_is_in_no_plan_script_or_debug_output() {
        let l = login();
        let change = plan("").change.unwrap();
        let script = l.apply(&change, &Observed::new("", &HostFacts::default()));
        let shown = format!("{change:?}{}{}{l:?}", script.sh, l.probe());
        assert!(!shown.contains(&l.password), "{shown}");
        assert!(!shown.contains(STORED), "{shown}");
        assert_eq!(script.payloads, [l.password.as_bytes()]);
        assert!(
            script.sh.contains(
                "| docker login 'registry.example:5443' --username 'ci' --password-stdin"
            )
        );
    }

    /// The probe against config.json as `docker login` writes it, next to
    /// another registry's entry, run by the machine's sh.
    #[test]
    fn the_probe_finds_the_registry_s_credential_in_docker_s_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            format!(
                "{{\n\t\"auths\": {{\n\t\t\"other.example\": {{\n\t\t\t\"auth\": \"b3RoZXI6eA==\"\n\t\t}},\n\t\t\"registry.example:5443\": {{\n\t\t\t\"auth\": \"{STORED}\"\n\t\t}}\n\t}}\n}}"
            ),
        )
        .unwrap();
        let probe = login()
            .probe()
            .replace(CONFIG, &config.display().to_string());
        let out = std::process::Command::new("sh")
            .args(["-c", &probe])
            .output()
            .unwrap();
        let section = String::from_utf8(out.stdout).unwrap();
        assert_eq!(plan(&section), Outcome::unchanged(), "{section}");
        std::fs::write(&config, "{\n\t\"auths\": {}\n}").unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &probe])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    }
}
