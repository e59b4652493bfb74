use super::*;

/// What ufw 0.36.2 wrote on a lab host (Debian 12) for: `ufw allow 22/tcp`,
/// `ufw allow proto tcp from 172.28.213.12 to any port 2377 comment "swarm manager"`,
/// `ufw allow proto udp from 172.28.213.12 to any port 4789`, `ufw allow 8000:8100/tcp`,
/// `ufw allow from 10.0.0.0/8 to any port 53`, `ufw allow 80`,
/// `ufw allow from 2001:db8::/32 to any port 443 proto tcp`.
const REAL_USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n:ufw-user-forward - [0:0]\n:ufw-before-logging-input - [0:0]\n:ufw-before-logging-output - [0:0]\n:ufw-before-logging-forward - [0:0]\n:ufw-user-logging-input - [0:0]\n:ufw-user-logging-output - [0:0]\n:ufw-user-logging-forward - [0:0]\n:ufw-after-logging-input - [0:0]\n:ufw-after-logging-output - [0:0]\n:ufw-after-logging-forward - [0:0]\n:ufw-logging-deny - [0:0]\n:ufw-logging-allow - [0:0]\n:ufw-user-limit - [0:0]\n:ufw-user-limit-accept - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 2377 0.0.0.0/0 any 172.28.213.12 in comment=737761726d206d616e61676572\n-A ufw-user-input -p tcp --dport 2377 -s 172.28.213.12 -j ACCEPT\n\n### tuple ### allow udp 4789 0.0.0.0/0 any 172.28.213.12 in\n-A ufw-user-input -p udp --dport 4789 -s 172.28.213.12 -j ACCEPT\n\n### tuple ### allow tcp 8000:8100 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp -m multiport --dports 8000:8100 -j ACCEPT\n\n### tuple ### allow any 53 0.0.0.0/0 any 10.0.0.0/8 in\n-A ufw-user-input -p tcp --dport 53 -s 10.0.0.0/8 -j ACCEPT\n-A ufw-user-input -p udp --dport 53 -s 10.0.0.0/8 -j ACCEPT\n\n### tuple ### allow any 80 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 80 -j ACCEPT\n-A ufw-user-input -p udp --dport 80 -j ACCEPT\n\n### END RULES ###\n\n### LOGGING ###\n-A ufw-after-logging-input -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" -m limit --limit 3/min --limit-burst 10\n### END LOGGING ###\n\n### RATE LIMITING ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\n### END RATE LIMITING ###\nCOMMIT\n";
const REAL_USER6_RULES: &str = "*filter\n:ufw6-user-input - [0:0]\n:ufw6-user-output - [0:0]\n:ufw6-user-forward - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 8000:8100 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp -m multiport --dports 8000:8100 -j ACCEPT\n\n### tuple ### allow any 80 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 80 -j ACCEPT\n-A ufw6-user-input -p udp --dport 80 -j ACCEPT\n\n### tuple ### allow tcp 443 ::/0 any 2001:db8::/32 in\n-A ufw6-user-input -p tcp --dport 443 -s 2001:db8::/32 -j ACCEPT\n\n### END RULES ###\nCOMMIT\n";

#[test]
fn parses_the_rules_ufw_really_writes() {
    let files = [
        ("etc/ufw/user.rules", REAL_USER_RULES.to_string()),
        ("etc/ufw/user6.rules", REAL_USER6_RULES.to_string()),
    ];
    let section = probe(&host(true, &files));
    let seen = Seen::parse(&Observed::new(&section, &HostFacts::default()));
    assert!(seen.unreadable.is_empty(), "{:?}", seen.unreadable);
    let simple: Vec<(Family, String, Proto, Source, Option<String>)> = seen
        .tuples
        .iter()
        .map(|t| {
            let (p, proto, src) = t.simple().expect("plain allow rules");
            (t.family, p, proto, src, t.comment.clone())
        })
        .collect();
    let net = |s: &str| Source::Net(s.into());
    assert_eq!(
        simple,
        vec![
            (Family::V4, "22".into(), Proto::Tcp, Source::Any, None),
            (
                Family::V4,
                "2377".into(),
                Proto::Tcp,
                net("172.28.213.12"),
                Some("swarm manager".into())
            ),
            (
                Family::V4,
                "4789".into(),
                Proto::Udp,
                net("172.28.213.12"),
                None
            ),
            (
                Family::V4,
                "8000:8100".into(),
                Proto::Tcp,
                Source::Any,
                None
            ),
            (Family::V4, "53".into(), Proto::Any, net("10.0.0.0/8"), None),
            (Family::V4, "80".into(), Proto::Any, Source::Any, None),
            (Family::V6, "22".into(), Proto::Tcp, Source::Any, None),
            (
                Family::V6,
                "8000:8100".into(),
                Proto::Tcp,
                Source::Any,
                None
            ),
            (Family::V6, "80".into(), Proto::Any, Source::Any, None),
            (
                Family::V6,
                "443".into(),
                Proto::Tcp,
                net("2001:db8::/32"),
                None
            ),
        ]
    );
    // The same rules, planned, are already there: nothing to add.
    let u = Ufw {
        enabled: true,
        rules: vec![
            rule("22", Proto::Tcp, "any", None),
            rule("2377", Proto::Tcp, "172.28.213.12", Some("swarm manager")),
            rule("4789", Proto::Udp, "172.28.213.12", None),
            rule("8000:8100", Proto::Tcp, "any", None),
            rule("53", Proto::Any, "10.0.0.0/8", None),
            rule("80", Proto::Any, "any", None),
            rule("443", Proto::Tcp, "2001:db8::/32", None),
        ],
        exclusive: true,
        docker_published: None,
        docker_local: Vec::new(),
        ssh_port: 22,
        revert_window: 90,
    };
    let (add, delete) = u.rule_changes(&seen);
    assert!(add.is_empty() && delete.is_empty(), "{add:?} {delete:?}");
}

#[test]
fn delete_commands_are_rebuilt_from_tuples() {
    // Each checked on a lab host: the command removes exactly the rule it came from.
    for (tuple, want) in [
        (
            "allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 in_eth0",
            "ufw delete allow in on eth0 proto tcp from any to any port 25",
        ),
        (
            "deny any 53 0.0.0.0/0 any 0.0.0.0/0 out",
            "ufw delete deny out from any to any port 53",
        ),
        (
            "limit_log tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in",
            "ufw delete limit in log proto tcp from any to any port 2222",
        ),
        (
            "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
            "ufw delete allow in from any to any app OpenSSH",
        ),
        (
            "allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 Nginx%20Full - in",
            "ufw delete allow in from any to any app 'Nginx Full'",
        ),
        (
            "route:allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_docker0",
            "ufw route delete allow in on eth0 out on docker0 proto tcp from any to any port 80",
        ),
        (
            "reject any any 0.0.0.0/0 any 192.168.0.0/16 in",
            "ufw delete reject in from 192.168.0.0/16 to any",
        ),
        (
            "allow udp 6000 10.0.0.1 5000 10.0.0.5 in",
            "ufw delete allow in proto udp from 10.0.0.5 port 5000 to 10.0.0.1 port 6000",
        ),
    ] {
        let t = Tuple::parse(Family::V4, tuple).unwrap();
        assert_eq!(t.delete_command(), want);
        assert!(t.simple().is_none(), "{tuple}");
    }
    assert!(Tuple::parse(Family::V4, "allow tcp 22").is_none());
}

#[test]
fn sources_and_ports_are_checked_and_written_as_ufw_writes_them() {
    assert_eq!(Source::parse("any"), Ok(Source::Any));
    assert_eq!(
        Source::parse("10.0.0.0/8"),
        Ok(Source::Net("10.0.0.0/8".into()))
    );
    assert_eq!(
        Source::parse("172.28.5.13/32"),
        Ok(Source::Net("172.28.5.13".into()))
    );
    assert_eq!(
        Source::parse("2001:DB8::1/128"),
        Ok(Source::Net("2001:db8::1".into()))
    );
    assert_eq!(
        Source::parse("2001:db8:0:0::/64"),
        Ok(Source::Net("2001:db8::/64".into()))
    );
    assert!(
        Source::parse("10.1.2.3/8")
            .unwrap_err()
            .contains("did you mean 10.0.0.0/8")
    );
    assert!(Source::parse("0.0.0.0/0").unwrap_err().contains("\"any\""));
    assert!(Source::parse("10.0.0.0/33").is_err());
    assert!(Source::parse("example.com").is_err());
    assert_eq!(parse_port("080"), Ok("80".into()));
    assert_eq!(parse_port("8000:8100"), Ok("8000:8100".into()));
    for bad in ["0", "65536", "8100:8000", "80,443", "http", "", "+80"] {
        assert!(parse_port(bad).is_err(), "{bad}");
    }
    assert!(port_covers("8000:8100", 8022) && !port_covers("22", 2222));
}

/// ESP has no ports: ufw 0.36.2 writes `ufw allow proto esp from 10.0.0.1 to any` as the
/// tuple below (tried on an Ubuntu 24.04 lab image with `--dry-run`).
#[test]
fn an_esp_rule_is_written_and_read_back_as_one_slipway_plans() {
    let r = Rule {
        port: "any".into(),
        proto: Proto::Esp,
        from: Source::Net("10.0.0.1".into()),
        comment: Some("slipway: swarm".into()),
    };
    assert_eq!(
        r.add_command(),
        "ufw allow proto esp from 10.0.0.1 to any comment 'slipway: swarm'"
    );
    let t = Tuple::parse(
        Family::V4,
        "allow esp any 0.0.0.0/0 any 10.0.0.1 in comment=736c69707761793a20737761726d",
    )
    .unwrap();
    assert_eq!(t.simple(), Some(r.key()));
    assert_eq!(
        t.delete_command(),
        "ufw delete allow in proto esp from 10.0.0.1 to any"
    );
    // A port-less rule of another protocol is not one of slipway's.
    let t = Tuple::parse(Family::V4, "allow tcp any 0.0.0.0/0 any 10.0.0.1 in").unwrap();
    assert_eq!(t.simple(), None);
}
