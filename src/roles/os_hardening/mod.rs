//! `os_hardening`: the CIS Ubuntu 24.04 Level 1 controls that fit a Docker
//! Swarm host, each switched by one variable. Controls that would break
//! Docker or Swarm are left out (docs/roles.md says which, and why).

mod audit;
mod keys;

use serde::{Deserialize, Serialize};

use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Presence;
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::resource::directory::Directory;
use crate::resource::file::File;
use crate::resource::fsattr::FsAttrs;
use crate::resource::package::Package;

pub struct OsHardening;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// auditd, and rules for identity files, sudoers, sshd's configuration,
    /// the clock and kernel modules (CIS 6.2.1.1, 6.2.1.2, 6.2.3.1, 6.2.3.4,
    /// 6.2.3.8, 6.2.3.19, 6.2.3.21, 6.2.4.5).
    pub os_hardening_auditd: bool,
    /// Password ageing, hashing and the default umask in /etc/login.defs
    /// (CIS 5.4.1.1, 5.4.1.2, 5.4.1.3, 5.4.1.4, 5.4.3.3).
    pub os_hardening_login_defs: bool,
    /// UMASK in /etc/login.defs (CIS 5.4.3.3).
    pub os_hardening_umask: String,
    /// PASS_MAX_DAYS (CIS 5.4.1.1).
    pub os_hardening_pass_max_days: u32,
    /// PASS_MIN_DAYS (CIS 5.4.1.2).
    pub os_hardening_pass_min_days: u32,
    /// PASS_WARN_AGE (CIS 5.4.1.3).
    pub os_hardening_pass_warn_age: u32,
    /// SHA_CRYPT_MIN_ROUNDS and SHA_CRYPT_MAX_ROUNDS, with ENCRYPT_METHOD SHA512 (CIS 5.4.1.4).
    pub os_hardening_sha_crypt_rounds: u32,
    /// No core dumps: a hard limit of 0 and systemd-coredump storing nothing
    /// (CIS 1.5.3; its `fs.suid_dumpable = 0` is in the sysctl role's set).
    pub os_hardening_core_dumps: bool,
    /// Blacklist the kernel modules of `os_hardening_filesystems` and
    /// `os_hardening_protocols` (`install X /bin/false`, `blacklist X`).
    pub os_hardening_modules: bool,
    /// Filesystems never mounted here (CIS 1.1.1.1-1.1.1.5, 1.1.1.8, 1.1.1.9).
    pub os_hardening_filesystems: Vec<String>,
    /// Network protocols never used here (CIS 3.2.1-3.2.4).
    pub os_hardening_protocols: Vec<String>,
    /// Write `os_hardening_banner` to /etc/issue and /etc/issue.net
    /// (CIS 1.6.2, 1.6.3, 1.6.5, 1.6.6).
    pub os_hardening_banners: bool,
    /// The legal banner: no OS name or version, no `\m \r \s \v` escapes.
    pub os_hardening_banner: String,
    /// cron and at: directories 0700, /etc/crontab 0600, cron.allow and
    /// at.allow for root only, cron.deny and at.deny removed
    /// (CIS 2.4.1.2-2.4.1.8, 2.4.2.1).
    pub os_hardening_cron: bool,
    /// Modes and owners of the account files and sshd's host keys
    /// (CIS 7.1.1-7.1.8, 5.1.2, 5.1.3).
    pub os_hardening_file_permissions: bool,
    /// libpam-tmpdir: a private TMPDIR per login session (not a CIS item).
    pub os_hardening_pam_tmpdir: bool,
    /// Install pending security updates on the first converge (CIS 1.2.2.1);
    /// unattended-upgrades (role base) keeps them coming after that.
    pub os_hardening_security_updates: bool,
}

impl Default for Vars {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Self {
            os_hardening_auditd: true,
            os_hardening_login_defs: true,
            os_hardening_umask: "027".into(),
            os_hardening_pass_max_days: 365,
            os_hardening_pass_min_days: 1,
            os_hardening_pass_warn_age: 7,
            os_hardening_sha_crypt_rounds: 65536,
            os_hardening_core_dumps: true,
            os_hardening_modules: true,
            os_hardening_filesystems: words(&[
                "cramfs",
                "freevxfs",
                "hfs",
                "hfsplus",
                "jffs2",
                "udf",
                "usb-storage",
            ]),
            os_hardening_protocols: words(&["dccp", "sctp", "rds", "tipc"]),
            os_hardening_banners: true,
            os_hardening_banner:
                "Authorized uses only. All activity may be monitored and reported.".into(),
            os_hardening_cron: true,
            os_hardening_file_permissions: true,
            os_hardening_pam_tmpdir: true,
            os_hardening_security_updates: true,
        }
    }
}

/// Kept once the first converge ran the security updates; remove it to run them again.
pub const UPDATES_MARKER: &str = "/var/lib/slipway/os-hardening-security-updates";

impl TypedRole for OsHardening {
    type Vars = Vars;
    const NAME: &'static str = "os_hardening";
    const ABOUT: &'static str = "CIS Ubuntu 24.04 Level 1 controls that fit a Docker Swarm host: auditd, login.defs, core dumps, module blacklist, banners, cron and file permissions";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let fail = |var: &str, m: String| {
            ctx.var_error(
                var,
                format!("role os_hardening on {}: {var}: {m}", ctx.host.name),
            )
        };
        let mut out: Vec<Box<dyn Resource>> = Vec::new();
        if v.os_hardening_security_updates {
            out.extend(security_updates());
        }
        if v.os_hardening_login_defs {
            let defs = login_defs(&v).map_err(|m| fail("os_hardening_umask", m))?;
            out.push(Box::new(defs));
        }
        if v.os_hardening_core_dumps {
            out.push(Box::new(config_file(
                "/etc/security/limits.d/60-slipway-coredump.conf",
                format!("{MANAGED}\n# CIS 1.5.3\n* hard core 0\n"),
                0o644,
            )));
            out.push(Box::new(config_file(
                "/etc/systemd/coredump.conf.d/60-slipway.conf",
                format!("{MANAGED}\n# CIS 1.5.3\n[Coredump]\nStorage=none\nProcessSizeMax=0\n"),
                0o644,
            )));
        }
        if v.os_hardening_modules {
            for (var, list, what) in [
                (
                    "os_hardening_filesystems",
                    &v.os_hardening_filesystems,
                    "filesystems",
                ),
                (
                    "os_hardening_protocols",
                    &v.os_hardening_protocols,
                    "protocols",
                ),
            ] {
                let content = blacklist(list).map_err(|m| fail(var, m))?;
                if let Some(content) = content {
                    out.push(Box::new(config_file(
                        &format!("/etc/modprobe.d/60-slipway-{what}.conf"),
                        content,
                        0o644,
                    )));
                }
            }
        }
        if v.os_hardening_banners {
            let text =
                banner(&v.os_hardening_banner).map_err(|m| fail("os_hardening_banner", m))?;
            for path in ["/etc/issue", "/etc/issue.net"] {
                out.push(Box::new(config_file(path, text.clone(), 0o644)));
            }
        }
        if v.os_hardening_cron {
            out.extend(cron());
        }
        if v.os_hardening_file_permissions {
            out.push(Box::new(permissions(
                "modes of account files and sshd host keys",
                &[
                    (
                        "/etc/passwd /etc/passwd- /etc/group /etc/group-",
                        0o644,
                        "root",
                    ),
                    (
                        "/etc/shadow /etc/shadow- /etc/gshadow /etc/gshadow-",
                        0o640,
                        "shadow",
                    ),
                    ("/etc/ssh/ssh_host_*_key", 0o600, "root"),
                    ("/etc/ssh/ssh_host_*_key.pub", 0o644, "root"),
                ],
            )));
        }
        if v.os_hardening_pam_tmpdir {
            // Its package enables pam_tmpdir in common-session (pam-auth-update).
            out.push(Box::new(Package::present(&["libpam-tmpdir"])));
        }
        if v.os_hardening_auditd {
            out.extend(audit::resources());
        }
        Ok(out)
    }
}

fn login_defs(v: &Vars) -> Result<keys::KeyValues, String> {
    let umask = &v.os_hardening_umask;
    if umask.len() != 3 || !umask.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!(
            "`{umask}` is not a umask: three octal digits, like 027"
        ));
    }
    let rounds = v.os_hardening_sha_crypt_rounds.to_string();
    let keys = [
        ("UMASK", umask.clone()),
        ("PASS_MAX_DAYS", v.os_hardening_pass_max_days.to_string()),
        ("PASS_MIN_DAYS", v.os_hardening_pass_min_days.to_string()),
        ("PASS_WARN_AGE", v.os_hardening_pass_warn_age.to_string()),
        ("ENCRYPT_METHOD", "SHA512".to_string()),
        ("SHA_CRYPT_MIN_ROUNDS", rounds.clone()),
        ("SHA_CRYPT_MAX_ROUNDS", rounds),
    ];
    keys::KeyValues::new(
        "/etc/login.defs",
        keys.map(|(k, v)| (k.to_string(), v)).to_vec(),
    )
}

/// A modprobe.d file making each module fail to load, or None for an empty list.
fn blacklist(modules: &[String]) -> Result<Option<String>, String> {
    if modules.is_empty() {
        return Ok(None);
    }
    let mut s = format!(
        "{MANAGED}\n# `install ... /bin/false` stops explicit loads too; `blacklist` stops aliases.\n"
    );
    for m in modules {
        let ok = !m.is_empty()
            && m.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
        if !ok {
            return Err(format!("`{m}` is not a kernel module name"));
        }
        s.push_str(&format!("install {m} /bin/false\nblacklist {m}\n"));
    }
    Ok(Some(s))
}

/// The banner as written: CIS wants no OS details, which getty's escapes would print.
fn banner(text: &str) -> Result<String, String> {
    if let Some(e) = ["\\m", "\\r", "\\s", "\\v"]
        .iter()
        .find(|e| text.contains(*e))
    {
        return Err(format!(
            "contains `{e}`, which getty replaces with OS details (CIS 1.6.2 forbids them)"
        ));
    }
    let text = text.trim_end();
    if text.is_empty() {
        return Err("is empty; set os_hardening_banners = false to leave the files alone".into());
    }
    Ok(format!("{text}\n"))
}

/// CIS 2.4.1.x, 2.4.2.1: only root schedules jobs, and only root reads them.
fn cron() -> Vec<Box<dyn Resource>> {
    let mut out: Vec<Box<dyn Resource>> = vec![Box::new(permissions(
        "mode of /etc/crontab",
        &[("/etc/crontab", 0o600, "root")],
    ))];
    for dir in ["hourly", "daily", "weekly", "monthly", "d"] {
        out.push(Box::new(Directory {
            path: format!("/etc/cron.{dir}"),
            state: Presence::Present,
            attrs: FsAttrs::root(0o700),
        }));
    }
    for tool in ["cron", "at"] {
        out.push(Box::new(config_file(
            &format!("/etc/{tool}.allow"),
            "root\n".into(),
            0o640,
        )));
        out.push(Box::new(File {
            content: None,
            ..File::root_owned(&format!("/etc/{tool}.deny"), Vec::new(), 0o644)
        }));
    }
    out
}

/// Sets mode and owner (`root:GROUP`) of the files that exist among
/// space-separated paths and globs: what the distribution ships differs,
/// and a file it lacks is not created.
fn permissions(name: &str, specs: &[(&str, u32, &str)]) -> Command {
    let mut check = String::new();
    let mut run = String::new();
    for (paths, mode, group) in specs {
        check.push_str(&format!(
            "for f in {paths}; do [ ! -e \"$f\" ] || [ \"$(stat -c %a:%U:%G \"$f\")\" = {mode:o}:root:{group} ] || exit 1; done\n"
        ));
        run.push_str(&format!(
            "for f in {paths}; do if [ -e \"$f\" ]; then chown root:{group} \"$f\"; chmod {mode:04o} \"$f\"; fi; done\n"
        ));
    }
    Command {
        name: name.into(),
        run,
        creates: None,
        unless: Some(check),
        notify: Vec::new(),
    }
}

/// CIS 1.2.2.1, once: the command runs when the probe finds security updates
/// pending (or no package lists to tell), then the marker file keeps later
/// probes from asking apt again. No `apt-get update` in the probe: it is slow.
fn security_updates() -> Vec<Box<dyn Resource>> {
    let pending =
        "apt-get -s -q upgrade 2>/dev/null | awk '/^Inst / && /[Ss]ecurity/ { print $2 }'";
    let install = Command {
        name: "install pending security updates".into(),
        run: format!(
            "{}\npkgs=$({pending})\nif [ -n \"$pkgs\" ]; then apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --only-upgrade $pkgs; fi",
            crate::resource::package::refresh_cache(3600)
        ),
        creates: None,
        unless: Some(format!(
            "[ -e {UPDATES_MARKER} ] || {{ ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 && [ -z \"$({pending})\" ]; }}"
        )),
        notify: Vec::new(),
    };
    let marker = config_file(
        UPDATES_MARKER,
        "Pending security updates were installed on the first converge.\nRemove this file to have the next apply install those pending then.\n".into(),
        0o644,
    );
    vec![Box::new(install), Box::new(marker)]
}

#[cfg(test)]
mod tests;
