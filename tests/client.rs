//! The CLI as a client (`--server URL`, `SENSEI_TOKEN`): the real `sensei` binary against the
//! real `sensei serve`, with the local commands' output and exit codes.

mod harness;

use harness::runbooks::FLOW;
use harness::{BIN, Dir, Server, free_port, wait_for};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

fn server(dir: &Dir) -> Server {
    dir.runbook("flow.yaml", FLOW);
    dir.serve_ops()
}

/// Runs `sensei ARGS --server URL` with `token` as `SENSEI_TOKEN` (none when `None`).
fn sensei(dir: &Dir, url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--server", url])
        .current_dir(dir.dir.path())
        .env_remove("SENSEI_SERVER")
        .env_remove("SENSEI_TOKEN")
        .env_remove("SENSEI_STATE_DIR")
        .env_remove("SENSEI_CONFIG")
        .stdin(Stdio::null());
    if let Some(token) = token {
        cmd.env("SENSEI_TOKEN", token);
    }
    cmd.output().expect("run sensei")
}

/// The exit code; -1 when a signal killed the process (then shown with both streams).
fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
fn expect(out: Output, want: i32) -> Output {
    assert_eq!(
        code(&out),
        want,
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    out
}

#[test]
fn start_status_list_approve_events_and_logs_through_the_server() {
    let dir = Dir::new();
    let s = server(&dir);
    let url = s.base.clone();
    let id = s.create(Some("root-token"), "flow", r#"{"note":"hi"}"#);

    let out = expect(sensei(&dir, &url, Some("ops-token"), &["start", &id]), 0);
    assert!(stdout(&out).contains(&format!("start of {id}")), "{out:?}");
    s.wait_state(&id, "awaiting_approval");

    let out = expect(
        sensei(
            &dir,
            &url,
            Some("vic-token"),
            &["status", &id, "--format", "json"],
        ),
        0,
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["state"], "awaiting_approval");
    assert_eq!(doc["starter"], "root");
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("a step name"))
        .collect();
    assert_eq!(steps, ["analyze", "signoff", "work", "check"]);

    // Text, and the newest migration when no id is given.
    let out = expect(sensei(&dir, &url, Some("vic-token"), &["status"]), 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("migration {id}  flow  awaiting_approval")),
        "{text}"
    );
    assert!(text.contains("started by root at"), "{text}");
    assert!(text.contains("  signoff"), "{text}");

    let out = expect(sensei(&dir, &url, Some("vic-token"), &["list"]), 0);
    let text = stdout(&out);
    assert!(
        text.contains(&id) && text.contains("awaiting_approval"),
        "{text}"
    );
    let out = expect(
        sensei(
            &dir,
            &url,
            Some("vic-token"),
            &["list", "--state", "certified"],
        ),
        0,
    );
    assert!(!stdout(&out).contains(&id), "{out:?}");

    // The starter cannot approve its own migration.
    let out = expect(
        sensei(&dir, &url, Some("root-token"), &["approve", &id, "signoff"]),
        3,
    );
    assert!(stderr(&out).starts_with("error: "), "{out:?}");

    let out = expect(
        sensei(
            &dir,
            &url,
            Some("alice-token"),
            &["approve", &id, "signoff", "-m", "looks good"],
        ),
        0,
    );
    assert!(
        stdout(&out).contains(&format!("gate signoff of {id}: approve by alice")),
        "{out:?}"
    );
    s.wait_state(&id, "certified");
    // The filter that left the migration out while it waited lists it now.
    let out = expect(
        sensei(
            &dir,
            &url,
            Some("vic-token"),
            &["list", "--state", "certified"],
        ),
        0,
    );
    assert!(stdout(&out).contains(&id), "{out:?}");

    let out = expect(sensei(&dir, &url, Some("vic-token"), &["events", &id]), 0);
    assert!(stdout(&out).contains("gate_decided"), "{out:?}");
    let out = expect(
        sensei(
            &dir,
            &url,
            Some("vic-token"),
            &["events", &id, "--format", "json"],
        ),
        0,
    );
    let events: Value = serde_json::from_slice(&out.stdout).expect("events JSON");
    assert!(events.as_array().is_some_and(|e| !e.is_empty()));

    let out = expect(
        sensei(&dir, &url, Some("vic-token"), &["logs", &id, "analyze"]),
        0,
    );
    assert_eq!(stdout(&out).trim(), "analyzing hi");
    let out = expect(sensei(&dir, &url, Some("vic-token"), &["logs", &id]), 0);
    let text = stdout(&out);
    assert!(
        text.contains("analyze | analyzing hi") && text.contains("work | worked"),
        "{text}"
    );
    let out = expect(
        sensei(&dir, &url, Some("vic-token"), &["logs", &id, "nope"]),
        2,
    );
    assert!(stderr(&out).contains("no step `nope`"), "{out:?}");

    // The same documents and lines as the local commands on the server's state directory.
    let remote: Vec<Output> = [&["status", &id, "--format", "json"][..], &["status", &id]]
        .iter()
        .map(|args| expect(sensei(&dir, &url, Some("vic-token"), args), 0))
        .collect();
    s.terminate();
    let state = dir.path("state");
    for (args, remote) in [&["status", &id, "--format", "json"][..], &["status", &id]]
        .iter()
        .zip(&remote)
    {
        let local = Command::new(BIN)
            .args(*args)
            .arg("--state-dir")
            .arg(&state)
            .current_dir(dir.dir.path())
            .env_remove("SENSEI_SERVER")
            .env_remove("SENSEI_CONFIG")
            .output()
            .expect("run sensei");
        let local = expect(local, 0);
        assert_eq!(stdout(&local), stdout(remote), "{args:?}");
    }
}

#[test]
fn an_illegal_transition_is_refused_naming_the_allowed_ones() {
    let dir = Dir::new();
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    let out = expect(sensei(&dir, &s.base, Some("ops-token"), &["pause", &id]), 3);
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot pause a created migration"),
        "{err}"
    );
    assert!(err.contains("start, cancel"), "{err}");
    // Cancel is allowed: DELETE, done.
    let out = expect(
        sensei(&dir, &s.base, Some("ops-token"), &["cancel", &id]),
        0,
    );
    assert!(stdout(&out).contains(&format!("cancel of {id}")), "{out:?}");
    wait_for("cancelled", || (s.state(&id) == "cancelled").then_some(()));
}

#[test]
fn an_unknown_id_is_a_usage_error() {
    let dir = Dir::new();
    let s = server(&dir);
    let out = expect(
        sensei(
            &dir,
            &s.base,
            Some("ops-token"),
            &["status", "m-nosuchthing"],
        ),
        2,
    );
    assert!(stderr(&out).starts_with("error: "), "{out:?}");
    expect(
        sensei(
            &dir,
            &s.base,
            Some("ops-token"),
            &["start", "m-nosuchthing"],
        ),
        2,
    );
}

#[test]
fn without_a_token_or_with_a_role_too_small_the_call_is_refused() {
    let dir = Dir::new();
    let s = server(&dir);
    let id = s.create(Some("ops-token"), "flow", "{}");
    let out = expect(sensei(&dir, &s.base, None, &["status", &id]), 3);
    assert!(stderr(&out).starts_with("error: "), "{out:?}");
    let out = expect(sensei(&dir, &s.base, Some("wrong-token"), &["list"]), 3);
    assert!(stderr(&out).starts_with("error: "), "{out:?}");
    // A viewer cannot start.
    expect(sensei(&dir, &s.base, Some("vic-token"), &["start", &id]), 3);
    assert_eq!(s.state(&id), "created");
}

#[test]
fn a_server_that_is_down_is_a_clear_failure() {
    let dir = Dir::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = expect(sensei(&dir, &url, Some("ops-token"), &["status", "m-x"]), 1);
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("error: cannot reach the server at {url}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn commands_of_the_local_store_refuse_a_server_instead_of_working_locally() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let url = format!("http://127.0.0.1:{}", free_port());
    let runbook = dir.path("runbooks").join("flow.yaml");
    let out = expect(
        sensei(&dir, &url, None, &["run", runbook.to_str().expect("utf-8")]),
        2,
    );
    assert!(stderr(&out).contains("works on the local store"), "{out:?}");
    // `alerts` lists a server's alerts, but sending them is the server's own business.
    let out = expect(sensei(&dir, &url, None, &["alerts", "--deliver"]), 2);
    assert!(
        stderr(&out).contains("the server at") && stderr(&out).contains("delivers its own"),
        "{out:?}"
    );
    assert!(!dir.path(".sensei").exists());
}
