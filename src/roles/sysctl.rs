//! `sysctl`: kernel hardening that keeps Docker working (packet forwarding
//! stays on). Settings a container cannot change are reported as skipped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RoleContext, TypedRole};
use crate::config::vars::Step;
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;
use crate::resource::sysctl::Sysctl as SysctlResource;

pub struct Sysctl;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// Apply the hardening set below.
    pub sysctl_hardening: bool,
    /// More settings, or overrides of the hardening set (key = value).
    pub sysctl_settings: BTreeMap<String, serde_json::Value>,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            sysctl_hardening: true,
            sysctl_settings: BTreeMap::new(),
        }
    }
}

/// The hardening set. Docker (and Swarm's overlay networks) need forwarding;
/// reverse-path filtering is loose (2) because strict filtering drops overlay traffic.
pub const HARDENING: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "2"),
    ("net.ipv4.conf.default.rp_filter", "2"),
    ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.conf.default.accept_redirects", "0"),
    ("net.ipv4.conf.all.secure_redirects", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
    ("net.ipv4.conf.all.accept_source_route", "0"),
    ("net.ipv6.conf.all.accept_redirects", "0"),
    ("net.ipv6.conf.default.accept_redirects", "0"),
    ("net.ipv4.conf.all.log_martians", "1"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1"),
    ("net.ipv4.tcp_syncookies", "1"),
    ("kernel.kptr_restrict", "2"),
    ("kernel.dmesg_restrict", "1"),
    ("kernel.randomize_va_space", "2"),
    ("kernel.yama.ptrace_scope", "1"),
    ("fs.protected_hardlinks", "1"),
    ("fs.protected_symlinks", "1"),
    ("fs.suid_dumpable", "0"),
];

impl TypedRole for Sysctl {
    type Vars = Vars;
    const NAME: &'static str = "sysctl";
    const ABOUT: &'static str =
        "kernel hardening that keeps Docker working; read-only settings in containers are skipped";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let mut settings: BTreeMap<String, String> = BTreeMap::new();
        if v.sysctl_hardening {
            settings.extend(
                HARDENING
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
        }
        for (k, val) in v.sysctl_settings {
            let text = match val {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            crate::resource::sysctl::check_setting(&k, &text).map_err(|m| {
                let message = format!("role sysctl on {}: sysctl_settings: {m}", ctx.host.name);
                // At the entry's key when the key is wrong, else at its value.
                let at_key = crate::resource::sysctl::check_setting(&k, "").is_err();
                match ctx.origins.get("sysctl_settings") {
                    Some(o) => o.error("sysctl_settings", &[Step::Key(k.clone())], at_key, message),
                    None => InputError::plain(message),
                }
            })?;
            settings.insert(k, text);
        }
        if settings.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Box::new(SysctlResource::new(
            "slipway-hardening".into(),
            settings,
        ))])
    }
}
