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

/// `deploy_user`, as the roles that read it need it: a plain account name,
/// not root (the deploy user is who logs in once root cannot), and not a
/// secret (it names the sudoers drop-in and shows in every plan).
pub fn check_deploy_user(name: &str, role: &str, ctx: &RoleContext<'_>) -> InputResult<()> {
    let host = &ctx.host.name;
    let fail = |m: String| Err(ctx.var_error("deploy_user", format!("role {role} on {host}: {m}")));
    if let Some(crate::config::vars::Origin::File { secret: true, .. }) =
        ctx.origins.get("deploy_user")
    {
        return fail(
            "deploy_user comes from a secret: a user name names files and shows in plans, \
             it cannot be a secret"
                .into(),
        );
    }
    if let Err(e) = crate::resource::group::check_account_name(name) {
        return fail(format!("deploy_user: {e}"));
    }
    if name == "root" {
        return fail(
            "deploy_user = \"root\": the deploy user is the account that logs in once root \
             cannot (ssh_hardening refuses root logins); name another account, e.g. \"deploy\""
                .into(),
        );
    }
    Ok(())
}

impl TypedRole for DeployUser {
    type Vars = Vars;
    const NAME: &'static str = "deploy_user";
    const ABOUT: &'static str =
        "the deploy user: SSH keys, groups, locked password, sudo drop-in validated with visudo";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        check_deploy_user(&v.deploy_user, Self::NAME, ctx)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inventory;
    use crate::diag::SourceFile;
    use crate::redact::Redactor;
    use crate::template::Templates;

    /// The deploy_user check for host h1 of an inventory with these `[vars]`.
    fn check(vars: &str) -> Result<(), String> {
        let text = format!("[vars]\n{vars}\n[hosts.h1]\naddress = \"10.0.0.1\"\n");
        let src = SourceFile::from_text(std::path::Path::new("i.toml"), text);
        let inv = Inventory::load(src, &Redactor::offline()).unwrap();
        let host = inv.host("h1").unwrap();
        let origins = crate::config::vars::inventory_origins(&inv).unwrap();
        let ctx = RoleContext {
            host,
            vars: &host.vars,
            inventory: &inv,
            templates: &Templates::new(None),
            template_vars: serde_json::Value::Null,
            offline: true,
            origins: &origins["h1"],
            inventory_origins: &origins,
            notices: &Default::default(),
        };
        let name = host.vars["deploy_user"].as_str().unwrap_or_default();
        check_deploy_user(name, "deploy_user", &ctx).map_err(|e| e.message().to_string())
    }

    #[test]
    fn root_or_a_secret_cannot_be_the_deploy_user() {
        assert_eq!(check("deploy_user = \"ops\""), Ok(()));
        let e = check("deploy_user = \"root\"").unwrap_err();
        assert!(
            e.starts_with("i.toml:2:15: role deploy_user on h1: deploy_user = \"root\""),
            "{e}"
        );
        let e = check("deploy_user = { secret = true, value = \"ops\" }").unwrap_err();
        assert!(
            e.starts_with("i.toml:2:1: ") && e.contains("comes from a secret"),
            "{e}"
        );
        let e = check("deploy_user = \"Ops\"").unwrap_err();
        assert!(e.contains("not a valid user or group name"), "{e}");
    }
}
