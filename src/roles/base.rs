//! `base`: a fresh apt cache, essential packages, unattended security
//! upgrades, time sync and extra CA certificates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::package::Package;
use crate::resource::service::Service;

pub struct Base;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// Seconds the apt cache stays fresh enough to install from.
    pub apt_cache_valid_time: u64,
    pub base_packages: Vec<String>,
    /// Install security updates every day, unattended.
    pub unattended_upgrades: bool,
    /// Reboot by itself when an update needs it, at `unattended_upgrades_reboot_time`.
    pub unattended_upgrades_reboot: bool,
    pub unattended_upgrades_reboot_time: String,
    /// Keep the clock in sync with systemd-timesyncd.
    pub time_sync: bool,
    /// More CA certificates to trust, by name: PEM text each.
    pub ca_certificates: BTreeMap<String, String>,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            apt_cache_valid_time: 3600,
            base_packages: [
                "ca-certificates",
                "curl",
                "gnupg",
                "sudo",
                "unattended-upgrades",
            ]
            .map(String::from)
            .to_vec(),
            unattended_upgrades: true,
            unattended_upgrades_reboot: false,
            unattended_upgrades_reboot_time: "03:30".into(),
            time_sync: true,
            ca_certificates: BTreeMap::new(),
        }
    }
}

/// apt reads these; `apt-config` rejects a file it cannot parse.
const APT_VALIDATE: &str = "apt-config -c {} dump >/dev/null";

impl TypedRole for Base {
    type Vars = Vars;
    const NAME: &'static str = "base";
    const ABOUT: &'static str = "apt cache freshness, essential packages, unattended security upgrades, time sync, extra CA certificates";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let mut packages = v.base_packages.clone();
        if v.time_sync {
            packages.push("systemd-timesyncd".into());
        }
        let mut out: Vec<Box<dyn Resource>> = vec![Box::new(Package {
            names: packages,
            cache_valid_time: v.apt_cache_valid_time,
            ..Package::present(&[])
        })];
        let on = u8::from(v.unattended_upgrades);
        let mut periodic = config_file(
            "/etc/apt/apt.conf.d/20auto-upgrades",
            format!(
                "// {}\nAPT::Periodic::Update-Package-Lists \"{on}\";\nAPT::Periodic::Unattended-Upgrade \"{on}\";\nAPT::Periodic::AutocleanInterval \"7\";\n",
                &MANAGED[2..]
            ),
            0o644,
        );
        periodic.validate = Some(APT_VALIDATE.into());
        out.push(Box::new(periodic));
        if v.unattended_upgrades {
            let mut policy = config_file(
                "/etc/apt/apt.conf.d/52slipway-unattended-upgrades",
                format!(
                    "// {}\nUnattended-Upgrade::Automatic-Reboot \"{}\";\nUnattended-Upgrade::Automatic-Reboot-Time \"{}\";\nUnattended-Upgrade::Remove-Unused-Kernel-Packages \"true\";\n",
                    &MANAGED[2..],
                    v.unattended_upgrades_reboot,
                    v.unattended_upgrades_reboot_time
                ),
                0o644,
            );
            policy.validate = Some(APT_VALIDATE.into());
            out.push(Box::new(policy));
            out.push(Box::new(Service::running("apt-daily.timer")));
            out.push(Box::new(Service::running("apt-daily-upgrade.timer")));
        }
        if v.time_sync {
            out.push(Box::new(Service {
                skip_in_container: true,
                ..Service::running("systemd-timesyncd")
            }));
        }
        out.extend(super::trust::system_ca(ctx, &v.ca_certificates)?);
        Ok(out)
    }
}
