//! Email deliveries through lettre over SMTP (`smtp` in the configuration): `tls: none`,
//! `starttls` (required) or `tls`, optional authentication with the password read from
//! `password_env`. Each message carries `X-Sensei-Event-Id` and a Message-ID derived from
//! it, so a repeated delivery can be recognised as the same alert.

use super::send::{Attempted, Failure, Sent};
use super::webhook::EVENT_ID_HEADER;
use crate::config::{AlertSettings, Smtp, Tls};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as LettreTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// An email as rendered.
#[derive(Debug, Clone, Copy)]
pub struct Email<'a> {
    pub to: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub html: bool,
    pub event_id: &'a str,
}

/// Sends email deliveries, or says why it cannot (no `smtp` configured, a bad setting).
#[derive(Clone)]
pub struct Mailer {
    configured: bool,
    ready: Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), String>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("ready", &self.ready.is_ok())
            .finish()
    }
}

impl Mailer {
    pub fn new(smtp: Option<&Smtp>, settings: &AlertSettings) -> Mailer {
        Mailer {
            configured: smtp.is_some(),
            ready: match smtp {
                None => Err(
                    "no mail server is configured (`smtp` in sensei.yaml or --config)".to_owned(),
                ),
                Some(smtp) => transport(smtp, settings),
            },
        }
    }

    /// Whether a mail server is configured: without one, email deliveries are left in the
    /// outbox for a process that has one (`sensei serve`), untouched.
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    pub async fn send(&self, email: Email<'_>) -> Attempted {
        // A configuration problem can be fixed while the delivery is retried.
        let (transport, from) = self.ready.as_ref().map_err(Failure::transient)?;
        let message = build(from, email)?;
        match transport.send(message).await {
            Ok(response) => Ok(Sent {
                status: Some(i64::from(u16::from(response.code()))),
            }),
            Err(e) => Err(Failure {
                permanent: e.is_permanent(),
                status: e.status().map(|c| i64::from(u16::from(c))),
                error: format!("the mail server refused or failed: {e}"),
                retry_after: None,
            }),
        }
    }
}

fn transport(
    smtp: &Smtp,
    settings: &AlertSettings,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("smtp.from `{}` is not an address: {e}", smtp.from))?;
    let tls = |host: &str| {
        TlsParameters::new(host.to_owned())
            .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port())
        .timeout(Some(settings.timeout.as_std()))
        .tls(match smtp.tls {
            Tls::None => LettreTls::None,
            Tls::Starttls => LettreTls::Required(tls(&smtp.host)?),
            Tls::Tls => LettreTls::Wrapper(tls(&smtp.host)?),
        });
    if let Some(user) = &smtp.username {
        let password = match &smtp.password_env {
            Some(var) => std::env::var(var).map_err(|_| {
                format!("smtp.password_env names {var}, which is not set in sensei's environment")
            })?,
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok((builder.build(), from))
}

fn build(from: &Mailbox, email: Email<'_>) -> Result<Message, Failure> {
    let mailbox = |a: &String| {
        a.parse::<Mailbox>()
            .map_err(|e| Failure::permanent(format!("`{a}` is not an email address: {e}")))
    };
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(email.subject)
        .message_id(Some(format!(
            "<{}@sensei>",
            email
                .event_id
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ".")
        )))
        .header(EventId(email.event_id.to_owned()))
        .header(if email.html {
            ContentType::TEXT_HTML
        } else {
            ContentType::TEXT_PLAIN
        });
    for to in email.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in email.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    builder
        .body(email.body.to_owned())
        .map_err(|e| Failure::permanent(format!("cannot build the email: {e}")))
}

/// The `X-Sensei-Event-Id` header.
#[derive(Debug, Clone)]
struct EventId(String);

impl Header for EventId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(EVENT_ID_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(EventId(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}
