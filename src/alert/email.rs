//! Email deliveries through lettre over SMTP (`smtp` in the configuration): `tls: none`,
//! `starttls` (required) or `tls`, optional authentication with the password read from
//! `password_env`. The server's certificate is verified against the built-in (Mozilla, from
//! webpki-roots) roots plus the certificates of `ca_file`, for the name in `host`. Each message carries `X-Sensei-Event-Id` and a Message-ID derived from
//! it, so a repeated delivery can be recognised as the same alert.

use super::send::{Attempted, Failure, Sent};
use super::webhook::EVENT_ID_HEADER;
use crate::config::{AlertSettings, Smtp, Tls};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as LettreTls, TlsParameters};
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
    /// The longest one SMTP session may take: lettre's own timeout only bounds connecting,
    /// and a server that accepts and then stalls would hold the delivery forever.
    timeout: std::time::Duration,
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
            timeout: settings.timeout.as_std(),
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
        let sent = tokio::time::timeout(self.timeout, transport.send(message)).await;
        let Ok(sent) = sent else {
            return Err(Failure::transient(format!(
                "the mail server did not finish the SMTP session within {:?} (alerts.timeout)",
                self.timeout
            )));
        };
        match sent {
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
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port())
        .timeout(Some(settings.timeout.as_std()))
        .tls(match smtp.tls {
            Tls::None => LettreTls::None,
            Tls::Starttls => LettreTls::Required(tls_parameters(smtp)?),
            Tls::Tls => LettreTls::Wrapper(tls_parameters(smtp)?),
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

/// The TLS settings for `smtp`: its host's name checked, the built-in roots and those of
/// `ca_file` trusted. Errors name `ca_file` when it is the cause (also used to check the
/// configuration when it is loaded).
pub fn tls_parameters(smtp: &Smtp) -> Result<TlsParameters, String> {
    let host = &smtp.host;
    let mut builder = TlsParameters::builder(host.clone());
    if let Some(path) = &smtp.ca_file {
        let shown = path.display();
        if smtp.tls == Tls::None {
            return Err(format!(
                "smtp.ca_file {shown} is set but smtp.tls is none (it would not be used)"
            ));
        }
        let pem = std::fs::read(path)
            .map_err(|e| format!("smtp.ca_file {shown}: cannot read it: {e}"))?;
        // rustls' PEM reader skips what is not a certificate: a file without one would
        // silently trust nothing more.
        let count = String::from_utf8_lossy(&pem)
            .matches("-----BEGIN CERTIFICATE-----")
            .count();
        if count == 0 {
            return Err(format!(
                "smtp.ca_file {shown}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)"
            ));
        }
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("smtp.ca_file {shown}: not PEM certificates: {e}"))?;
        builder = builder.add_root_certificate(certificate);
        return builder
            .build()
            .map_err(|e| format!("smtp.ca_file {shown}: a certificate cannot be used: {e}"));
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
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
