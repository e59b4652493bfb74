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

/// The jail's name, as `fail2ban-client status edge` takes it.
pub const JAIL: &str = "edge";
const FILTER: &str = "slipway-edge";
/// nftables' priority of Docker's DNAT (`dstnat`); the ban's chain runs before it.
const PRIORITY: i32 = -150;

/// The access log the edge writes into its bind-mounted directory.
pub fn log_path(v: &Vars) -> String {
    format!("{}/access.log", v.edge_log_dir)
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
    crate::resource::file::check_abs(&v.edge_log_dir).map_err(|m| err("edge_log_dir", m))?;
    if v.edge_log_dir.contains(char::is_whitespace) {
        return Err(err(
            "edge_log_dir",
            format!("`{}` contains a space", v.edge_log_dir),
        ));
    }
    if v.fail2ban_edge_ports.contains(&0) || v.fail2ban_edge_ports.is_empty() {
        return Err(err(
            "fail2ban_edge_ports",
            "list the edge's ports, from 1 to 65535".into(),
        ));
    }
    Ok(())
}

/// The jail's section of jail.d/slipway.local.
pub fn jail(v: &Vars) -> String {
    let ports: Vec<String> = v.fail2ban_edge_ports.iter().map(u16::to_string).collect();
    let ports = ports.join(",");
    // Its own chain in fail2ban's table: nftables refuses a second hook on the
    // chain other jails share (`f2b-chain`, hooked at input).
    format!(
        "\n[{JAIL}]\nenabled = true\nbackend = polling\nlogpath = {log}\nfilter = {FILTER}\n\
         maxretry = {}\nfindtime = {}\nbantime = {}\nport = {ports}\n\
         action = nftables[name={JAIL}, port=\"{ports}\", protocol=tcp, chain=f2b-{JAIL}, chain_hook=prerouting, chain_priority={PRIORITY}, blocktype=drop]\n",
        v.fail2ban_edge_maxretry,
        v.fail2ban_edge_findtime,
        v.fail2ban_edge_bantime,
        log = log_path(v),
    )
}

/// The filter: a line of nginx's `combined` format answered 429. fail2ban
/// cuts the date out of the line before matching, leaving `[]`.
fn filter() -> String {
    format!(
        "{MANAGED}\n[Definition]\n\
         failregex = ^<HOST> \\S+ \\S+ \\[[^\\]]*\\] \"[^\"]*\" 429\\s\n\
         ignoreregex =\n\
         datepattern = ^[^\\[]*\\[({{DATE}})\n"
    )
}

/// The filter file, and the access log made empty when the edge has not
/// written it yet: fail2ban refuses to start (every jail) over a missing log.
pub fn resources(v: &Vars) -> Vec<Box<dyn Resource>> {
    let mut filter = config_file(
        &format!("/etc/fail2ban/filter.d/{FILTER}.conf"),
        filter(),
        0o644,
    );
    filter.notify = vec!["fail2ban".into()];
    let log = log_path(v);
    let touch = Command {
        name: format!("create {log} for fail2ban"),
        run: format!(
            "mkdir -p {} && touch {}",
            crate::shell::q(&v.edge_log_dir),
            crate::shell::q(&log)
        ),
        creates: Some(log),
        unless: None,
        notify: Vec::new(),
    };
    vec![Box::new(filter), Box::new(touch)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::roles::lookup;
    use crate::roles::tests::{inventory, resources};

    #[test]
    fn the_jail_bans_the_edge_ports_before_dnat() {
        let j = jail(&Vars::default());
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
        let on = ids(json!({"fail2ban_edge": true, "edge_log_dir": "/srv/edge"}));
        assert!(on.contains(&filter) && on.contains(&log), "{on:?}");
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
