//! Webhook deliveries to a server with the `deploy` runbook, whose hook `deploy-finished`
//! is keyed with [`SECRET`]: the runbook, the server, and signed requests (no bearer token).

use super::{Dir, Reply, Server, header, json_body};
use sensei::alert::sign;
use serde_json::Value;
use std::time::Duration;

pub const SECRET: &str = "hook-secret";

pub const DEPLOY: &str = r#"version: 1
name: deploy
params:
  tables: { type: list, required: true }
  batch: { type: integer, default: 1 }
triggers:
  - webhook: deploy-finished
    secret_env: SENSEI_TEST_HOOK
    params: { tables: "{{payload.tables}}", batch: "{{payload.batch}}" }
  - webhook: unconfigured
    secret_env: SENSEI_TEST_HOOK_UNSET
    params: { tables: [a] }
steps:
  - id: migrate
    run: echo migrating
  - id: check
    phase: validate
    run: echo checked
"#;

/// A server with tokens configured (hooks need none) and the hook's secret in its env.
pub fn server(dir: &Dir, extra: &[&str]) -> Server {
    dir.runbook("deploy.yaml", DEPLOY);
    dir.serve_with_tokens(extra, &[("SENSEI_TEST_HOOK", SECRET)])
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A delivery: `headers` as given (no bearer token), the body as bytes.
pub fn deliver(s: &Server, hook: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut request = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}/v1/hooks/{hook}", s.base));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(body.to_vec()).expect("request");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let response = agent.run(request).expect("deliver");
    let status = response.status().as_u16();
    let headers = response.headers();
    let (content_type, location) = (header(headers, "content-type"), header(headers, "location"));
    let text = response.into_body().read_to_string().expect("body");
    let mut json = json_body("POST", &format!("/v1/hooks/{hook}"), &content_type, &text);
    if let Some(obj) = json.as_object_mut()
        && !location.is_empty()
    {
        obj.insert("_location".into(), Value::String(location));
    }
    Reply {
        status,
        content_type,
        text,
        json,
    }
}

/// The headers of a delivery signed with `key` at `timestamp`.
pub fn signed(key: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let text = timestamp.to_string();
    signed_over(key, &text, &text, body)
}

/// The headers of a delivery whose timestamp header is `sent`, signed over `signed` (what a
/// correct sender signs is what it sends).
pub fn signed_over(
    key: &str,
    sent: &str,
    signed: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        (sign::TIMESTAMP_HEADER, sent.to_owned()),
        (
            sign::SIGNATURE_HEADER,
            sign::sign(key.as_bytes(), signed, body),
        ),
    ]
}

/// How many migrations the server has.
pub fn migrations(s: &Server) -> usize {
    let listed = s.get("/v1/migrations").expect(200);
    listed.json.as_array().expect("a list of migrations").len()
}
