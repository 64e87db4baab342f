//! Console sessions: a bearer token is posted once to `/signin`; the server answers with an
//! HttpOnly, SameSite=Strict cookie holding an opaque, random session id, mapped in memory to
//! the token's identity (never the token itself, which is forgotten at once). A restart signs
//! everybody out.
//!
//! [`identify`] is the one place that names the caller of any request, API or console:
//! a bearer header, else the session cookie, else the caller without tokens (`local`). It also
//! owns the cross-site rules: a state-changing request made with the cookie must carry the
//! header `X-Sensei-CSRF` with the value the console page got for its session, and any
//! state-changing request whose `Origin` names another host than `Host` is refused.

use crate::server::auth::{Caller, Tokens};
use crate::server::error::ApiError;
use axum::http::{HeaderMap, Method, header};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "sensei_session";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-sensei-csrf";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// More sessions than this and the oldest are forgotten (sign-ins cannot exhaust memory).
const MAX_SESSIONS: usize = 10_000;

/// Who signed in, and the value their page must echo in [`CSRF_HEADER`].
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    expires: Instant,
}

/// The signed-in sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `caller`: its id (for the cookie) and the session.
    pub fn open(&self, caller: Caller) -> Result<(String, Session), ApiError> {
        let id = random_hex()?;
        let session = Session {
            caller,
            csrf: random_hex()?,
            expires: Instant::now() + LIFETIME,
        };
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session of this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn close(&self, id: &str) {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

/// 32 random bytes from the kernel, as hex.
fn random_hex() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ApiError::Internal(format!("cannot read /dev/urandom for a session: {e}")))?;
    Ok(base16ct::lower::encode_string(&bytes))
}

/// The session id in the request's `Cookie` headers.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// The `Set-Cookie` value that opens a session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends one.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub caller: Caller,
    /// The CSRF value of its console session (empty without one).
    pub csrf: String,
}

/// Names the caller of a request (see the module doc), refusing cross-site writes.
pub fn identify(
    tokens: &Tokens,
    sessions: &Sessions,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes {
        same_origin(headers)?;
    }
    let bearer = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if bearer.is_some() || tokens.is_empty() {
        let caller = tokens.authenticate(bearer)?;
        return Ok(Identity {
            caller,
            csrf: String::new(),
        });
    }
    let Some(id) = cookie_id(headers) else {
        // The bearer token's own refusal: says how to authenticate.
        return Err(tokens
            .authenticate(None)
            .err()
            .unwrap_or_else(|| ApiError::Unauthorized("sign in first".into())));
    };
    let session = sessions.get(&id).ok_or_else(|| {
        ApiError::Unauthorized(
            "the console session is unknown or expired (sessions end after 12 hours or when the server restarts): sign in again at /signin".into(),
        )
    })?;
    if writes {
        let sent = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(session.csrf.as_bytes())) {
            return Err(ApiError::Forbidden(
                "a state-changing request signed in with the console's cookie must carry the header `X-Sensei-CSRF` with the value the console page was given; reload the page".into(),
            ));
        }
    }
    Ok(Identity {
        caller: session.caller,
        csrf: session.csrf,
    })
}

/// Refuses a request whose `Origin` names another host than the one it was sent to: a page
/// of another site posting here (browsers send `Origin` with every cross-site write).
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or_default();
    if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return Err(ApiError::Forbidden(format!(
            "cross-site request refused: its Origin `{origin}` is not this server (`{host}`)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sensei_session=abc ; b=2"),
        );
        assert_eq!(cookie_id(&h).as_deref(), Some("abc"));
    }

    #[test]
    fn writes_from_another_origin_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(same_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&h).is_err());
    }

    #[test]
    fn sessions_open_and_close() {
        let s = Sessions::default();
        let (id, session) = s.open(Caller::local()).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf);
        assert!(s.get(&id).is_some());
        s.close(&id);
        assert!(s.get(&id).is_none());
    }
}
