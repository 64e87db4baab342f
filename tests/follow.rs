//! `status`, `events` and `logs` with `--follow`: the real `sensei` follows a migration that
//! holds on a file, locally and through a real `sensei serve`, prints each change, event and
//! line once as it comes, and exits 0 once the migration rests (certified; failed) or at
//! Ctrl-C. Waiting is polling with deadlines.

mod harness;
mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use support::{Background, Sandbox, wait_for};

/// Holds until the file `go` exists next to the runbook; `boom` fails when `fail` exists.
const FOLLOWED: &str = r#"version: 1
name: followed
steps:
  - id: hold
    run: echo waiting; touch started; while [ ! -f go ]; do sleep 0.05; done; echo released
  - id: copy
    needs: [hold]
    for_each: [a, b]
    run: echo copied {{item}}
  - id: boom
    needs: [copy]
    run: echo checking; [ ! -f fail ] || exit 3
  - id: verify
    phase: validate
    run: echo verified
"#;

/// What each follow printed before it was let go: it must still be following then.
fn until_shown(follower: &Background, what: &str) {
    wait_for(&format!("a follow to print {what}"), || {
        follower.stdout().contains(what).then_some(())
    });
}

fn still_following(followers: &mut [&mut Background]) {
    for f in followers.iter_mut() {
        let exited = f.child.try_wait().expect("try_wait");
        assert!(
            exited.is_none(),
            "a follow exited before the migration rested: {exited:?}\n{}\n{}",
            f.stdout(),
            f.stderr()
        );
    }
}

/// The seq at the start of each line of `events` text.
fn seqs_of_text(text: &str) -> Vec<i64> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("an event line without a seq: {l:?}"))
        })
        .collect()
}

/// The lines of a followed `logs`, sorted (the two fan-out parts run side by side).
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// The header line of each status printed, in order.
fn status_heads(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("migration "))
        .collect()
}

#[test]
fn status_events_and_logs_follow_a_local_migration_until_it_is_certified() {
    let sb = Sandbox::new();
    let file = sb.write("followed.yaml", FOLLOWED);
    let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = run.id();
    wait_for("the step to start", || {
        sb.path("started").exists().then_some(())
    });

    let mut status = sb.spawn(&["status", &id, "--follow"]);
    let mut events = sb.spawn(&["events", &id, "-f"]);
    let mut logs = sb.spawn(&["logs", &id, "-f"]);
    until_shown(&status, "hold     running");
    until_shown(&events, "step_started       hold");
    until_shown(&logs, "hold | waiting");
    still_following(&mut [&mut status, &mut events, &mut logs]);

    sb.write("go", "");
    assert_eq!(run.finish().code, 0);
    let (status, events, logs) = (status.finish(), events.finish(), logs.finish());
    for follow in [&status, &events, &logs] {
        assert_eq!(follow.code, 0, "{follow:?}");
        assert_eq!(follow.stderr, "", "{follow:?}");
    }

    let heads = status_heads(&status.stdout);
    assert!(heads.len() >= 2, "{}", status.stdout);
    assert!(heads[0].ends_with("running"), "{}", status.stdout);
    assert!(
        heads.last().is_some_and(|h| h.ends_with("certified")),
        "{}",
        status.stdout
    );
    // Printed again only when something changed.
    let blocks: Vec<&str> = status.stdout.split("\n\n").map(str::trim).collect();
    assert!(blocks.windows(2).all(|w| w[0] != w[1]), "{}", status.stdout);

    let all: Vec<i64> = sb
        .events(&id)
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs_of_text(&events.stdout), all, "{}", events.stdout);

    assert_eq!(
        sorted_lines(&logs.stdout),
        [
            "boom | checking",
            "copy[a] | copied a",
            "copy[b] | copied b",
            "hold | released",
            "hold | waiting",
            "verify | verified",
        ],
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.starts_with("hold | waiting\nhold | released\n"));
}

#[test]
fn status_events_and_logs_follow_a_migration_on_a_server_until_it_fails() {
    let dir = harness::Dir::new();
    dir.runbook("followed.yaml", FOLLOWED);
    let s = dir.serve_ops();
    let runbooks = dir.path("runbooks");
    std::fs::write(runbooks.join("fail"), "").expect("write fail");
    let id = s.create(Some("ops-token"), "followed", "{}");
    s.post(&format!("/v1/migrations/{id}/start"), "{}")
        .expect(200);
    wait_for("the step to start", || {
        runbooks.join("started").exists().then_some(())
    });

    // A sandbox only to run the followers in the background.
    let sb = Sandbox::new();
    let server = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", s.base.as_str()]);
        sb.spawn_with_env(&all, &[("SENSEI_TOKEN", "vic-token")])
    };
    let mut status = server(&["status", &id, "-f"]);
    let mut events = server(&["events", &id, "--follow", "--format", "json"]);
    let mut logs = server(&["logs", &id, "-f"]);
    until_shown(&status, "hold     running");
    until_shown(&events, "\"step_started\"");
    until_shown(&logs, "hold | waiting");
    still_following(&mut [&mut status, &mut events, &mut logs]);

    std::fs::write(runbooks.join("go"), "").expect("write go");
    s.wait_state(&id, "failed");
    let (status, events, logs) = (status.finish(), events.finish(), logs.finish());
    for follow in [&status, &events, &logs] {
        assert_eq!(follow.code, 0, "{follow:?}");
        assert_eq!(follow.stderr, "", "{follow:?}");
    }

    let heads = status_heads(&status.stdout);
    assert!(heads[0].ends_with("running"), "{}", status.stdout);
    assert!(
        heads.last().is_some_and(|h| h.ends_with("failed")),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("boom     failed"),
        "{}",
        status.stdout
    );

    // One JSON document per line, each event once, in order.
    let printed: Vec<i64> = events
        .stdout
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            e["seq"].as_i64().expect("seq")
        })
        .collect();
    let all: Vec<i64> = s
        .events(&id)
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(printed, all, "{}", events.stdout);

    assert_eq!(
        sorted_lines(&logs.stdout),
        [
            "boom | checking",
            "copy[a] | copied a",
            "copy[b] | copied b",
            "hold | released",
            "hold | waiting",
        ],
        "{}",
        logs.stdout
    );
}

/// Sends SIGINT, as Ctrl-C at a terminal does.
fn ctrl_c(follower: &Background) {
    let pid = Pid::from_raw(i32::try_from(follower.child.id()).expect("a pid"));
    kill(pid, Signal::SIGINT).expect("signal the follow");
}

#[test]
fn ctrl_c_ends_a_follow_with_exit_0_locally_and_through_a_server() {
    // The server first: a failure there leaves no local run holding.
    let dir = harness::Dir::new();
    dir.runbook("followed.yaml", FOLLOWED);
    let s = dir.serve_ops();
    let remote = s.create(Some("ops-token"), "followed", "{}");
    s.post(&format!("/v1/migrations/{remote}/start"), "{}")
        .expect(200);

    let sb = Sandbox::new();
    let file = sb.write("followed.yaml", FOLLOWED);
    let run = sb.spawn(&["run", file.to_str().expect("utf-8")]);
    let id = run.id();
    wait_for("the step to start", || {
        sb.path("started").exists().then_some(())
    });

    let followers = [
        sb.spawn(&["status", &id, "-f"]),
        sb.spawn(&["logs", &id, "-f"]),
        sb.spawn_with_env(
            &["events", &remote, "-f", "--server", &s.base],
            &[("SENSEI_TOKEN", "vic-token")],
        ),
        sb.spawn_with_env(
            &["status", &remote, "-f", "--server", &s.base],
            &[("SENSEI_TOKEN", "vic-token")],
        ),
    ];
    for (follower, shown) in followers
        .iter()
        .zip(["running", "waiting", "step_started", "running"])
    {
        until_shown(follower, shown);
        ctrl_c(follower);
    }
    for follower in followers {
        let done = follower.finish();
        assert_eq!(done.code, 0, "{done:?}");
        assert!(!done.stderr.contains("panicked"), "{done:?}");
    }

    sb.write("go", "");
    assert_eq!(run.finish().code, 0);
    std::fs::write(dir.path("runbooks").join("go"), "").expect("write go");
    s.wait_state(&remote, "certified");
}
