//! Runbooks: YAML text in, a checked [`Runbook`] or positioned diagnostics out.
//!
//! The pipeline is `yaml` (text to a positioned node tree) -> `node_de` + `raw` (the format's
//! serde types, every error recorded) -> `check` (semantic rules, all in one pass) -> `model`,
//! whose every field that may hold a template is a [`text::Text`] (or [`text::JsonText`]).

mod check;
mod check_alerts;
mod check_calendar;
mod check_compare;
mod check_copy;
mod check_cycles;
mod check_poll;
mod check_sql;
mod check_steps;
mod check_templates;
pub mod compare;
pub mod copy;
pub mod cron;
pub mod dst;
pub mod duration;
pub mod model;
mod node_de;
pub mod params;
pub mod raw;
mod raw_actions;
mod raw_copy;
mod raw_schema;
pub mod render;
mod source;
pub mod sql;
pub mod template;
pub mod text;
mod wrappers;
mod yaml;

pub use check::valid_env_name;
pub use check_alerts::ALERT_EVENTS;
pub use model::Runbook;
pub use source::Source;

use crate::diag::{self, Diagnostic, Span};
use std::collections::HashSet;
use std::path::Path;

/// A runbook file after loading and checking.
#[derive(Debug)]
pub struct Checked {
    pub source: Source,
    /// Present only when there is no error (warnings may remain).
    pub runbook: Option<Runbook>,
    /// Sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        diag::has_errors(&self.diagnostics)
    }

    /// Every diagnostic rendered like a compiler's, in file order.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| diag::render(&self.source.name, &self.source.text, d))
            .collect()
    }
}

/// Reads and checks a runbook file; `name` is how diagnostics name it.
/// Runbook files (`*.yaml`, `*.yml`) under `dir`, sorted, hidden entries skipped, at most
/// 8 directories deep (a symlink loop ends there). `sensei validate DIR` and the server's
/// runbooks directory find files the same way.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    walk(dir, &mut out, 0)?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>, depth: usize) -> std::io::Result<()> {
    if depth > 8 {
        return Ok(());
    }
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out, depth + 1)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn load_file(path: &Path) -> std::io::Result<Checked> {
    let bytes = std::fs::read(path)?;
    let dir = dir_of(path);
    Ok(load_with(
        &path.display().to_string(),
        &bytes,
        Files::Dir(&dir),
    ))
}

/// The directory a runbook file's relative paths start from.
pub fn dir_of(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Where the SQL files a runbook names (`sql: { file: ... }`) are read from when it loads.
#[derive(Debug, Clone, Copy)]
pub enum Files<'a> {
    /// Relative to this directory, the runbook file's (`validate`, `plan`, `run`, the
    /// server's runbooks directory).
    Dir(&'a Path),
    /// As a migration stored them when it was created, by path as written: a resumed
    /// migration runs the SQL it was approved with.
    Stored(&'a std::collections::BTreeMap<String, String>),
    /// Nowhere: runbook text without a directory (posted to the API, tests).
    None,
}

impl Files<'_> {
    /// The text of `path` (as written in the runbook), or why it cannot be had and how to fix
    /// that.
    pub(crate) fn read(&self, path: &str) -> Result<String, (String, String)> {
        match self {
            Files::Stored(files) => files.get(path).cloned().ok_or_else(|| {
                (
                    format!("the migration holds no copy of `{path}`"),
                    "it was created by another version of sensei; start a new migration".into(),
                )
            }),
            Files::None => Err((
                format!("`{path}` cannot be read: this runbook text has no directory"),
                "check the runbook file itself (`sensei validate FILE`), or write the SQL in `query`".into(),
            )),
            Files::Dir(dir) => {
                use std::io::Read;
                let full = dir.join(path);
                let shown = full.display();
                let file = std::fs::File::open(&full).map_err(|e| {
                    (
                        format!("cannot read SQL file `{shown}`: {e}"),
                        "the path is relative to the runbook's directory".into(),
                    )
                })?;
                let mut bytes = Vec::new();
                file.take(sql::MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| (format!("cannot read SQL file `{shown}`: {e}"), String::new()))?;
                if bytes.len() as u64 > sql::MAX_FILE_BYTES {
                    return Err((
                        format!(
                            "SQL file `{shown}` is larger than {} MiB",
                            sql::MAX_FILE_BYTES / 1024 / 1024
                        ),
                        "split it into several `sql` steps, or load data with a `run` step".into(),
                    ));
                }
                String::from_utf8(bytes).map_err(|_| {
                    (
                        format!("SQL file `{shown}` is not UTF-8 text"),
                        "convert it to UTF-8 (e.g. `iconv -t UTF-8`)".into(),
                    )
                })
            }
        }
    }
}

/// Checks runbook text held in memory without a directory (the API's validate endpoint,
/// tests): a `sql` `file:` cannot be read.
pub fn load_bytes(name: &str, bytes: &[u8]) -> Checked {
    load_with(name, bytes, Files::None)
}

/// Checks runbook text, reading the SQL files it names from `files`.
pub fn load_with(name: &str, bytes: &[u8], files: Files<'_>) -> Checked {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let source = Source::new(name, text);
    let root = match yaml::parse(bytes) {
        Ok(root) => root,
        Err(diagnostic) => return finish(source, None, vec![diagnostic]),
    };
    if !matches!(root.value, yaml::Value::Map(_)) {
        let d = Diagnostic::error(
            root.span.with_len(1),
            format!(
                "a runbook is a YAML mapping, but this file holds {}",
                root.kind()
            ),
        )
        .with_hint("start with `version: 1`, `name: ...` and `steps:`");
        return finish(source, None, vec![d]);
    }
    let (raw, mut diagnostics) = node_de::from_node::<raw::RawRunbook>(&root);
    let Some(raw) = raw else {
        return finish(source, None, diagnostics);
    };
    let broken = broken_step_ids(&raw, &root);
    let (runbook, more) = check::check(&raw, &source, &root, &broken, files);
    diagnostics.extend(more);
    let runbook = runbook.filter(|_| !diag::has_errors(&diagnostics));
    finish(source, runbook, diagnostics)
}

/// How many diagnostics a runbook reports: enough to fix a file, and a bound on the output
/// (and on the time spent rendering it) for a file with a problem in each of 60,000 tags.
pub const MAX_DIAGNOSTICS: usize = 100;

fn finish(source: Source, runbook: Option<Runbook>, mut diagnostics: Vec<Diagnostic>) -> Checked {
    diag::sort(&mut diagnostics);
    diagnostics.dedup();
    if diagnostics.len() > MAX_DIAGNOSTICS {
        let unshown = diagnostics.split_off(MAX_DIAGNOSTICS);
        let errors = unshown.iter().filter(|d| d.is_error()).count();
        diagnostics.push(Diagnostic::error(
            None,
            format!(
                "{} more problems are not shown ({errors} errors, {} warnings): fix these first",
                unshown.len(),
                unshown.len() - errors
            ),
        ));
    }
    Checked {
        source,
        runbook,
        diagnostics,
    }
}

/// Ids of steps that did not load (their problems are reported): other steps may still name
/// them, and those references should not be reported as unknown on top.
fn broken_step_ids(raw: &raw::RawRunbook, root: &yaml::Node) -> HashSet<String> {
    let (Some(steps), Some(yaml::Value::Seq(nodes))) =
        (&raw.steps.0, root.get("steps").map(|n| &n.value))
    else {
        return HashSet::new();
    };
    steps
        .iter()
        .zip(nodes)
        .filter(|(step, _)| step.0.is_none())
        .filter_map(|(_, node)| node.get("id")?.as_str().map(str::to_owned))
        .collect()
}

/// The span a whole-file problem is reported at.
pub fn file_start() -> Span {
    Span::new(1, 1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(yaml: &str) -> Vec<String> {
        load_bytes("r.yaml", yaml.as_bytes())
            .diagnostics
            .iter()
            .map(|d| {
                let s = d.span.unwrap_or_default();
                format!("{}:{}: {}", s.line, s.column, d.message)
            })
            .collect()
    }

    #[test]
    fn reports_the_first_problems_and_counts_the_rest() {
        let tags: String = (0..250).map(|i| format!(" {{{{params.p{i}}}}}")).collect();
        let yaml = format!("version: 1\nname: t\nsteps:\n  - id: a\n    run: echo{tags}\n");
        let found = messages(&yaml);
        assert_eq!(found.len(), MAX_DIAGNOSTICS + 1);
        assert_eq!(found[0], "5:17: unknown param `p0`");
        assert_eq!(
            found[MAX_DIAGNOSTICS],
            "0:0: 150 more problems are not shown (150 errors, 0 warnings): fix these first"
        );
    }

    #[test]
    fn cycles_are_reported_once_as_a_chain_in_order() {
        let yaml = "version: 1\nname: c\nsteps:\n  - id: a\n    needs: [c]\n    run: x\n  - id: b\n    needs: [a]\n    run: x\n  - id: c\n    needs: [b]\n    run: x\n";
        assert_eq!(messages(yaml), ["5:13: steps form a cycle: a → c → b → a"]);
    }

    #[test]
    fn template_roots_are_checked_against_params_and_dependencies() {
        let yaml = "version: 1\nname: t\nparams:\n  table: { type: string, default: orders }\nsteps:\n  - id: count\n    run: echo {{params.tabel}}\n  - id: other\n    run: echo {{steps.count.outputs.rows}}\n  - id: after\n    needs: [count]\n    run: echo {{steps.count.outputs.rows}} {{steps.count.result}} {{migraton.id}}\n";
        assert_eq!(
            messages(yaml),
            [
                "7:17: unknown param `tabel`",
                "9:17: step `other` reads `steps.count` but does not depend on `count`",
                "12:46: a step has no `result`",
                "12:69: unknown template root `migraton` in `{{migraton.id}}`",
            ]
        );
    }

    #[test]
    fn a_step_that_fails_to_load_does_not_cause_unknown_step_errors() {
        let yaml = "version: 1\nname: t\nsteps:\n  - id: a\n    run: x\n    timeout: 5\n  - id: b\n    needs: [a]\n    run: x\n";
        assert_eq!(
            messages(yaml),
            ["6:14: `timeout` must be a string, found the integer 5"]
        );
    }

    #[test]
    fn a_rollback_may_read_its_own_outputs_but_the_command_may_not() {
        let yaml = "version: 1\nname: t\nsteps:\n  - id: a\n    run: make {{steps.a.outputs.x}}\n    rollback: delete {{steps.a.outputs.id}}\n";
        assert_eq!(
            messages(yaml),
            ["5:17: step `a` reads its own results before it has any"]
        );
    }

    #[test]
    fn duplicate_keys_and_fan_out_elements_are_named() {
        let yaml = "version: 1\nname: t\nsteps:\n  - id: a\n    run: x\n    run: y\n";
        assert_eq!(
            messages(yaml),
            ["6:5: key `run` appears twice in the same mapping"]
        );
        let yaml = "version: 1\nname: t\nsteps:\n  - id: a\n    for_each: [x, y, x]\n    run: echo {{item}}\n";
        assert_eq!(messages(yaml), ["5:15: `for_each` lists `x` twice"]);
    }

    #[test]
    fn a_valid_runbook_yields_the_model() {
        let yaml = "version: 1\nname: ok\nsteps:\n  - id: g\n    gate: { approvers: [alice] }\n  - id: a\n    run: x\n";
        let checked = load_bytes("r.yaml", yaml.as_bytes());
        let runbook = checked.runbook.expect("valid");
        assert_eq!(runbook.steps[0].phase, model::Phase::Approve);
        assert_eq!(runbook.steps[1].phase, model::Phase::Execute);
    }
}
