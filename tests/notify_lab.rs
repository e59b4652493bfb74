//! apply notifies after changing a real lab host: both forms (a playbook with
//! -i, a saved plan), nothing when nothing changed, a failed step with its
//! error line (secrets redacted), and endpoints that fail leave a
//! successful apply successful.

mod common;

use common::lab::Lab;
use common::notify::{MailServer, Receiver, direct, free_port, section};
use common::run::{Project, Run, run, slipway};

const TOKEN: &str = "tok-9fQ2xLw7";

const MOTD: &str = r#"
[[play]]
hosts = "all"

[[play.resources]]
type = "file"
path = "/etc/motd"
content = "{{ motd }}\n"
"#;

const FAILING: &str = r#"
[[play]]
hosts = "all"

[play.vars]
token = { secret = true, env = "SLIPWAY_TEST_TOKEN" }

[[play.resources]]
type = "command"
name = "register"
run = "echo 'error: token {{ token }} rejected' >&2; exit 3"
"#;

/// Runs slipway in the project's directory with `args`, then `-i
/// INVENTORY`, then `rest` (a playbook and options).
fn slipway_on(p: &Project, inventory: &str, args: &[&str], rest: &[&str]) -> Run {
    run(in_project(p).args(args).args(["-i", inventory]).args(rest))
}

fn in_project(p: &Project) -> std::process::Command {
    let mut cmd = slipway(p.dir.path());
    direct(&mut cmd)
        .current_dir(p.dir.path())
        .env("SLIPWAY_TEST_TOKEN", TOKEN)
        .env("SLIPWAY_TEST_DISCORD_WEBHOOK", "http://127.0.0.1:9/unused");
    cmd
}

#[test]
fn apply_notifies_what_it_changed_and_where_it_failed() {
    let lab = Lab::start("notify", 1);
    let hooks = Receiver::start();
    let smtp = MailServer::start();
    let p = Project::new();
    let hosts = std::fs::read_to_string(&lab.inventory).unwrap();
    // Discord's URL comes from the environment; these tests point it at
    // nothing and check Slack and mail, which suffice for the apply's part.
    p.write(
        "good.toml",
        &format!("{hosts}{}", section(&hooks.url("ok/slack"), smtp.port)),
    );
    p.write(
        "bad.toml",
        &format!("{hosts}{}", section(&hooks.url("fail/slack"), free_port())),
    );
    p.write("motd.toml", MOTD);
    p.write("failing.toml", FAILING);
    let host = &lab.host(0).name;
    let slack = |n: usize| {
        let all = hooks.received();
        assert_eq!(all.len(), n, "{all:?}");
        all[n - 1].2["text"].as_str().unwrap().to_string()
    };

    let r = slipway_on(
        &p,
        "good.toml",
        &["apply", "--yes"],
        &["motd.toml", "-e", "motd=one"],
    );
    r.expect(0);
    let text = slack(1);
    assert!(
        text.starts_with("slipway apply motd.toml: success: 1 changes on 1 hosts in "),
        "{text}"
    );
    assert!(text.contains(&format!("\n{host}: 1 changed\n")), "{text}");
    let mail = smtp.wait_for_mail();
    assert!(
        mail.contains("Subject: slipway apply motd.toml: success"),
        "{mail}"
    );

    // Nothing to change: nothing to say.
    slipway_on(
        &p,
        "good.toml",
        &["apply", "--yes"],
        &["motd.toml", "-e", "motd=one"],
    )
    .expect(0);
    assert_eq!(hooks.received().len(), 1);

    // A saved plan notifies when applied, not when made.
    slipway_on(
        &p,
        "good.toml",
        &["plan"],
        &["motd.toml", "-e", "motd=two", "--out", "plan.json"],
    )
    .expect(0);
    assert_eq!(hooks.received().len(), 1);
    run(in_project(&p).args(["apply", "plan.json"])).expect(0);
    assert!(slack(2).starts_with("slipway apply motd.toml: success: 1 changes"));

    // A failed step: its resource and its error line, the secret redacted.
    let r = slipway_on(&p, "good.toml", &["apply", "--yes"], &["failing.toml"]).expect(1);
    let text = slack(3);
    assert!(
        text.contains(&format!(
            "\n{host}: FAILED at command:register: error: token (sensitive) rejected\n"
        )),
        "{text}"
    );
    assert!(
        text.starts_with("slipway apply failing.toml: failure: 1 of 1 hosts failed"),
        "{text}"
    );
    assert!(!smtp.mail().contains(TOKEN) && !r.all().contains(TOKEN));

    // Endpoints that fail: warnings, and the apply still succeeded.
    let r = slipway_on(
        &p,
        "bad.toml",
        &["apply", "--yes"],
        &["motd.toml", "-e", "motd=three"],
    )
    .expect(0);
    assert_eq!(hooks.received().len(), 4, "the 500 was received");
    for channel in ["slack", "email"] {
        assert!(
            r.stderr
                .contains(&format!("notification by {channel} failed")),
            "{}",
            r.stderr
        );
    }
}
