//! `sensei plan` on fixture runbooks: snapshot tests of every rendering, and the behaviours a
//! reviewer relies on (fan-out names, phases as barriers, digest stability, param errors).

use assert_cmd::Command;

/// A fixed "now" so window openings and schedule fire times are reproducible.
const NOW: &str = "2027-10-20T00:00:00Z";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/plan/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn plan(file: &str, args: &[&str]) -> (i32, String, String) {
    plan_at(NOW, file, args)
}

fn plan_at(now: &str, file: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("sensei")
        .expect("binary")
        .arg("plan")
        .arg(fixture(file))
        .args(args)
        .env("SENSEI_NOW", now)
        .output()
        .expect("runs");
    (
        // -1: killed by a signal (every caller asserts the code).
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(file: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = plan(file, args);
    assert_eq!(code, 0, "stderr: {stderr}");
    stdout
}

#[test]
fn text_rendering() {
    insta::assert_snapshot!(
        "orders_text",
        ok("orders.yaml", &["-p", "target_dsn=postgres://secret@db"])
    );
    insta::assert_snapshot!("fan_out_text", ok("fan-out.yaml", &[]));
}

#[test]
fn json_rendering() {
    insta::assert_snapshot!(
        "orders_json",
        ok("orders.yaml", &["-p", "target_dsn=x", "--format", "json"])
    );
}

#[test]
fn diagram_renderings() {
    insta::assert_snapshot!(
        "orders_mermaid",
        ok(
            "orders.yaml",
            &["-p", "target_dsn=x", "--format", "mermaid"]
        )
    );
    insta::assert_snapshot!(
        "orders_dot",
        ok("orders.yaml", &["-p", "target_dsn=x", "--format", "dot"])
    );
    insta::assert_snapshot!(
        "orders_markdown",
        ok(
            "orders.yaml",
            &["-p", "target_dsn=x", "--format", "markdown"]
        )
    );
}

#[test]
fn static_fan_out_is_expanded_and_dynamic_fan_out_is_a_placeholder() {
    let out = ok("fan-out.yaml", &["--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&out).expect("json");
    let ids: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("a step id"))
        .collect();
    assert_eq!(
        ids,
        [
            "discover",
            "per-shard[1]",
            "per-shard[2]",
            "per-shard[3]",
            "per-table[*]",
            "static-list[x]",
            "static-list[y]"
        ]
    );
    // Needing a fan-out step means needing every expansion.
    let table = &plan["steps"][4];
    assert_eq!(
        table["needs"],
        serde_json::json!(["per-shard[1]", "per-shard[2]", "per-shard[3]"])
    );
    assert_eq!(table["dynamic"], serde_json::json!(true));
}

#[test]
fn params_change_the_expansion_and_the_digest() {
    let one = ok("fan-out.yaml", &["-p", "shards=[7]", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&one).expect("json");
    assert_eq!(plan["steps"][1]["id"], "per-shard[7]");
    let default: serde_json::Value =
        serde_json::from_str(&ok("fan-out.yaml", &["--format", "json"])).expect("json");
    assert_ne!(plan["digest"], default["digest"]);
    let again: serde_json::Value =
        serde_json::from_str(&ok("fan-out.yaml", &["--format", "json"])).expect("json");
    assert_eq!(default["digest"], again["digest"], "the digest is stable");
}

#[test]
fn secrets_never_appear_and_do_not_change_the_digest() {
    let a = ok(
        "orders.yaml",
        &[
            "-p",
            "target_dsn=postgres://alice:hunter2@db",
            "--format",
            "json",
        ],
    );
    let b = ok(
        "orders.yaml",
        &[
            "-p",
            "target_dsn=postgres://bob:swordfish@db",
            "--format",
            "json",
        ],
    );
    assert!(!a.contains("hunter2") && a.contains("\"***\""));
    let digest =
        |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("json")["digest"].clone();
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn bad_params_are_refused_with_the_param_named() {
    let (code, _, stderr) = plan("orders.yaml", &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("param `target_dsn` is required"),
        "{stderr}"
    );
    let (code, _, stderr) = plan(
        "orders.yaml",
        &["-p", "target_dsn=x", "-p", "batch_size=lots"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("param `batch_size` must be an integer, got `lots`"),
        "{stderr}"
    );
    let (code, _, stderr) = plan("orders.yaml", &["-p", "target_dsn=x", "-p", "tabels=a"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown param `tabels` (did you mean `tables`?)"),
        "{stderr}"
    );
}

#[test]
fn window_openings_note_dst_changes() {
    let out = ok("orders.yaml", &["-p", "target_dsn=x"]);
    assert!(
        out.contains("opens Sun 2027-10-31 01:30 CEST → 04:30 CET"),
        "{out}"
    );
    assert!(
        out.contains("note: clocks go back 1h at 03:00 (to 02:00 CET)"),
        "{out}"
    );
}

#[test]
fn an_invalid_runbook_is_not_planned() {
    let (code, stdout, stderr) = plan("invalid.yaml", &[]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("error: steps form a cycle: a → b → a"),
        "{stderr}"
    );
}

/// The week of the spring-forward change in Berlin (Sun 2027-03-28).
const SPRING: &str = "2027-03-20T00:00:00Z";

fn windows_plan(format: &str) -> String {
    let (code, stdout, stderr) = plan_at(SPRING, "windows.yaml", &["--format", format]);
    assert_eq!(code, 0, "stderr: {stderr}");
    stdout
}

#[test]
fn window_fit_renderings() {
    insta::assert_snapshot!("windows_text", windows_plan("text"));
    insta::assert_snapshot!("windows_json", windows_plan("json"));
    insta::assert_snapshot!("windows_markdown", windows_plan("markdown"));
}

#[test]
fn bound_work_is_measured_from_the_opening_through_unbound_steps_between() {
    let plan: serde_json::Value = serde_json::from_str(&windows_plan("json")).expect("json");
    let fit = |i: usize| plan["windows"][i]["fit"].clone();
    // `prepare` runs before the window; `verify` is not bound but runs between two bound steps.
    assert_eq!(
        fit(0),
        serde_json::json!({
            "fits": true,
            "chain": ["freeze", "verify", "switch"],
            "work": "30m",
            "last_start": "15m",
            "start_before": "1h30m",
            "done_by": "2h"
        })
    );
    // The two backfills run side by side; reindex starts after both.
    assert_eq!(fit(1)["fits"], serde_json::json!(false));
    assert_eq!(fit(1)["work"], "1h5m");
    assert_eq!(fit(1)["last_start"], "40m");
    // No bound steps: no fit.
    assert_eq!(plan["windows"][2]["name"], "idle");
    assert!(plan["windows"][2].get("fit").is_none());
    // A bound step without an estimate: unknown.
    let orders: serde_json::Value = serde_json::from_str(&ok(
        "orders.yaml",
        &["-p", "target_dsn=x", "--format", "json"],
    ))
    .expect("json");
    let fit = &orders["windows"][0]["fit"];
    assert_eq!(fit["fits"], serde_json::Value::Null);
    assert_eq!(fit["unestimated"], serde_json::json!(["freeze-writes"]));
}

#[test]
fn a_window_too_short_for_its_bound_work_is_a_warning() {
    let text = windows_plan("text");
    assert!(
        text.contains(
            "  warning: the bound work does not fit in window short: it ends 1h5m after opening, after the close at 1h; `reindex` starts 40m after opening, not before the cutoff at 35m\n"
        ),
        "{text}"
    );
    assert_eq!(text.matches("warning:").count(), 1, "{text}");
}

#[test]
fn an_opening_moved_past_a_spring_forward_gap_is_noted() {
    let text = windows_plan("text");
    assert!(
        text.contains(
            "  opens Sun 2027-03-28 03:00 CEST → 05:00 CEST, last start 04:30 CEST\n    note: 02:30 does not exist on Sun 2027-03-28: clocks go forward 1h at 02:00; the window opens right after, at 03:00 CEST\n"
        ),
        "{text}"
    );
}
