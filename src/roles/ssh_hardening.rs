//! `ssh_hardening`: an sshd drop-in (no root or password logins, modern
//! algorithms, tight limits) that never locks anyone out: refused when no
//! deploy key is configured, validated with `sshd -t`, and rolled back when a
//! new login as the deploy user fails after it took effect. Its defaults pass
//! ssh-audit's "Hardened Ubuntu Server 24.04 LTS (version 2)" policy: the
//! algorithm lists are that policy's, in its order, and the host keys and DH
//! moduli are hardened with them (see `resource::sshd::host_keys`).

use serde::{Deserialize, Serialize};

use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::sshd::SshdConfig;

pub struct SshHardening;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootLogin {
    No,
    ProhibitPassword,
    Yes,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// The port sshd listens on (shared with firewall and fail2ban).
    pub ssh_port: u16,
    pub ssh_permit_root_login: RootLogin,
    pub ssh_password_authentication: bool,
    pub ssh_max_auth_tries: u32,
    /// Seconds a client has to log in.
    pub ssh_login_grace_time: u32,
    pub ssh_x11_forwarding: bool,
    /// Seconds between sshd's checks that a client still answers; with the
    /// count below, a session whose client vanished (a dead network) ends,
    /// and frees what it held, within a minute (59 s measured with OpenSSH
    /// 9.2 behind a dropped network; 15 and 3 took 120 s there).
    pub ssh_client_alive_interval: u32,
    pub ssh_client_alive_count_max: u32,
    /// Only these users (or groups) may log in; empty means no such limit.
    pub ssh_allow_users: Vec<String>,
    pub ssh_allow_groups: Vec<String>,
    pub ssh_kex_algorithms: Vec<String>,
    pub ssh_ciphers: Vec<String>,
    pub ssh_macs: Vec<String>,
    pub ssh_host_key_algorithms: Vec<String>,
    pub ssh_ca_signature_algorithms: Vec<String>,
    /// Debian's and Ubuntu's sshd only (a GSSAPI patch both carry).
    pub ssh_gssapi_kex_algorithms: Vec<String>,
    /// Which user keys may log in: deploy keys of other types are refused.
    pub ssh_pubkey_accepted_algorithms: Vec<String>,
    pub ssh_hostbased_accepted_algorithms: Vec<String>,
    /// Smallest RSA key sshd accepts, from users and hosts alike.
    pub ssh_required_rsa_size: u32,
    /// ed25519 and RSA 4096 host keys only (weaker ones replaced once, the new
    /// keys recorded in slipway's known_hosts), DH moduli of 3072 bits and more.
    pub ssh_host_key_hardening: bool,
    pub ssh_log_level: String,
    pub ssh_allow_agent_forwarding: bool,
    /// Port forwarding and tunnels (`ssh -L`, e.g. to reach Grafana), and
    /// jumping through this host (`proxy_jump`).
    pub ssh_allow_tcp_forwarding: bool,
    /// Sessions at once on one connection: slipway needs 2 (its host lock
    /// and the command it runs).
    pub ssh_max_sessions: u32,
    /// TCP keepalives can be spoofed; ClientAlive* above notices dead clients.
    pub ssh_tcp_keepalive: bool,
    /// Show /etc/issue.net (written by os_hardening) before login; a missing
    /// file shows nothing.
    pub ssh_banner: bool,
    /// After the change, log in anew as the deploy user; roll back if that fails.
    pub ssh_lockout_check: bool,
    /// Seconds after a change before the host puts the previous settings back
    /// by itself, unless that new login proved it first.
    pub ssh_revert_window: u32,
    pub deploy_user: String,
    pub deploy_keys: Vec<String>,
    pub deploy_key_files: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// User (and host-based) key algorithms: ed25519 and RSA with SHA-2, plain,
/// certified, and on security keys.
fn accepted_keys() -> Vec<String> {
    strings(&[
        "sk-ssh-ed25519-cert-v01@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
        "sk-ssh-ed25519@openssh.com",
        "ssh-ed25519",
        "rsa-sha2-512-cert-v01@openssh.com",
        "rsa-sha2-512",
        "rsa-sha2-256-cert-v01@openssh.com",
        "rsa-sha2-256",
    ])
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            ssh_port: 22,
            ssh_permit_root_login: RootLogin::No,
            ssh_password_authentication: false,
            ssh_max_auth_tries: 3,
            ssh_login_grace_time: 30,
            ssh_x11_forwarding: false,
            ssh_client_alive_interval: 10,
            ssh_client_alive_count_max: 2,
            ssh_allow_users: Vec::new(),
            ssh_allow_groups: Vec::new(),
            // ssh-audit's policy, in its order. curve25519 stays: OpenSSH 9.6
            // (Ubuntu 24.04) and 9.2 (Debian 12) have no mlkem768x25519, and
            // slipway's own client has no sntrup761x25519.
            ssh_kex_algorithms: strings(&[
                "sntrup761x25519-sha512@openssh.com",
                "curve25519-sha256",
                "curve25519-sha256@libssh.org",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group-exchange-sha256",
                "diffie-hellman-group16-sha512",
            ]),
            ssh_ciphers: strings(&[
                "chacha20-poly1305@openssh.com",
                "aes256-gcm@openssh.com",
                "aes256-ctr",
                "aes192-ctr",
                "aes128-gcm@openssh.com",
                "aes128-ctr",
            ]),
            ssh_macs: strings(&[
                "hmac-sha2-512-etm@openssh.com",
                "hmac-sha2-256-etm@openssh.com",
                "umac-128-etm@openssh.com",
            ]),
            ssh_host_key_algorithms: strings(&[
                "sk-ssh-ed25519-cert-v01@openssh.com",
                "ssh-ed25519-cert-v01@openssh.com",
                "rsa-sha2-512-cert-v01@openssh.com",
                "rsa-sha2-256-cert-v01@openssh.com",
                "sk-ssh-ed25519@openssh.com",
                "ssh-ed25519",
                "rsa-sha2-512",
                "rsa-sha2-256",
            ]),
            ssh_ca_signature_algorithms: strings(&[
                "sk-ssh-ed25519@openssh.com",
                "ssh-ed25519",
                "rsa-sha2-512",
                "rsa-sha2-256",
            ]),
            ssh_gssapi_kex_algorithms: strings(&["gss-curve25519-sha256-", "gss-group16-sha512-"]),
            ssh_pubkey_accepted_algorithms: accepted_keys(),
            ssh_hostbased_accepted_algorithms: accepted_keys(),
            ssh_required_rsa_size: 3072,
            ssh_host_key_hardening: true,
            ssh_log_level: "VERBOSE".into(),
            ssh_allow_agent_forwarding: false,
            ssh_allow_tcp_forwarding: false,
            ssh_max_sessions: 4,
            ssh_tcp_keepalive: false,
            ssh_banner: true,
            ssh_lockout_check: true,
            ssh_revert_window: 90,
            deploy_user: "deploy".into(),
            deploy_keys: Vec::new(),
            deploy_key_files: Vec::new(),
        }
    }
}

pub const DROP_IN: &str = "/etc/ssh/sshd_config.d/00-slipway-hardening.conf";
/// Its content is os_hardening's; sshd shows nothing when it is missing.
const BANNER: &str = "/etc/issue.net";

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn drop_in(v: &Vars) -> String {
    let root = match v.ssh_permit_root_login {
        RootLogin::No => "no",
        RootLogin::ProhibitPassword => "prohibit-password",
        RootLogin::Yes => "yes",
    };
    let mut s = format!(
        "{MANAGED}\n# sshd keeps the first value it reads: this file sorts first in sshd_config.d.\n\
         Port {}\nPermitRootLogin {root}\nPasswordAuthentication {}\nKbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\nPermitEmptyPasswords no\nMaxAuthTries {}\nLoginGraceTime {}\n\
         X11Forwarding {}\nClientAliveInterval {}\nClientAliveCountMax {}\n\
         LogLevel {}\nAllowAgentForwarding {}\nAllowTcpForwarding {}\nMaxSessions {}\nTCPKeepAlive {}\n\
         RequiredRSASize {}\n",
        v.ssh_port,
        yes_no(v.ssh_password_authentication),
        v.ssh_max_auth_tries,
        v.ssh_login_grace_time,
        yes_no(v.ssh_x11_forwarding),
        v.ssh_client_alive_interval,
        v.ssh_client_alive_count_max,
        v.ssh_log_level,
        yes_no(v.ssh_allow_agent_forwarding),
        yes_no(v.ssh_allow_tcp_forwarding),
        v.ssh_max_sessions,
        yes_no(v.ssh_tcp_keepalive),
        v.ssh_required_rsa_size,
    );
    if v.ssh_banner {
        s.push_str(&format!("Banner {BANNER}\n"));
    }
    if v.ssh_host_key_hardening {
        // Only these keys are served, whatever else lies in /etc/ssh.
        s.push_str("HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_rsa_key\n");
    }
    for (key, list) in [
        ("AllowUsers", &v.ssh_allow_users),
        ("AllowGroups", &v.ssh_allow_groups),
        ("KexAlgorithms", &v.ssh_kex_algorithms),
        ("Ciphers", &v.ssh_ciphers),
        ("MACs", &v.ssh_macs),
        ("HostKeyAlgorithms", &v.ssh_host_key_algorithms),
        ("CASignatureAlgorithms", &v.ssh_ca_signature_algorithms),
        ("GSSAPIKexAlgorithms", &v.ssh_gssapi_kex_algorithms),
        (
            "HostbasedAcceptedAlgorithms",
            &v.ssh_hostbased_accepted_algorithms,
        ),
        (
            "PubkeyAcceptedAlgorithms",
            &v.ssh_pubkey_accepted_algorithms,
        ),
    ] {
        if !list.is_empty() {
            let sep = if key.starts_with("Allow") { " " } else { "," };
            s.push_str(&format!("{key} {}\n", list.join(sep)));
        }
    }
    s
}

/// The settings that would lock everyone out are refused before any host is
/// touched: the error names the variable (and item) at fault, and says why.
fn check_lockout(v: &Vars) -> Result<(), (String, String)> {
    let err = |var: &str, m: String| Err((var.to_string(), m));
    let closes_a_door = v.ssh_permit_root_login != RootLogin::Yes || !v.ssh_password_authentication;
    if closes_a_door && v.deploy_keys.is_empty() && v.deploy_key_files.is_empty() {
        return err(
            "deploy_keys",
            "refusing to disable root or password login while no deploy key is configured: \
             set deploy_keys (the public keys of the deploy user), or you would be locked out"
                .into(),
        );
    }
    if !v.ssh_allow_users.is_empty() && !v.ssh_allow_users.contains(&v.deploy_user) {
        return err(
            "ssh_allow_users",
            format!(
                "ssh_allow_users must include the deploy user `{}`",
                v.deploy_user
            ),
        );
    }
    let lists = [
        ("ssh_kex_algorithms", &v.ssh_kex_algorithms),
        ("ssh_ciphers", &v.ssh_ciphers),
        ("ssh_macs", &v.ssh_macs),
        ("ssh_host_key_algorithms", &v.ssh_host_key_algorithms),
        (
            "ssh_ca_signature_algorithms",
            &v.ssh_ca_signature_algorithms,
        ),
        ("ssh_gssapi_kex_algorithms", &v.ssh_gssapi_kex_algorithms),
        (
            "ssh_pubkey_accepted_algorithms",
            &v.ssh_pubkey_accepted_algorithms,
        ),
        (
            "ssh_hostbased_accepted_algorithms",
            &v.ssh_hostbased_accepted_algorithms,
        ),
        ("ssh_log_level", &vec![v.ssh_log_level.clone()]),
        ("ssh_allow_users", &v.ssh_allow_users),
        ("ssh_allow_groups", &v.ssh_allow_groups),
    ];
    for (name, list) in lists {
        if let Some((i, bad)) = list.iter().enumerate().find(|(_, w)| {
            w.is_empty()
                || !w
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@.-_*?".contains(c))
        }) {
            return err(
                &format!("{name}[{i}]"),
                format!("`{bad}` is not a valid sshd setting value"),
            );
        }
    }
    if v.ssh_max_sessions < 2 {
        return err(
            "ssh_max_sessions",
            "ssh_max_sessions must be at least 2: slipway holds its host lock on one session and runs commands on another".into(),
        );
    }
    if v.ssh_port == 0 {
        return err("ssh_port", "ssh_port must be between 1 and 65535".into());
    }
    if !(10..=3600).contains(&v.ssh_revert_window) {
        return err(
            "ssh_revert_window",
            format!(
                "ssh_revert_window must be between 10 and 3600 seconds, not {}",
                v.ssh_revert_window
            ),
        );
    }
    Ok(())
}

/// A deploy key whose type sshd would refuse is a lockout: refused here.
/// An `ssh-rsa` key signs with any of the `rsa-sha2-*` algorithms.
fn check_key_types(keys: &[String], accepted: &[String]) -> Result<(), String> {
    for key in keys {
        let kind = key.split_whitespace().next().unwrap_or_default();
        let ok = accepted.iter().any(|a| {
            a == kind
                || (kind == "ssh-rsa" && a.starts_with("rsa-sha2-") && !a.contains("-cert-"))
                || (kind == "ssh-rsa-cert-v01@openssh.com"
                    && a.starts_with("rsa-sha2-")
                    && a.contains("-cert-"))
        });
        if !ok {
            return Err(format!(
                "a deploy key of type `{kind}` could not log in: ssh_pubkey_accepted_algorithms does not accept it \
                 (use an ed25519 or RSA key, or add its type)"
            ));
        }
    }
    Ok(())
}

impl TypedRole for SshHardening {
    type Vars = Vars;
    const NAME: &'static str = "ssh_hardening";
    const ABOUT: &'static str = "sshd drop-in: no root or password login, modern algorithms, lockout-safe (validated, proven by a new login, rolled back)";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        super::deploy_user::check_deploy_user(&v.deploy_user, Self::NAME, ctx)?;
        check_lockout(&v).map_err(|(var, m)| {
            ctx.var_error(
                &var,
                format!("role ssh_hardening on {}: {m}", ctx.host.name),
            )
        })?;
        let keys = super::deploy_user::all_keys(&v.deploy_keys, &v.deploy_key_files, ctx)?;
        check_key_types(&keys, &v.ssh_pubkey_accepted_algorithms).map_err(|m| {
            ctx.var_error(
                "ssh_pubkey_accepted_algorithms",
                format!("role ssh_hardening on {}: {m}", ctx.host.name),
            )
        })?;
        let file = config_file(DROP_IN, drop_in(&v), 0o644);
        let login = v.ssh_lockout_check.then(|| v.deploy_user.clone());
        Ok(vec![Box::new(
            SshdConfig::new(file, v.ssh_port, login, v.ssh_revert_window)
                .with_host_keys(v.ssh_host_key_hardening),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_lock_out_without_deploy_keys() {
        let v = Vars::default();
        let (var, e) = check_lockout(&v).unwrap_err();
        assert_eq!(var, "deploy_keys");
        assert!(e.contains("no deploy key is configured"), "{e}");
        let v = Vars {
            deploy_keys: vec!["ssh-ed25519 AAAAC3Nz x".into()],
            ..Vars::default()
        };
        assert!(check_lockout(&v).is_ok());
        let v = Vars {
            ssh_allow_users: vec!["ops".into()],
            ..v
        };
        assert_eq!(check_lockout(&v).unwrap_err().0, "ssh_allow_users");
        let v = Vars {
            ssh_allow_users: vec!["deploy".into()],
            ssh_macs: vec!["hmac-sha2-512".into(), "bad mac".into()],
            ..v
        };
        assert_eq!(check_lockout(&v).unwrap_err().0, "ssh_macs[1]");
    }

    #[test]
    fn drop_in_disables_root_and_passwords() {
        let s = drop_in(&Vars {
            ssh_allow_users: vec!["deploy".into()],
            ..Vars::default()
        });
        for line in [
            "Port 22\n",
            "PermitRootLogin no\n",
            "PasswordAuthentication no\n",
            "KbdInteractiveAuthentication no\n",
            "MaxAuthTries 3\n",
            "X11Forwarding no\n",
            "AllowUsers deploy\n",
            "Ciphers chacha20-poly1305@openssh.com,",
        ] {
            assert!(s.contains(line), "{line}: {s}");
        }
    }
}
