//! The API's contract where docs/openapi.json and the server must agree on what is refused:
//! every 400 is a problem whose detail names the parameter and says what is wrong (a
//! repeated query parameter, an event number out of range or not a number, a path segment
//! that is not UTF-8, `null` for an optional field, a field of another operation), and the
//! examples show what the server really answers.

mod harness;

use harness::{Dir, Reply, Server, header, hooks, json_body};
use serde_json::Value;
use std::time::Duration;

const FLOW: &str = r#"version: 1
name: flow
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

fn server(dir: &Dir) -> Server {
    dir.runbook("flow.yaml", FLOW);
    dir.serve_ops()
}

fn openapi() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// A 400 problem whose detail holds each of `needles` (and so more than "Bad Request").
fn refused(reply: Reply, needles: &[&str]) -> String {
    let reply = reply.problem(400);
    let detail = reply.json["detail"].as_str().unwrap_or_default().to_owned();
    for needle in needles {
        assert!(
            detail.contains(needle),
            "no {needle:?} in the detail: {detail}"
        );
    }
    detail
}

/// A GET as `ops` with extra request headers given as bytes.
fn get_with(s: &Server, path: &str, headers: &[(&str, &[u8])]) -> Reply {
    let mut request = ureq::http::Request::builder()
        .method("GET")
        .uri(format!("{}{path}", s.base))
        .header("Authorization", "Bearer ops-token");
    for (name, value) in headers {
        let value = ureq::http::HeaderValue::from_bytes(value).expect("a header value");
        request = request.header(*name, value);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let response = agent
        .run(request.body(()).expect("request"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = header(response.headers(), "content-type");
    let text = response.into_body().read_to_string().expect("body");
    let json = json_body("GET", path, &content_type, &text);
    Reply {
        status,
        content_type,
        text,
        json,
    }
}

#[test]
fn a_repeated_query_parameter_is_refused_by_name() {
    let dir = Dir::new();
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    let listed = s.get("/v1/migrations?state=created&state=running");
    refused(listed, &["query parameter `state`", "2 times", "once"]);
    let listed = s.get("/v1/migrations?runbook=flow&runbook=flow");
    refused(listed, &["query parameter `runbook`", "2 times"]);
    let events = s.get(&format!("/v1/migrations/{id}/events?after=1&after=1"));
    refused(events, &["query parameter `after`", "2 times"]);
    // Given once, each is read; a name the route does not read is ignored (but not
    // repeated either).
    let listed = s.get("/v1/migrations?state=created&runbook=flow&other=1");
    assert_eq!(listed.expect(200).json.as_array().map(Vec::len), Some(1));
    refused(
        s.get("/v1/migrations?other=1&other=2"),
        &["`other` is given 2 times"],
    );
}

#[test]
fn after_and_last_event_id_are_event_numbers_in_range() {
    let dir = Dir::new();
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    let path = format!("/v1/migrations/{id}/events");
    let all = s.get(&format!("{path}?after=0")).expect(200);
    let count = all.json.as_array().map_or(0, Vec::len);
    assert!(count >= 1, "{}", all.text);
    let max = "9223372036854775807";
    let none = s.get(&format!("{path}?after={max}")).expect(200);
    assert_eq!(none.json, serde_json::json!([]));
    for bad in ["abc", "-1", "1.5", "%2B1", ""] {
        let reply = s.get(&format!("{path}?after={bad}"));
        refused(reply, &["query parameter `after` must be an event number"]);
    }
    let reply = s.get(&format!("{path}?after=9223372036854775808"));
    refused(reply, &["query parameter `after` is out of range", max]);

    let later = get_with(&s, &path, &[("Last-Event-ID", b"1")]).expect(200);
    assert_eq!(later.json.as_array().map(Vec::len), Some(count - 1));
    for bad in [&b"abc"[..], b"-1", b"1.5", b"\xff"] {
        let reply = get_with(&s, &path, &[("Last-Event-ID", bad)]);
        refused(reply, &["header `Last-Event-ID` must be an event number"]);
    }
    let reply = get_with(&s, &path, &[("Last-Event-ID", b"99999999999999999999")]);
    refused(reply, &["header `Last-Event-ID` is out of range"]);
    let twice = [("Last-Event-ID", &b"1"[..]), ("Last-Event-ID", b"2")];
    refused(
        get_with(&s, &path, &twice),
        &["`Last-Event-ID` is given 2 times"],
    );
}

#[test]
fn a_path_segment_that_is_not_utf8_is_refused_by_name() {
    let dir = Dir::new();
    dir.runbook("deploy.yaml", hooks::DEPLOY);
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    for path in [
        "/v1/migrations/%FF".to_owned(),
        "/v1/migrations/%FF/status".to_owned(),
        "/v1/migrations/%C3%28/events".to_owned(),
        "/v1/migrations/%FF/alerts".to_owned(),
    ] {
        refused(s.get(&path), &["path segment `{id}`", "not UTF-8"]);
    }
    let logs = s.get(&format!("/v1/migrations/{id}/steps/%FF/logs"));
    refused(logs, &["path segment `{step}`", "not UTF-8"]);
    refused(
        s.post("/v1/migrations/%FF/start", ""),
        &["path segment `{id}`"],
    );
    let approve = s.call_as(
        Some("alice-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/%FF/approve"),
        None,
    );
    refused(approve, &["path segment `{step}`"]);
    let hook = hooks::deliver(&s, "%FF", &[], b"{}");
    refused(hook, &["path segment `{name}`", "not UTF-8"]);
}

#[test]
fn null_is_refused_where_a_string_an_enum_or_a_flag_is_expected() {
    let dir = Dir::new();
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    let op = |op: &str| format!("/v1/migrations/{id}/{op}");
    let null = "null is not a value here; leave the field out";
    refused(
        s.post(&op("start"), r#"{"comment":null}"#),
        &["field `comment`", null],
    );
    refused(
        s.post(&op("resume"), r#"{"interrupted":null}"#),
        &["field `interrupted`", null],
    );
    let cancel = s.call_as(
        Some("ops-token"),
        "DELETE",
        &format!("/v1/migrations/{id}"),
        Some(r#"{"rollback":null}"#),
    );
    refused(cancel, &["field `rollback`", null]);
    refused(
        s.post("/v1/migrations", r#"{"runbook":null}"#),
        &["field `runbook`", "null"],
    );
    refused(
        s.post("/v1/migrations", r#"{"runbook":"flow","params":null}"#),
        &["field `params`", "null"],
    );
    let approve = s.call_as(
        Some("alice-token"),
        "POST",
        &format!("/v1/migrations/{id}/gates/signoff/approve"),
        Some(r#"{"comment":null}"#),
    );
    refused(approve, &["field `comment`", null]);
    // A wrong type names its field too.
    refused(
        s.post(&op("resume"), r#"{"interrupted":"again"}"#),
        &["field `interrupted`", "unknown variant `again`"],
    );
    // Nothing was asked of the migration.
    assert_eq!(s.state(&id), "created");
}

#[test]
fn interrupted_is_resumes_alone_and_rollback_cancels_alone() {
    let dir = Dir::new();
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    let body = r#"{"interrupted":"retry"}"#;
    for op in ["start", "pause", "retry", "rollback"] {
        let reply = s.post(&format!("/v1/migrations/{id}/{op}"), body);
        refused(reply, &["field `interrupted` is only for resume", op]);
        let reply = s.post(&format!("/v1/migrations/{id}/{op}"), r#"{"rollback":true}"#);
        refused(reply, &["field `rollback` is only for cancel"]);
    }
    let cancel = s.call_as(
        Some("ops-token"),
        "DELETE",
        &format!("/v1/migrations/{id}"),
        Some(body),
    );
    refused(
        cancel,
        &["field `interrupted` is only for resume", "cancel"],
    );
    let reply = s.post(
        &format!("/v1/migrations/{id}/resume"),
        r#"{"rollback":true}"#,
    );
    refused(reply, &["field `rollback` is only for cancel"]);
    assert_eq!(s.state(&id), "created");
    // Resume takes it (a created migration is resumed by starting it).
    let resumed = s
        .post(
            &format!("/v1/migrations/{id}/resume"),
            r#"{"interrupted":"skip","comment":"after the crash"}"#,
        )
        .expect(200);
    assert_ne!(resumed.json["state"], "created", "{}", resumed.text);
}

#[test]
fn a_webhook_answers_the_state_its_openapi_example_shows() {
    let doc = openapi();
    let answer = &doc["paths"]["/v1/hooks/{name}"]["post"]["responses"]["202"]["content"]["application/json"]
        ["example"];
    let documented = answer["state"]
        .as_str()
        .expect("the 202 example has a state");
    let dir = Dir::new();
    let s = hooks::server(&dir, &[]);
    for n in 0..3 {
        let body = format!(r#"{{"tables":["t{n}"],"batch":2}}"#);
        let headers = hooks::signed(hooks::SECRET, hooks::now(), body.as_bytes());
        let reply = hooks::deliver(&s, "deploy-finished", &headers, body.as_bytes()).expect(202);
        assert_eq!(reply.json["state"], documented, "{}", reply.text);
        let id = reply.json["id"].as_str().expect("an id");
        assert_eq!(reply.json["_location"], format!("/v1/migrations/{id}"));
    }
}

/// What the document says each operation takes and refuses.
#[test]
fn the_openapi_document_says_what_each_operation_takes() {
    let doc = openapi();
    let schemas = &doc["components"]["schemas"];
    let body_of = |path: &str, method: &str| -> &Value {
        let schema =
            &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        let name = schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{method} {path}: no request schema"));
        &schemas[name]["properties"]
    };
    let resume = body_of("/v1/migrations/{id}/resume", "post");
    assert!(resume.get("interrupted").is_some() && resume.get("rollback").is_none());
    for op in ["start", "pause", "retry", "rollback"] {
        let props = body_of(&format!("/v1/migrations/{{id}}/{op}"), "post");
        assert!(props.get("interrupted").is_none(), "{op}: {props}");
        assert!(props.get("rollback").is_none(), "{op}: {props}");
    }
    let cancel = body_of("/v1/migrations/{id}", "delete");
    assert!(cancel.get("rollback").is_some() && cancel.get("interrupted").is_none());

    let params = doc["paths"]["/v1/migrations/{id}/events"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    for name in ["after", "Last-Event-ID"] {
        let p = params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        let schema = &p["schema"];
        assert_eq!(schema["type"], "integer", "{name}");
        assert_eq!(schema["minimum"], 0, "{name}");
        assert_eq!(schema["maximum"], i64::MAX, "{name}");
    }

    // Whatever can be refused as a 400 documents its 400.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let parameters = op["parameters"].as_array().map_or(&[][..], Vec::as_slice);
            let reads = path.contains('{')
                || parameters.iter().any(|p| p["in"] == "query")
                || op["requestBody"]["content"]["application/json"].is_object();
            let documented = op["responses"]["400"]["description"].as_str();
            if reads {
                let text = documented.unwrap_or_else(|| panic!("{method} {path}: no 400"));
                assert!(text.contains("`detail`"), "{method} {path}: {text}");
            }
        }
    }
}
