//! Crash windows (issue "Trust", item 11): a migration a crash left `created` is continued by
//! `resume`; a step whose processes outlived both their driver and its watchdog is never run
//! a second time beside them; and the hint after an interruption names the choice to make.

mod harness;
mod support;

use support::{Background, Sandbox, wait_for};

/// The `sensei __reap` watchdog started by the driver `parent`.
fn watchdog_of(parent: u32) -> i32 {
    wait_for("the watchdog", || {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("__reap")
            })
    })
}

/// Kills a driver and its watchdog together (`kill -9` of both), as a host losing both would.
fn kill_driver_and_watchdog(bg: Background) {
    let watchdog = watchdog_of(bg.child.id());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watchdog),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the watchdog");
    bg.kill9();
}

const HELD: &str = r#"
version: 1
name: held
steps:
  - id: copy
    IDEMPOTENT
    run: "echo $$ >> copy.pids; mkdir copy.lock || echo overlap >> overlaps; echo started; while [ ! -e go ]; do sleep 0.02; done; rmdir copy.lock; echo ran >> ran"
"#;

fn alive(pid: i32) -> bool {
    support::alive(pid)
}

/// Waits until the step's first line of output is stored. Its process group was recorded
/// before it ran (with the store's next group commit, which carries that line or an earlier
/// one): a driver and watchdog killed after this leave a record a resume finds.
fn wait_until_recorded(sb: &Sandbox, id: &str) {
    wait_for("the step's output to be stored", || {
        let logs = sb.sensei(&["logs", id, "copy"]);
        logs.stdout.contains("started").then_some(())
    });
}

#[test]
fn a_step_still_running_from_a_dead_driver_is_never_run_twice() {
    let sb = Sandbox::new();
    sb.write(
        "held.yaml",
        &HELD.replace("IDEMPOTENT", "idempotent: false"),
    );
    let bg = sb.spawn(&["run", "held.yaml"]);
    let id = bg.id();
    wait_for("the step to run", || {
        sb.path("copy.lock").exists().then_some(())
    });
    wait_until_recorded(&sb, &id);
    kill_driver_and_watchdog(bg);
    let orphan = support::pids_in(&sb.path("copy.pids"))[0];
    assert!(alive(orphan), "the step outlived its driver");

    // Retrying it now would run a second copy beside the first: refused.
    // (In the background, bounded: a second copy would run until `go`.)
    let retry = sb.spawn(&["resume", &id, "--retry-interrupted"]).finish();
    assert_eq!(retry.code, 3, "{retry:?}");
    assert!(
        retry.stderr.contains("still runs in process group"),
        "{retry:?}"
    );
    // A plain resume marks it interrupted, says why, and names the choice.
    let resumed = sb.spawn(&["resume", &id]).finish();
    assert_eq!(resumed.code, 1, "{resumed:?}");
    assert!(
        resumed.stdout.contains(&format!(
            "step copy was interrupted; `sensei resume {id} --retry-interrupted` runs it again, `--skip-interrupted` skips it"
        )),
        "{resumed:?}"
    );
    let copy = sb.step(&id, "copy");
    assert_eq!(copy["state"], "interrupted");
    assert!(
        copy["reason"]
            .as_str()
            .is_some_and(|r| r.contains("still run")),
        "{copy}"
    );
    let status = sb.sensei(&["status", &id]).ok();
    assert!(status.stdout.contains("--retry-interrupted"), "{status:?}");

    // Once the first copy has ended, the retry runs it again.
    sb.write("go", "");
    wait_for("the first copy to end", || (!alive(orphan)).then_some(()));
    std::fs::remove_file(sb.path("go")).expect("remove go");
    let retry = sb.spawn(&["resume", &id, "--retry-interrupted"]);
    wait_for("the second copy", || {
        (support::pids_in(&sb.path("copy.pids")).len() == 2).then_some(())
    });
    sb.write("go", "");
    let run = retry.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sb.state(&id), "certified");
    assert!(!sb.path("overlaps").exists(), "two copies ran at once");
}

#[test]
fn an_idempotent_step_still_running_is_not_rerun_beside_itself() {
    let sb = Sandbox::new();
    sb.write("held.yaml", &HELD.replace("IDEMPOTENT", "idempotent: true"));
    let bg = sb.spawn(&["run", "held.yaml"]);
    let id = bg.id();
    wait_for("the step to run", || {
        sb.path("copy.lock").exists().then_some(())
    });
    wait_until_recorded(&sb, &id);
    kill_driver_and_watchdog(bg);
    let resumed = sb.spawn(&["resume", &id]).finish();
    assert_eq!(resumed.code, 1, "{resumed:?}");
    assert_eq!(sb.step(&id, "copy")["state"], "interrupted");
    assert_eq!(
        support::pids_in(&sb.path("copy.pids")).len(),
        1,
        "not run again"
    );
    let events = sb.events(&id);
    let interrupted = events
        .iter()
        .find(|e| e["kind"] == "step_interrupted")
        .expect("step_interrupted");
    assert_eq!(interrupted["data"]["rerun"], false);
    assert!(
        interrupted["data"]["process_group"].is_i64(),
        "{interrupted}"
    );
    // Let the orphan end before the sandbox goes: it would wait for `go` forever.
    let orphan = support::pids_in(&sb.path("copy.pids"))[0];
    sb.write("go", "");
    wait_for("the orphan to end", || (!alive(orphan)).then_some(()));
}

#[test]
fn resume_starts_a_migration_a_crash_left_created() {
    let dir = harness::Dir::new();
    dir.runbook(
        "plain.yaml",
        "version: 1\nname: plain\nsteps:\n  - id: one\n    run: echo one >> ran\n",
    );
    let s = dir.serve_ops();
    let api = s.create(Some("ops-token"), "plain", "{}");
    let local = s.create(Some("ops-token"), "plain", "{}");
    // Through the API.
    let resumed = s
        .post(&format!("/v1/migrations/{api}/resume"), "")
        .expect(200);
    assert_ne!(resumed.json["state"], "created");
    s.wait_state(&api, "certified");
    s.kill9();
    // And locally, on the same store.
    let out = std::process::Command::new(support::BIN)
        .args(["resume", &local])
        .env("SENSEI_STATE_DIR", dir.path("state"))
        .current_dir(dir.path(""))
        .output()
        .expect("sensei resume");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("migration {local} certified")),
        "{stdout}"
    );
}
