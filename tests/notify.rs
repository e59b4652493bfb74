//! Notifications through the real binary, to real endpoints on loopback: a
//! recording HTTP server for the Slack and Discord webhooks and an SMTP
//! server. The hosts here cannot be reached (a closed loopback port), which
//! is a failed apply and a plan that could not tell: both notify. A
//! successful apply is in notify_lab.rs.

mod common;

use common::notify::{MailServer, Receiver, direct, free_port, section};
use common::run::{Project, Run, run, slipway};

const PLAYBOOK: &str = "[[play]]\nhosts = \"all\"\n\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/motd\"\ncontent = \"hi\\n\"\n";

/// A project whose one host, web1, listens nowhere, with `notify` appended
/// to its inventory.
fn project(notify: &str) -> Project {
    let p = Project::new();
    p.write(
        "inventory.toml",
        &format!(
            "[hosts.web1]\naddress = \"127.0.0.1\"\nport = {}\nconnect_timeout = 3\n{notify}",
            free_port()
        ),
    );
    p.write("playbook.toml", PLAYBOOK);
    p
}

fn slipway_in(p: &Project, discord: &str, args: &[&str]) -> Run {
    run(direct(&mut slipway(p.dir.path()))
        .env("SLIPWAY_TEST_DISCORD_WEBHOOK", discord)
        .args(args)
        .arg("-i")
        .arg(p.path("inventory.toml"))
        .arg(p.path("playbook.toml")))
}

#[test]
fn plan_notify_drift_posts_to_slack_and_discord_and_mails() {
    let hooks = Receiver::start();
    let smtp = MailServer::start();
    let (slack, discord) = (
        hooks.url("ok/slack/T0-secret"),
        hooks.url("ok/discord/d-secret"),
    );
    let p = project(&section(&slack, smtp.port));
    let r = slipway_in(&p, &discord, &["plan", "--notify-drift"]).expect(1);
    assert!(
        r.stderr.contains("Notified slack, discord, email (drift)."),
        "{}",
        r.stderr
    );

    let text = hooks.body("/ok/slack/T0-secret")["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with("slipway plan playbook.toml: drift: 0 changes pending on 0 of 1 hosts, 1 could not be planned"),
        "{text}"
    );
    assert!(text.contains("\nweb1: FAILED: "), "{text}");
    let d = hooks.body("/ok/discord/d-secret");
    assert!(
        d["content"].as_str().unwrap().contains("web1: FAILED"),
        "{d}"
    );
    assert_eq!(d["embeds"][0]["title"], "slipway plan: drift");

    let mail = smtp.wait_for_mail();
    assert!(
        mail.contains("Subject: slipway plan playbook.toml: drift:"),
        "{mail}"
    );
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(mail.contains("web1: FAILED"), "{mail}");
    for out in [&r.stdout, &r.stderr, &mail, &text] {
        assert!(!out.contains("secret"), "a webhook URL leaked:\n{out}");
    }
}

#[test]
fn a_failed_apply_notifies_and_no_notify_keeps_quiet() {
    let hooks = Receiver::start();
    let smtp = MailServer::start();
    let p = project(&section(&hooks.url("ok/slack"), smtp.port));
    let discord = hooks.url("ok/discord");
    slipway_in(&p, &discord, &["apply", "--yes", "--no-notify"]).expect(1);
    assert_eq!(hooks.received(), []);
    assert_eq!(smtp.mail(), "");

    slipway_in(&p, &discord, &["apply", "--yes"]).expect(1);
    let text = hooks.body("/ok/slack")["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with(
            "slipway apply playbook.toml: failure: 1 of 1 hosts failed, 0 changes applied, by "
        ),
        "{text}"
    );
    assert!(
        hooks.body("/ok/discord")["content"]
            .as_str()
            .unwrap()
            .contains("web1: FAILED")
    );
    assert!(
        smtp.wait_for_mail()
            .contains("Subject: slipway apply playbook.toml: failure")
    );
}

#[test]
fn endpoints_that_fail_are_warnings_naming_the_channel_and_the_exit_code_stands() {
    let hooks = Receiver::start();
    let closed = free_port();
    let p = project(&section(&hooks.url("fail/slack"), closed));
    let discord = format!("http://127.0.0.1:{closed}/discord-secret");
    let quiet = slipway_in(
        &p,
        &discord,
        &["plan", "--notify-drift", "--detailed-exitcode"],
    );
    let r = slipway_in(&p, &discord, &["plan", "--detailed-exitcode"]);
    assert_eq!(quiet.code, r.code);
    // The 500 reached the receiver; the others found nobody listening.
    assert_eq!(hooks.received().len(), 1);
    for channel in ["slack", "discord", "email"] {
        assert!(
            quiet.stderr.contains(&format!(
                "notification by {channel} failed (the run's result stands)"
            )),
            "{channel}: {}",
            quiet.stderr
        );
    }
    assert!(!quiet.stderr.contains("Notified"), "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("discord-secret"), "{}", quiet.stderr);
    assert!(
        !quiet.stderr.contains(&hooks.url("fail")),
        "{}",
        quiet.stderr
    );
}

#[test]
fn bad_notify_input_is_refused_before_any_host_is_contacted() {
    let unknown = project("[notify]\nslack_webhook = \"http://127.0.0.1:9/x\"\nteams = \"y\"\n");
    let r = slipway_in(&unknown, "", &["plan"]).expect(1);
    assert!(r.stderr.contains("inventory.toml:7:1"), "{}", r.stderr);
    assert!(r.stderr.contains("teams"), "{}", r.stderr);

    let none = project("");
    let r = slipway_in(&none, "", &["plan", "--notify-drift"]).expect(1);
    assert!(
        r.stderr
            .contains("--notify-drift: the inventory has no [notify] section"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stdout.contains("web1"),
        "a host was planned:\n{}",
        r.stdout
    );
}
