//! Delivering a message: an HTTP POST of JSON to a webhook, or a mail over
//! SMTP. Both give up after [`TIMEOUT`], so an endpoint that hangs cannot
//! hold the end of an apply for long.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use crate::config::notify::{Email, SmtpTls};

pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Http(#[from] ureq::Error),
    #[error("{0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build the mail: {0}")]
    Mail(#[from] lettre::error::Error),
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// POSTs `body` (JSON) to `url`; an answer other than 2xx is an error.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<(), SendError> {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .tls_config(tls)
        .build()
        .into();
    agent
        .post(url)
        .content_type("application/json")
        .send(body.to_string())?;
    Ok(())
}

/// Sends a plain-text mail as `email` says (server, TLS, login, addresses).
pub fn mail(email: &Email, subject: &str, body: &str) -> Result<(), SendError> {
    let mut message = Message::builder()
        .from(email.from.parse()?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &email.to {
        message = message.to(to.parse()?);
    }
    let message = message.body(body.to_string())?;
    let builder = match email.tls {
        SmtpTls::None => SmtpTransport::builder_dangerous(&email.host),
        SmtpTls::Tls => SmtpTransport::relay(&email.host)?,
        SmtpTls::Starttls => SmtpTransport::starttls_relay(&email.host)?,
    };
    let mut builder = builder.port(email.port).timeout(Some(TIMEOUT));
    if let Some((user, password)) = &email.login {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    builder.build().send(&message)?;
    Ok(())
}
