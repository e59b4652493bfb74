//! `fail2ban`: an sshd jail reading the systemd journal (the default reads
//! /var/log/auth.log, which does not exist without rsyslog, and fail2ban then
//! does not start), optionally a recidive jail and the edge's jail (see
//! [`edge`]); verified by asking fail2ban.

mod edge;

use serde::{Deserialize, Serialize};

use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::package::Package;
use crate::resource::service::Service;

pub struct Fail2ban;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    pub fail2ban_bantime: String,
    pub fail2ban_findtime: String,
    pub fail2ban_maxretry: u32,
    /// Addresses and networks never banned.
    pub fail2ban_ignoreip: Vec<String>,
    /// Ban repeat offenders for a week (the recidive jail).
    pub fail2ban_recidive: bool,
    /// The SSH port the jail protects (shared with ssh_hardening and firewall).
    pub ssh_port: u16,
    /// Ban clients the edge keeps answering 429 (over its rate limit).
    pub fail2ban_edge: bool,
    /// 429 answers within `fail2ban_edge_findtime` that ban a client.
    pub fail2ban_edge_maxretry: u32,
    pub fail2ban_edge_findtime: String,
    pub fail2ban_edge_bantime: String,
    /// The ports a banned client can no longer reach, the host's or published by a container.
    pub fail2ban_edge_ports: Vec<u16>,
    /// Also ban clients collecting other 4xx answers (scanners), in the jail edge-scan.
    pub fail2ban_edge_scan: bool,
    pub fail2ban_edge_scan_maxretry: u32,
    pub fail2ban_edge_scan_findtime: String,
    /// Where the edge writes access.log on the host (shared with the edge).
    pub edge_log_dir: String,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            fail2ban_bantime: "1h".into(),
            fail2ban_findtime: "10m".into(),
            fail2ban_maxretry: 5,
            fail2ban_ignoreip: vec!["127.0.0.1/8".into(), "::1".into()],
            fail2ban_recidive: false,
            ssh_port: 22,
            fail2ban_edge: false,
            fail2ban_edge_maxretry: 20,
            fail2ban_edge_findtime: "1m".into(),
            fail2ban_edge_bantime: "1h".into(),
            fail2ban_edge_ports: vec![80, 443],
            fail2ban_edge_scan: false,
            fail2ban_edge_scan_maxretry: 30,
            fail2ban_edge_scan_findtime: "10m".into(),
            edge_log_dir: "/var/log/slipway/edge".into(),
        }
    }
}

pub fn jail_config(v: &Vars) -> String {
    let mut s = format!(
        "{MANAGED}\n[DEFAULT]\nbantime = {}\nfindtime = {}\nmaxretry = {}\nignoreip = {}\nbanaction = iptables-multiport\n\n\
         [sshd]\nenabled = true\nport = {}\nbackend = systemd\n",
        v.fail2ban_bantime,
        v.fail2ban_findtime,
        v.fail2ban_maxretry,
        v.fail2ban_ignoreip.join(" "),
        v.ssh_port
    );
    if v.fail2ban_recidive {
        s.push_str("\n[recidive]\nenabled = true\nbackend = auto\nlogpath = /var/log/fail2ban.log\nbantime = 1w\nfindtime = 1d\n");
    }
    if v.fail2ban_edge {
        s.push_str(&edge::jail_sections(v));
    }
    s
}

impl TypedRole for Fail2ban {
    type Vars = Vars;
    const NAME: &'static str = "fail2ban";
    const ABOUT: &'static str = "fail2ban with an sshd jail on the systemd journal, optional recidive and edge jails, verified running";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        // python3-systemd lets fail2ban read the journal; iptables carries out the
        // sshd bans, nftables the edge's.
        let mut names = vec!["fail2ban", "python3-systemd", "iptables"];
        let mut out: Vec<Box<dyn Resource>> = Vec::new();
        if v.fail2ban_edge {
            edge::check(&v, ctx)?;
            names.push("nftables");
            out.extend(edge::resources(&v));
        }
        let packages = Package::present(&names);
        // `.local` files are read after every `.conf`: Ubuntu's defaults-debian.conf
        // sets banaction = nftables, and would win over a `.conf` sorting before it.
        let mut jail = config_file("/etc/fail2ban/jail.d/slipway.local", jail_config(&v), 0o644);
        jail.notify = vec!["fail2ban".into()];
        // The jail must ban through iptables, where UFW and DOCKER-USER are.
        let mut verify = String::from(
            "fail2ban-client ping && fail2ban-client status sshd && fail2ban-client get sshd actions | grep -qx iptables-multiport",
        );
        if v.fail2ban_recidive {
            verify.push_str(" && fail2ban-client status recidive");
        }
        if v.fail2ban_edge {
            for name in edge::jail_names(&v) {
                verify.push_str(&format!(" && fail2ban-client status {name}"));
            }
        }
        let service = Service {
            // fail2ban-client is Python: too slow for every probe. The server's socket
            // tells a running server from a unit that is merely active.
            check: Some("[ -S /run/fail2ban/fail2ban.sock ]".into()),
            verify: Some(verify),
            ..Service::running("fail2ban")
        };
        // The jails go in first, so fail2ban's first start (by the package) already reads them.
        out.extend([
            Box::new(jail) as Box<dyn Resource>,
            Box::new(packages),
            Box::new(service),
        ]);
        Ok(out)
    }
}
