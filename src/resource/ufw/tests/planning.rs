use super::*;

/// The files on a Swarm manager of the lab (Debian 12, ufw 0.36.2) after slipway applied
/// the firewall role with firewall_rules = [{ port = "80", comment = "web" },
/// { port = "8000:8100", proto = "udp", from = "10.0.0.0/8" }] and 8080/tcp published
/// to 172.28.25.13; peers 172.28.25.12 and 172.28.25.13.
const LAB_USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n:ufw-user-forward - [0:0]\n:ufw-before-logging-input - [0:0]\n:ufw-before-logging-output - [0:0]\n:ufw-before-logging-forward - [0:0]\n:ufw-user-logging-input - [0:0]\n:ufw-user-logging-output - [0:0]\n:ufw-user-logging-forward - [0:0]\n:ufw-after-logging-input - [0:0]\n:ufw-after-logging-output - [0:0]\n:ufw-after-logging-forward - [0:0]\n:ufw-logging-deny - [0:0]\n:ufw-logging-allow - [0:0]\n:ufw-user-limit - [0:0]\n:ufw-user-limit-accept - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=736c69707761793a20737368\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 2377 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 2377 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow tcp 2377 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 2377 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow tcp 7946 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 7946 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow tcp 7946 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 7946 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow udp 7946 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 7946 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow udp 7946 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 7946 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow udp 4789 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 4789 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow udp 4789 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 4789 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in comment=776562\n-A ufw-user-input -p tcp --dport 80 -j ACCEPT\n\n### tuple ### allow udp 8000:8100 0.0.0.0/0 any 10.0.0.0/8 in\n-A ufw-user-input -p udp -m multiport --dports 8000:8100 -s 10.0.0.0/8 -j ACCEPT\n\n### END RULES ###\n\n### LOGGING ###\n-A ufw-after-logging-input -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw-after-logging-forward -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-I ufw-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10\n-A ufw-logging-deny -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" -m limit --limit 3/min --limit-burst 10\n### END LOGGING ###\n\n### RATE LIMITING ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\n### END RATE LIMITING ###\nCOMMIT\n";
const LAB_USER6_RULES: &str = "*filter\n:ufw6-user-input - [0:0]\n:ufw6-user-output - [0:0]\n:ufw6-user-forward - [0:0]\n:ufw6-before-logging-input - [0:0]\n:ufw6-before-logging-output - [0:0]\n:ufw6-before-logging-forward - [0:0]\n:ufw6-user-logging-input - [0:0]\n:ufw6-user-logging-output - [0:0]\n:ufw6-user-logging-forward - [0:0]\n:ufw6-after-logging-input - [0:0]\n:ufw6-after-logging-output - [0:0]\n:ufw6-after-logging-forward - [0:0]\n:ufw6-logging-deny - [0:0]\n:ufw6-logging-allow - [0:0]\n:ufw6-user-limit - [0:0]\n:ufw6-user-limit-accept - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 ::/0 any ::/0 in comment=736c69707761793a20737368\n-A ufw6-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 80 ::/0 any ::/0 in comment=776562\n-A ufw6-user-input -p tcp --dport 80 -j ACCEPT\n\n### END RULES ###\n\n### LOGGING ###\n-A ufw6-after-logging-input -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw6-after-logging-forward -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-I ufw6-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10\n-A ufw6-logging-deny -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw6-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" -m limit --limit 3/min --limit-burst 10\n### END LOGGING ###\n\n### RATE LIMITING ###\n-A ufw6-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw6-user-limit -j REJECT\n-A ufw6-user-limit-accept -j ACCEPT\n### END RATE LIMITING ###\nCOMMIT\n";
const LAB_AFTER_RULES: &str = "#\n# rules.input-after\n#\n# Rules that should be run after the ufw command line added rules. Custom\n# rules should be added to one of these chains:\n#   ufw-after-input\n#   ufw-after-output\n#   ufw-after-forward\n#\n\n# Don't delete these required lines, otherwise there will be errors\n*filter\n:ufw-after-input - [0:0]\n:ufw-after-output - [0:0]\n:ufw-after-forward - [0:0]\n# End required lines\n\n# don't log noisy services by default\n-A ufw-after-input -p udp --dport 137 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 138 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 139 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 445 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 67 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 68 -j ufw-skip-to-policy-input\n\n# don't log noisy broadcast\n-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n# BEGIN slipway DOCKER-USER\n# Managed by slipway: ports published by containers obey the firewall (firewall_docker_published).\n*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n-A DOCKER-USER -i docker0 -j RETURN\n-A DOCKER-USER -i docker_gwbridge -j RETURN\n-A DOCKER-USER -i br-+ -j RETURN\n-A DOCKER-USER -s 172.28.25.13 -p tcp -m conntrack --ctorigdstport 8080 -j RETURN\n-A DOCKER-USER -o docker0 -j DROP\n-A DOCKER-USER -o docker_gwbridge -j DROP\n-A DOCKER-USER -o br-+ -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT\n# END slipway DOCKER-USER\n";
const LAB_AFTER6_RULES: &str = "#\n# rules.input-after\n#\n# Rules that should be run after the ufw command line added rules. Custom\n# rules should be added to one of these chains:\n#   ufw6-after-input\n#   ufw6-after-output\n#   ufw6-after-forward\n#\n\n# Don't delete these required lines, otherwise there will be errors\n*filter\n:ufw6-after-input - [0:0]\n:ufw6-after-output - [0:0]\n:ufw6-after-forward - [0:0]\n# End required lines\n\n# don't log noisy services by default\n-A ufw6-after-input -p udp --dport 137 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p udp --dport 138 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p tcp --dport 139 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p tcp --dport 445 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p udp --dport 546 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p udp --dport 547 -j ufw6-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n# BEGIN slipway DOCKER-USER\n# Managed by slipway: ports published by containers obey the firewall (firewall_docker_published).\n*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n-A DOCKER-USER -i docker0 -j RETURN\n-A DOCKER-USER -i docker_gwbridge -j RETURN\n-A DOCKER-USER -i br-+ -j RETURN\n-A DOCKER-USER -o docker0 -j DROP\n-A DOCKER-USER -o docker_gwbridge -j DROP\n-A DOCKER-USER -o br-+ -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT\n# END slipway DOCKER-USER\n";

#[test]
fn a_fresh_debian_host_gets_ufw_and_every_rule_before_it_is_enabled() {
    let section = probe(&host(false, &[]));
    assert_eq!(section, "installed=no\nconn_port=22\n");
    let u = manager();
    let o = plan(&u, &section);
    let c = o.change.as_ref().unwrap();
    assert_eq!(c.action, Action::Create);
    assert_eq!(c.summary, "install and enable the firewall (ufw)");
    let lines = attr_lines(&o);
    for want in [
        "ufw: not installed -> active",
        "default incoming: deny",
        "default outgoing: allow",
        "22/tcp: from anywhere",
        "80/tcp: from anywhere",
        "2377/tcp: from 172.28.5.12, 172.28.5.13",
        "4789/udp: from 172.28.5.12, 172.28.5.13",
        "7946/tcp: from 172.28.5.12, 172.28.5.13",
        "7946/udp: from 172.28.5.12, 172.28.5.13",
        "published 8080/tcp: from 172.28.5.13",
        "/etc/ufw/after.rules, /etc/ufw/after6.rules: add slipway's DOCKER-USER rules",
    ] {
        assert!(has(&lines, want), "no `{want}` in {lines:#?}");
    }
    // Ports in numeric order.
    let ports: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("/tcp:") || l.contains("/udp:"))
        .collect();
    assert!(ports[0].starts_with("22/tcp"), "{ports:?}");

    let sh = script(&u, &section);
    let at = |needle: &str| {
        sh.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in\n{sh}"))
    };
    let ssh = at("ufw allow proto tcp from any to any port 22 comment 'slipway: ssh'");
    assert!(ssh < at("ufw allow proto tcp from 172.28.5.12 to any port 2377"));
    assert!(ssh < at("ufw default deny incoming"));
    assert!(at("ufw default deny incoming") < at("/etc/ufw/after.rules"));
    assert!(at("/etc/ufw/after6.rules") < at("ufw --force enable"));
    assert!(sh.trim_end().ends_with("ufw --force enable"), "{sh}");
    assert!(sh.contains("iptables-restore --test -n"), "{sh}");
    assert!(!sh.contains("ufw delete"), "{sh}");
}

#[test]
fn ubuntu_with_ufw_installed_but_inactive_is_enabled_with_the_rules() {
    let section = probe(&host(true, &pristine()));
    assert!(
        section
            .contains("installed=yes\nenabled=no\nipv6=yes\ninput=\"DROP\"\noutput=\"ACCEPT\"\n"),
        "{section}"
    );
    let u = manager();
    let o = plan(&u, &section);
    let c = o.change.as_ref().unwrap();
    assert_eq!(
        (c.action, c.summary.as_str()),
        (Action::Update, "enable the firewall (ufw)")
    );
    let lines = attr_lines(&o);
    assert!(has(&lines, "ufw: inactive -> active"), "{lines:#?}");
    assert!(has(&lines, "22/tcp: from anywhere"), "{lines:#?}");
    // The policies are already the planned ones.
    assert!(
        !lines.iter().any(|l| l.starts_with("default")),
        "{lines:#?}"
    );
    let sh = script(&u, &section);
    assert!(!sh.contains("ufw default"), "{sh}");
    assert!(sh.trim_end().ends_with("ufw --force enable"), "{sh}");
}

#[test]
fn a_converged_host_needs_nothing() {
    let u = manager();
    let section = probe(&host(true, &converged(&u, &[])));
    assert_eq!(plan(&u, &section), Outcome::unchanged(), "{section}");
}

#[test]
fn ufws_own_kernel_settings_are_turned_off() {
    let u = manager();
    let mut files = converged(&u, &[]);
    for (path, text) in &mut files {
        if *path == "etc/default/ufw" {
            *text = DEFAULT_UFW.to_string();
        }
    }
    let section = probe(&host(true, &files));
    let lines = attr_lines(&plan(&u, &section));
    assert!(
        has(
            &lines,
            "kernel settings: applied from /etc/ufw/sysctl.conf -> left to sysctl.d (IPT_SYSCTL empty)"
        ),
        "{lines:#?}"
    );
    assert!(
        script(&u, &section).contains("sed -i 's/^IPT_SYSCTL=.*/IPT_SYSCTL=/' /etc/default/ufw\n")
    );
}

#[test]
fn rules_not_planned_are_removed_when_exclusive_and_kept_otherwise() {
    let mut u = manager();
    let extra = [
        "allow tcp 9999 0.0.0.0/0 any 0.0.0.0/0 in",
        "allow tcp 2377 0.0.0.0/0 any 203.0.113.9 in",
        "deny any 53 0.0.0.0/0 any 0.0.0.0/0 out",
        "route:allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_docker0",
    ];
    let section = probe(&host(true, &converged(&u, &extra)));
    let o = plan(&u, &section);
    let lines = attr_lines(&o);
    for want in [
        "9999/tcp: from anywhere -> (none)",
        "2377/tcp: from 172.28.5.12, 172.28.5.13, 203.0.113.9 -> from 172.28.5.12, 172.28.5.13",
        "22/tcp: from anywhere (unchanged)",
        "remove rule: deny out from any to any port 53",
        "remove rule: route allow in on eth0 out on docker0 proto tcp from any to any port 80",
    ] {
        assert!(has(&lines, want), "no `{want}` in {lines:#?}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("ufw:")), "{lines:#?}");
    let sh = script(&u, &section);
    for want in [
        "ufw delete allow in proto tcp from any to any port 9999\n",
        "ufw delete allow in proto tcp from 203.0.113.9 to any port 2377\n",
        "ufw delete deny out from any to any port 53\n",
        "ufw route delete allow in on eth0 out on docker0 proto tcp from any to any port 80\n",
    ] {
        assert!(sh.contains(want), "no `{want}` in\n{sh}");
    }
    assert!(!sh.contains("ufw allow"), "{sh}");
    assert!(!sh.contains("enable") && !sh.contains("reload"), "{sh}");

    u.exclusive = false;
    assert_eq!(plan(&u, &section), Outcome::unchanged());
}

#[test]
fn the_files_of_a_converged_lab_manager_need_nothing() {
    let files = [
        (
            "etc/ufw/ufw.conf",
            UFW_CONF.replace("ENABLED=no", "ENABLED=yes"),
        ),
        ("etc/default/ufw", converged_default()),
        ("etc/ufw/user.rules", LAB_USER_RULES.to_string()),
        ("etc/ufw/user6.rules", LAB_USER6_RULES.to_string()),
        ("etc/ufw/after.rules", LAB_AFTER_RULES.to_string()),
        ("etc/ufw/after6.rules", LAB_AFTER6_RULES.to_string()),
    ];
    let section = probe(&host(true, &files));
    let mut u = swarm_manager(
        ["172.28.25.12", "172.28.25.13"],
        vec![
            rule("80", Proto::Tcp, "any", Some("web")),
            rule("8000:8100", Proto::Udp, "10.0.0.0/8", None),
        ],
    );
    assert_eq!(plan(&u, &section), Outcome::unchanged(), "{section}");
    // One swarm peer fewer: its rules go, the rest stays.
    u.rules
        .retain(|r| r.from != Source::Net("172.28.25.13".into()));
    let o = plan(&u, &section);
    let lines = attr_lines(&o);
    assert!(
        has(
            &lines,
            "2377/tcp: from 172.28.25.12, 172.28.25.13 -> from 172.28.25.12"
        ),
        "{lines:#?}"
    );
    let sh = script(&u, &section);
    assert_eq!(sh.matches("ufw delete allow in proto").count(), 4, "{sh}");
    assert!(
        sh.contains("ufw delete allow in proto udp from 172.28.25.13 to any port 4789\n"),
        "{sh}"
    );
}

#[test]
fn a_missing_ipv6_twin_or_a_different_comment_re_adds_the_rule() {
    let u = manager();
    let mut files = converged(&u, &[]);
    // 22/tcp only in user.rules (added while IPV6=no), and a swarm rule without its comment.
    files[3].1 = user_rules(USER6_RULES, &[]);
    let v4 = files[2].1.replace(
        &format!("172.28.5.13 in comment={}", hex("slipway: swarm")),
        "172.28.5.13 in",
    );
    files[2].1 = v4;
    let section = probe(&host(true, &files));
    let sh = script(&u, &section);
    assert!(
        sh.contains("ufw allow proto tcp from any to any port 22 comment 'slipway: ssh'\n"),
        "{sh}"
    );
    assert!(
        sh.contains(
            "ufw allow proto tcp from 172.28.5.13 to any port 2377 comment 'slipway: swarm'\n"
        ),
        "{sh}"
    );
    assert!(!sh.contains("delete"), "{sh}");
    let lines = attr_lines(&plan(&u, &section));
    assert!(has(&lines, "22/tcp: from anywhere"), "{lines:#?}");
    assert!(
        has(
            &lines,
            "2377/tcp: from 172.28.5.12, 172.28.5.13 (comment updated)"
        ),
        "{lines:#?}"
    );
}

#[test]
fn refuses_to_lock_out_or_to_edit_a_damaged_block() {
    let u = manager();
    let section = probe(&host(true, &pristine())).replace("conn_port=22", "conn_port=2222");
    let o = plan(&u, &section);
    assert!(
        o.blocked
            .as_deref()
            .unwrap()
            .contains("set ssh_port = 2222"),
        "{o:?}"
    );

    let mut files = pristine();
    files[4].1 = format!("{AFTER_RULES}{BEGIN}\n*filter\n");
    let o = plan(&u, &probe(&host(true, &files)));
    assert!(
        o.blocked
            .as_deref()
            .unwrap()
            .contains("damaged slipway block"),
        "{o:?}"
    );
}
