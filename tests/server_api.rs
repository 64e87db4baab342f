//! The API's contract over HTTP: every error status as a problem document, the auth matrix
//! (routes × roles), the no-token mode, metrics, alerts sent by the server, and the OpenAPI
//! document against the routes.

mod harness;

use harness::{Dir, Server};
use serde_json::Value;
use std::collections::BTreeSet;

const FLOW: &str = r#"version: 1
name: flow
params:
  count: { type: integer, default: 1 }
  dsn: { type: string, required: true, secret: true }
steps:
  - id: analyze
    phase: analyze
    run: echo analyzing
  - id: signoff
    gate: { approvers: [alice, root], required: 1 }
  - id: work
    needs: [signoff]
    run: echo worked
"#;

fn server(dir: &Dir, extra: &[&str]) -> Server {
    dir.runbook("flow.yaml", FLOW);
    dir.serve_with_tokens(extra, &[])
}

const CREATE: &str = r#"{"runbook":"flow","params":{"dsn":"postgres://secret"}}"#;

#[test]
fn every_error_is_a_problem_document_with_its_status() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    // 400: not JSON, the wrong shape, an unknown field, a bad query.
    s.post("/v1/migrations", "{not json").problem(400);
    s.post("/v1/migrations", r#"{"runbook": 5}"#).problem(400);
    s.post("/v1/migrations", r#"{"runbook":"flow","parms":{}}"#)
        .problem(400);
    s.get("/v1/migrations?state=runing").problem(400);
    // 401: no token, an unknown one.
    let reply = s.call_as(None, "GET", "/v1/migrations", None).problem(401);
    assert!(reply.text.contains("Bearer"));
    s.call_as(Some("nope"), "GET", "/v1/migrations", None)
        .problem(401);
    // 403: a viewer may not create.
    s.call_as(Some("vic-token"), "POST", "/v1/migrations", Some(CREATE))
        .problem(403);
    // 404: unknown migration, path, step, gate.
    s.get("/v1/migrations/m-000000000000").problem(404);
    s.get("/v1/nothing").problem(404);
    let id = s.create(Some("ops-token"), "flow", r#"{"dsn":"x"}"#);
    s.get(&format!("/v1/migrations/{id}/steps/nope/logs"))
        .problem(404);
    s.call_as(
        Some("alice-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/analyze/approve"),
        None,
    )
    .problem(404);
    // 405 from the router, as a problem too.
    s.call_as(Some("ops-token"), "PUT", "/v1/migrations", Some("{}"))
        .problem(405);
    // 409: an operation the lifecycle forbids, with what is allowed.
    let refused = s
        .post(&format!("/v1/migrations/{id}/pause"), "")
        .problem(409);
    assert_eq!(refused.json["state"], "created");
    assert_eq!(
        refused.json["allowed"],
        serde_json::json!(["analyzing", "cancelled"])
    );
    assert_eq!(
        refused.json["operations"],
        serde_json::json!(["start", "cancel"])
    );
    // 413: over the default 1 MiB limit, judged by the declared length.
    let (status, answer) = s.post_head_only("/v1/migrations", 1_100_000);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer.contains("application/problem+json") && answer.contains("1048576 bytes"),
        "{answer}"
    );
    // 422: params that do not fit, an unknown runbook, an invalid runbook posted.
    let reply = s
        .post(
            "/v1/migrations",
            r#"{"runbook":"flow","params":{"count":"many"}}"#,
        )
        .problem(422);
    let errors = reply.json["errors"].to_string();
    assert!(
        errors.contains("count") && errors.contains("dsn"),
        "{errors}"
    );
    let reply = s
        .post("/v1/migrations", r#"{"runbook":"flwo","params":{}}"#)
        .problem(422);
    assert!(reply.text.contains("did you mean `flow`"), "{}", reply.text);
    let reply = s
        .post(
            "/v1/runbooks/validate",
            "version: 1\nname: x\nsteps: []\nbogus: 1\n",
        )
        .problem(422);
    assert!(
        reply.json["diagnostics"][0]["line"].is_number(),
        "{}",
        reply.text
    );
    let ok = s.post("/v1/runbooks/validate", FLOW).expect(200);
    assert_eq!(ok.json["valid"], true);
    // Secrets never come back.
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    assert!(!detail.text.contains("postgres://secret") && detail.text.contains("***"));
    // Client mistakes are not logged as server faults: they are in the log (written before
    // each answer), at debug.
    let log = s.log();
    assert!(log.contains("DEBUG") && log.contains("status=422"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn a_smaller_body_limit_is_configurable() {
    let dir = Dir::new();
    let s = server(&dir, &["--max-body", "64"]);
    let reply = s
        .post("/v1/runbooks/validate", &"#".repeat(200))
        .problem(413);
    assert!(reply.text.contains("64 bytes"), "{}", reply.text);
}

/// Each route × each role: what is allowed answers as the route does, what is not is 403,
/// and no token is 401.
#[test]
fn auth_matrix_of_routes_and_roles() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    let params = r#"{"dsn":"x"}"#;
    let probe = s.create(Some("ops-token"), "flow", params);
    let roles = ["ops", "alice", "vic", "root"];
    let token = |role: &str| format!("{role}-token");
    for role in roles {
        let t = token(role);
        let t = Some(t.as_str());
        for path in [
            "/v1/migrations".to_owned(),
            format!("/v1/migrations/{probe}"),
            format!("/v1/migrations/{probe}/status"),
            format!("/v1/migrations/{probe}/events"),
            format!("/v1/migrations/{probe}/steps/analyze/logs"),
            "/v1/runbooks".to_owned(),
            "/metrics".to_owned(),
        ] {
            s.call_as(t, "GET", &path, None).expect(200);
            s.call_as(None, "GET", &path, None).problem(401);
        }
        s.call_as(t, "POST", "/v1/runbooks/validate", Some(FLOW))
            .expect(200);

        let operates = matches!(role, "ops" | "root");
        let create = s.call_as(t, "POST", "/v1/migrations", Some(CREATE));
        if operates {
            create.expect(201);
        } else {
            create.problem(403);
        }
        let fresh = s.create(Some("ops-token"), "flow", params);
        let start = s.call_as(t, "POST", &format!("/v1/migrations/{fresh}/start"), None);
        if operates {
            start.expect(200);
        } else {
            start.problem(403);
        }
        let fresh = s.create(Some("ops-token"), "flow", params);
        let cancel = s.call_as(t, "DELETE", &format!("/v1/migrations/{fresh}"), None);
        if operates {
            cancel.expect(200);
        } else {
            cancel.problem(403);
        }
        // (`resume` of a created migration starts it, as a crash between creating and
        // starting leaves it: tests/slots.rs covers it.)
        for op in ["pause", "retry", "rollback"] {
            let reply = s.call_as(t, "POST", &format!("/v1/migrations/{probe}/{op}"), None);
            // Allowed callers reach the lifecycle, which refuses these on a created migration.
            reply.problem(if operates { 409 } else { 403 });
        }
        // The gate of a created migration is not open yet: approvers reach that refusal.
        let approves = matches!(role, "alice" | "root");
        for decision in ["approve", "reject"] {
            let reply = s.call_as(
                t,
                "POST",
                &format!("/v1/migrations/{probe}/gates/signoff/{decision}"),
                None,
            );
            reply.problem(if approves { 409 } else { 403 });
        }
    }
    s.call_as(None, "POST", "/v1/migrations", Some(CREATE))
        .problem(401);
    s.call_as(None, "GET", "/healthz", None).expect(200);
}

#[test]
fn without_tokens_the_server_is_loopback_only_and_callers_are_local() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let out = std::process::Command::new(harness::BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--state-dir"])
        .arg(dir.path("state"))
        .current_dir(dir.dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no tokens are configured") && stderr.contains("loopback"),
        "{stderr}"
    );
    let s = dir.serve(&[]);
    let id = s.create(None, "flow", r#"{"dsn":"x"}"#);
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    assert_eq!(detail.json["starter"], "local");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    let events = s.events(&id);
    let request = events.iter().find(|e| e["kind"] == "operator_request");
    assert_eq!(
        request.map(|e| e["data"]["local"].clone()),
        Some(Value::Bool(true))
    );
}

#[test]
fn metrics_count_migrations_and_requests() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    s.create(Some("ops-token"), "flow", r#"{"dsn":"x"}"#);
    s.get("/v1/migrations/m-000000000000").problem(404);
    let metrics = s.get("/metrics").expect(200).text;
    for line in [
        "sensei_migrations{state=\"created\"} 1",
        "sensei_migrations{state=\"certified\"} 0",
        "sensei_http_requests_total{method=\"POST\",route=\"/v1/migrations\",status=\"201\"} 1",
        "sensei_http_requests_total{method=\"GET\",route=\"/v1/migrations/{id}\",status=\"404\"} 1",
        "sensei_runbook_files{valid=\"true\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    assert!(metrics.contains(
        "sensei_http_request_duration_seconds_bucket{route=\"/v1/migrations\",le=\"+Inf\"} 1"
    ));
}

/// docs/openapi.json documents exactly the routes the router serves.
#[test]
fn the_openapi_document_matches_the_routes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = sensei::server::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, served);
}

/// A loopback HTTP receiver that records request bodies and answers 200.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    receiver_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
}

/// A webhook receiver on `listener` that records each body and answers 200.
fn receiver_on(
    listener: std::net::TcpListener,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.expect("accept a connection");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                let read = reader.read_line(&mut line).expect("read the request head");
                if read == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().expect("a Content-Length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("read the body");
            record
                .lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&body).into_owned());
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn the_server_delivers_alerts_of_the_migrations_it_drives() {
    let dir = Dir::new();
    let (url, got) = receiver();
    dir.runbook(
        "quick.yaml",
        &format!(
            "version: 1\nname: quick\nalerts:\n  channels:\n    hook: {{ webhook: {{ url: \"{url}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}\nsteps:\n  - id: one\n    run: echo one\n"
        ),
    );
    let config = dir.config_with_tokens("alerts: { allow_private_urls: true }\n");
    let s = dir.serve(&["--config", config.to_str().expect("utf-8")]);
    let id = s.create(Some("ops-token"), "quick", "{}");
    s.call_as(
        Some("ops-token"),
        "POST",
        &format!("/v1/migrations/{id}/start"),
        None,
    )
    .expect(200);
    let body = harness::wait_for("the certified alert", || {
        got.lock().expect("lock").first().cloned()
    });
    assert!(body.contains("certified") && body.contains(&id), "{body}");
    // The deliveries are listed over the API, as `sensei alerts` lists them.
    let delivered = harness::wait_for("the delivery to be recorded", || {
        let r = s
            .call_as(
                Some("ops-token"),
                "GET",
                &format!("/v1/migrations/{id}/alerts"),
                None,
            )
            .expect(200);
        (r.json[0]["state"] == "delivered").then_some(r)
    });
    assert_eq!(delivered.json[0]["channel"], "hook", "{}", delivered.text);
    assert_eq!(
        delivered.json[0]["event"], "certified",
        "{}",
        delivered.text
    );
    assert_eq!(
        delivered.json[0]["attempt_log"].as_array().map(Vec::len),
        Some(1)
    );
    let all = s
        .call_as(Some("ops-token"), "GET", "/v1/alerts", None)
        .expect(200);
    assert!(all.text.contains(&id), "{}", all.text);
    let metrics = s
        .call_as(Some("ops-token"), "GET", "/metrics", None)
        .expect(200);
    assert!(
        metrics
            .text
            .contains("sensei_alert_deliveries{kind=\"webhook\",state=\"delivered\"} 1"),
        "{}",
        metrics.text
    );
}

#[test]
fn alerts_undelivered_when_the_server_dies_are_delivered_after_a_restart() {
    let dir = Dir::new();
    // The receiver is down when the event happens.
    let port = harness::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    dir.runbook(
        "quick.yaml",
        &format!(
            "version: 1\nname: quick\nalerts:\n  channels:\n    hook: {{ webhook: {{ url: \"{url}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}\nsteps:\n  - id: one\n    run: echo one\n"
        ),
    );
    let config = dir.config_with_tokens(
        "alerts: { allow_private_urls: true, backoff: 200ms, max_backoff: 1s }\n",
    );
    let s = dir.serve(&["--config", config.to_str().expect("utf-8")]);
    let id = s.create(Some("ops-token"), "quick", "{}");
    s.call_as(
        Some("ops-token"),
        "POST",
        &format!("/v1/migrations/{id}/start"),
        None,
    )
    .expect(200);
    harness::wait_for("a failed attempt", || {
        let r = s
            .call_as(
                Some("ops-token"),
                "GET",
                &format!("/v1/migrations/{id}/alerts"),
                None,
            )
            .expect(200);
        // No delivery listed yet is not an attempt yet; a listed one has its count.
        let attempts = r.json.get(0).map_or(0, |d| {
            d["attempts"]
                .as_u64()
                .unwrap_or_else(|| panic!("no attempts: {}", r.text))
        });
        (attempts >= 1 && r.json[0]["state"] == "pending").then_some(())
    });
    s.kill9();
    // The receiver comes up; the restarted server delivers what the outbox still holds.
    let (_, got) = receiver_on(std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind"));
    let s = dir.serve(&["--config", config.to_str().expect("utf-8")]);
    let body = harness::wait_for("the alert after the restart", || {
        got.lock().expect("lock").first().cloned()
    });
    assert!(body.contains(&id), "{body}");
    let delivered = harness::wait_for("the delivery to be recorded", || {
        let r = s
            .call_as(
                Some("ops-token"),
                "GET",
                &format!("/v1/migrations/{id}/alerts"),
                None,
            )
            .expect(200);
        (r.json[0]["state"] == "delivered").then_some(r)
    });
    assert_eq!(
        delivered.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        delivered.text
    );
    assert_eq!(got.lock().expect("lock").len(), 1, "delivered exactly once");
}

/// Every configuration key is also a flag (SPEC §6): tokens and alert settings given on the
/// command line, no file.
#[test]
fn configuration_keys_work_as_flags_without_a_file() {
    let dir = Dir::new();
    let (url, got) = receiver();
    dir.runbook(
        "quick.yaml",
        &format!(
            "version: 1\nname: quick\nalerts:\n  channels:\n    hook: {{ webhook: {{ url: \"{url}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}\nsteps:\n  - id: one\n    run: echo one\n"
        ),
    );
    let s = dir.serve(&[
        "--token-entry",
        "name=ops,roles=operator,token_env=TOK_OPS",
        "--allow-private-urls",
        "--public-url",
        "https://sensei.example.com",
    ]);
    // A token is configured, so calls without one are refused.
    s.call_as(None, "GET", "/v1/migrations", None).expect(401);
    let id = s.create(Some("ops-token"), "quick", "{}");
    s.call_as(
        Some("ops-token"),
        "POST",
        &format!("/v1/migrations/{id}/start"),
        None,
    )
    .expect(200);
    // Private URLs were allowed by the flag: the alert reaches the loopback receiver.
    let body = harness::wait_for("the certified alert", || {
        got.lock().expect("lock").first().cloned()
    });
    assert!(body.contains(&id), "{body}");
}
