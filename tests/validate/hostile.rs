//! Hostile inputs built at test time: alias bombs, deep nesting (YAML and templates), huge
//! files, binary garbage, NUL bytes, empty files. Each gets one clear, located error.

use super::*;

/// Writes `bytes` to a fresh file, validates it, and checks the one clear error it gets.
pub(super) fn hostile(bytes: &[u8], message: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hostile.yaml"), bytes).expect("write");
    let output = validate_in(dir.path(), &["hostile.yaml"]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert!(no_panic(&output), "{}", output.dump());
    assert!(output.stderr.is_empty(), "{}", output.dump());
    let found = diagnostics(&output.stdout, "hostile.yaml");
    assert_eq!(found.len(), 1, "one error expected\n{}", output.dump());
    assert!(
        found[0].1.starts_with("error: ") && found[0].1.contains(message),
        "expected `{message}`\n{}",
        output.dump()
    );
    let header = output.stdout.lines().next().expect("an error line");
    assert!(header.len() < 300, "the error line is not short: {header}");
}

#[test]
fn hostile_alias_bomb() {
    let mut yaml = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        let _ = writeln!(yaml, "{}: &{} [{refs}]", pair[1], pair[1]);
    }
    hostile(
        yaml.as_bytes(),
        "the YAML expands too many aliases (an alias bomb?)",
    );
}

#[test]
fn hostile_deep_nesting() {
    hostile(
        "[".repeat(100_000).as_bytes(),
        "the YAML nests deeper than 64 levels",
    );
    hostile(
        "{a: ".repeat(100_000).as_bytes(),
        "the YAML nests deeper than 64 levels",
    );
}

/// A runbook whose one command nests a template `levels` deep (`(not` or `{{#if}}`).
fn deep_template(levels: usize, blocks: bool) -> String {
    let template = if blocks {
        format!(
            "{}x{}",
            "{{#if true}}".repeat(levels),
            "{{/if}}".repeat(levels)
        )
    } else {
        format!(
            "{{{{not {}true{}}}}}",
            "(not ".repeat(levels),
            ")".repeat(levels)
        )
    };
    format!("version: 1\nname: deep\nsteps:\n  - id: a\n    run: echo {template}\n")
}

#[test]
fn hostile_template_nesting() {
    // Once a stack overflow that aborted the CLI from about 4,500 levels: now one located
    // error, at every depth past the limit (including depths the parser itself gives up on).
    for levels in [65, 5_000, 200_000] {
        hostile(
            deep_template(levels, false).as_bytes(),
            "nests blocks, `(...)` or lists more than 64 levels deep",
        );
    }
    hostile(
        deep_template(5_000, true).as_bytes(),
        "nests blocks, `(...)` or lists more than 64 levels deep",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("deep.yaml"), deep_template(5_000, false)).expect("write");
    let output = validate_in(dir.path(), &["deep.yaml"]);
    assert!(
        output
            .stdout
            .starts_with("deep.yaml:5:15: error: the template does not parse: `{{not (not"),
        "{}",
        output.dump()
    );
    // 63 levels inside the expression (64 with the command itself) are fine.
    std::fs::write(dir.path().join("ok.yaml"), deep_template(63, false)).expect("write");
    let output = validate_in(dir.path(), &["ok.yaml"]);
    assert_eq!(output.code, 0, "{}", output.dump());
}

#[test]
fn hostile_huge_file() {
    let mut yaml = String::from("version: 1\nname: huge\nsteps:\n");
    let step = format!("  - id: s\n    run: {}\n", "x".repeat(1000));
    while yaml.len() < 50 * 1024 * 1024 {
        yaml.push_str(&step);
    }
    hostile(
        yaml.as_bytes(),
        "the file is 50.0 MiB; runbooks are limited to 8 MiB",
    );
}

#[test]
fn hostile_binary_garbage() {
    // Fixed-seed pseudo-random bytes (xorshift), with a NUL and an invalid UTF-8 byte early on.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    bytes[10] = 0;
    bytes[20] = 0xff;
    hostile(&bytes, "(a binary or differently encoded file?)");
}

#[test]
fn hostile_nul_byte_in_text() {
    hostile(
        b"version: 1\nname: a\x00b\nsteps: []\n",
        "the file holds a NUL byte (a binary or differently encoded file?)",
    );
}

#[test]
fn hostile_empty_and_comment_only_files() {
    hostile(b"", "the runbook is empty");
    hostile(b"  \n\n", "the runbook is empty");
    hostile(
        b"# orders cutover\n# TODO: write the steps\n---\n",
        "the runbook is empty",
    );
}
