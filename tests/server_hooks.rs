//! Webhook triggers over HTTP (SPEC §6, `POST /v1/hooks/{name}`): a signed delivery creates
//! and starts a migration with params from its payload; wrong key, stale timestamp, replay
//! (also after a restart), unsigned, oversize, non-JSON, wrong content type, unknown hook and
//! bad params are refused with their status; an `Idempotency-Key` returns the same migration.
//! The forms of the signing headers are in server_hook_signatures.rs.

mod harness;

use harness::Dir;
use harness::hooks::{SECRET, deliver, now, server, signed};
use serde_json::Value;

#[test]
fn a_signed_delivery_starts_a_migration_with_params_from_the_payload() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    let body = br#"{"tables":["orders","order_items"],"batch":500}"#;
    let ts = now();
    let reply = deliver(&s, "deploy-finished", &signed(SECRET, ts, body), body).expect(202);
    let id = reply.json["id"].as_str().expect("id").to_owned();
    assert!(reply.json["state"].is_string(), "{}", reply.text);
    assert_eq!(reply.json["_location"], format!("/v1/migrations/{id}"));
    s.wait_state(&id, "certified");
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    assert_eq!(detail.json["starter"], "hook:deploy-finished");
    // A single-expression template keeps the payload's types: a list stays a list.
    assert_eq!(
        detail.json["params"]["tables"],
        serde_json::json!(["orders", "order_items"])
    );
    assert_eq!(detail.json["params"]["batch"], 500);
    // The audit trail names the hook and the delivery.
    let events = s.events(&id);
    let request = events
        .iter()
        .find(|e| e["kind"] == "operator_request")
        .expect("operator_request");
    assert_eq!(request["data"]["by"], "hook:deploy-finished");
    let comment = request["data"]["comment"].as_str().expect("a comment");
    assert!(comment.contains(&ts.to_string()), "{comment}");

    // The same Idempotency-Key (with a fresh signature) answers the same migration.
    let keyed = |ts: i64, key: &str| {
        let mut headers = signed(SECRET, ts, body);
        headers.push(("Idempotency-Key", key.to_owned()));
        deliver(&s, "deploy-finished", &headers, body).expect(202)
    };
    // Timestamps before the first delivery's, so that none is signed like another (`now() - 1`
    // once the clock has moved on is the first one's, whose signature is then a replay).
    let first = keyed(ts - 1, "deploy-42").json["id"].clone();
    let again = keyed(ts - 2, "deploy-42").json["id"].clone();
    assert_eq!(first, again);
    assert_ne!(first, Value::String(id.clone()));
    let other = keyed(ts - 3, "deploy-43").json["id"].clone();
    assert_ne!(first, other);
    // A key is compared as sent: another letter case is another key.
    let cased = keyed(ts - 4, "DEPLOY-42").json["id"].clone();
    assert_ne!(first, cased);
    let listed = s.get("/v1/migrations?runbook=deploy").expect(200);
    assert_eq!(listed.json.as_array().map(Vec::len), Some(4));
}

#[test]
fn bad_deliveries_are_refused_with_their_status() {
    let dir = Dir::new();
    let s = server(&dir, &["--max-body", "4096"]);
    let body = br#"{"tables":["orders"],"batch":2}"#;
    let hook = "deploy-finished";
    // Wrong key, unsigned, a malformed signature or timestamp: 401.
    let r = deliver(&s, hook, &signed("wrong", now(), body), body).problem(401);
    assert!(r.text.contains("does not match"), "{}", r.text);
    let plain = vec![("Content-Type", "application/json".to_owned())];
    let r = deliver(&s, hook, &plain, body).problem(401);
    assert!(r.text.contains("unsigned"), "{}", r.text);
    let mut bad = signed(SECRET, now(), body);
    bad[2].1 = "sha256=zz".into();
    deliver(&s, hook, &bad, body).problem(401);
    let mut bad = signed(SECRET, now(), body);
    bad[1].1 = "yesterday".into();
    deliver(&s, hook, &bad, body).problem(401);
    // Stale or from the future by more than 5 minutes, though correctly signed: 401.
    let r = deliver(&s, hook, &signed(SECRET, now() - 301, body), body).problem(401);
    assert!(
        r.text.contains("timestamp") && r.text.contains("behind"),
        "{}",
        r.text
    );
    let r = deliver(&s, hook, &signed(SECRET, now() + 400, body), body).problem(401);
    assert!(r.text.contains("ahead"), "{}", r.text);
    // Not JSON (signed): 400; another content type: 415.
    let junk = b"tables=orders";
    deliver(&s, hook, &signed(SECRET, now(), junk), junk).problem(400);
    let mut form = signed(SECRET, now(), junk);
    form[0].1 = "application/x-www-form-urlencoded".into();
    deliver(&s, hook, &form, junk).problem(415);
    // Over the body limit: 413.
    let big = format!(
        r#"{{"tables":["orders"],"batch":2,"pad":"{}"}}"#,
        "x".repeat(5000)
    );
    let big = big.as_bytes();
    deliver(&s, hook, &signed(SECRET, now(), big), big).problem(413);
    // An unknown hook: 404.
    deliver(&s, "nope", &signed(SECRET, now(), body), body).problem(404);
    // Params that do not fit the runbook: 422, naming the param.
    let wrong = br#"{"tables":5,"batch":2}"#;
    let r = deliver(&s, hook, &signed(SECRET, now(), wrong), wrong).problem(422);
    assert!(r.text.contains("tables"), "{}", r.text);
    let missing = br#"{"tables":["orders"]}"#;
    let r = deliver(&s, hook, &signed(SECRET, now(), missing), missing).problem(422);
    assert!(r.text.contains("`batch`"), "{}", r.text);
    // Nothing was created by any of these.
    let listed = s.get("/v1/migrations").expect(200);
    assert_eq!(listed.json.as_array().map(Vec::len), Some(0));
    // The refusals are in the log (written before each answer), at debug, not as faults.
    let log = s.log();
    assert!(log.contains("DEBUG") && log.contains("status=422"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    // The secret's variable missing on the server: 500, logged as a server fault.
    let r = deliver(&s, "unconfigured", &signed(SECRET, now(), body), body).problem(500);
    assert!(r.text.contains("SENSEI_TEST_HOOK_UNSET"), "{}", r.text);
    harness::wait_for("the fault in the log", || {
        s.log().contains("SENSEI_TEST_HOOK_UNSET").then_some(())
    });
}

#[test]
fn a_replayed_signature_is_refused_also_after_a_restart() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    let body = br#"{"tables":["orders"],"batch":2}"#;
    let headers = signed(SECRET, now(), body);
    deliver(&s, "deploy-finished", &headers, body).expect(202);
    let r = deliver(&s, "deploy-finished", &headers, body).problem(401);
    assert!(r.text.contains("accepted before"), "{}", r.text);
    s.kill9();
    let s = server(&dir, &[]);
    deliver(&s, "deploy-finished", &headers, body).problem(401);
    let listed = s.get("/v1/migrations").expect(200);
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1));
}
