//! The web console over HTTP against a real `sensei serve`: sign-in and its cookie, the
//! CSRF and origin rules for writes made with the cookie, roles, the pages, and that no page
//! or asset refers to another host.

mod harness;

use harness::console::{Visitor, csrf_of};
use harness::runbooks::FLOW;
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
