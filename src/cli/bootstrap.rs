//! `slipway bootstrap`: one fresh machine, from its first root login to a
//! hardened Swarm node. Root (and password) login stay as they were until a
//! new login as the deploy user has been proven; only then are they closed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::args::{BootstrapArgs, JoinRole};
use super::commands::{converge, prepare};
use super::{CliError, EXIT_OK, Ui};
use crate::config::{LoadOptions, Project, home_dir};
use crate::engine::{connect, guard, new_salt};
use crate::transport::{Transport, ssh};

const PASSWORD_ENV: &str = "SLIPWAY_BOOTSTRAP_PASSWORD";

struct Target {
    user: String,
    host: String,
    port: u16,
}

fn parse_target(s: &str) -> Result<Target, CliError> {
    let bad = || CliError::Message(format!("bootstrap: `{s}` is not [USER@]HOST[:PORT]"));
    let (user, rest) = s.split_once('@').unwrap_or(("root", s));
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().map_err(|_| bad())?),
        _ => (rest, 22),
    };
    if user.is_empty() || host.is_empty() {
        return Err(bad());
    }
    Ok(Target {
        user: user.into(),
        host: host.into(),
        port,
    })
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_paths(paths: &[PathBuf]) -> String {
    let items: Vec<String> = paths
        .iter()
        .map(|p| toml_str(&p.display().to_string()))
        .collect();
    format!("[{}]", items.join(", "))
}

/// Everything both phases share about the machine.
struct Machine {
    name: String,
    target: Target,
    group: &'static str,
    known_hosts: PathBuf,
    identity: Option<PathBuf>,
    deploy_keys: Vec<PathBuf>,
    /// The deploy user's private key, when it sits beside the first public key.
    deploy_identity: Option<PathBuf>,
}

impl Machine {
    /// The machine's inventory entry. Phase 1 logs in as the first user and
    /// keeps root and password login as they are; phase 2 logs in as the deploy
    /// user with the full hardening.
    fn entry(&self, phase: u8, password_login: bool, deploy_user: &str) -> String {
        let mut s = format!(
            "\n[hosts.{}]\naddress = {}\nport = {}\ngroups = [\"{}\"]\nknown_hosts = {}\n",
            self.name,
            toml_str(&self.target.host),
            self.target.port,
            self.group,
            toml_str(&self.known_hosts.display().to_string()),
        );
        if phase == 1 {
            s.push_str(&format!(
                "user = {}\nhost_key_checking = \"accept-new\"\n",
                toml_str(&self.target.user)
            ));
            if self.target.user != "root" {
                s.push_str("become = \"sudo\"\n");
            }
            // With a password for the first login, the deploy key is the one to
            // offer: the proof that the deploy user gets in logs in with it.
            if let Some(id) = self.identity.as_ref().or(self.deploy_identity.as_ref()) {
                s.push_str(&format!(
                    "identity_file = {}\n",
                    toml_str(&id.display().to_string())
                ));
            }
            let root = if password_login {
                "yes"
            } else {
                "prohibit-password"
            };
            s.push_str(&format!(
                "vars = {{ deploy_key_files = {}, ssh_permit_root_login = \"{root}\", ssh_password_authentication = {password_login} }}\n",
                toml_paths(&self.deploy_keys)
            ));
        } else {
            s.push_str(&format!(
                "user = {}\nbecome = \"sudo\"\nhost_key_checking = \"strict\"\n",
                toml_str(deploy_user)
            ));
            if let Some(id) = &self.deploy_identity {
                s.push_str(&format!(
                    "identity_file = {}\n",
                    toml_str(&id.display().to_string())
                ));
            }
            s.push_str(&format!(
                "vars = {{ deploy_key_files = {} }}\n",
                toml_paths(&self.deploy_keys)
            ));
        }
        s
    }
}

fn password(args: &BootstrapArgs) -> Result<Option<String>, CliError> {
    if !args.password {
        return Ok(None);
    }
    if let Ok(pw) = std::env::var(PASSWORD_ENV) {
        return Ok(Some(pw));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Message(format!(
            "bootstrap --password: no terminal to ask on; set {PASSWORD_ENV}"
        )));
    }
    rpassword::prompt_password(format!("Password for {}: ", args.target))
        .map(Some)
        .map_err(|e| CliError::Message(format!("cannot read the password: {e}")))
}

pub async fn run(args: BootstrapArgs, ui: &Ui) -> Result<i32, CliError> {
    let target = parse_target(&args.target)?;
    let deploy_keys = if args.deploy_keys.is_empty() {
        vec![home_dir().join(".ssh/id_ed25519.pub")]
    } else {
        args.deploy_keys.clone()
    };
    if let Some(missing) = deploy_keys.iter().find(|k| !k.is_file()) {
        return Err(CliError::Message(format!(
            "bootstrap: no deploy key at {}: pass --deploy-key FILE.pub (the key the deploy user will log in with)",
            missing.display()
        )));
    }
    let deploy_identity = deploy_keys[0]
        .to_str()
        .and_then(|p| p.strip_suffix(".pub"))
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    let machine = Machine {
        name: args.name.clone().unwrap_or_else(|| target.host.clone()),
        group: match (&args.join, args.role) {
            (Some(_), JoinRole::Worker) => "workers",
            _ => "managers",
        },
        known_hosts: args
            .known_hosts
            .clone()
            .unwrap_or_else(|| home_dir().join(".ssh/known_hosts")),
        identity: args.identity.clone(),
        deploy_keys,
        deploy_identity,
        target,
    };
    let password = password(&args)?;
    let dir = tempfile::tempdir()
        .map_err(|e| CliError::Message(format!("cannot make a temp dir: {e}")))?;
    let existing = match &args.join {
        Some(inv) => std::fs::read_to_string(inv)
            .map_err(|e| CliError::Message(format!("cannot read {}: {e}", inv.display())))?,
        // The site playbook names both groups; a lone manager leaves `workers` empty.
        None => "[groups.managers]\n[groups.workers]\n".to_string(),
    };
    let write = |phase: u8, deploy_user: &str| -> Result<PathBuf, CliError> {
        let path = dir.path().join(format!("bootstrap-phase{phase}.toml"));
        let text = format!(
            "{existing}\n{}",
            machine.entry(phase, password.is_some(), deploy_user)
        );
        std::fs::write(&path, text)
            .map_err(|e| CliError::Message(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    };

    let phase1 = write(1, "")?;
    let opts = |inventory: &Path, limit: String| LoadOptions {
        inventory: inventory.to_path_buf(),
        playbook: args.playbook.clone(),
        extra_vars: args.vars.extra_vars.clone(),
        limit: Some(limit),
        templates_dir: args.vars.templates.clone(),
        user: None,
        offline: false,
    };
    // Check everything before the first connection; find the leader when joining.
    let project = Project::load(&opts(&phase1, machine.name.clone()))?;
    let limit = match &args.join {
        Some(_) => {
            let leader = project
                .inventory
                .groups
                .get("managers")
                .and_then(|m| m.first())
                .cloned()
                .ok_or_else(|| {
                    CliError::Message(
                        "bootstrap --join: that inventory has no host in group `managers` to join"
                            .into(),
                    )
                })?;
            format!("{},{leader}", machine.name)
        }
        None => machine.name.clone(),
    };
    let mut host = project
        .inventory
        .host(&machine.name)
        .expect("just written")
        .clone();
    host.password = password.clone();
    if let Some(pw) = &password {
        project.redactor.add(pw);
    }
    let deploy_user = project
        .extra
        .get("deploy_user")
        .or_else(|| host.vars.get("deploy_user"))
        .and_then(|v| v.as_str())
        .unwrap_or("deploy")
        .to_string();

    // First contact: record the host key and show it.
    let spec = connect::spec(&host).map_err(CliError::Message)?;
    let first = ssh::connect(&spec)
        .await
        .map_err(|e| CliError::Message(project.redactor.redact(&e.to_string())))?;
    println!(
        "{}: host key {} (recorded in {})",
        machine.name,
        first.host_key_fingerprint(),
        machine.known_hosts.display()
    );
    first.close().await;

    println!(
        "\nPhase 1: the {} playbook, root and password login left as they are",
        args.playbook.display()
    );
    let (engine, mut states, _) = prepare(&opts(&phase1, limit.clone()), 20, new_salt())?;
    engine.redactor.add(password.as_deref().unwrap_or_default());
    for s in states.iter_mut().filter(|s| s.host.name == machine.name) {
        s.host.password = password.clone();
    }
    let code = converge(&engine, states, args.yes, ui, None).await?;
    if code != EXIT_OK {
        return Ok(code);
    }

    println!("\nProving a new login as {deploy_user} with its key, and sudo");
    let phase2 = write(2, &deploy_user)?;
    let project2 = Project::load(&opts(&phase2, limit.clone()))?;
    let deploy_host = project2
        .inventory
        .host(&machine.name)
        .expect("just written");
    guard::try_login(deploy_host, &deploy_user, machine.target.port).await.map_err(|e| {
        CliError::Message(format!(
            "the deploy user cannot log in ({e}); root and password login were left open. Fix the deploy key and run bootstrap again"
        ))
    })?;
    println!("{deploy_user}@{} logs in and reaches root", machine.name);

    println!("\nPhase 2: closing root and password login");
    let (engine, states, _) = prepare(&opts(&phase2, limit), 20, new_salt())?;
    let code = converge(&engine, states, true, ui, None).await?;
    if code != EXIT_OK {
        return Ok(code);
    }
    println!(
        "\n{} is a hardened Swarm {}. Keep this in your inventory:",
        machine.name,
        &machine.group[..machine.group.len() - 1]
    );
    // The phase 2 entry: how slipway reaches the machine from now on, whole.
    print!("{}", machine.entry(2, false, &deploy_user));
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_default_to_root_on_port_22() {
        let t = parse_target("203.0.113.7").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("root", "203.0.113.7", 22)
        );
        let t = parse_target("admin@node1:2222").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("admin", "node1", 2222)
        );
        assert!(parse_target("@x").is_err());
    }
}
