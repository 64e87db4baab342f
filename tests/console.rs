//! The web console over HTTP against a real `sensei serve`: sign-in and its cookie, the
//! CSRF and origin rules for writes made with the cookie, roles, the pages, windows in words
//! on the server's clock, the lifecycle buttons with their confirmations, and that no page
//! or asset refers to another host.

mod harness;

use harness::console::{Visitor, csrf_of};
use harness::runbooks::{FLOW, UNDO, WINDOWED};
use harness::{Dir, Server};

/// A server with the test tokens and a migration of `flow` waiting at its gate, started by
/// `starter`.
fn waiting_gate(dir: &Dir, starter: &'static str) -> (Server, String) {
    dir.runbook("flow.yaml", FLOW);
    let mut s = dir.serve_ops();
    s.token = Some(starter);
    let id = s.create(Some(starter), "flow", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "awaiting_approval");
    (s, id)
}

#[test]
fn sign_in_opens_an_httponly_strict_cookie_session_and_pages_need_it() {
    let dir = Dir::new();
    let s = dir.serve_ops();
    let mut v = Visitor::new(&s);
    let page = v.get("/");
    assert_eq!((page.status, page.location.as_str()), (303, "/signin"));
    let form = v.get("/signin");
    assert_eq!(form.status, 200);
    assert!(form.text.contains(r#"type="password""#), "{}", form.text);

    let wrong = v.sign_in("not-a-token");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.text.contains("not one this server knows"),
        "{}",
        wrong.text
    );
    assert!(wrong.set_cookie.is_empty());

    let ok = v.sign_in("alice-token");
    assert_eq!((ok.status, ok.location.as_str()), (303, "/"));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(ok.set_cookie.contains(attribute), "{}", ok.set_cookie);
    }
    assert!(!ok.set_cookie.contains("alice-token"), "{}", ok.set_cookie);
    let page = v.get("/");
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .contains(r#"<strong id="caller">alice</strong> (approver)"#)
    );
    assert_eq!(csrf_of(&page.text).len(), 64);
    // The API takes the cookie too.
    assert_eq!(v.get("/v1/migrations").status, 200);

    // Signing out forgets the session on the server.
    let csrf = v.csrf();
    let out = v.send("POST", "/signout", &[], "");
    assert_eq!((out.status, out.location.as_str()), (303, "/signin"));
    assert!(out.set_cookie.contains("Max-Age=0"), "{}", out.set_cookie);
    let after = v.write("POST", "/v1/runbooks/validate", Some(&csrf), "");
    assert_eq!(after.status, 401, "{}", after.text);
    assert!(after.text.contains("sign in again"), "{}", after.text);
}

#[test]
fn writes_with_the_cookie_need_the_csrf_header_and_the_role() {
    let dir = Dir::new();
    let (s, id) = waiting_gate(&dir, "ops-token");
    let approve = format!("/v1/migrations/{id}/gates/signoff/approve");

    let mut viewer = Visitor::new(&s);
    viewer.sign_in("vic-token");
    let refused = viewer.write("POST", &approve, Some(&viewer.csrf()), "{}");
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("approver"), "{}", refused.text);

    let mut alice = Visitor::new(&s);
    alice.sign_in("alice-token");
    let csrf = alice.csrf();
    let missing = alice.write("POST", &approve, None, "{}");
    assert_eq!(missing.status, 403, "{}", missing.text);
    assert!(missing.text.contains("X-Sensei-CSRF"), "{}", missing.text);
    let wrong = alice.write("POST", &approve, Some("0000"), "{}");
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    // Another session's value is no good either.
    let other = viewer.csrf();
    assert_eq!(
        alice.write("POST", &approve, Some(&other), "{}").status,
        403
    );

    // From another site, even with the header: refused by its Origin.
    let cross = alice.send(
        "POST",
        &approve,
        &[("X-Sensei-CSRF", &csrf), ("Origin", "http://evil.example")],
        "{}",
    );
    assert_eq!(cross.status, 403, "{}", cross.text);
    assert!(cross.text.contains("cross-site"), "{}", cross.text);

    let same = s.base.clone();
    let done = alice.send(
        "POST",
        &approve,
        &[
            ("X-Sensei-CSRF", &csrf),
            ("Origin", &same),
            ("Content-Type", "application/json"),
        ],
        r#"{"comment":"from the console"}"#,
    );
    assert_eq!(done.status, 200, "{}", done.text);
    s.wait_state(&id, "certified");
}

#[test]
fn the_starter_is_refused_with_the_reason() {
    let dir = Dir::new();
    let (s, id) = waiting_gate(&dir, "root-token");
    let mut root = Visitor::new(&s);
    root.sign_in("root-token");
    let csrf = root.csrf();
    let refused = root.write(
        "POST",
        &format!("/v1/migrations/{id}/gates/signoff/approve"),
        Some(&csrf),
        "{}",
    );
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("root started migration"),
        "{}",
        refused.text
    );
}

#[test]
fn pages_show_the_migration_its_plan_and_the_runbooks() {
    let dir = Dir::new();
    dir.runbook(
        "broken.yaml",
        "version: 1\nname: broken\nsteps:\n  - id: a\n    rn: echo\n",
    );
    let (s, id) = waiting_gate(&dir, "ops-token");
    let mut v = Visitor::new(&s);
    v.sign_in("vic-token");

    let page = v.get(&format!("/migrations/{id}"));
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains(r#"id="page-data""#));
    for needle in [
        r#""may":{"approve":false,"operate":false}"#,
        r#""phase":"approve","waves":[["signoff"]]"#,
        r#""approvers":["alice","bob","root"]"#,
        r#""awaiting_approval""#,
    ] {
        assert!(page.text.contains(needle), "{needle} in {}", page.text);
    }
    let missing = v.get("/migrations/m-nope");
    assert_eq!(missing.status, 404);

    let list = v.get("/console/migrations");
    assert_eq!(list.status, 200);
    let rows: serde_json::Value = serde_json::from_str(&list.text).expect("JSON rows");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["progress"]["total"], 4);
    assert!(rows[0]["started_at"].is_string(), "{}", list.text);

    let runbooks = v.get("/runbooks");
    assert_eq!(runbooks.status, 200);
    let text = &runbooks.text;
    assert!(
        text.contains(r#"<span class="badge bad">invalid</span>"#),
        "{text}"
    );
    assert!(
        text.contains("broken.yaml:5:"),
        "a located diagnostic in {text}"
    );
    assert!(text.contains("<h3>Plan</h3>"), "{text}");
}

#[test]
fn no_page_or_asset_refers_to_another_host() {
    let dir = Dir::new();
    let (s, id) = waiting_gate(&dir, "ops-token");
    let mut v = Visitor::new(&s);
    let signin = v.get("/signin");
    v.sign_in("root-token");
    let mut answers = vec![("/signin".to_owned(), signin)];
    for path in ["/", "/runbooks", &format!("/migrations/{id}")] {
        answers.push((path.to_owned(), v.get(path)));
    }
    for asset in [
        "console.css",
        "common.js",
        "list.js",
        "migration.js",
        "dag.js",
        "windows.js",
        "lifecycle.js",
    ] {
        let path = format!("/assets/{asset}");
        answers.push((path.clone(), v.get(&path)));
    }
    for (path, answer) in &answers {
        assert_eq!(answer.status, 200, "{path}");
        // The SVG namespace is a name, not a place anything is fetched from.
        let text = answer.text.replace("http://www.w3.org/2000/svg", "");
        for pattern in [
            "http://",
            "https://",
            "src=\"//",
            "href=\"//",
            "url(",
            "@import",
        ] {
            assert!(!text.contains(pattern), "{path} contains {pattern}");
        }
        if answer.content_type.starts_with("text/html") {
            assert!(
                answer.csp.contains("default-src 'none'"),
                "{path}: {}",
                answer.csp
            );
            assert!(answer.csp.contains("connect-src 'self'"), "{path}");
        }
    }
}

#[test]
fn without_tokens_the_console_is_open() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let s = dir.serve(&[]);
    let v = Visitor::new(&s);
    let page = v.get("/");
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("no tokens configured"));
    let signin = v.get("/signin");
    assert_eq!((signin.status, signin.location.as_str()), (303, "/"));
    // Writes from another site are refused even so.
    let cross = v.send(
        "POST",
        "/v1/migrations",
        &[
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/json"),
        ],
        r#"{"runbook":"flow"}"#,
    );
    assert_eq!(cross.status, 403, "{}", cross.text);
    let local = v.write("POST", "/v1/migrations", None, r#"{"runbook":"flow"}"#);
    assert_eq!(local.status, 201, "{}", local.text);
}

#[test]
fn windows_are_told_in_their_zone_on_the_servers_clock() {
    let dir = Dir::new();
    dir.runbook("windowed.yaml", WINDOWED);
    // Friday 22:45:30 in Paris: the window opens at 01:00, in 2h14m30s.
    let s = dir.serve_with_tokens(&[], &[("SENSEI_NOW", "2027-03-05T21:45:30Z")]);
    let id = s.create(Some("ops-token"), "windowed", "{}");
    let mut v = Visitor::new(&s);
    v.sign_in("vic-token");
    let page = v.get(&format!("/migrations/{id}"));
    assert_eq!(page.status, 200, "{}", page.text);
    for needle in [
        r#"<h3>saturday-night <span class="badge st-pending">closed</span></h3>"#,
        r#"Closed: opens <strong>Sat 01:00 CET</strong> (<time data-rel datetime="2027-03-06T00:00:00.000Z">in 2h14m</time>)."#,
        "cron <code>0 1 * * SAT</code> in Europe/Paris, for 4h",
        "30m: no bound step starts in the last 30m before the window closes (this time: last start Sat 04:30 CET, closes Sat 05:00 CET)",
        "<code>rollback</code>: if bound work is left when it closes, once running steps finish, the steps that succeeded are rolled back and the migration fails.",
        "<dt>Bound steps</dt><dd>copy</dd>",
        r#"<div id="windows" data-now="2027-03-05T21:45:"#,
    ] {
        assert!(page.text.contains(needle), "{needle} in {}", page.text);
    }
    // What the page asks for again once a window's state changed: the same, on the same clock.
    let again = v.get(&format!("/console/migrations/{id}/windows"));
    assert_eq!(again.status, 200, "{}", again.text);
    let json: serde_json::Value = serde_json::from_str(&again.text).expect("JSON");
    assert!(
        json["now"]
            .as_str()
            .is_some_and(|t| t.starts_with("2027-03-05T21:4")),
        "{json}"
    );
    assert!(
        json["html"]
            .as_str()
            .unwrap_or_default()
            .contains("opens <strong>Sat 01:00 CET</strong>"),
        "{json}"
    );
}

/// The keys of the buttons `/console/migrations/{id}/controls` lists, and the answer.
fn controls(v: &Visitor, id: &str) -> (Vec<String>, serde_json::Value) {
    let answer = v.get(&format!("/console/migrations/{id}/controls"));
    assert_eq!(answer.status, 200, "{}", answer.text);
    let json: serde_json::Value = serde_json::from_str(&answer.text).expect("JSON");
    let keys = json
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["key"].as_str().unwrap_or_default().to_owned())
        .collect();
    (keys, json)
}

fn control<'a>(list: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    list.as_array()
        .and_then(|l| l.iter().find(|c| c["key"] == key))
        .unwrap_or_else(|| panic!("no control {key} in {list}"))
}

#[test]
fn the_buttons_follow_the_state_and_say_what_they_will_do() {
    let dir = Dir::new();
    dir.runbook("undo.yaml", UNDO);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "undo", "{}");
    let mut ops = Visitor::new(&s);
    ops.sign_in("ops-token");

    let (keys, list) = controls(&ops, &id);
    assert_eq!(keys, ["start", "cancel"]);
    let start = control(&list, "start");
    assert_eq!(
        (&start["method"], &start["path"]),
        (&"POST".into(), &"/start".into())
    );
    assert!(
        start["confirm"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("Start migration {id}? ")),
        "{start}"
    );

    // Three steps succeed, the fourth fails, and `on_failure: pause` pauses the migration.
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "paused");
    let (keys, list) = controls(&ops, &id);
    assert_eq!(keys, ["resume", "cancel", "cancel-rollback", "rollback"]);
    let both = control(&list, "cancel-rollback");
    assert_eq!(both["method"], "DELETE");
    assert_eq!(both["path"], "");
    assert_eq!(both["body"], serde_json::json!({ "rollback": true }));
    assert!(
        both["confirm"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!(
                "Cancel migration {id} and roll back the 3 steps that succeeded (a, b, c)? "
            )),
        "{both}"
    );
    let cancel = control(&list, "cancel")["confirm"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cancel.contains(
            "Nothing is rolled back: what the 3 steps that succeeded changed stays changed."
        ),
        "{cancel}"
    );
    let rollback = control(&list, "rollback")["confirm"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        rollback.starts_with(&format!(
            "Roll back migration {id} and undo the 3 steps that succeeded (a, b, c)?"
        )),
        "{rollback}"
    );

    // Only operators and admins get them.
    let mut vic = Visitor::new(&s);
    vic.sign_in("vic-token");
    let refused = vic.get(&format!("/console/migrations/{id}/controls"));
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("operator or admin"),
        "{}",
        refused.text
    );

    // The button's call, as the page makes it: the rollback runs, then the cancel.
    let csrf = ops.csrf();
    let done = ops.write(
        "DELETE",
        &format!("/v1/migrations/{id}"),
        Some(&csrf),
        r#"{"rollback":true}"#,
    );
    assert!(matches!(done.status, 200 | 202), "{}", done.text);
    s.wait_state(&id, "cancelled");
    let (keys, _) = controls(&ops, &id);
    assert!(keys.is_empty(), "{keys:?}");
    let steps = s.get(&format!("/v1/migrations/{id}")).expect(200).json["steps"].clone();
    let states: Vec<&str> = steps
        .as_array()
        .expect("steps")
        .iter()
        .map(|r| r["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        states,
        ["rolled_back", "rolled_back", "rolled_back", "failed"]
    );
}
