use serde_json::json;

use super::super::tests::{inventory, resources};
use super::*;
use crate::resource::Resource;

fn role() -> &'static dyn super::super::Role {
    super::super::lookup("postgres_backup").unwrap()
}

/// The content of the file at `path` among `all`, or None when it is to be absent.
fn content(all: &[Box<dyn Resource>], path: &str) -> Option<String> {
    let r = all
        .iter()
        .find(|r| r.id() == format!("file:{path}"))
        .unwrap_or_else(|| panic!("no file:{path}"));
    r.content()
        .map(|c| String::from_utf8(c.bytes.to_vec()).unwrap())
}

#[test]
fn installs_the_script_its_settings_and_a_persistent_timer() {
    let all = resources(role(), &inventory(""), json!({})).unwrap();
    let conf = content(&all, "/etc/slipway/postgres-backup/backup.conf").unwrap();
    for line in [
        "SERVICE='api_postgres'",
        "DIR='/var/backups/slipway/postgres'",
        "KEEP_DAILY='7'",
        "KEEP_WEEKLY='4'",
        "KEEP_MONTHLY='6'",
        "COPY_HOST=''",
        "TEXTFILE='/var/lib/node_exporter/textfile'",
        "HOST_NAME='m1'",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line}: {conf}");
    }
    let timer = content(&all, "/etc/systemd/system/slipway-postgres-backup.timer").unwrap();
    assert!(
        timer.contains("OnCalendar=*-*-* 03:15:00\nPersistent=true\n"),
        "{timer}"
    );
    // systemd reloads after the unit files are written, when they differ from the plan.
    let ids: Vec<String> = all.iter().map(|r| r.id()).collect();
    let at = |id: &str| ids.iter().position(|i| i.starts_with(id)).unwrap();
    assert!(
        at("file:/etc/systemd/system/slipway-postgres-backup.timer") < at("command:reload systemd")
    );
    let script = content(&all, SCRIPT).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"));
    // No copy, no webhooks: no key, no payloads, nothing to install.
    assert_eq!(content(&all, COPY_KEY), None);
    assert_eq!(
        content(&all, "/etc/slipway/postgres-backup/notify/slack.curl"),
        None
    );
    assert!(!all.iter().any(|r| r.id().starts_with("package:")));
    assert!(
        all.iter()
            .any(|r| r.id() == "service:slipway-postgres-backup.timer")
    );
}

#[test]
fn the_copy_needs_a_destination_and_a_key() {
    let inv = inventory("");
    let copy = |to: &str, key: &str| {
        resources(
            role(),
            &inv,
            json!({"postgres_backup_copy_to": to, "postgres_backup_copy_key": key}),
        )
    };
    let all = copy(
        "backup@vault.example.com:/srv/backups/db1",
        "-----BEGIN KEY-----\nx\n-----END KEY-----",
    )
    .unwrap();
    let conf = content(&all, "/etc/slipway/postgres-backup/backup.conf").unwrap();
    assert!(
        conf.contains("COPY_HOST='backup@vault.example.com'\nCOPY_PATH='/srv/backups/db1'\n"),
        "{conf}"
    );
    assert!(
        content(&all, COPY_KEY)
            .unwrap()
            .ends_with("-----END KEY-----\n")
    );
    assert!(all.iter().any(|r| r.id() == "package:rsync,openssh-client"));
    for (to, key, var) in [
        ("vault.example.com", "k", "postgres_backup_copy_to"),
        ("vault:relative/path", "k", "postgres_backup_copy_to"),
        ("vault:/srv/it's", "k", "postgres_backup_copy_to"),
        ("vault:/srv", "", "postgres_backup_copy_key"),
    ] {
        let e = copy(to, key).unwrap_err();
        assert!(
            e.message().contains(&format!("{var}:")),
            "{to}: {}",
            e.message()
        );
    }
    let e = resources(
        role(),
        &inv,
        json!({"postgres_backup_database": "app; drop"}),
    )
    .unwrap_err();
    assert!(
        e.message().contains("postgres_backup_database"),
        "{}",
        e.message()
    );
}

#[test]
fn webhooks_get_a_rendered_payload_and_a_root_only_url_file() {
    let text = "[notify]\nslack_webhook = \"https://hooks.slack.example/T0/B0/secret-part\"\n";
    let inv = inventory(&format!("x = 1\n{text}"));
    let all = resources(role(), &inv, json!({})).unwrap();
    let curl = all
        .iter()
        .find(|r| r.id() == "file:/etc/slipway/postgres-backup/notify/slack.curl")
        .unwrap()
        .content()
        .unwrap();
    assert!(curl.sensitive);
    assert_eq!(
        String::from_utf8(curl.bytes.to_vec()).unwrap(),
        "url = \"https://hooks.slack.example/T0/B0/secret-part\"\n"
    );
    let payload: serde_json::Value = serde_json::from_str(
        &content(&all, "/etc/slipway/postgres-backup/notify/slack.json").unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["text"],
        "slipway postgres_backup on m1: failure\n```\n@@DETAIL@@\n```"
    );
    assert_eq!(
        content(&all, "/etc/slipway/postgres-backup/notify/discord.json"),
        None
    );
    assert!(all.iter().any(|r| r.id() == "package:curl"));
}

#[test]
fn mail_goes_by_curl_with_the_password_only_in_a_sensitive_login_file() {
    let password = "smtp-pw-Zr81vq";
    let text = format!(
        "x = 1\n[notify.email]\nsmtp = \"mail.example.com:587\"\nusername = \"backup\"\n\
         password = {{ secret = true, value = \"{password}\" }}\nfrom = \"slipway@example.com\"\n\
         to = [\"Ops <ops@example.com>\", \"dba@example.com\"]\n"
    );
    let all = resources(role(), &inventory(&text), json!({})).unwrap();
    let dir = "/etc/slipway/postgres-backup/notify";
    assert_eq!(
        content(&all, &format!("{dir}/email.smtp")).unwrap(),
        "url = \"smtp://mail.example.com:587\"\nssl-reqd\nmail-from = \"slipway@example.com\"\n\
         mail-rcpt = \"ops@example.com\"\nmail-rcpt = \"dba@example.com\"\n"
    );
    let message = content(&all, &format!("{dir}/email.txt")).unwrap();
    let head = "slipway postgres_backup on m1: failure";
    assert!(
        message
            .starts_with("From: slipway@example.com\nTo: Ops <ops@example.com>, dba@example.com\n"),
        "{message}"
    );
    assert!(
        message.contains(&format!("\nSubject: {head}\n")),
        "{message}"
    );
    // The body is apply's failure mail, the host's error on the marker's line.
    let (_, body) = crate::notify::format::mail_message(head, notify::DETAIL);
    assert!(message.ends_with(&format!("\n\n{body}")), "{message}");
    assert_eq!(body, format!("{head}\n\n@@DETAIL@@\n"));

    // Planned on a host that has none of them: the password shows nowhere,
    // its file is root's alone and never diffed.
    let facts = crate::facts::HostFacts::default();
    let observed = crate::resource::Observed::new("", &facts);
    let planned: Vec<_> = all
        .iter()
        .filter_map(|r| r.plan(&observed).change)
        .collect();
    let shown = serde_json::to_string(&planned).unwrap();
    assert!(!shown.contains(password), "{shown}");
    let login = planned
        .iter()
        .find(|c| c.resource == format!("file:{dir}/email.login"))
        .unwrap();
    assert!(
        matches!(
            login.diff,
            Some(crate::plan::change::Diff::Sensitive { .. })
        ),
        "{login:?}"
    );
    assert!(
        serde_json::to_string(&login.attrs)
            .unwrap()
            .contains("0600"),
        "{login:?}"
    );
    let file = all
        .iter()
        .find(|r| r.id() == format!("file:{dir}/email.login"))
        .unwrap()
        .content()
        .unwrap();
    assert!(file.sensitive);
    assert_eq!(
        file.bytes,
        format!("user = \"backup:{password}\"\n").as_bytes()
    );

    // The script hands curl the config files, never the login itself.
    let script = content(&all, SCRIPT).unwrap();
    assert!(
        script.contains(r#"curl -sS --max-time 30 -K "$NOTIFY/email.smtp" ${login:+-K "$login"} --upload-file -"#),
        "{script}"
    );
    assert!(!script.contains("--user"));
    assert!(all.iter().any(|r| r.id() == "package:curl"));
}

#[test]
fn smtps_and_plain_smtp_have_their_own_url_and_no_login_file() {
    let email = |tls: &str, smtp: &str| {
        let text = format!(
            "x = 1\n[notify.email]\nsmtp = \"{smtp}\"\ntls = \"{tls}\"\n\
             from = \"s@example.com\"\nto = [\"o@example.com\"]\n"
        );
        let all = resources(role(), &inventory(&text), json!({})).unwrap();
        assert_eq!(
            content(&all, "/etc/slipway/postgres-backup/notify/email.login"),
            None
        );
        content(&all, "/etc/slipway/postgres-backup/notify/email.smtp").unwrap()
    };
    assert!(
        email("tls", "mail.example.com:465")
            .starts_with("url = \"smtps://mail.example.com:465\"\nmail-from")
    );
    assert!(email("none", "[::1]:25").starts_with("url = \"smtp://[::1]:25\"\nmail-from"));
}
