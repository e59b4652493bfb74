use super::*;

#[test]
fn a_changed_published_port_rewrites_the_block_and_reloads() {
    let old = manager();
    let section = probe(&host(true, &converged(&old, &[])));
    let mut u = manager();
    u.docker_published = Some(vec![Published {
        port: "8080".into(),
        proto: Proto::Tcp,
        from: Source::Net(PEER2.into()),
    }]);
    let o = plan(&u, &section);
    let lines = attr_lines(&o);
    assert!(
        has(
            &lines,
            "published 8080/tcp: from 172.28.5.13 -> from 172.28.5.12"
        ),
        "{lines:#?}"
    );
    assert!(
        has(&lines, "22/tcp: from anywhere (unchanged)"),
        "{lines:#?}"
    );
    let sh = script(&u, &section);
    assert!(sh.trim_end().ends_with("ufw reload"), "{sh}");
    assert!(!sh.contains("ufw allow"), "{sh}");

    // Nothing published: the block still drops what comes from outside.
    u.docker_published = Some(Vec::new());
    let lines = attr_lines(&plan(&u, &section));
    assert!(
        has(&lines, "published 8080/tcp: from 172.28.5.13 -> (none)"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("published ports: from no other host")),
        "{lines:#?}"
    );
}

#[test]
fn the_block_returns_for_docker_bridges_and_listed_sources_and_drops_the_rest() {
    let mut u = manager();
    u.docker_published = Some(vec![
        Published {
            port: "8080".into(),
            proto: Proto::Tcp,
            from: Source::Net(PEER3.into()),
        },
        Published {
            port: "53".into(),
            proto: Proto::Any,
            from: Source::Any,
        },
        Published {
            port: "443".into(),
            proto: Proto::Tcp,
            from: Source::Net("2001:db8::/32".into()),
        },
    ]);
    let v4 = u.docker_block(Family::V4).unwrap().join("\n");
    for want in [
        ":DOCKER-USER - [0:0]",
        "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-A DOCKER-USER -i docker0 -j RETURN",
        "-A DOCKER-USER -i br-+ -j RETURN",
        "-A DOCKER-USER -s 172.28.5.13 -p tcp -m conntrack --ctorigdstport 8080 -j RETURN",
        "-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 53 -j RETURN",
        "-A DOCKER-USER -p udp -m conntrack --ctorigdstport 53 -j RETURN",
        "-A DOCKER-USER -o docker0 -j DROP",
        "-A DOCKER-USER -o br-+ -j DROP",
    ] {
        assert!(v4.contains(want), "no `{want}` in\n{v4}");
    }
    assert!(!v4.contains("2001:db8"), "{v4}");
    assert!(
        v4.starts_with(BEGIN) && v4.ends_with(&format!("COMMIT\n{END}")),
        "{v4}"
    );
    // No address ranges are let through wholesale: only the bridges, by interface.
    assert!(
        !v4.contains("172.16.0.0") && !v4.contains("10.0.0.0"),
        "{v4}"
    );
    let v6 = u.docker_block(Family::V6).unwrap().join("\n");
    assert!(
        v6.contains(
            "-A DOCKER-USER -s 2001:db8::/32 -p tcp -m conntrack --ctorigdstport 443 -j RETURN"
        ),
        "{v6}"
    );
    assert!(!v6.contains("172.28.5.13"), "{v6}");
}

#[test]
fn disabling_turns_ufw_off_and_removes_the_block() {
    let mut u = manager();
    let section = probe(&host(true, &converged(&u, &[])));
    u.enabled = false;
    let o = plan(&u, &section);
    let lines = attr_lines(&o);
    assert!(has(&lines, "ufw: active -> inactive"), "{lines:#?}");
    assert!(
        has(&lines, "published 8080/tcp: from 172.28.5.13 -> (none)"),
        "{lines:#?}"
    );
    let sh = script(&u, &section);
    assert!(sh.starts_with("ufw disable\n"), "{sh}");
    assert!(sh.contains("iptables -w -F DOCKER-USER"), "{sh}");
    assert!(!sh.contains("slipway_payload"), "{sh}");
    // Off already, and no block: nothing to do.
    assert_eq!(
        plan(&u, &probe(&host(true, &pristine()))),
        Outcome::unchanged()
    );
    assert_eq!(plan(&u, &probe(&host(false, &[]))), Outcome::unchanged());
}

#[test]
fn containers_of_the_node_reach_its_exporters_through_an_accept_before_the_bridge_returns() {
    let old = manager();
    let section = probe(&host(true, &converged(&old, &[])));
    let mut u = manager();
    u.docker_local = vec!["9100".into(), "8080".into()];
    let block = u.docker_block(Family::V4).unwrap();
    let accept = block
        .iter()
        .position(|l| {
            l == "-A DOCKER-USER -i docker_gwbridge -o docker_gwbridge -p tcp -m conntrack --ctorigdstport 9100 -j ACCEPT"
        })
        .expect("no ACCEPT for 9100");
    let bridge_return = block
        .iter()
        .position(|l| l == "-A DOCKER-USER -i docker_gwbridge -j RETURN")
        .unwrap();
    assert!(accept < bridge_return, "{block:#?}");
    let lines = attr_lines(&plan(&u, &section));
    assert!(
        has(&lines, "published, from this node's containers: 8080, 9100"),
        "{lines:#?}"
    );
    // Not mistaken for a port open to anyone.
    assert!(!lines.iter().any(|l| l.contains("9100/tcp")), "{lines:#?}");
}
