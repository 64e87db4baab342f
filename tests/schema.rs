//! The committed JSON Schema is exactly what `sensei schema` prints (generated from the types),
//! and what users read (the docs, the README, the example runbooks, `--help`) points to the
//! docs' own sections, never to the SPEC, which users do not have.

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

#[test]
fn what_users_read_cites_the_docs_not_the_spec() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    for dir in ["docs", "runbooks"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("a directory") {
            let path = entry.expect("an entry").path();
            if path.is_file() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                texts.push((path.display().to_string(), text));
            }
        }
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    texts.push(("README.md".into(), readme));
    let help = |args: &[&str]| {
        let output = Command::cargo_bin("sensei")
            .expect("binary")
            .args(args)
            .output()
            .expect("runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(commands.iter().any(|c| c == "serve"), "{top}");
    texts.push(("sensei --help".into(), top));
    for command in &commands {
        texts.push((
            format!("sensei {command} --help"),
            help(&[command, "--help"]),
        ));
    }
    let citing: Vec<&String> = texts
        .iter()
        .filter(|(_, text)| text.contains("SPEC §"))
        .map(|(name, _)| name)
        .collect();
    assert!(citing.is_empty(), "these cite the SPEC: {citing:?}");
}
