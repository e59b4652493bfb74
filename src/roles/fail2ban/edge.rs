//! The edge's jail: clients the edge's nginx keeps answering 429 (over its
//! per-address `limit_req` rate) in its access log are banned from the edge's
//! ports.
//!
//! The ban is an nftables chain of fail2ban's own, hooked at prerouting before
//! Docker's DNAT (priority -150; DNAT is -100). There it sees the port the
//! client asked for (80, 443) whether a host process or a container publishing
//! it answers: traffic to a published port is DNATed and forwarded (FORWARD,
//! DOCKER-USER), never reaching INPUT, so an INPUT ban would not stop it. A
//! drop in any nftables base chain is final, so the ban also holds for
//! connections already established, ahead of DOCKER-USER's `RELATED,ESTABLISHED
//! RETURN`. And no one else writes the chain: UFW's reload flushes DOCKER-USER
//! (its after.rules declares the chain), Docker rewrites its own chains, and
//! both leave this table alone.

use super::Vars;
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::roles::{MANAGED, RoleContext, config_file};

/// The nftables chain (in fail2ban's table, `inet f2b-table`) of the edge's bans.
const CHAIN: &str = "f2b-edge";
/// nftables' priority of Docker's DNAT (`dstnat`); the ban's chain runs before it.
const PRIORITY: i32 = -150;

/// The edge's log directory, written with a trailing `/` or not (as the edge takes it).
fn log_dir(v: &Vars) -> &str {
    v.edge_log_dir.trim_end_matches('/')
}

/// The access log the edge writes into its bind-mounted directory.
fn log_path(v: &Vars) -> String {
    format!("{}/access.log", log_dir(v))
}

/// Refuses what would break fail2ban's configuration (and so every jail):
/// fail2ban splits `logpath` at spaces, and an empty port set is an nftables
/// syntax error at the first ban.
pub fn check(v: &Vars, ctx: &RoleContext<'_>) -> InputResult<()> {
    let err = |var: &str, m: String| -> InputError {
        ctx.var_error(
            var,
            format!("role fail2ban on {}: {var}: {m}", ctx.host.name),
        )
    };
    let dir = log_dir(v);
    crate::resource::file::check_abs(dir).map_err(|m| err("edge_log_dir", m))?;
    if dir.contains(char::is_whitespace) {
        return Err(err("edge_log_dir", format!("`{dir}` contains a space")));
    }
    if v.fail2ban_edge_ports.contains(&0) || v.fail2ban_edge_ports.is_empty() {
        return Err(err(
            "fail2ban_edge_ports",
            "list the edge's ports, from 1 to 65535".into(),
        ));
    }
    Ok(())
}

/// A jail on the edge's access log.
struct Jail<'a> {
    name: &'static str,
    /// The answers (status codes, a Python regex) it counts as failures.
    status: &'static str,
    maxretry: u32,
    findtime: &'a str,
}

impl Jail<'_> {
    fn filter_name(&self) -> String {
        format!("slipway-{}", self.name)
    }
}

/// Clients over the rate limit (429); with `fail2ban_edge_scan`, also those
/// collecting other 4xx answers (scanners probing for paths and hosts).
fn jails(v: &Vars) -> Vec<Jail<'_>> {
    let mut out = vec![Jail {
        name: "edge",
        status: "429",
        maxretry: v.fail2ban_edge_maxretry,
        findtime: &v.fail2ban_edge_findtime,
    }];
    if v.fail2ban_edge_scan {
        out.push(Jail {
            name: "edge-scan",
            status: r"4(?!29)\d\d",
            maxretry: v.fail2ban_edge_scan_maxretry,
            findtime: &v.fail2ban_edge_scan_findtime,
        });
    }
    out
}

/// The jails' names, as `fail2ban-client status NAME` takes them.
pub fn jail_names(v: &Vars) -> Vec<&'static str> {
    jails(v).iter().map(|j| j.name).collect()
}

/// The jails' sections of jail.d/slipway.local.
pub fn jail_sections(v: &Vars) -> String {
    let ports: Vec<String> = v.fail2ban_edge_ports.iter().map(u16::to_string).collect();
    let ports = ports.join(",");
    let log = log_path(v);
    let mut s = String::new();
    for j in jails(v) {
        // One set per jail, in a chain of the edge's own: nftables refuses a
        // second hook on the chain other jails share (`f2b-chain`, at input).
        s.push_str(&format!(
            "\n[{name}]\nenabled = true\nbackend = polling\nlogpath = {log}\nfilter = {filter}\n\
             maxretry = {}\nfindtime = {}\nbantime = {}\nport = {ports}\n\
             action = nftables[name={name}, port=\"{ports}\", protocol=tcp, chain={CHAIN}, chain_hook=prerouting, chain_priority={PRIORITY}, blocktype=drop]\n",
            j.maxretry,
            j.findtime,
            v.fail2ban_edge_bantime,
            name = j.name,
            filter = j.filter_name(),
        ));
    }
    s
}

/// A filter: a line of nginx's `combined` format answered `status`. fail2ban
/// cuts the date out of the line before matching, leaving `[]`.
fn filter(status: &str) -> String {
    format!(
        "{MANAGED}\n[Definition]\n\
         failregex = ^<HOST> \\S+ \\S+ \\[[^\\]]*\\] \"[^\"]*\" {status}\\s\n\
         ignoreregex =\n\
         datepattern = ^[^\\[]*\\[({{DATE}})\n"
    )
}

/// The filter files, and the access log made empty when the edge has not
/// written it yet: fail2ban refuses to start (every jail) over a missing log.
pub fn resources(v: &Vars) -> Vec<Box<dyn Resource>> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    for j in jails(v) {
        let mut file = config_file(
            &format!("/etc/fail2ban/filter.d/{}.conf", j.filter_name()),
            filter(j.status),
            0o644,
        );
        file.notify = vec!["fail2ban".into()];
        out.push(Box::new(file));
    }
    let log = log_path(v);
    out.push(Box::new(Command {
        name: format!("create {log} for fail2ban"),
        run: format!(
            "mkdir -p {} && touch {}",
            crate::shell::q(log_dir(v)),
            crate::shell::q(&log)
        ),
        creates: Some(log),
        unless: None,
        notify: Vec::new(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::roles::lookup;
    use crate::roles::tests::{inventory, resources};

    #[test]
    fn the_jail_bans_the_edge_ports_before_dnat() {
        let j = jail_sections(&Vars::default());
        for want in [
            "[edge]",
            "backend = polling",
            "logpath = /var/log/slipway/edge/access.log",
            "filter = slipway-edge",
            "maxretry = 20",
            "findtime = 1m",
            "bantime = 1h",
            "action = nftables[name=edge, port=\"80,443\", protocol=tcp, chain=f2b-edge, chain_hook=prerouting, chain_priority=-150, blocktype=drop]",
        ] {
            assert!(j.lines().any(|l| l == want), "no `{want}` in\n{j}");
        }
        assert!(!j.contains("[edge-scan]"), "{j}");
    }

    #[test]
    fn scanners_have_a_jail_of_their_own_counting_4xx_but_429() {
        let v = Vars {
            fail2ban_edge_scan: true,
            ..Vars::default()
        };
        let j = jail_sections(&v);
        let scan = &j[j.find("[edge-scan]").expect("no edge-scan jail")..];
        for want in [
            "filter = slipway-edge-scan",
            "maxretry = 30",
            "findtime = 10m",
            "bantime = 1h",
            "action = nftables[name=edge-scan, port=\"80,443\", protocol=tcp, chain=f2b-edge, chain_hook=prerouting, chain_priority=-150, blocktype=drop]",
        ] {
            assert!(scan.lines().any(|l| l == want), "no `{want}` in\n{scan}");
        }
        assert_eq!(jail_names(&v), ["edge", "edge-scan"]);
        assert!(filter(r"4(?!29)\d\d").contains(r#"" 4(?!29)\d\d\s"#));
    }

    fn ids(vars: serde_json::Value) -> Vec<String> {
        resources(lookup("fail2ban").unwrap(), &inventory(""), vars)
            .unwrap()
            .iter()
            .map(|r| r.id())
            .collect()
    }

    #[test]
    fn the_edge_jail_comes_with_its_filter_log_and_nftables_only_when_asked() {
        let filter = "file:/etc/fail2ban/filter.d/slipway-edge.conf".to_string();
        let log = "command:create /srv/edge/access.log for fail2ban".to_string();
        let on = ids(json!({"fail2ban_edge": true, "edge_log_dir": "/srv/edge/"}));
        assert!(on.contains(&filter) && on.contains(&log), "{on:?}");
        let scan = "file:/etc/fail2ban/filter.d/slipway-edge-scan.conf".to_string();
        assert!(!on.contains(&scan), "{on:?}");
        let both = ids(json!({"fail2ban_edge": true, "fail2ban_edge_scan": true}));
        assert!(both.contains(&filter) && both.contains(&scan), "{both:?}");
        assert!(on.iter().any(|i| i.contains("nftables")), "{on:?}");
        let off = ids(json!({"edge_log_dir": "/srv/edge"}));
        assert!(!off.contains(&filter) && !off.contains(&log), "{off:?}");
        assert!(!off.iter().any(|i| i.contains("nftables")), "{off:?}");
    }

    #[test]
    fn a_log_dir_fail2ban_cannot_read_or_no_ports_is_refused() {
        let role = lookup("fail2ban").unwrap();
        for (vars, want) in [
            (
                json!({"fail2ban_edge": true, "edge_log_dir": "/srv/my edge"}),
                "edge_log_dir",
            ),
            (
                json!({"fail2ban_edge": true, "edge_log_dir": "srv/edge"}),
                "must be absolute",
            ),
            (
                json!({"fail2ban_edge": true, "fail2ban_edge_ports": []}),
                "fail2ban_edge_ports",
            ),
        ] {
            let e = resources(role, &inventory(""), vars.clone()).err();
            let e = e.unwrap_or_else(|| panic!("{vars} accepted"));
            assert!(e.message().contains(want), "{vars}: {}", e.message());
        }
    }
}
