//! The committed JSON Schema is exactly what `sensei schema` prints (generated from the types).

use assert_cmd::Command;

#[test]
fn committed_schema_matches_sensei_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/runbook.schema.json");
    let committed = std::fs::read_to_string(path).expect("schemas/runbook.schema.json exists");
    let output = Command::cargo_bin("sensei")
        .expect("binary")
        .arg("schema")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        committed == printed,
        "schemas/runbook.schema.json is out of date: run `cargo run -- schema > schemas/runbook.schema.json`"
    );
}

#[test]
fn schema_describes_every_step_key_and_rejects_unknown_ones() {
    let output = Command::cargo_bin("sensei")
        .expect("binary")
        .arg("schema")
        .output()
        .expect("runs");
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let step = &schema["$defs"]["Step"];
    assert_eq!(step["additionalProperties"], serde_json::json!(false));
    for key in [
        "id",
        "phase",
        "needs",
        "when",
        "for_each",
        "pool",
        "window",
        "idempotent",
        "timeout",
        "retry",
        "run",
        "http",
        "gate",
        "wait",
        "check",
        "rollback",
        "outputs",
    ] {
        assert!(
            step["properties"].get(key).is_some(),
            "step key `{key}` missing from the schema"
        );
    }
    let required = schema["required"].as_array().expect("required list");
    for key in ["version", "name", "steps"] {
        assert!(
            required.contains(&serde_json::json!(key)),
            "`{key}` should be required"
        );
    }
}
