//! `sensei validate PATH...`: check runbook files and directories.

use super::{error, exit};
use crate::diag::{Diagnostic, JsonDiagnostic, Span};
use crate::runbook::{self, Checked};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runbook files, or directories to search for *.yaml and *.yml files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// `text` for people, `json` for tools, `github` for GitHub Actions annotations.
    #[arg(long, value_enum, default_value = "text")]
    format: ValidateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ValidateFormat {
    Text,
    Json,
    Github,
}

pub fn run(args: &Args) -> u8 {
    let files = match runbook_files(&args.paths) {
        Ok(files) => files,
        Err(message) => {
            error(message);
            return exit::USAGE;
        }
    };
    let mut checked = Vec::new();
    for file in &files {
        match runbook::load_file(file) {
            Ok(c) => checked.push(c),
            Err(e) => {
                error(format!("cannot read {}: {e}", file.display()));
                return exit::USAGE;
            }
        }
    }
    duplicate_names(&files, &mut checked);
    match args.format {
        ValidateFormat::Text => print_text(&checked),
        ValidateFormat::Json => print_json(&checked),
        ValidateFormat::Github => print_github(&checked),
    }
    if checked.iter().any(Checked::has_errors) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Files named directly, and runbooks found in directories (sorted, hidden entries skipped).
fn runbook_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            runbook::files_in(path)
                .map(|found| files.extend(found))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if files.len() == before {
                return Err(format!("{} holds no .yaml or .yml files", path.display()));
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(files)
}

/// Runbook names are unique within a directory: a server addresses runbooks by name.
fn duplicate_names(files: &[PathBuf], checked: &mut [Checked]) {
    let mut seen: HashMap<(PathBuf, String), String> = HashMap::new();
    for (file, c) in files.iter().zip(checked.iter_mut()) {
        let Some(name) = c.runbook.as_ref().map(|r| r.name.clone()) else {
            continue;
        };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(first) = seen.get(&(dir.clone(), name.clone())) {
            let span = name_span(&c.source.text);
            c.diagnostics.push(
                Diagnostic::error(
                    span,
                    format!("runbook name `{name}` is already used by {first}"),
                )
                .with_hint("runbook names are unique within a directory; rename one of them"),
            );
            c.runbook = None;
        } else {
            seen.insert((dir, name), c.source.name.clone());
        }
    }
}

fn name_span(text: &str) -> Span {
    text.lines()
        .position(|l| l.starts_with("name:"))
        .map_or(Span::new(1, 1, 1), |i| {
            let line = text.lines().nth(i).unwrap_or_default();
            let column = line[5..]
                .find(|c: char| !c.is_whitespace())
                .map_or(6, |c| c + 6);
            Span::new(
                i as u32 + 1,
                column as u32,
                line.len().saturating_sub(column - 1).max(1) as u32,
            )
        })
}

fn counts(checked: &[Checked]) -> (usize, usize) {
    let all = checked.iter().flat_map(|c| &c.diagnostics);
    let errors = all.clone().filter(|d| d.is_error()).count();
    (errors, all.count() - errors)
}

fn print_text(checked: &[Checked]) {
    for c in checked {
        out!("{}", c.render());
        if c.diagnostics.is_empty() {
            outln!("{}: ok", c.source.name);
        }
    }
    let (errors, warnings) = counts(checked);
    let invalid = checked.iter().filter(|c| c.has_errors()).count();
    outln!(
        "checked {} runbook{}: {} valid, {invalid} with errors ({errors} error{}, {warnings} warning{})",
        checked.len(),
        plural(checked.len()),
        checked.len() - invalid,
        plural(errors),
        plural(warnings),
    );
}

fn print_json(checked: &[Checked]) {
    let files: Vec<serde_json::Value> = checked
        .iter()
        .map(|c| {
            let diagnostics: Vec<JsonDiagnostic> = c
                .diagnostics
                .iter()
                .map(|d| JsonDiagnostic::new(&c.source.name, d))
                .collect();
            serde_json::json!({
                "file": c.source.name,
                "valid": !c.has_errors(),
                "name": c.runbook.as_ref().map(|r| r.name.clone()),
                "diagnostics": diagnostics,
            })
        })
        .collect();
    let (errors, warnings) = counts(checked);
    let out = serde_json::json!({ "files": files, "errors": errors, "warnings": warnings });
    outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

/// GitHub Actions workflow commands: each diagnostic becomes an annotation on the PR.
fn print_github(checked: &[Checked]) {
    for c in checked {
        for d in &c.diagnostics {
            let position = d
                .span
                .map(|s| format!(",line={},col={}", s.line, s.column))
                .unwrap_or_default();
            let hint = d
                .hint
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            outln!(
                "::{} file={}{position}::{}",
                d.severity.as_str(),
                escape_property(&c.source.name),
                escape_data(&format!("{}{hint}", d.message))
            );
        }
    }
}

/// Workflow-command escaping of a message: `%`, CR and LF would otherwise end or corrupt it.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command escaping of a property value (a file name), where `:` and `,` separate.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_annotations_escape_separators() {
        assert_eq!(escape_data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a,b:c.yaml"), "a%2Cb%3Ac.yaml");
    }
}
