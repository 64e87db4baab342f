//! Reading a request into values. Every refusal is a 400 problem whose detail names the
//! parameter and says what is wrong: axum's own extractors answer with texts such as "Invalid
//! UTF-8 in `id`" or "Bad Request" that say neither where nor how to fix it.
//!
//! - [`Segments`]: the path's parameters, which must be UTF-8 once percent-decoded.
//! - [`QueryParams`]: the query string, each parameter at most once (a repeated one is
//!   refused rather than one of its values picked silently).
//! - [`event_number`]: `after` and `Last-Event-ID`, whole numbers from 0 to `i64::MAX`.
//! - [`json_body`]: a JSON body, a wrong field named by its path; with [`present`] on an
//!   optional field, `null` is refused (leaving the field out is the one way to give none).

use super::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// The path's parameters, as `T` (a `String`, or a tuple of them).
#[derive(Debug)]
pub struct Segments<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Segments(value)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.into_kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => ApiError::BadRequest(format!(
                "path segment `{{{key}}}` is not UTF-8 once percent-decoded: ids and names are text, so percent-encode the bytes of their UTF-8 form"
            )),
            other => ApiError::BadRequest(format!("the path cannot be read: {other}")),
        },
        other => ApiError::Internal(format!("the path parameters cannot be read: {other}")),
    }
}

/// The query string's parameters by name, each given at most once; names this route does
/// not read are ignored.
#[derive(Debug, Default)]
pub struct QueryParams(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        QueryParams::parse(parts.uri.query().unwrap_or(""))
    }
}

impl QueryParams {
    /// `a=1&b=2` as `application/x-www-form-urlencoded` (`+` is a space).
    pub fn parse(query: &str) -> Result<QueryParams, ApiError> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).map_err(|_| {
                ApiError::BadRequest(
                    "a query parameter's name is not UTF-8 once percent-decoded".into(),
                )
            })?;
            let value = decode(value).map_err(|_| {
                ApiError::BadRequest(format!(
                    "query parameter `{name}` is not UTF-8 once percent-decoded"
                ))
            })?;
            pairs.push((name, value));
        }
        let mut params = BTreeMap::new();
        for (name, value) in &pairs {
            if params.contains_key(name) {
                let times = pairs.iter().filter(|(n, _)| n == name).count();
                return Err(ApiError::BadRequest(format!(
                    "query parameter `{name}` is given {times} times; give it once"
                )));
            }
            params.insert(name.clone(), value.clone());
        }
        Ok(QueryParams(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn decode(text: &str) -> Result<String, std::str::Utf8Error> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|t| t.into_owned())
}

/// An event number (a seq; 0 is before the first event) given as `what` (such as
/// "query parameter `after`"): ASCII digits for a value from 0 to `i64::MAX`.
pub fn event_number(text: &str, what: &str) -> Result<i64, ApiError> {
    const FORM: &str = "a whole number from 0 to 9223372036854775807";
    let shown = shown(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "{what} must be an event number ({FORM}), not `{shown}`"
        )));
    }
    text.parse::<i64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "{what} is out of range: event numbers are {FORM}, not `{shown}`"
        ))
    })
}

/// A client's value as shown in a detail: at most 40 characters.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Parses a JSON request body; an empty body is `{}` (lifecycle calls take no body). A value
/// of the wrong type names its field.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(body_error)?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data if path != "." => {
            ApiError::BadRequest(format!("the request body's field `{path}`: {inner}"))
        }
        serde_json::error::Category::Data => ApiError::BadRequest(format!(
            "the request body does not have the expected shape: {inner}"
        )),
        _ => ApiError::BadRequest(format!("the request body is not valid JSON: {inner}")),
    }
}

/// For an optional body field (`#[serde(default, deserialize_with = "present")]`): a value,
/// not `null`. The documents say `string` (or an enum) for these fields; leaving a field out
/// is the one way to give none.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(D::Error::custom(
            "null is not a value here; leave the field out to give none",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn detail(e: ApiError) -> String {
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        e.to_string()
    }

    #[test]
    fn a_query_parameter_is_given_once() {
        let q = QueryParams::parse("state=running&runbook=a+b%21").unwrap();
        assert_eq!(q.get("state"), Some("running"));
        assert_eq!(q.get("runbook"), Some("a b!"));
        let e = QueryParams::parse("after=1&x=2&after=2").unwrap_err();
        assert_eq!(
            detail(e),
            "query parameter `after` is given 2 times; give it once"
        );
        let e = QueryParams::parse("runbook=%FF").unwrap_err();
        assert!(detail(e).contains("`runbook` is not UTF-8"));
    }

    #[test]
    fn event_numbers_are_whole_numbers_in_range() {
        let what = "query parameter `after`";
        assert_eq!(event_number("0", what).unwrap(), 0);
        assert_eq!(event_number("9223372036854775807", what).unwrap(), i64::MAX);
        for bad in ["", "-1", "+1", "1.5", "abc", " 1"] {
            let d = detail(event_number(bad, what).unwrap_err());
            assert!(
                d.starts_with("query parameter `after` must be an event number"),
                "{d}"
            );
        }
        let d = detail(event_number("9223372036854775808", what).unwrap_err());
        assert!(d.contains("out of range"), "{d}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "present")]
        comment: Option<String>,
    }

    #[test]
    fn a_body_field_of_the_wrong_type_or_null_is_named() {
        assert_eq!(json_body::<Body>(b"").unwrap().comment, None);
        assert_eq!(
            json_body::<Body>(br#"{"comment":"x"}"#).unwrap().comment,
            Some("x".into())
        );
        let d = detail(json_body::<Body>(br#"{"comment":null}"#).unwrap_err());
        assert!(
            d.contains("field `comment`: null is not a value here"),
            "{d}"
        );
        let d = detail(json_body::<Body>(br#"{"comment":5}"#).unwrap_err());
        assert!(d.contains("field `comment`: invalid type"), "{d}");
        let d = detail(json_body::<Body>(br#"{"coment":"x"}"#).unwrap_err());
        assert!(d.contains("unknown field `coment`"), "{d}");
        let d = detail(json_body::<Body>(b"{not json").unwrap_err());
        assert!(d.starts_with("the request body is not valid JSON"), "{d}");
        let d = detail(json_body::<Body>(br#"{} {}"#).unwrap_err());
        assert!(d.starts_with("the request body is not valid JSON"), "{d}");
    }
}
