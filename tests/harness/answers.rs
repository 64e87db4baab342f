//! Reading answers: a header as text, a JSON body by its content type.

use serde_json::Value;

/// A response header as text; an absent header is "" (what the assertions compare against
/// shows it), a header that is not visible ASCII fails.
pub fn header(headers: &ureq::http::HeaderMap, name: &str) -> String {
    headers.get(name).map_or_else(String::new, |v| {
        v.to_str()
            .unwrap_or_else(|e| panic!("the {name} header is not ASCII: {e}"))
            .to_owned()
    })
}

/// The body of an answer whose content type says JSON, parsed (it must parse); `Null` for
/// any other content type (metrics, plain text, an empty answer).
pub fn json_body(method: &str, path: &str, content_type: &str, text: &str) -> Value {
    let essence = content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence)
        .trim();
    if essence == "application/json" || essence.ends_with("+json") {
        serde_json::from_str(text).unwrap_or_else(|e| {
            panic!("{method} {path} answered {content_type} that is not JSON ({e}): {text}")
        })
    } else {
        Value::Null
    }
}
