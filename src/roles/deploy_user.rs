//! `deploy_user`: the account people and CI log in as: SSH keys, sudo through
//! a validated drop-in, password locked.

use serde::{Deserialize, Serialize};

use super::{RoleContext, TypedRole, config_file};
use crate::diag::{InputError, InputResult};
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
            deploy_keys_exclusive: false,
            deploy_groups: vec!["sudo".into()],
            deploy_shell: "/bin/bash".into(),
            deploy_sudo_nopasswd: true,
        }
    }
}

impl TypedRole for DeployUser {
    type Vars = Vars;
    const NAME: &'static str = "deploy_user";
    const ABOUT: &'static str =
        "the deploy user: SSH keys, groups, locked password, sudo drop-in validated with visudo";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        crate::resource::group::check_account_name(&v.deploy_user).map_err(|e| {
            InputError::plain(format!(
                "role deploy_user on {}: deploy_user: {e}",
                ctx.host.name
            ))
        })?;
        if let Some(bad) = v.deploy_keys.iter().find(|k| key_id(k).is_none()) {
            return Err(InputError::plain(format!(
                "role deploy_user on {}: deploy_keys holds something that is not an SSH public key: `{bad}`",
                ctx.host.name
            )));
        }
        let user = User {
            name: v.deploy_user.clone(),
            groups: v.deploy_groups.clone(),
            shell: Some(v.deploy_shell.clone()),
            password_locked: Some(true),
            authorized_keys: v.deploy_keys.clone(),
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
