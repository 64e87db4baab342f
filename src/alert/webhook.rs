//! Webhook deliveries through one shared reqwest client: signed when the channel has a
//! `secret_env`, with the event id header, no redirects followed, and a guard against SSRF —
//! a URL whose host is or resolves to a loopback, private, link-local or otherwise
//! non-public address is refused (permanently) unless `alerts.allow_private_urls` is true.
//! The guard checks every address the host resolves to before sending, and the client's own
//! resolver drops such addresses again at connect time, so a name that changes its answer
//! in between (DNS rebinding) cannot reach one either.

use super::send::{Attempted, Failure, Sent};
use super::sign;
use crate::config::AlertSettings;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub const EVENT_ID_HEADER: &str = "X-Sensei-Event-Id";

/// Sends webhook deliveries.
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    allow_private: bool,
}

/// A webhook request as rendered.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a str,
    pub secret_env: Option<&'a str>,
    pub event_id: &'a str,
}

impl Webhooks {
    pub fn new(settings: &AlertSettings) -> Result<Webhooks, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout.as_std())
            .user_agent(concat!("sensei/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_urls {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the webhook client: {e}"))?;
        Ok(Webhooks {
            client,
            allow_private: settings.allow_private_urls,
        })
    }

    pub async fn send(&self, req: Request<'_>) -> Attempted {
        let url = reqwest::Url::parse(req.url)
            .map_err(|e| Failure::permanent(format!("`{}` is not a valid URL: {e}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::permanent(format!(
                "`{}` is not an http(s) URL",
                req.url
            )));
        }
        if !self.allow_private {
            guard(&url).await?;
        }
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, req.event_id);
        for (name, value) in req.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Failure::permanent(format!("`{name}` is not a valid header name")))?;
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                Failure::permanent(format!("header `{name}` has a value HTTP cannot carry"))
            })?;
            request = request.header(name, value);
        }
        if let Some(var) = req.secret_env {
            let key = std::env::var(var)
                .ok()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    Failure::permanent(format!(
                        "the signing key variable {var} is not set in sensei's environment"
                    ))
                })?;
            // Signed as sent: the header's text is what the MAC covers.
            let timestamp = chrono::Utc::now().timestamp().to_string();
            let signature = sign::sign(key.as_bytes(), &timestamp, req.body.as_bytes());
            request = request
                .header(sign::TIMESTAMP_HEADER, timestamp)
                .header(sign::SIGNATURE_HEADER, signature);
        }
        let response = request
            .body(req.body.to_owned())
            .send()
            .await
            .map_err(|e| Failure::transient(describe(&e)))?;
        let status = response.status();
        let code = Some(i64::from(status.as_u16()));
        if status.is_success() {
            return Ok(Sent { status: code });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = text.trim().chars().take(200).collect();
        let mut error = format!("the receiver answered HTTP {status}");
        if !excerpt.is_empty() {
            error.push_str(&format!(": {}", excerpt.replace(['\r', '\n'], " ")));
        }
        let transient = status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        Err(Failure {
            permanent: !transient,
            status: code,
            error,
            retry_after,
        })
    }
}

/// A reqwest error in one line, with its cause (reqwest's own message alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "the request timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Refuses a URL whose host is, or resolves to, an address that is not public.
async fn guard(url: &reqwest::Url) -> Result<(), Failure> {
    let host = url
        .host_str()
        .ok_or_else(|| Failure::permanent(format!("`{url}` has no host")))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let port = url.port_or_known_default().unwrap_or(443);
            tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| Failure::transient(format!("cannot resolve {bare}: {e}")))?
                .map(|a| a.ip())
                .collect()
        }
    };
    if let Some(ip) = addrs.iter().find(|ip| !is_public(**ip)) {
        let what = if bare == ip.to_string() {
            host.to_owned()
        } else {
            format!("{host} ({ip})")
        };
        return Err(Failure::permanent(format!(
            "refused to send to {what}: it is a loopback, private or link-local address; \
             set `alerts.allow_private_urls: true` in the configuration to allow it"
        )));
    }
    Ok(())
}

/// Whether an address is a public unicast one a runbook may send alerts to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 one stands for: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) — so `::ffff:127.0.0.1` counts as loopback.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(tail()),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail()),
        _ => None,
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // 100.64.0.0/10: carrier-grade NAT, private in practice.
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// The client's resolver when private URLs are not allowed: only public addresses.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(
                !is_public(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{ip}"
            );
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "172.32.0.1"] {
            assert!(
                is_public(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{ip}"
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
