//! Notifications: after an apply (success, failure, rollback) or a plan that
//! found drift, a report goes to the inventory's `[notify]` channels: Slack
//! and Discord webhooks, and mail.
//!
//! A notification is news about a run, never part of it: one that cannot be
//! delivered is a warning naming the channel, and the run's exit code stays
//! what the run made it.

pub mod format;
pub mod report;
pub mod send;

pub use report::{Outcome, Report, Run};

use crate::config::Notify;
use crate::config::notify::Email;
use send::SendError;

/// A message ready to leave the process: already redacted.
enum Message<'a> {
    Webhook {
        channel: &'static str,
        url: &'a str,
        body: serde_json::Value,
    },
    Mail {
        email: &'a Email,
        subject: String,
        body: String,
    },
}

impl Message<'_> {
    fn channel(&self) -> &'static str {
        match self {
            Message::Webhook { channel, .. } => channel,
            Message::Mail { .. } => "email",
        }
    }

    fn deliver(&self) -> Result<(), SendError> {
        match self {
            Message::Webhook { url, body, .. } => send::post_json(url, body),
            Message::Mail {
                email,
                subject,
                body,
            } => send::mail(email, subject, body),
        }
    }
}

/// One message per channel, each passed through the redactor of every secret
/// this process has met, whatever the report quotes (a task error, a step's
/// output).
fn messages<'a>(config: &'a Notify, report: &Report) -> Vec<Message<'a>> {
    let redactor = crate::redact::global();
    let webhook = |channel, url: &'a str, mut body| {
        redactor.redact_json(&mut body);
        Message::Webhook { channel, url, body }
    };
    let mut out = Vec::new();
    if let Some(url) = &config.slack {
        out.push(webhook("slack", url, format::slack(report)));
    }
    if let Some(url) = &config.discord {
        out.push(webhook("discord", url, format::discord(report)));
    }
    if let Some(email) = &config.email {
        let (subject, body) = format::email(report);
        out.push(Message::Mail {
            email,
            subject: redactor.redact(&subject),
            body: redactor.redact(&body),
        });
    }
    out
}

/// Sends `report` to every channel at once, and warns (on stderr, naming the
/// channel and never its URL) for each that failed. Returns those channels.
pub fn send(config: &Notify, report: &Report) -> Vec<&'static str> {
    let messages = messages(config, report);
    let results: Vec<(&'static str, Result<(), SendError>)> = std::thread::scope(|scope| {
        let running: Vec<_> = messages
            .iter()
            .map(|m| (m.channel(), scope.spawn(|| m.deliver())))
            .collect();
        running
            .into_iter()
            .map(|(channel, t)| (channel, t.join().expect("a notification thread panicked")))
            .collect()
    });
    let mut failed = Vec::new();
    for (channel, result) in results {
        match result {
            Ok(()) => tracing::info!("notified {channel}: {}", report.outcome.as_str()),
            Err(e) => {
                // The URL is a registered secret: should the error quote it,
                // the redactor replaces it.
                let why = crate::redact::global().redact(&e.to_string());
                tracing::warn!("notification by {channel} failed (the run's result stands): {why}");
                failed.push(channel);
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::report::fixtures::*;
    use super::*;
    use crate::config::notify::SmtpTls;
    use crate::redact::Redactor;

    fn config(url: &str) -> Notify {
        Notify {
            slack: Some(url.into()),
            discord: Some(url.into()),
            email: Some(Email {
                host: "127.0.0.1".into(),
                port: 1,
                tls: SmtpTls::None,
                login: None,
                from: "slipway@example.com".into(),
                to: vec!["ops@example.com".into()],
            }),
        }
    }

    #[test]
    fn every_message_is_redacted_before_it_leaves() {
        Redactor::default().add("hunter2-notify-test");
        let mut p = plan();
        p.hosts[2].error = Some("login as admin:hunter2-notify-test refused".into());
        let report = Report::applied(&p, &reports(None), run("apply"));
        let config = config("http://127.0.0.1:1/hook");
        let all = messages(&config, &report);
        assert_eq!(all.len(), 3);
        for m in &all {
            let text = match m {
                Message::Webhook { body, .. } => body.to_string(),
                Message::Mail { subject, body, .. } => format!("{subject}\n{body}"),
            };
            assert!(!text.contains("hunter2"), "{}: {text}", m.channel());
            assert!(
                text.contains("admin:(sensitive) refused"),
                "{}: {text}",
                m.channel()
            );
        }
    }

    #[test]
    fn an_endpoint_that_refuses_is_a_failed_channel_not_a_panic() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = config(&format!("http://127.0.0.1:{port}/hook"));
        if let Some(e) = config.email.as_mut() {
            e.port = port;
        }
        let report = Report::drift(&plan(), run("plan"));
        assert_eq!(send(&config, &report), ["slack", "discord", "email"]);
    }
}
