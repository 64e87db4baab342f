//! Operator commands, locally and through a real `sensei serve` (`--server`): `--comment` on
//! each lifecycle operation lands in its `operator_request` event; `logs ID STEP` of a
//! fan-out step shows every part, labelled; `alerts` lists a server's outbox; `list` has a
//! header and filters by state and runbook.

mod harness;
mod support;

use serde_json::Value;
use std::path::Path;
use support::{Run, Sandbox, wait_for};

/// Holds until the file named by `gate` exists next to the runbook (`GATE.started` says it
/// holds); then `boom` fails.
const FAILING: &str = r#"version: 1
name: failing
params:
  gate: { type: string, default: go }
steps:
  - id: hold
    run: touch {{params.gate}}.started; while [ ! -f {{params.gate}} ]; do sleep 0.05; done
    rollback: echo undone
  - id: boom
    needs: [hold]
    run: "[ -f fixed ] || exit 3"
"#;

/// A fan-out over two tables, then a plain step.
const FAN: &str = r#"version: 1
name: fan
steps:
  - id: copy
    for_each: [orders, items]
    run: echo copied {{item}}; echo done {{item}}
  - id: after
    needs: [copy]
    run: echo after
"#;

/// Runs `sensei ARGS --server URL` as the operator `ops` (or `token`).
fn remote(sb: &Sandbox, url: &str, token: &str, args: &[&str]) -> Run {
    let out = sb
        .command(args)
        .args(["--server", url])
        .env("SENSEI_TOKEN", token)
        .env_remove("SENSEI_SERVER")
        .output()
        .expect("run sensei");
    Run::from(out)
}

/// Each `operator_request` of an events document: (op, comment).
fn requests(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "operator_request")
        .map(|e| {
            let text = |k: &str| e["data"][k].as_str().unwrap_or_default().to_owned();
            (text("op"), text("comment"))
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(op, c)| ((*op).to_owned(), (*c).to_owned()))
        .collect()
}

fn touch(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), "").expect("touch");
}

#[test]
fn a_comment_is_recorded_with_each_local_operation() {
    let sb = Sandbox::new();
    let file = sb.write("failing.yaml", FAILING);
    let file = file.to_str().expect("utf-8");

    // Pause asks the driving process; resume, retry and rollback are carried out here.
    let run = sb.spawn(&["run", file]);
    let id = run.id();
    wait_for("the step to start", || {
        sb.path("go.started").exists().then_some(())
    });
    sb.sensei(&["pause", &id, "--comment", "db is hot"]).ok();
    touch(sb.dir.path(), "go");
    assert_eq!(run.finish().code, 1);
    assert_eq!(sb.state(&id), "paused");
    assert_eq!(sb.sensei(&["resume", &id, "-m", "cooled down"]).code, 1);
    assert_eq!(sb.sensei(&["retry", &id, "-m", "one more try"]).code, 1);
    sb.sensei(&["rollback", &id, "-m", "give up"]).ok();
    assert_eq!(sb.state(&id), "failed");
    // What the lifecycle refuses is not recorded.
    let refused = sb.sensei(&["cancel", &id, "-m", "too late"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert_eq!(
        requests(&sb.events(&id)),
        pairs(&[
            ("pause", "db is hot"),
            ("resume", "cooled down"),
            ("retry", "one more try"),
            ("rollback", "give up"),
        ])
    );

    // Cancel asks the driving process too.
    let run = sb.spawn(&["run", file, "-p", "gate=go2"]);
    let other = run.id();
    wait_for("the step to start", || {
        sb.path("go2.started").exists().then_some(())
    });
    sb.sensei(&["cancel", &other, "-m", "wrong day"]).ok();
    assert_eq!(run.finish().code, 1);
    assert_eq!(sb.state(&other), "cancelled");
    assert_eq!(
        requests(&sb.events(&other)),
        pairs(&[("cancel", "wrong day")])
    );
}

#[test]
fn a_comment_is_recorded_with_each_operation_through_a_server() {
    let dir = harness::Dir::new();
    dir.runbook("failing.yaml", FAILING);
    let s = dir.serve_ops();
    let runbooks = dir.path("runbooks");
    let sb = Sandbox::new();
    let ops = |args: &[&str]| remote(&sb, &s.base, "ops-token", args);

    let id = s.create(Some("ops-token"), "failing", "{}");
    ops(&["start", &id, "-m", "window open"]).ok();
    wait_for("the step to start", || {
        runbooks.join("go.started").exists().then_some(())
    });
    ops(&["pause", &id, "--comment", "db is hot"]).ok();
    touch(&runbooks, "go");
    wait_for("the driver to let go", || {
        let status = s.get(&format!("/v1/migrations/{id}/status")).expect(200);
        status.json["driver"].is_null().then_some(())
    });
    ops(&["resume", &id, "-m", "cooled down"]).ok();
    s.wait_state(&id, "failed");
    ops(&["retry", &id, "-m", "one more try"]).ok();
    wait_for("the retry to fail", || {
        let events = s.events(&id);
        let failed = events
            .iter()
            .filter(|e| e["kind"] == "state_changed" && e["data"]["to"] == "failed")
            .count();
        (failed == 2).then_some(())
    });
    ops(&["rollback", &id, "-m", "give up"]).ok();
    wait_for("the rollback to finish", || {
        let events = s.events(&id);
        events
            .iter()
            .any(|e| e["kind"] == "rollback_finished")
            .then_some(())
    });
    let other = s.create(Some("ops-token"), "failing", "{}");
    ops(&["cancel", &other, "-m", "wrong day"]).ok();
    s.wait_state(&other, "cancelled");

    assert_eq!(
        requests(&s.events(&id)),
        pairs(&[
            ("start", "window open"),
            ("pause", "db is hot"),
            ("resume", "cooled down"),
            ("retry", "one more try"),
            ("rollback", "give up"),
        ])
    );
    assert_eq!(
        requests(&s.events(&other)),
        pairs(&[("cancel", "wrong day")])
    );
}

#[test]
fn logs_of_a_fan_out_step_show_every_part_labelled_locally_and_through_a_server() {
    let sb = Sandbox::new();
    let file = sb.write("fan.yaml", FAN);
    let id = sb.sensei(&["run", file.to_str().expect("utf-8")]).ok().id();
    let dir = harness::Dir::new();
    dir.runbook("fan.yaml", FAN);
    let s = dir.serve_ops();
    let remote_id = s.create(Some("ops-token"), "fan", "{}");
    s.post(&format!("/v1/migrations/{remote_id}/start"), "{}")
        .expect(200);
    s.wait_state(&remote_id, "certified");

    let local = |args: &[&str]| sb.sensei(args).ok().stdout;
    let server = |args: &[&str]| remote(&sb, &s.base, "vic-token", args).ok().stdout;
    for (id, show) in [
        (id.as_str(), &local as &dyn Fn(&[&str]) -> String),
        (remote_id.as_str(), &server),
    ] {
        let mut parts: Vec<String> = show(&["logs", id, "copy"])
            .lines()
            .map(str::to_owned)
            .collect();
        // Each part's lines stay in order; the parts ran side by side.
        parts.sort_by_key(|l| l.starts_with("copy[orders]"));
        assert_eq!(
            parts,
            [
                "copy[items] | copied items",
                "copy[items] | done items",
                "copy[orders] | copied orders",
                "copy[orders] | done orders",
            ]
        );
        assert_eq!(
            show(&["logs", id, "copy[orders]"]),
            "copied orders\ndone orders\n"
        );
        assert_eq!(show(&["logs", id, "after"]), "after\n");
        let json: Value =
            serde_json::from_str(&show(&["logs", id, "copy", "--format", "json"])).expect("json");
        assert_eq!(json.as_array().map(Vec::len), Some(4), "{json}");
    }
    let unknown = sb.sensei(&["logs", &id, "cop"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no step `cop`"), "{unknown:?}");
}

#[test]
fn alerts_lists_the_outbox_of_a_server() {
    const MAILED: &str = r#"version: 1
name: mailed
alerts:
  channels:
    dba-mail:
      email: { to: [dba@example.com] }
  rules:
    - on: [created]
      notify: [dba-mail]
steps:
  - id: one
    run: echo one
"#;
    let dir = harness::Dir::new();
    dir.runbook("mailed.yaml", MAILED);
    let s = dir.serve_ops();
    let id = s.create(Some("ops-token"), "mailed", "{}");
    let sb = Sandbox::new();
    let vic = |args: &[&str]| remote(&sb, &s.base, "vic-token", args);

    // No mail server: the email waits in the server's outbox.
    let text = vic(&["alerts"]).ok().stdout;
    assert!(
        text.starts_with(&format!("{id}  pending   event 1 ")),
        "{text}"
    );
    assert!(text.contains("-> dba-mail (email), 0 attempt(s)"), "{text}");
    let all: Value = serde_json::from_str(&vic(&["alerts", "--format", "json"]).ok().stdout)
        .expect("alerts JSON");
    let one: Value = serde_json::from_str(&vic(&["alerts", &id, "--format", "json"]).ok().stdout)
        .expect("alerts JSON");
    assert_eq!(all, one);
    assert_eq!(one[0]["channel"], "dba-mail", "{one}");
    assert_eq!(one[0]["event_id"], format!("{id}:1"), "{one}");
    let unknown = vic(&["alerts", "m-nosuchthing"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");

    // The same documents as the local command on the server's state directory.
    s.terminate();
    let local = sb
        .command(&["alerts", "--format", "json"])
        .env("SENSEI_STATE_DIR", dir.path("state"))
        .output()
        .expect("run sensei");
    let local: Value = serde_json::from_slice(&local.stdout).expect("local alerts JSON");
    assert_eq!(local, all);
}

/// The lines of `list` text after its header.
fn listed(out: &Run) -> Vec<String> {
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("ID  ") && header.contains("STATE") && header.contains("RUNBOOK"),
        "{}",
        out.stdout
    );
    lines.map(str::to_owned).collect()
}

#[test]
fn list_has_a_header_and_filters_by_state_and_runbook_locally_and_through_a_server() {
    let sb = Sandbox::new();
    let fan = sb.write("fan.yaml", FAN);
    let failing = sb.write("failing.yaml", FAILING);
    touch(sb.dir.path(), "go");
    let certified = sb.sensei(&["run", fan.to_str().expect("utf-8")]).ok().id();
    let failed = sb.sensei(&["run", failing.to_str().expect("utf-8")]).id();

    let dir = harness::Dir::new();
    dir.runbook("fan.yaml", FAN);
    dir.runbook("failing.yaml", FAILING);
    let s = dir.serve_ops();
    let fan_remote = s.create(Some("ops-token"), "fan", "{}");
    let failing_remote = s.create(Some("ops-token"), "failing", "{}");
    s.call_as(
        Some("ops-token"),
        "DELETE",
        &format!("/v1/migrations/{failing_remote}"),
        None,
    )
    .expect(200);

    let local = |args: &[&str]| sb.sensei(args);
    let server = |args: &[&str]| remote(&sb, &s.base, "vic-token", args);
    for (show, fan_id, failing_id, failing_state) in [
        (
            &local as &dyn Fn(&[&str]) -> Run,
            certified.as_str(),
            failed.as_str(),
            "failed",
        ),
        (
            &server,
            fan_remote.as_str(),
            failing_remote.as_str(),
            "cancelled",
        ),
    ] {
        let all = listed(&show(&["list"]).ok());
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].starts_with(failing_id), "newest first: {all:?}");
        let by_runbook = listed(&show(&["list", "--runbook", "fan"]).ok());
        assert_eq!(by_runbook.len(), 1, "{by_runbook:?}");
        assert!(by_runbook[0].starts_with(fan_id), "{by_runbook:?}");
        let by_state = listed(&show(&["list", "--state", failing_state]).ok());
        assert_eq!(by_state.len(), 1, "{by_state:?}");
        assert!(by_state[0].starts_with(failing_id), "{by_state:?}");
        let none = show(&["list", "--state", failing_state, "--runbook", "fan"]).ok();
        assert_eq!(
            none.stdout,
            format!("no migrations in state {failing_state} of runbook `fan`\n")
        );
        let json: Value = serde_json::from_str(
            &show(&["list", "--runbook", "failing", "--format", "json"])
                .ok()
                .stdout,
        )
        .expect("list JSON");
        assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
        assert_eq!(json[0]["id"], failing_id);
    }
}
