//! The committed JSON Schema is exactly what `sensei schema` prints (generated from the types),
//! and it refuses every wrong runbook of the corpus that a JSON Schema can refuse, while it
//! accepts every valid one. The schema is run by `boon`, a validator of JSON Schema 2020-12, as
//! an editor would run it. What users read (the docs, the README, the example runbooks,
//! `--help`) points to the docs' own sections, never to the SPEC, which users do not have.

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

/// Wrong runbooks, each refused by `sensei validate`: `invalid/` holds the loader's rule
/// fixtures (`tests/validate.rs` checks their exact diagnostics), `wrong/` more cases of the
/// schema's rules and of what it cannot say.
const WRONG: &[&str] = &["tests/fixtures/invalid", "tests/fixtures/wrong"];

/// Valid runbooks, which the schema must accept: the examples users copy from, the plan
/// fixtures (but the cycle that `sensei plan` reports), and `valid/`, written in the loosest
/// ways the loader accepts.
const VALID: &[&str] = &["runbooks", "tests/fixtures/plan", "tests/fixtures/valid"];
const NOT_VALID: &str = "tests/fixtures/plan/invalid.yaml";

const CROSS_REFERENCE: &str =
    "names something declared elsewhere in the runbook; a schema cannot look up other values";
const TEMPLATE: &str = "the mistake is inside a template, which the schema sees as a string";
const COMPARISON: &str = "compares two values of the runbook; JSON Schema 2020-12 has no `$data`";
const UNIQUE_KEY: &str = "`uniqueItems` compares whole entries, not one key of each";
const GRAPH: &str = "a property of the graph that `needs` draws between steps";
const CALENDAR: &str = "needs the cron expression's fire times in the window's zone";

/// Wrong runbooks the schema accepts, each with why a JSON Schema cannot refuse it.
const VALIDATE_ONLY: &[(&str, &str)] = &[
    ("invalid/alert-unknown-step.yaml", CROSS_REFERENCE),
    ("invalid/cycle.yaml", GRAPH),
    ("invalid/duplicate-step-id.yaml", UNIQUE_KEY),
    ("invalid/duplicate-webhook.yaml", UNIQUE_KEY),
    ("invalid/for-each-non-list-param.yaml", CROSS_REFERENCE),
    ("invalid/gate-required-too-many.yaml", COMPARISON),
    ("invalid/max-backoff-shorter.yaml", COMPARISON),
    ("invalid/needs-later-phase.yaml", CROSS_REFERENCE),
    (
        "invalid/poll-stable-for-not-shorter-than-timeout.yaml",
        COMPARISON,
    ),
    ("invalid/schedule-param-wrong-type.yaml", CROSS_REFERENCE),
    ("invalid/self-cycle.yaml", GRAPH),
    ("invalid/template-checkpoint-outside-run.yaml", TEMPLATE),
    ("invalid/template-item-without-for-each.yaml", TEMPLATE),
    ("invalid/template-own-results.yaml", TEMPLATE),
    ("invalid/template-parse-error.yaml", TEMPLATE),
    ("invalid/template-probe-unknown-field.yaml", TEMPLATE),
    ("invalid/template-probe-without-probe.yaml", TEMPLATE),
    ("invalid/template-root-not-available.yaml", TEMPLATE),
    ("invalid/template-step-not-upstream.yaml", TEMPLATE),
    ("invalid/template-unknown-helper.yaml", TEMPLATE),
    ("invalid/template-unknown-migration-field.yaml", TEMPLATE),
    ("invalid/template-unknown-root.yaml", TEMPLATE),
    ("invalid/template-unknown-step-field.yaml", TEMPLATE),
    ("invalid/template-unknown-step.yaml", TEMPLATE),
    ("invalid/trigger-template-root.yaml", TEMPLATE),
    ("invalid/unknown-channel.yaml", CROSS_REFERENCE),
    ("invalid/unknown-need.yaml", CROSS_REFERENCE),
    ("invalid/unknown-param.yaml", CROSS_REFERENCE),
    ("invalid/unknown-pool.yaml", CROSS_REFERENCE),
    ("invalid/unknown-schedule-param.yaml", CROSS_REFERENCE),
    ("invalid/unknown-window.yaml", CROSS_REFERENCE),
    ("invalid/window-cutoff-too-long.yaml", COMPARISON),
    ("invalid/window-longer-than-period-dst.yaml", CALENDAR),
    ("invalid/window-longer-than-period.yaml", CALENDAR),
    ("invalid/window-never-opens.yaml", CALENDAR),
    (
        "invalid/window-zero-duration.yaml",
        "a duration of 0s is refused only for a window; the schema has one duration type",
    ),
    (
        "wrong/cron-field-out-of-range.yaml",
        "the schema checks a cron expression's shape; the fields' grammar is croner's",
    ),
    (
        "wrong/for-each-labels-collide.yaml",
        "`uniqueItems` tells `1` from \"1\"; expansion labels do not",
    ),
    (
        "wrong/param-default-float-for-integer.yaml",
        "JSON Schema counts 500.0 as an integer",
    ),
];

fn compiled_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/runbook.schema.json");
    let text = std::fs::read_to_string(path).expect("schemas/runbook.schema.json exists");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("runbook.schema.json", schema)
        .expect("the schema is a resource");
    let index = compiler
        .compile("runbook.schema.json", &mut schemas)
        .unwrap_or_else(|e| panic!("the schema compiles: {e:#}"));
    (schemas, index)
}

/// What the schema says of a runbook file: `Err` with the validator's report when it refuses
/// it. Text that is not YAML (or has a key twice) is refused before any schema, as an editor
/// does.
fn schema_verdict(schema: &(boon::Schemas, boon::SchemaIndex), file: &str) -> Result<(), String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(path).expect("readable");
    let json: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("not YAML: {e}"))?;
    schema
        .0
        .validate(&json, schema.1)
        .map_err(|e| e.to_string())
}

/// `*.yaml` files under each of `dirs`, relative to the package root, sorted.
fn yaml_files(dirs: &[&str]) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".yaml") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// Whether `sensei validate` finds each file valid, from one run over `dirs`.
fn validate_verdicts(dirs: &[&str]) -> serde_json::Value {
    let output = Command::cargo_bin("sensei")
        .expect("binary")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "--format", "json"])
        .args(dirs)
        .output()
        .expect("runs");
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

fn valid_per_validate(report: &serde_json::Value, file: &str) -> Option<bool> {
    let files = report["files"].as_array()?;
    let entry = files.iter().find(|f| f["file"] == file)?;
    entry["valid"].as_bool()
}

#[test]
fn wrong_runbooks_are_refused_by_validate_and_by_the_schema() {
    let schema = compiled_schema();
    let report = validate_verdicts(WRONG);
    let files = yaml_files(WRONG);
    let mut failures = Vec::new();
    for file in &files {
        if valid_per_validate(&report, file) != Some(false) {
            failures.push(format!("{file}: `sensei validate` does not refuse it"));
        }
        let short = file.trim_start_matches("tests/fixtures/");
        let listed = VALIDATE_ONLY.iter().any(|(name, _)| *name == short);
        match (schema_verdict(&schema, file), listed) {
            (Ok(()), false) => failures.push(format!(
                "{file}: the schema accepts it; refuse it in the schema, or list it in VALIDATE_ONLY with the reason a JSON Schema cannot"
            )),
            (Err(why), true) => failures.push(format!(
                "{file}: the schema refuses it, so take it off VALIDATE_ONLY:\n{why}"
            )),
            _ => {}
        }
    }
    for (name, _) in VALIDATE_ONLY {
        if !files.contains(&format!("tests/fixtures/{name}")) {
            failures.push(format!(
                "VALIDATE_ONLY lists `{name}`, which is not in the corpus"
            ));
        }
    }
    assert!(
        files.len() > 90,
        "the corpus shrank to {} files",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_runbooks_pass_validate_and_the_schema() {
    let schema = compiled_schema();
    let report = validate_verdicts(VALID);
    let mut files = yaml_files(VALID);
    files.retain(|f| f != NOT_VALID);
    let mut failures = Vec::new();
    for file in &files {
        if valid_per_validate(&report, file) != Some(true) {
            failures.push(format!("{file}: `sensei validate` refuses it"));
        }
        if let Err(why) = schema_verdict(&schema, file) {
            failures.push(format!("{file}: the schema refuses it:\n{why}"));
        }
    }
    assert!(files.len() >= 8, "only {} valid runbooks", files.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
