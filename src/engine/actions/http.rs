//! `http` steps: one request through reqwest, judged by its status.

use super::{Attempt, Outcome, Prepared};
use crate::store::LogStream;
use serde_json::{Map, Value as Json, json};

pub(super) async fn http(action: Prepared, attempt: &Attempt) -> Outcome {
    let Prepared::Http {
        method,
        url,
        headers,
        body,
        expect_status,
        transient_status,
        ..
    } = action
    else {
        return Outcome::Failed {
            error: "not an http action".into(),
            exit_code: None,
            transient: false,
        };
    };
    let shown_url = attempt.masker.mask(&url).into_owned();
    attempt.log(LogStream::Sensei, &format!("{method} {shown_url}"));
    let mut request = attempt.http.request(method, &url);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let reason = attempt.masker.mask(&error_chain(&e)).into_owned();
            return Outcome::Failed {
                error: format!("request to {shown_url} failed: {reason}"),
                exit_code: None,
                transient: e.is_connect() || e.is_timeout(),
            };
        }
    };
    let status = response.status().as_u16();
    let response_headers: Map<String, Json> = response
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_owned(),
                Json::String(v.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    let text = response.text().await.unwrap_or_default();
    attempt.log(LogStream::Stdout, &format!("HTTP {status}"));
    // Masked whole before it is cut into lines, so a multi-line secret is found as one.
    let shown = attempt.masker.mask(&text);
    for line in shown.lines().take(200) {
        attempt.log_masked(LogStream::Stdout, line.to_owned());
    }
    let body = serde_json::from_str::<Json>(&text).unwrap_or(Json::String(text));
    let outputs = attempt.masker.mask_json(&json!({
        "status": status,
        "headers": response_headers,
        "body": body,
    }));
    let expected = if expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect_status.contains(&status)
    };
    if expected {
        Outcome::Succeeded {
            outputs: Some(outputs),
            exit_code: None,
        }
    } else {
        let wanted = if expect_status.is_empty() {
            "a 2xx status".to_owned()
        } else {
            let list: Vec<String> = expect_status.iter().map(u16::to_string).collect();
            format!("status {}", list.join(" or "))
        };
        Outcome::Failed {
            error: format!("{shown_url} answered {status}, expected {wanted}"),
            exit_code: None,
            transient: transient_status.contains(&status),
        }
    }
}

/// reqwest's error with its causes, which say what actually went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
