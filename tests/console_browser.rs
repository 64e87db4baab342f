//! The console in a real browser (headless Chromium over WebDriver) against a real
//! `sensei serve` on loopback: sign in, watch a step change state without a reload, approve
//! a gate and see the migration move on, a viewer without action buttons, the starter's
//! approval refused with the API's reason, every control labelled, and no request leaving
//! loopback. Screenshots go to `target/console-screenshots/`. Skipped, saying so, only when
//! Chromium and its driver are not installed (CI installs them).

mod harness;

use harness::runbooks::FLOW;
use harness::webdriver::Browser;
use harness::{Dir, Server, wait_for};

/// An analyze step that holds until the file `go` exists, then a gate and the work.
const LIVE: &str = r#"version: 1
name: live
steps:
  - id: hold
    phase: analyze
    idempotent: true
    run: touch started; while [ ! -f go ]; do sleep 0.05; done; echo held
  - id: signoff
    gate: { approvers: [alice, bob, root], required: 1 }
  - id: work
    needs: [signoff]
    run: echo worked
  - id: check
    phase: validate
    run: echo checked
"#;

/// Controls without an accessible name, and images without alternative text.
const UNLABELLED: &str = r#"
const named = (e) => (e.getAttribute('aria-label') || '').trim() || (e.labels && e.labels.length) ||
  (e.textContent || '').trim();
const bad = [...document.querySelectorAll('button, a[href], input, select, textarea, [role=button]')]
  .filter((e) => e.type !== 'hidden' && !named(e)).map((e) => e.outerHTML.slice(0, 80));
return bad.concat([...document.querySelectorAll('img:not([alt])')].map((e) => e.outerHTML));
"#;

fn sign_in(b: &Browser, s: &Server, token: &str) {
    b.open(&format!("{}/", s.base));
    b.wait(
        "the sign-in form",
        "return location.pathname === '/signin';",
    );
    assert_labelled(b, "signin");
    b.type_into("#token", token);
    b.click("button[type=submit]");
    b.wait("the migrations list", "return location.pathname === '/' && document.querySelector('#migrations tbody tr') !== null;");
}

fn assert_labelled(b: &Browser, page: &str) {
    let problems = b.eval(UNLABELLED);
    assert_eq!(
        problems,
        serde_json::json!([]),
        "unlabelled controls on {page}"
    );
}

fn node_label(step: &str) -> String {
    format!(
        "const g = document.querySelector('g.node[data-key=\"{step}\"]'); return g ? g.getAttribute('aria-label') : '';"
    )
}

fn wait_node(b: &Browser, step: &str, state: &str) {
    let script = format!(
        "{} ",
        node_label(step).replace(
            "return g ?",
            &format!("return g && g.getAttribute('aria-label').endsWith(': {state}') ?")
        )
    );
    b.wait(&format!("step {step} {state}"), &script);
}

fn assert_loopback(b: &Browser, s: &Server) {
    for url in b.requests() {
        assert!(url.starts_with(&s.base), "a request left the server: {url}");
    }
}

#[test]
fn a_step_changes_live_and_an_approver_moves_the_migration_on() {
    let Some(b) = Browser::start() else { return };
    let dir = Dir::new();
    dir.runbook("live.yaml", LIVE);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "live", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    let runbooks = dir.path("runbooks");
    wait_for("the step to start", || {
        runbooks.join("started").exists().then_some(())
    });

    sign_in(&b, &s, "alice-token");
    b.screenshot("migrations");
    assert_labelled(&b, "migrations");
    b.open(&format!("{}/migrations/{id}", s.base));
    b.wait(
        "the page to load",
        "return document.body.dataset.ready === '1';",
    );
    b.eval("window.sameLoad = true; return 1;");
    wait_node(&b, "hold", "running");
    b.screenshot("running");

    std::fs::write(runbooks.join("go"), "").expect("release the step");
    wait_node(&b, "hold", "succeeded");
    b.wait(
        "the gate's buttons",
        "return document.querySelector('[data-decide=approve]') !== null;",
    );
    assert_labelled(&b, "migration");
    let digest = s.get(&format!("/v1/migrations/{id}")).expect(200).json["digest"].clone();
    let shown = b.eval("return document.getElementById('gates').textContent;");
    assert!(
        shown
            .as_str()
            .unwrap_or_default()
            .contains(digest.as_str().unwrap_or("?")),
        "{shown}"
    );
    b.screenshot("gate");

    b.type_into("#comment-0", "looks good");
    b.click("#approve-0");
    b.wait(
        "the approval",
        "return document.getElementById('message').textContent.includes('approved');",
    );
    s.wait_state(&id, "certified");
    b.wait("the certified state", "const c = document.querySelector('#strip li.current'); return c && c.textContent.startsWith('certified');");
    wait_node(&b, "check", "succeeded");
    assert_eq!(
        b.eval("return window.sameLoad === true;"),
        serde_json::json!(true),
        "the page reloaded"
    );
    b.screenshot("certified");
    assert_loopback(&b, &s);
}

#[test]
fn a_viewer_sees_no_buttons_and_the_starter_is_refused_with_the_reason() {
    let Some(viewer) = Browser::start() else {
        return;
    };
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let mut s = dir.serve_ops();
    s.token = Some("root-token");
    let id = s.create(Some("root-token"), "flow", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "awaiting_approval");
    let page = format!("{}/migrations/{id}", s.base);

    sign_in(&viewer, &s, "vic-token");
    viewer.open(&page);
    viewer.wait(
        "the gate",
        "return document.querySelector('.gate .badge.st-waiting') !== null;",
    );
    let buttons =
        viewer.eval("return document.querySelectorAll('#actions button, [data-decide]').length;");
    assert_eq!(buttons, serde_json::json!(0));
    viewer.wait(
        "why the viewer may not decide",
        "return document.getElementById('gates').textContent.includes('may not decide');",
    );
    viewer.screenshot("viewer");
    assert_loopback(&viewer, &s);
    drop(viewer);

    let Some(root) = Browser::start() else { return };
    sign_in(&root, &s, "root-token");
    root.open(&page);
    root.wait(
        "the approve button",
        "return document.querySelector('#approve-0') !== null;",
    );
    root.click("#approve-0");
    let refusal = root.wait(
        "the refusal",
        "const t = document.getElementById('message').textContent; return t.includes('refused') ? t : '';",
    );
    assert!(
        refusal
            .as_str()
            .unwrap_or_default()
            .contains("root started migration"),
        "{refusal}"
    );
    root.screenshot("starter-refused");

    // Each lifecycle button asks first, naming what it will do.
    root.click("[data-op=pause]");
    let asked = root.dialog();
    assert!(asked.contains(&format!("Pause migration {id}")), "{asked}");
    root.answer_dialog(false);
    assert_eq!(s.state(&id), "awaiting_approval");
    assert_loopback(&root, &s);
}
