//! `deploy_user`: the account people and CI log in as: SSH keys, sudo through
//! a validated drop-in, password locked.

use serde::{Deserialize, Serialize};

use super::{RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::package::Package;
use crate::resource::user::{User, key_id};

pub struct DeployUser;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    pub deploy_user: String,
    /// Public keys allowed to log in as the deploy user.
    pub deploy_keys: Vec<String>,
    /// Local files holding more public keys (e.g. "~/.ssh/id_ed25519.pub"), read before connecting.
    pub deploy_key_files: Vec<String>,
    /// Remove keys from authorized_keys that are not in `deploy_keys`.
    pub deploy_keys_exclusive: bool,
    pub deploy_groups: Vec<String>,
    pub deploy_shell: String,
    /// sudo without a password (the account's password is locked, so it has none).
    pub deploy_sudo_nopasswd: bool,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            deploy_user: "deploy".into(),
            deploy_keys: Vec::new(),
            deploy_key_files: Vec::new(),
            deploy_keys_exclusive: false,
            deploy_groups: vec!["sudo".into()],
            deploy_shell: "/bin/bash".into(),
            deploy_sudo_nopasswd: true,
        }
    }
}

/// `deploy_keys` and the keys in `deploy_key_files`, each checked to be a public key.
/// Offline, a key file that is not on this machine is left out (with a warning).
pub fn all_keys(
    keys: &[String],
    files: &[String],
    ctx: &RoleContext<'_>,
) -> InputResult<Vec<String>> {
    let host = &ctx.host.name;
    // Each key with the variable (and item) it came from, for errors.
    let mut all: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), format!("deploy_keys[{i}]")))
        .collect();
    for (i, f) in files.iter().enumerate() {
        let from = format!("deploy_key_files[{i}]");
        let path = crate::config::expand_path(f, std::path::Path::new("."));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if ctx.offline => {
                crate::diag::warn_once(format!(
                    "deploy_key_files: cannot read {}: {e}; left out",
                    path.display()
                ));
                continue;
            }
            Err(e) => {
                return Err(ctx.var_error(
                    &from,
                    format!("deploy_key_files: cannot read {}: {e}", path.display()),
                ));
            }
        };
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| (l.to_string(), from.clone())),
        );
    }
    if let Some((bad, from)) = all.iter().find(|(k, _)| key_id(k).is_none()) {
        let what = if from.starts_with("deploy_keys") {
            "deploy_keys holds".to_string()
        } else {
            format!("a file of deploy_key_files ({from}) holds")
        };
        return Err(ctx
            .var_error(
                from,
                format!("{host}: {what} something that is not an SSH public key: `{bad}`"),
            )
            .with_help("use lines from .pub files: \"ssh-ed25519 AAAA... comment\""));
    }
    Ok(all.into_iter().map(|(k, _)| k).collect())
}

impl TypedRole for DeployUser {
    type Vars = Vars;
    const NAME: &'static str = "deploy_user";
    const ABOUT: &'static str =
        "the deploy user: SSH keys, groups, locked password, sudo drop-in validated with visudo";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        crate::resource::group::check_account_name(&v.deploy_user).map_err(|e| {
            ctx.var_error(
                "deploy_user",
                format!("role deploy_user on {}: deploy_user: {e}", ctx.host.name),
            )
        })?;
        let keys = all_keys(&v.deploy_keys, &v.deploy_key_files, ctx)?;
        let user = User {
            name: v.deploy_user.clone(),
            groups: v.deploy_groups.clone(),
            shell: Some(v.deploy_shell.clone()),
            password_locked: Some(true),
            authorized_keys: keys,
            exclusive_keys: v.deploy_keys_exclusive,
            ..User::default()
        };
        let rule = if v.deploy_sudo_nopasswd {
            "NOPASSWD:ALL"
        } else {
            "ALL"
        };
        let mut sudoers = config_file(
            &format!("/etc/sudoers.d/90-slipway-{}", v.deploy_user),
            format!(
                "{}\n{} ALL=(ALL:ALL) {rule}\n",
                super::MANAGED,
                v.deploy_user
            ),
            0o440,
        );
        // A broken sudoers file locks everyone out of sudo: never install one.
        sudoers.validate = Some("visudo -cf {}".into());
        Ok(vec![
            Box::new(Package::present(&["sudo"])),
            Box::new(user),
            Box::new(sudoers),
        ])
    }
}
