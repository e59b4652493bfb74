//! What the host needs to report a failed backup or drill itself, like apply
//! reports a failed deploy: per webhook of the inventory's `[notify]`, the
//! payload rendered here by the same code as apply's (with `@@DETAIL@@` where
//! the host puts what failed) and a curl config file holding the URL, so the
//! URL is never on a command line nor in a log. For `[notify.email]`, the
//! mail (headers and body, the host adds its Date) and curl's SMTP settings;
//! the login is in a file of its own, the only one holding the password.
//! All are root-only files; those holding a secret are shown in no plan.

use lettre::message::header::{self, Headers};
use lettre::message::{Mailbox, Mailboxes};
use serde_json::json;

use super::RoleContext;
use crate::config::notify::{Email, SmtpTls};
use crate::diag::{InputError, InputResult};
use crate::notify::format;
use crate::resource::file::File;

pub const DIR: &str = "/etc/slipway/postgres-backup/notify";
/// Replaced by the host with the error (a restricted character set). In the
/// mail it is a line of its own, which the host folds.
pub const DETAIL: &str = "@@DETAIL@@";

/// The files of every channel: present for a channel `[notify]` sets,
/// absent otherwise (a channel removed from the inventory goes from the host).
pub fn files(ctx: &RoleContext<'_>) -> InputResult<Vec<File>> {
    let notify = ctx.inventory.notify.clone().unwrap_or_default();
    let head = format!("slipway postgres_backup on {}: failure", ctx.host.name);
    let payloads = [
        ("slack", notify.slack, format::slack_message(&head, DETAIL)),
        (
            "discord",
            notify.discord,
            format::discord_message(
                &head,
                DETAIL,
                "slipway backup: failure",
                format::FAILURE_COLOR,
                vec![json!({"name": "host", "value": ctx.host.name, "inline": true})],
            ),
        ),
    ];
    let mut out = Vec::new();
    for (channel, url, payload) in payloads {
        let config = url.as_ref().map(|u| format!("url = {}\n", quoted(u)));
        let body = url.as_ref().map(|_| format!("{payload}\n"));
        out.push(file(&format!("{channel}.json"), body, false));
        out.push(file(&format!("{channel}.curl"), config, true));
    }
    let email = notify.email.as_ref();
    let message = email.map(|e| message(e, &head)).transpose()?;
    let smtp = email.map(smtp).transpose()?;
    let login = email
        .and_then(|e| e.login.as_ref())
        .map(|(user, password)| format!("user = {}\n", quoted(&format!("{user}:{password}"))));
    // Not `*.curl`: the script takes every such file for a webhook.
    out.push(file("email.txt", message, false));
    out.push(file("email.smtp", smtp, false));
    out.push(file("email.login", login, true));
    Ok(out)
}

fn file(name: &str, content: Option<String>, sensitive: bool) -> File {
    let mut f = File::root_owned(&format!("{DIR}/{name}"), Vec::new(), 0o600);
    f.content = content.map(String::into_bytes);
    f.sensitive = sensitive;
    f
}

/// A value in a curl config file.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn mailbox(text: &str) -> InputResult<Mailbox> {
    text.parse().map_err(|e| {
        InputError::plain(format!(
            "[notify.email]: `{text}` is not an e-mail address: {e}"
        ))
    })
}

/// The mail as apply's failure mails are written (subject and body), its
/// headers encoded as lettre encodes apply's, with LF line ends (the host
/// sends CRLF).
fn message(email: &Email, head: &str) -> InputResult<String> {
    let (subject, body) = format::mail_message(head, DETAIL);
    let mut headers = Headers::new();
    headers.set(header::From::from(Mailboxes::from(mailbox(&email.from)?)));
    let mut to = Mailboxes::new();
    for t in &email.to {
        to.push(mailbox(t)?);
    }
    headers.set(header::To::from(to));
    headers.set(header::Subject::from(subject));
    headers.set(header::MIME_VERSION_1_0);
    headers.set(header::ContentType::TEXT_PLAIN);
    headers.set(if body.is_ascii() {
        header::ContentTransferEncoding::SevenBit
    } else {
        header::ContentTransferEncoding::EightBit
    });
    Ok(format!("{headers}\r\n{body}").replace("\r\n", "\n"))
}

/// curl's SMTP settings: server, TLS, envelope. No secret.
fn smtp(email: &Email) -> InputResult<String> {
    let host = if email.host.contains(':') {
        format!("[{}]", email.host)
    } else {
        email.host.clone()
    };
    let scheme = if email.tls == SmtpTls::Tls {
        "smtps"
    } else {
        "smtp"
    };
    let mut out = format!(
        "url = {}\n",
        quoted(&format!("{scheme}://{host}:{}", email.port))
    );
    if email.tls == SmtpTls::Starttls {
        out.push_str("ssl-reqd\n");
    }
    out.push_str(&format!(
        "mail-from = {}\n",
        quoted(mailbox(&email.from)?.email.as_ref())
    ));
    for t in &email.to {
        out.push_str(&format!(
            "mail-rcpt = {}\n",
            quoted(mailbox(t)?.email.as_ref())
        ));
    }
    Ok(out)
}
