//! `sensei validate` on invalid runbooks, run through the real binary.
//!
//! Every rule of the loader (SPEC §2) has a fixture in `tests/fixtures/invalid/`, named for the
//! rule, and [`CASES`] lists every diagnostic it must produce: position, message and hint,
//! exactly, and nothing else (so one mistake is not reported twice). Then the output formats,
//! directories, usage errors, the example runbooks, and hostile inputs built at test time.

use assert_cmd::Command;
use std::fmt::Write as _;
use std::path::Path;

const INVALID: &str = "tests/fixtures/invalid";

#[path = "validate/cases.rs"]
mod cases;
use cases::CASES;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Everything the command printed, for failure messages.
    fn dump(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `sensei validate ARGS` in `dir` (file names in the output are as given).
fn validate_in(dir: &Path, args: &[&str]) -> Output {
    let output = Command::cargo_bin("sensei")
        .expect("binary")
        .current_dir(dir)
        .arg("validate")
        .args(args)
        .output()
        .expect("runs");
    Output {
        // -1: killed by a signal (every caller asserts the code).
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `sensei validate ARGS` in the package root.
fn validate(args: &[&str]) -> Output {
    validate_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn fixture(name: &str) -> String {
    format!("{INVALID}/{name}.yaml")
}

/// The diagnostics that text output reports for `file`: (`line:col`, severity: message, hint).
fn diagnostics(stdout: &str, file: &str) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(file).and_then(|r| r.strip_prefix(':')) {
            // `L:C: error: message`, or ` error: message` for a whole-file problem.
            let (position, message) = match rest.strip_prefix(' ') {
                Some(message) => (String::new(), message),
                None => {
                    let mut parts = rest.splitn(3, ':');
                    let mut part = |what: &str| {
                        parts
                            .next()
                            .unwrap_or_else(|| panic!("no {what} in `{line}`"))
                    };
                    let (line, column) = (part("line"), part("column"));
                    let message = part("message").trim_start();
                    (format!("{line}:{column}"), message)
                }
            };
            out.push((position, message.to_owned(), None));
        } else if let Some((_, hint)) = line.split_once("= hint: ")
            && let Some(last) = out.last_mut()
        {
            last.2 = Some(hint.to_owned());
        }
    }
    out
}

fn no_panic(output: &Output) -> bool {
    let all = format!("{}{}", output.stdout, output.stderr);
    !all.contains("panicked") && !all.contains("RUST_BACKTRACE")
}

#[test]
fn every_invalid_fixture_reports_exactly_its_errors() {
    let mut failures = String::new();
    for (name, expected) in CASES {
        let file = fixture(name);
        let output = validate(&[&file]);
        let found = diagnostics(&output.stdout, &file);
        let wanted: Vec<(String, String, Option<String>)> = expected
            .iter()
            .map(|(position, message, hint)| {
                (
                    (*position).to_owned(),
                    format!("error: {message}"),
                    hint.map(str::to_owned),
                )
            })
            .collect();
        let errors = expected.len();
        let summary = format!(
            "checked 1 runbook: 0 valid, 1 with errors ({errors} error{}, 0 warnings)",
            if errors == 1 { "" } else { "s" }
        );
        let mut problems = Vec::new();
        if output.code != 1 {
            problems.push(format!("exit code {}, expected 1", output.code));
        }
        if found != wanted {
            problems.push(format!(
                "diagnostics\n  found:    {found:?}\n  expected: {wanted:?}"
            ));
        }
        if !output.stdout.ends_with(&format!("{summary}\n")) {
            problems.push(format!("summary line is not `{summary}`"));
        }
        if !output.stderr.is_empty() || !no_panic(&output) {
            problems.push("unexpected stderr or a panic".to_owned());
        }
        if !problems.is_empty() {
            let _ = writeln!(
                failures,
                "\n=== fixture {file}: {}\n{}",
                problems.join("; "),
                output.dump()
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn every_fixture_file_has_a_case_and_every_case_a_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(INVALID);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(n, _)| format!("{n}.yaml")).collect();
    cases.sort();
    assert_eq!(files, cases, "tests/fixtures/invalid and CASES differ");
    assert!(CASES.len() >= 28);
}

#[test]
fn text_output_shows_the_line_a_caret_under_the_mistake_and_the_hint() {
    let output = validate(&[&fixture("unknown-need")]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert_eq!(
        output.stdout,
        "tests/fixtures/invalid/unknown-need.yaml:7:13: error: step `verify` needs unknown step `copy-order`\n\
         \x20 |\n\
         7 |     needs: [copy-order]\n\
         \x20 |             ^^^^^^^^^^\n\
         \x20 = hint: did you mean `copy-orders`?\n\
         checked 1 runbook: 0 valid, 1 with errors (1 error, 0 warnings)\n",
        "{}",
        output.dump()
    );
}

#[test]
fn cycle_is_named_as_a_chain_in_order() {
    let output = validate(&[&fixture("cycle")]);
    assert!(
        output
            .stdout
            .contains("cycle.yaml:5:13: error: steps form a cycle: a → c → b → a\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn a_directory_of_invalid_fixtures_reports_every_file() {
    let output = validate(&[INVALID]);
    assert_eq!(output.code, 1, "{}", output.dump());
    let errors: usize = CASES.iter().map(|(_, e)| e.len()).sum();
    let summary = format!(
        "checked {n} runbooks: 0 valid, {n} with errors ({errors} errors, 0 warnings)\n",
        n = CASES.len()
    );
    assert!(output.stdout.ends_with(&summary), "{}", output.dump());
    for (name, _) in CASES {
        assert!(
            output.stdout.contains(&format!("{}:", fixture(name))),
            "{name} not reported\n{}",
            output.dump()
        );
    }
}

#[test]
fn json_format_carries_file_position_message_severity_and_hint() {
    let output = validate(&["--format", "json", &fixture("unknown-need")]);
    assert_eq!(output.code, 1, "{}", output.dump());
    let json: serde_json::Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", output.dump()));
    assert_eq!(json["errors"], 1);
    assert_eq!(json["warnings"], 0);
    let file = &json["files"][0];
    assert_eq!(file["file"], "tests/fixtures/invalid/unknown-need.yaml");
    assert_eq!(file["valid"], false);
    let d = &file["diagnostics"][0];
    assert_eq!(d["file"], "tests/fixtures/invalid/unknown-need.yaml");
    assert_eq!(d["line"], 7);
    assert_eq!(d["column"], 13);
    assert_eq!(d["end_column"], 23);
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["message"],
        "step `verify` needs unknown step `copy-order`"
    );
    assert_eq!(d["hint"], "did you mean `copy-orders`?");
    assert_eq!(file["diagnostics"].as_array().map(Vec::len), Some(1));
}

#[test]
fn json_format_of_several_files_and_a_whole_file_error() {
    let output = validate(&[
        "--format",
        "json",
        &fixture("multiple-errors"),
        &fixture("not-a-mapping"),
        "runbooks/hourly-sync.yaml",
    ]);
    assert_eq!(output.code, 1, "{}", output.dump());
    let json: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
    assert_eq!(json["errors"], 7);
    let files = json["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["diagnostics"].as_array().map(Vec::len), Some(6));
    assert_eq!(files[1]["diagnostics"][0]["line"], 1);
    assert_eq!(files[2]["valid"], true);
    assert_eq!(files[2]["name"], "hourly-sync");
}

#[test]
fn github_format_prints_workflow_annotations() {
    let output = validate(&[
        "--format",
        "github",
        &fixture("unknown-need"),
        &fixture("missing-steps"),
        "runbooks/hourly-sync.yaml",
    ]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert_eq!(
        output.stdout,
        "::error file=tests/fixtures/invalid/unknown-need.yaml,line=7,col=13::step `verify` needs unknown step `copy-order` (did you mean `copy-orders`?)\n\
         ::error file=tests/fixtures/invalid/missing-steps.yaml,line=1,col=1::the runbook has no `steps` (add a `steps:` list; each step has an `id` and one action (run, http, gate, wait, check))\n",
        "{}",
        output.dump()
    );
}

#[test]
fn whole_file_errors_are_located_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("empty.yaml"), "").expect("write");
    let output = validate_in(dir.path(), &["--format", "github", "empty.yaml"]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert_eq!(
        output.stdout,
        "::error file=empty.yaml,line=1,col=1::the runbook is empty (a runbook is a YAML mapping with at least `version: 1`, `name` and `steps`)\n"
    );
    std::fs::write(dir.path().join("nul.yaml"), b"version: 1\nname: a\x00b\n").expect("write");
    std::fs::write(
        dir.path().join("latin1.yaml"),
        b"version: 1\nname: \xe9t\xe9\n",
    )
    .expect("write");
    for (file, at) in [("nul.yaml", (2, 8)), ("latin1.yaml", (2, 7))] {
        let output = validate_in(dir.path(), &["--format", "json", file]);
        let doc: serde_json::Value = serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", output.dump()));
        let first = &doc["files"][0]["diagnostics"][0];
        assert_eq!(
            (first["line"].as_u64(), first["column"].as_u64()),
            (Some(at.0), Some(at.1)),
            "{}",
            output.dump()
        );
        // The text form names the position and shows no binary line.
        let output = validate_in(dir.path(), &[file]);
        assert!(
            output
                .stdout
                .starts_with(&format!("{file}:{}:{}: error: the file ", at.0, at.1)),
            "{}",
            output.dump()
        );
        assert!(!output.stdout.contains('\0') && !output.stdout.contains('\u{fffd}'));
    }
}

const VALID: &str = "version: 1\nname: valid\nsteps:\n  - id: copy\n    run: ./scripts/copy.sh\n";
const BROKEN: &str =
    "version: 1\nname: broken\nsteps:\n  - id: copy\n    neds: [a]\n    run: ./scripts/copy.sh\n";

#[test]
fn a_directory_with_a_valid_and_an_invalid_runbook_reports_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("books")).expect("mkdir");
    std::fs::write(dir.path().join("books/a-valid.yaml"), VALID).expect("write");
    std::fs::write(dir.path().join("books/b-broken.yml"), BROKEN).expect("write");
    std::fs::write(dir.path().join("books/notes.txt"), "not a runbook").expect("write");
    let output = validate_in(dir.path(), &["books"]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert!(
        output.stdout.starts_with(
            "books/a-valid.yaml: ok\nbooks/b-broken.yml:5:5: error: unknown key `neds` in this step\n"
        ),
        "{}",
        output.dump()
    );
    assert!(
        output
            .stdout
            .ends_with("checked 2 runbooks: 1 valid, 1 with errors (1 error, 0 warnings)\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn a_directory_of_valid_runbooks_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yaml"), VALID).expect("write");
    std::fs::create_dir(dir.path().join("nested")).expect("mkdir");
    std::fs::write(
        dir.path().join("nested/b.yaml"),
        VALID.replace("name: valid", "name: other"),
    )
    .expect("write");
    let output = validate_in(dir.path(), &["."]);
    assert_eq!(output.code, 0, "{}", output.dump());
    assert!(
        output
            .stdout
            .ends_with("checked 2 runbooks: 2 valid, 0 with errors (0 errors, 0 warnings)\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn the_example_runbooks_all_validate() {
    let output = validate(&["runbooks"]);
    assert_eq!(output.code, 0, "{}", output.dump());
    assert!(
        output
            .stdout
            .contains(" 0 with errors (0 errors, 0 warnings)\n"),
        "{}",
        output.dump()
    );
    let count = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks"))
        .expect("runbooks/")
        .filter(|e| {
            e.as_ref()
                .expect("an entry of runbooks/")
                .path()
                .extension()
                .is_some_and(|x| x == "yaml")
        })
        .count();
    assert!(count >= 1);
    assert_eq!(
        output.stdout.matches(": ok\n").count(),
        count,
        "{}",
        output.dump()
    );
}

#[test]
fn a_polling_check_without_timeout_or_probe_is_warned_about_but_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("poll.yaml"),
        "version: 1\nname: poll\nsteps:\n  - id: lag\n    run: ./lag.sh\n  - id: lag-small\n    needs: [lag]\n    check: \"{{lt steps.lag.outputs.seconds 5}}\"\n    every: 30s\n",
    )
    .expect("write");
    let output = validate_in(dir.path(), &["poll.yaml"]);
    assert_eq!(output.code, 0, "{}", output.dump());
    let found: Vec<(String, String)> = diagnostics(&output.stdout, "poll.yaml")
        .into_iter()
        .map(|(at, message, _)| (at, message))
        .collect();
    assert_eq!(
        found,
        [
            (
                "9:12".to_owned(),
                "warning: this polling check has no `timeout`, so it could poll forever".to_owned()
            ),
            (
                "9:12".to_owned(),
                "warning: this polling check has no `probe`, so it reads the same values at every evaluation".to_owned()
            ),
        ],
        "{}",
        output.dump()
    );
    assert!(
        output
            .stdout
            .ends_with("checked 1 runbook: 1 valid, 0 with errors (0 errors, 2 warnings)\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn a_missing_path_is_a_usage_error_in_one_sentence() {
    let output = validate(&["tests/fixtures/no-such-runbook.yaml"]);
    assert_eq!(output.code, 2, "{}", output.dump());
    assert_eq!(
        output.stderr,
        "error: tests/fixtures/no-such-runbook.yaml does not exist\n"
    );
    assert!(output.stdout.is_empty(), "{}", output.dump());
}

#[test]
fn a_directory_without_runbooks_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("README.md"), "# notes").expect("write");
    let output = validate_in(dir.path(), &["."]);
    assert_eq!(output.code, 2, "{}", output.dump());
    assert_eq!(output.stderr, "error: . holds no .yaml or .yml files\n");
}

#[test]
fn no_path_at_all_is_a_usage_error() {
    let output = validate(&[]);
    assert_eq!(output.code, 2, "{}", output.dump());
    assert!(output.stderr.contains("<PATH>"), "{}", output.dump());
}

/// The example runbooks keep their alerts commented out (their hosts do not exist); the
/// block must still be right when an operator uncomments it.
#[test]
fn example_alerts_validate_once_uncommented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for entry in std::fs::read_dir("runbooks").expect("runbooks/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            continue; // an example's SQL files (runbooks/mariadb-to-postgres/)
        }
        let text = std::fs::read_to_string(&path).expect("read");
        if !text.contains("\n# alerts:\n") {
            continue;
        }
        let mut inside = false;
        let uncommented: Vec<String> = text
            .lines()
            .map(|line| {
                inside = (inside && line.starts_with('#')) || line == "# alerts:";
                match (inside, line.strip_prefix("# ")) {
                    (true, Some(rest)) => rest.to_owned(),
                    (true, None) => String::new(),
                    (false, _) => line.to_owned(),
                }
            })
            .collect();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        std::fs::write(dir.path().join(&name), uncommented.join("\n") + "\n").expect("write");
        let output = validate_in(dir.path(), &[&name]);
        assert_eq!(output.code, 0, "{name} with its alerts:\n{}", output.dump());
        checked += 1;
    }
    assert!(
        checked >= 3,
        "{checked} example runbooks have commented alerts"
    );
}

#[path = "validate/hostile.rs"]
mod hostile;
