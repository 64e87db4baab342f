//! The console in a real browser (headless Chromium over WebDriver) against a real
//! `sensei serve` on loopback: sign in, watch a step change state without a reload, approve
//! a gate and see the migration move on, a viewer without action buttons, the starter's
//! approval refused with the API's reason, the lifecycle buttons (each confirmed first:
//! cancel with rollback, resume of an interrupted step, a refusal shown), windows counting
//! down and opening without a reload, and no request leaving loopback. Every page is checked
//! with axe-core (WCAG 2.0/2.1 A and AA: zero violations) and walked with the Tab key.
//! Screenshots go to `target/console-screenshots/` (`gate.png` is the README's
//! `docs/images/console-migration.png`). Skipped, saying so, only when Chromium and its
//! driver are not installed (CI installs them).

mod harness;

use harness::runbooks::{BLOCK, FLOW, UNDO, WINDOWED};
use harness::webdriver::Browser;
use harness::{Dir, Server, wait_for};

/// An analyze step that holds until the file `go` exists, then a gate and the work, bound to
/// a window (open: the server's clock is set inside it).
const LIVE: &str = r#"version: 1
name: live
windows:
  saturday-night:
    cron: "0 1 * * SAT"
    timezone: Europe/Paris
    duration: 4h
    cutoff: 30m
    on_close: pause
steps:
  - id: hold
    phase: analyze
    idempotent: true
    run: touch started; while [ ! -f go ]; do sleep 0.05; done; echo held
  - id: signoff
    gate: { approvers: [alice, bob, root], required: 1 }
  - id: work
    needs: [signoff]
    window: saturday-night
    run: echo worked
  - id: check
    phase: validate
    run: echo checked
"#;

/// Saturday 01:12 in Paris: the window of [`LIVE`] has been open for 12 minutes.
const IN_THE_WINDOW: &str = "2027-03-06T00:12:00Z";

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
    check_page(b, "sign-in");
    b.type_into("#token", token);
    b.click("button[type=submit]");
    b.wait("the migrations list", "return location.pathname === '/' && document.querySelector('#migrations tbody tr') !== null;");
}

/// Every control labelled, zero axe violations, every control reached with Tab.
fn check_page(b: &Browser, page: &str) {
    let problems = b.eval(UNLABELLED);
    assert_eq!(
        problems,
        serde_json::json!([]),
        "unlabelled controls on {page}"
    );
    harness::axe::assert_accessible(b, page);
    harness::axe::assert_keyboard_reachable(b, page);
}

fn open_migration(b: &Browser, s: &Server, id: &str) {
    b.open(&format!("{}/migrations/{id}", s.base));
    b.wait(
        "the page to load",
        "return document.body.dataset.ready === '1';",
    );
}

/// Waits for the message line to say something containing `text`; the message.
fn wait_message(b: &Browser, text: &str) -> String {
    let script = format!(
        "const t = document.getElementById('message').textContent; return t.includes({}) ? t : '';",
        serde_json::json!(text)
    );
    let shown = b.wait(&format!("the message {text:?}"), &script);
    shown.as_str().unwrap_or_default().to_owned()
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
    let s = dir.serve_with_tokens(&[], &[("SENSEI_NOW", IN_THE_WINDOW)]);
    let id = s.create(Some("ops-token"), "live", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    let runbooks = dir.path("runbooks");
    wait_for("the step to start", || {
        runbooks.join("started").exists().then_some(())
    });

    sign_in(&b, &s, "alice-token");
    b.screenshot("migrations");
    check_page(&b, "migrations");
    b.open(&format!("{}/runbooks", s.base));
    b.wait(
        "the runbooks",
        "return document.querySelector('section.runbook') !== null;",
    );
    check_page(&b, "runbooks");
    open_migration(&b, &s, &id);
    b.eval("window.sameLoad = true; return 1;");
    wait_node(&b, "hold", "running");
    b.screenshot("running");

    std::fs::write(runbooks.join("go"), "").expect("release the step");
    wait_node(&b, "hold", "succeeded");
    b.wait(
        "the gate's buttons",
        "return document.querySelector('[data-decide=approve]') !== null;",
    );
    check_page(&b, "migration with a gate waiting");
    let digest = s.get(&format!("/v1/migrations/{id}")).expect(200).json["digest"].clone();
    let shown = b.eval("return document.getElementById('gates').textContent;");
    assert!(
        shown
            .as_str()
            .unwrap_or_default()
            .contains(digest.as_str().unwrap_or("?")),
        "{shown}"
    );
    let windows = b.eval("return document.getElementById('windows').textContent;");
    let windows = windows.as_str().unwrap_or_default();
    for needle in [
        "saturday-night open",
        "Open since Sat 01:00 CET (12m",
        "bound steps may start until Sat 04:30 CET (in 3h17m); closes Sat 05:00 CET (in 3h47m).",
        "the migration pauses, and resumes by itself at the window's next opening",
    ] {
        assert!(windows.contains(needle), "{needle} in {windows}");
    }
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

    // Waiting at its gate, the migration can only be cancelled; the button asks first.
    root.wait(
        "the lifecycle buttons",
        "return document.querySelector('[data-op=cancel]') !== null;",
    );
    let offered = root.eval(
        "return [...document.querySelectorAll('#actions button')].map((b) => b.textContent);",
    );
    assert_eq!(offered, serde_json::json!(["Cancel"]));
    root.click("[data-op=cancel]");
    let asked = root.dialog();
    assert!(
        asked.starts_with(&format!(
            "Cancel migration {id}? It ends cancelled, which is final."
        )),
        "{asked}"
    );
    root.answer_dialog(false);
    assert_eq!(s.state(&id), "awaiting_approval");
    assert_loopback(&root, &s);
}

/// `count` migrations of [`UNDO`], each paused after its three steps with rollback commands
/// succeeded and the fourth failed.
fn paused_undos(s: &Server, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let id = s.create(Some("ops-token"), "undo", "{}");
            s.post(&format!("/v1/migrations/{id}/start"), "")
                .expect(200);
            s.wait_state(&id, "paused");
            id
        })
        .collect()
}

#[test]
fn an_operator_cancels_with_rollback_after_confirming_and_sees_a_refusal_explained() {
    let Some(b) = Browser::start() else { return };
    let dir = Dir::new();
    dir.runbook("undo.yaml", UNDO);
    let s = dir.serve_ops();
    let ids = paused_undos(&s, 2);
    sign_in(&b, &s, "ops-token");

    // The page's reads are held back (as on a slow network), so it still offers to resume
    // a migration another operator has cancelled meanwhile: the API refuses, and says why.
    open_migration(&b, &s, &ids[0]);
    b.wait(
        "the resume button",
        "return document.querySelector('[data-op=resume]') !== null;",
    );
    b.eval("const real = window.fetch; window.fetch = (url, o) => o && o.method !== 'GET' ? real(url, o) : new Promise(() => {}); return 1;");
    s.call_as(
        Some("ops-token"),
        "DELETE",
        &format!("/v1/migrations/{}", ids[0]),
        None,
    )
    .expect(200);
    b.click("[data-op=resume]");
    let asked = b.dialog();
    assert!(
        asked.starts_with(&format!(
            "Resume migration {}? It continues where it paused; the 3 steps done are not run again. The 1 step that failed (boom) runs again.",
            ids[0]
        )),
        "{asked}"
    );
    b.answer_dialog(true);
    let refusal = wait_message(&b, "refused");
    assert!(
        refusal.contains("Resume refused: cannot resume a cancelled migration; cancelled is final"),
        "{refusal}"
    );
    b.screenshot("lifecycle-refused");

    open_migration(&b, &s, &ids[1]);
    b.wait(
        "the cancel-and-roll-back button",
        "return document.querySelector('[data-op=cancel-rollback]') !== null;",
    );
    let offered = b.eval(
        "return [...document.querySelectorAll('#actions button')].map((b) => b.textContent);",
    );
    assert_eq!(
        offered,
        serde_json::json!(["Resume", "Cancel", "Cancel and roll back", "Roll back"])
    );
    check_page(&b, "migration with lifecycle buttons");
    b.screenshot("lifecycle-paused");
    // Asked, and declined: nothing happens.
    b.click("[data-op=cancel-rollback]");
    let asked = b.dialog();
    assert!(
        asked.starts_with(&format!(
            "Cancel migration {} and roll back the 3 steps that succeeded (a, b, c)? ",
            ids[1]
        )),
        "{asked}"
    );
    b.answer_dialog(false);
    assert_eq!(s.state(&ids[1]), "paused");
    // Asked, and accepted.
    b.click("[data-op=cancel-rollback]");
    b.dialog();
    b.answer_dialog(true);
    wait_message(
        &b,
        "Cancel and roll back: done; the migration is cancelled.",
    );
    for step in ["a", "b", "c"] {
        wait_node(&b, step, "rolled_back");
    }
    assert_eq!(s.state(&ids[1]), "cancelled");
    b.wait(
        "no buttons left",
        "return document.querySelectorAll('#actions button').length === 0;",
    );
    b.screenshot("lifecycle-cancelled");
    assert_loopback(&b, &s);
}

#[test]
fn a_step_a_crash_interrupted_is_resumed_from_the_page() {
    let Some(b) = Browser::start() else { return };
    let dir = Dir::new();
    dir.runbook(
        "block.yaml",
        &BLOCK.replace("idempotent: true", "idempotent: false"),
    );
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "block", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    wait_for("the held step to start", || {
        dir.path("runbooks/started").exists().then_some(())
    });
    s.kill9();
    // Not idempotent: the restarted server does not run it again, and pauses for an operator.
    let s = dir.serve_ops();
    s.wait_state(&id, "paused");

    sign_in(&b, &s, "ops-token");
    open_migration(&b, &s, &id);
    b.wait(
        "the resume buttons",
        "return document.querySelector('[data-op=resume-skip]') !== null;",
    );
    wait_node(&b, "hold", "interrupted");
    let offered = b.eval(
        "return [...document.querySelectorAll('#actions button')].map((b) => b.textContent);",
    );
    assert_eq!(
        offered,
        serde_json::json!([
            "Resume, running interrupted steps again",
            "Resume, skipping interrupted steps",
            "Cancel",
            "Roll back"
        ])
    );
    b.click("[data-op=resume-retry]");
    let asked = b.dialog();
    assert!(
        asked.starts_with(&format!(
            "Resume migration {id} and run its 1 step interrupted by a crash again (hold)?"
        )),
        "{asked}"
    );
    b.answer_dialog(false);
    b.click("[data-op=resume-skip]");
    let asked = b.dialog();
    assert!(
        asked.starts_with(&format!(
            "Resume migration {id} and skip its 1 step interrupted by a crash (hold)?"
        )),
        "{asked}"
    );
    b.answer_dialog(true);
    wait_message(&b, "Resume, skipping interrupted steps: done");
    s.wait_state(&id, "certified");
    wait_node(&b, "hold", "skipped");
    wait_node(&b, "verify", "succeeded");
    b.screenshot("resumed");
}

#[test]
fn a_window_counts_down_and_opens_without_a_reload() {
    let Some(b) = Browser::start() else { return };
    let dir = Dir::new();
    dir.runbook("windowed.yaml", WINDOWED);
    // Saturday 00:59:40 in Paris: the window opens at 01:00, in 20 seconds.
    let s = dir.serve_with_tokens(&[], &[("SENSEI_NOW", "2027-03-06T00:59:40+01:00")]);
    let id = s.create(Some("ops-token"), "windowed", "{}");
    sign_in(&b, &s, "vic-token");
    open_migration(&b, &s, &id);
    b.eval("window.sameLoad = true; return 1;");
    let text = |b: &Browser| {
        b.eval("return document.querySelector('#windows .window-state').textContent;")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = text(&b);
    assert!(
        first.starts_with("Closed: opens Sat 01:00 CET (in "),
        "{first}"
    );
    check_page(&b, "migration with a window");
    b.screenshot("window-closed");
    // The countdown moves each second...
    b.wait(
        "the countdown to move",
        &format!(
            "return document.querySelector('#windows .window-state').textContent !== {};",
            serde_json::json!(first)
        ),
    );
    // ...and when it reaches the opening, the section tells the window is open.
    let open = b.wait(
        "the window to open",
        "const t = document.querySelector('#windows .window-state').textContent; return t.startsWith('Open since') ? t : '';",
    );
    assert!(
        open.as_str()
            .unwrap_or_default()
            .starts_with("Open since Sat 01:00 CET ("),
        "{open}"
    );
    assert!(
        open.as_str()
            .unwrap_or_default()
            .contains("bound steps may start until Sat 04:30 CET (in 3h"),
        "{open}"
    );
    assert_eq!(
        b.eval("return window.sameLoad === true;"),
        serde_json::json!(true),
        "the page reloaded"
    );
    b.screenshot("window-open");
    assert_loopback(&b, &s);
}

#[test]
fn a_large_graph_is_one_tab_stop_walked_with_arrows_collapsed_and_zoomed() {
    let Some(b) = Browser::start() else { return };
    let dir = Dir::new();
    // Two waves of 45 steps: each wave shows 40 and a node for the other 5.
    let mut text = String::from("version: 1\nname: wide\nsteps:\n");
    for i in 0..90 {
        text.push_str(&format!("  - id: s{i:02}\n    run: \"true\"\n"));
        if i >= 45 {
            text.push_str(&format!("    needs: [s{:02}]\n", i - 45));
        }
    }
    dir.runbook("wide.yaml", &text);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "wide", "{}");
    sign_in(&b, &s, "vic-token");
    open_migration(&b, &s, &id);
    let count = |css: &str| {
        b.eval(&format!(
            "return document.querySelectorAll('{css}').length;"
        ))
    };
    assert_eq!(count("#dag g.node[data-key]"), serde_json::json!(80));
    assert_eq!(count("#dag g.node.more"), serde_json::json!(2));
    assert_eq!(
        count("#dag g.node[tabindex=\"0\"]"),
        serde_json::json!(1),
        "one Tab stop"
    );
    check_page(&b, "migration with a large graph");

    let focused = || {
        b.eval("const e = document.activeElement; return e.getAttribute('data-key') || e.getAttribute('aria-label');")
    };
    b.eval("document.querySelector('#dag g.node[tabindex=\"0\"]').focus(); return 1;");
    assert_eq!(focused(), "s00");
    b.press("ArrowDown");
    assert_eq!(focused(), "s01");
    b.press("ArrowRight");
    assert_eq!(focused(), "s46");
    b.press("End");
    assert_eq!(focused(), "+5 more: show all 45 steps of this wave");
    b.press("Enter");
    b.wait(
        "the wave expanded",
        "return document.querySelectorAll('#dag g.node[data-key]').length === 85;",
    );
    assert_eq!(focused(), "s85", "focus stays where the wave grew");
    b.press("ArrowLeft");
    assert_eq!(focused(), "+5 more: show all 45 steps of this wave");
    b.press("Home");
    assert_eq!(focused(), "s00");
    assert_eq!(
        count("#dag g.node[tabindex=\"0\"]"),
        serde_json::json!(1),
        "one Tab stop"
    );

    b.click("[data-zoom=out]");
    assert_eq!(
        b.eval("return document.getElementById('dag-zoom').textContent;"),
        "80%"
    );
    b.click("[data-zoom=fit]");
    let fits = b.eval("const box = document.getElementById('dag'); return document.querySelector('#dag svg').getBoundingClientRect().width <= box.clientWidth;");
    assert_eq!(fits, serde_json::json!(true));
    b.screenshot("large-graph");
}
