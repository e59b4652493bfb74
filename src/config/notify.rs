//! The inventory's `[notify]` section: where apply outcomes and drift go.
//!
//! Webhook URLs carry their own credentials (whoever has one can post), so
//! they are secrets whether written as `{ secret = true, ... }` or as a plain
//! string: both are registered with the redactor, and errors about them name
//! the key's place, never the value.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::vars;
use crate::diag::{InputError, InputResult, SourceFile};
use crate::redact::{Redactor, SENSITIVE};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    slack_webhook: Option<Spanned<toml::Value>>,
    discord_webhook: Option<Spanned<toml::Value>>,
    email: Option<Spanned<RawEmail>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp: Spanned<String>,
    #[serde(default)]
    tls: SmtpTls,
    username: Option<Spanned<String>>,
    password: Option<Spanned<toml::Value>>,
    from: Spanned<String>,
    to: Spanned<Vec<Spanned<String>>>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: a relay on the same machine or a test server.
    None,
}

/// Where notifications go. Its `Debug` shows which channels are set, never
/// their URLs or password.
#[derive(Clone, Default)]
pub struct Notify {
    pub slack: Option<String>,
    pub discord: Option<String>,
    pub email: Option<Email>,
}

#[derive(Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// User name and password, when the server wants a login.
    pub login: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| SENSITIVE);
        f.debug_struct("Notify")
            .field("slack", &hidden(&self.slack))
            .field("discord", &hidden(&self.discord))
            .field("email", &self.email)
            .finish()
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("login", &self.login.as_ref().map(|(u, _)| (u, SENSITIVE)))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl Notify {
    /// The channels set, by the names warnings use.
    pub fn channels(&self) -> Vec<&'static str> {
        [
            self.slack.as_ref().map(|_| "slack"),
            self.discord.as_ref().map(|_| "discord"),
            self.email.as_ref().map(|_| "email"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Checks `[notify]` (at `span`) and reads its secrets, registering them.
pub(super) fn resolve(
    raw: &RawNotify,
    span: Range<usize>,
    src: &SourceFile,
    redactor: &Redactor,
) -> InputResult<Notify> {
    let webhook = |key: &str, value: &Option<Spanned<toml::Value>>| {
        value
            .as_ref()
            .map(|v| {
                let url = secret(key, v, src, redactor)?;
                // Offline (check, render), an unreadable secret is a placeholder
                // that was warned about, not a URL to judge.
                let placeholder = redactor.is_offline() && url == format!("(secret {key})");
                if !placeholder {
                    check_webhook(&url).map_err(|m| at(src, v.span(), format!("{key}: {m}")))?;
                }
                Ok(url)
            })
            .transpose()
    };
    let notify = Notify {
        slack: webhook("notify.slack_webhook", &raw.slack_webhook)?,
        discord: webhook("notify.discord_webhook", &raw.discord_webhook)?,
        email: raw
            .email
            .as_ref()
            .map(|e| email(e, src, redactor))
            .transpose()?,
    };
    if notify.channels().is_empty() {
        return Err(src.error(span, "[notify] names no channel").with_help(
            "set slack_webhook, discord_webhook or [notify.email], or remove [notify]",
        ));
    }
    Ok(notify)
}

/// A string that is a secret either way: `{ secret = true, ... }` or plain.
fn secret(
    key: &str,
    value: &Spanned<toml::Value>,
    src: &SourceFile,
    redactor: &Redactor,
) -> InputResult<String> {
    match vars::resolve_one(key, value, src, redactor)? {
        serde_json::Value::String(s) => {
            redactor.add(&s);
            Ok(s)
        }
        _ => Err(at(
            src,
            value.span(),
            format!("{key} must be a string or {{ secret = true, env = \"NAME\" }}"),
        )),
    }
}

/// An error at `span` that quotes no source line: the value there is a secret.
fn at(src: &SourceFile, span: Range<usize>, message: String) -> InputError {
    let (line, col) = src.line_col(span.start);
    InputError::plain(format!("{}:{line}:{col}: {message}", src.name()))
}

fn check_webhook(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the webhook is not an http:// or https:// URL")?;
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err("the webhook URL has no host, or has spaces".into());
    }
    Ok(())
}

fn email(raw: &Spanned<RawEmail>, src: &SourceFile, redactor: &Redactor) -> InputResult<Email> {
    let e = raw.get_ref();
    let (host, port) = smtp_address(e.smtp.get_ref()).map_err(|m| {
        src.error(e.smtp.span(), format!("smtp: {m}"))
            .with_help("write host:port, e.g. smtp = \"smtp.example.com:587\"")
    })?;
    let password = e
        .password
        .as_ref()
        .map(|p| secret("notify.email.password", p, src, redactor))
        .transpose()?;
    let login = match (&e.username, password) {
        (Some(u), Some(p)) => Some((u.get_ref().clone(), p)),
        (None, None) => None,
        (Some(u), None) => {
            return Err(src
                .error(u.span(), "a username needs a password")
                .with_help(
                    "password = { secret = true, env = \"SMTP_PASSWORD\" }, or leave both out",
                ));
        }
        (None, Some(_)) => {
            return Err(src.error(raw.span(), "a password needs a username"));
        }
    };
    let mailbox = |v: &Spanned<String>, key: &str| {
        v.get_ref()
            .parse::<lettre::message::Mailbox>()
            .map(|_| v.get_ref().clone())
            .map_err(|m| src.error(v.span(), format!("{key}: not an e-mail address: {m}")))
    };
    let from = mailbox(&e.from, "from")?;
    if e.to.get_ref().is_empty() {
        return Err(src.error(e.to.span(), "to: name at least one recipient"));
    }
    let to =
        e.to.get_ref()
            .iter()
            .map(|t| mailbox(t, "to"))
            .collect::<InputResult<_>>()?;
    Ok(Email {
        host,
        port,
        tls: e.tls,
        login,
        from,
        to,
    })
}

/// `host:port`, the host possibly an IPv6 address in brackets.
fn smtp_address(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` has no port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("`{text}` has no host name"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(format!("`{port}` is not a port (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inventory;
    use std::path::Path;

    fn load(notify: &str) -> InputResult<Inventory> {
        let text = format!("[hosts.a]\n\n{notify}");
        let src = SourceFile::from_text(Path::new("i.toml"), text);
        Inventory::load(src, &Redactor::default())
    }

    #[test]
    fn webhooks_and_the_smtp_password_are_secrets() {
        let inv = load(
            "[notify]\nslack_webhook = \"https://hooks.example/T1/plain-1\"\n\
             discord_webhook = { secret = true, value = \"https://discord.example/api/webhooks/s-2\" }\n\
             [notify.email]\nsmtp = \"[::1]:2525\"\ntls = \"none\"\nusername = \"u\"\n\
             password = { secret = true, value = \"pw-3\" }\nfrom = \"slipway@example.com\"\n\
             to = [\"Ops <ops@example.com>\"]\n",
        )
        .unwrap();
        let n = inv.notify.expect("[notify]");
        assert_eq!(n.channels(), ["slack", "discord", "email"]);
        let e = n.email.as_ref().unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("::1", 2525, SmtpTls::None)
        );
        let shown = format!("{n:?}");
        for secret in [
            "https://hooks.example/T1/plain-1",
            "https://discord.example/api/webhooks/s-2",
            "pw-3",
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert_eq!(crate::redact::global().redact(secret), SENSITIVE);
        }
    }

    #[test]
    fn mistakes_are_reported_where_they_are_written() {
        for (notify, start) in [
            ("[notify]\nslack = \"https://x\"\n", "i.toml:4:1: "),
            ("[notify]\n", "i.toml:3:1: [notify] names no channel"),
            (
                "[notify]\nslack_webhook = \"ftp://x\"\n",
                "i.toml:4:17: notify.slack_webhook: the webhook is not",
            ),
            (
                "[notify]\nslack_webhook = 3\n",
                "i.toml:4:17: notify.slack_webhook must be",
            ),
            (
                "[notify.email]\nsmtp = \"mail\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n",
                "i.toml:4:8: smtp: `mail` has no port",
            ),
            (
                "[notify.email]\nsmtp = \"m:25\"\ntls = \"ssl\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n",
                "i.toml:5:7: ",
            ),
            (
                "[notify.email]\nsmtp = \"m:25\"\nfrom = \"a@b.c\"\nto = [\"nobody\"]\n",
                "i.toml:6:7: to: not an e-mail address",
            ),
            (
                "[notify.email]\nsmtp = \"m:25\"\nfrom = \"a@b.c\"\nto = []\n",
                "i.toml:6:6: to: name at least one recipient",
            ),
            (
                "[notify.email]\nsmtp = \"m:25\"\nusername = \"u\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n",
                "i.toml:5:12: a username needs a password",
            ),
        ] {
            let e = load(notify).expect_err(notify);
            assert!(e.message().starts_with(start), "{notify}: {}", e.message());
        }
    }

    #[test]
    fn offline_an_unreadable_webhook_is_a_placeholder() {
        let text = "[hosts.a]\n[notify]\nslack_webhook = { secret = true, env = \"SLIPWAY_TEST_UNSET_HOOK\" }\n";
        let src = SourceFile::from_text(Path::new("i.toml"), text.into());
        let inv = Inventory::load(src, &Redactor::offline()).unwrap();
        assert_eq!(
            inv.notify.unwrap().slack.as_deref(),
            Some("(secret notify.slack_webhook)")
        );
    }

    #[test]
    fn a_secret_that_cannot_be_read_names_its_key_not_a_value() {
        let e = load(
            "[notify]\nslack_webhook = { secret = true, env = \"SLIPWAY_TEST_UNSET_HOOK\" }\n",
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "i.toml:4:17: secret `notify.slack_webhook`: environment variable SLIPWAY_TEST_UNSET_HOOK is not set"
        );
    }
}
