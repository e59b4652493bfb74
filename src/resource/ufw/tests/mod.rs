//! What the tests share: the files as the ufw package installs them, a host's
//! file system under a temp dir with the real probe run against it, and what
//! the role plans for a Swarm manager.

mod docker_user;
mod parsing;
mod planning;

use super::*;
use crate::facts::HostFacts;

// The files as the ufw package (0.36.2) installs them: Debian 12 and Ubuntu 24.04 ship the
// same upstream defaults (Ubuntu has ufw installed, inactive).
const UFW_CONF: &str = "# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot. If setting this remotely, be sure to add a rule\n# to allow your remote connection before starting ufw. Eg: 'ufw allow 22/tcp'\nENABLED=no\n\n# Please use the 'ufw' command to set the loglevel. Eg: 'ufw logging medium'.\n# See 'man ufw' for details.\nLOGLEVEL=low\n";
const DEFAULT_UFW: &str = "# /etc/default/ufw\n#\n\n# Set to yes to apply rules to support IPv6 (no means only IPv6 on loopback\n# accepted). You will need to 'disable' and then 'enable' the firewall for\n# the changes to take affect.\nIPV6=yes\n\n# Set the default input policy to ACCEPT, DROP, or REJECT. Please note that if\n# you change this you will most likely want to adjust your rules.\nDEFAULT_INPUT_POLICY=\"DROP\"\n\n# Set the default output policy to ACCEPT, DROP, or REJECT. Please note that if\n# you change this you will most likely want to adjust your rules.\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n\n# Set the default forward policy to ACCEPT, DROP or REJECT.  Please note that\n# if you change this you will most likely want to adjust your rules\nDEFAULT_FORWARD_POLICY=\"DROP\"\n\nDEFAULT_APPLICATION_POLICY=\"SKIP\"\nMANAGE_BUILTINS=no\nIPT_SYSCTL=/etc/ufw/sysctl.conf\nIPT_MODULES=\"\"\n";
const USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n:ufw-user-forward - [0:0]\n:ufw-user-limit - [0:0]\n:ufw-user-limit-accept - [0:0]\n### RULES ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\nCOMMIT\n";
const USER6_RULES: &str = "*filter\n:ufw6-user-input - [0:0]\n:ufw6-user-output - [0:0]\n:ufw6-user-forward - [0:0]\n### RULES ###\nCOMMIT\n";
const AFTER_RULES: &str = "#\n# rules.input-after\n#\n# Rules that should be run after the ufw command line added rules. Custom\n# rules should be added to one of these chains:\n#   ufw-after-input\n#   ufw-after-output\n#   ufw-after-forward\n#\n\n# Don't delete these required lines, otherwise there will be errors\n*filter\n:ufw-after-input - [0:0]\n:ufw-after-output - [0:0]\n:ufw-after-forward - [0:0]\n# End required lines\n\n# don't log noisy services by default\n-A ufw-after-input -p udp --dport 137 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 138 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 139 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 445 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 67 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 68 -j ufw-skip-to-policy-input\n\n# don't log noisy broadcast\n-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n";
const AFTER6_RULES: &str = "#\n# rules.input-after\n#\n*filter\n:ufw6-after-input - [0:0]\n:ufw6-after-output - [0:0]\n:ufw6-after-forward - [0:0]\n# End required lines\n\n-A ufw6-after-input -p udp --dport 137 -j ufw6-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n";

const PEER2: &str = "172.28.5.12";
const PEER3: &str = "172.28.5.13";

/// /etc/default/ufw as slipway leaves it: UFW applies no kernel settings.
fn converged_default() -> String {
    DEFAULT_UFW.replace("IPT_SYSCTL=/etc/ufw/sysctl.conf", "IPT_SYSCTL=")
}

/// A host's file system under a temp dir: `files` are (path, content).
fn host(installed: bool, files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if installed {
        std::fs::create_dir_all(dir.path().join("usr/sbin")).unwrap();
        let ufw = dir.path().join("usr/sbin/ufw");
        std::fs::write(&ufw, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ufw, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// Runs the real probe against `dir`, as over an SSH connection to port 22.
fn probe(dir: &tempfile::TempDir) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(probe_script(dir.path().to_str().unwrap()))
        .env("SSH_CONNECTION", "172.28.5.1 40522 172.28.5.11 22")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn plan(u: &Ufw, section: &str) -> Outcome {
    u.plan(&Observed::new(section, &HostFacts::default()))
}

fn script(u: &Ufw, section: &str) -> String {
    let c = plan(u, section).change.expect("a change");
    u.apply(&c, &Observed::new(section, &HostFacts::default()))
        .sh
}

fn rule(port: &str, proto: Proto, from: &str, comment: Option<&str>) -> Rule {
    Rule {
        port: port.into(),
        proto,
        from: Source::parse(from).unwrap(),
        comment: comment.map(str::to_string),
    }
}

/// The SSH rule and the Swarm rules from `peers`, as the role plans them.
fn swarm_rules(peers: [&str; 2]) -> Vec<Rule> {
    let mut rules = vec![rule("22", Proto::Tcp, "any", Some("slipway: ssh"))];
    for (port, proto) in [
        ("2377", Proto::Tcp),
        ("7946", Proto::Tcp),
        ("7946", Proto::Udp),
        ("4789", Proto::Udp),
    ] {
        for peer in peers {
            rules.push(rule(port, proto, peer, Some("slipway: swarm")));
        }
    }
    rules
}

/// A Swarm manager's firewall: SSH, the Swarm ports from `peers`, `extra`
/// rules, and 8080 published to the second peer.
fn swarm_manager(peers: [&str; 2], extra: Vec<Rule>) -> Ufw {
    let mut rules = swarm_rules(peers);
    rules.extend(extra);
    Ufw {
        enabled: true,
        rules,
        exclusive: true,
        docker_published: Some(vec![Published {
            port: "8080".into(),
            proto: Proto::Tcp,
            from: Source::Net(peers[1].into()),
        }]),
        docker_local: Vec::new(),
        ssh_port: 22,
        revert_window: 90,
    }
}

/// What the role plans for a Swarm manager whose peers are PEER2 and PEER3.
fn manager() -> Ufw {
    swarm_manager([PEER2, PEER3], vec![rule("80", Proto::Tcp, "any", None)])
}

fn pristine() -> Vec<(&'static str, String)> {
    vec![
        ("etc/ufw/ufw.conf", UFW_CONF.to_string()),
        ("etc/default/ufw", DEFAULT_UFW.to_string()),
        ("etc/ufw/user.rules", USER_RULES.to_string()),
        ("etc/ufw/user6.rules", USER6_RULES.to_string()),
        ("etc/ufw/after.rules", AFTER_RULES.to_string()),
        ("etc/ufw/after6.rules", AFTER6_RULES.to_string()),
    ]
}

/// user.rules holding `tuples` (the v4 or v6 ones), as ufw writes it.
fn user_rules(base: &str, tuples: &[String]) -> String {
    let body: String = tuples
        .iter()
        .map(|t| format!("\n### tuple ### {t}\n-A ufw-user-input -j ACCEPT\n"))
        .collect();
    base.replace(
        "### RULES ###\n",
        &format!("### RULES ###\n{body}\n### END RULES ###\n"),
    )
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The files of a host where `u` was applied: rules, policies, enabled, blocks.
fn converged(u: &Ufw, extra_v4: &[&str]) -> Vec<(&'static str, String)> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for r in &u.rules {
        let comment = r
            .comment
            .as_ref()
            .map(|c| format!(" comment={}", hex(c)))
            .unwrap_or_default();
        let t = |any: &str| {
            let src = match &r.from {
                Source::Any => any.to_string(),
                Source::Net(n) => n.clone(),
            };
            format!(
                "allow {} {} {any} any {src} in{comment}",
                r.proto.as_str(),
                r.port
            )
        };
        match r.from.family() {
            Some(Family::V4) => v4.push(t("0.0.0.0/0")),
            Some(Family::V6) => v6.push(t("::/0")),
            None => {
                v4.push(t("0.0.0.0/0"));
                v6.push(t("::/0"));
            }
        }
    }
    v4.extend(extra_v4.iter().map(|s| s.to_string()));
    let block = |f| {
        let mut b = u.docker_block(f).map(|l| l.join("\n")).unwrap_or_default();
        b.push('\n');
        b
    };
    vec![
        (
            "etc/ufw/ufw.conf",
            UFW_CONF.replace("ENABLED=no", "ENABLED=yes"),
        ),
        ("etc/default/ufw", converged_default()),
        ("etc/ufw/user.rules", user_rules(USER_RULES, &v4)),
        ("etc/ufw/user6.rules", user_rules(USER6_RULES, &v6)),
        (
            "etc/ufw/after.rules",
            format!("{AFTER_RULES}{}", block(Family::V4)),
        ),
        (
            "etc/ufw/after6.rules",
            format!("{AFTER6_RULES}{}", block(Family::V6)),
        ),
    ]
}

fn attr_lines(o: &Outcome) -> Vec<String> {
    o.change
        .as_ref()
        .unwrap()
        .attrs
        .iter()
        .map(|a| match (&a.from, &a.to) {
            (Some(f), Some(t)) => format!("{}: {f} -> {t}", a.name),
            (None, Some(t)) => format!("{}: {t}", a.name),
            (Some(f), None) => format!("{}: {f} -> (none)", a.name),
            (None, None) => a.name.clone(),
        })
        .collect()
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}
