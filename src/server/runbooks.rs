//! The runbooks a server offers: every `*.yaml`/`*.yml` file under its runbooks directory,
//! checked with [`crate::runbook::load_bytes`], and looked at again once a second (a change
//! of size or modification time reloads a file).
//!
//! A file that stops validating is reported (in the log and by `GET /v1/runbooks`, with its
//! diagnostics) while its last good version stays active; a deleted file takes its runbook
//! away. Migrations are unaffected either way: each keeps the text it was created with.
//! A runbook that reads a secret (a trigger's or alert channel's `secret_env`) from a
//! variable the configuration passes to every step is refused the same way: the steps of
//! every runbook would get that secret.

use crate::config::StepEnvSettings;
use crate::diag::JsonDiagnostic;
use crate::runbook::{self, Runbook};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// A version of a runbook that validated: what new migrations are created from.
#[derive(Debug)]
pub struct Active {
    pub runbook: Runbook,
    /// The file, canonical: steps run in its directory.
    pub path: PathBuf,
    pub text: String,
    pub loaded_at: DateTime<Utc>,
}

#[derive(Debug)]
struct File {
    /// What the file looked like when last read: size and modification time.
    stamp: (u64, Option<SystemTime>),
    /// The latest read's problems (errors mean `active` is an older version, if any).
    diagnostics: Json,
    rendered: String,
    valid: bool,
    active: Option<Arc<Active>>,
}

/// The loaded runbooks, by file.
#[derive(Debug)]
pub struct Runbooks {
    dir: PathBuf,
    /// The configuration's pass-through names, which no runbook may read a secret from.
    step_env: StepEnvSettings,
    files: RwLock<BTreeMap<PathBuf, File>>,
}

impl Runbooks {
    /// Loads every runbook under `dir` (a missing directory holds none, for now).
    pub fn load(dir: &Path, step_env: StepEnvSettings) -> Runbooks {
        let runbooks = Runbooks {
            dir: dir.to_path_buf(),
            step_env,
            files: RwLock::new(BTreeMap::new()),
        };
        runbooks.refresh();
        runbooks
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads files that are new or changed, forgets deleted ones. Returns how many changed.
    pub fn refresh(&self) -> usize {
        let found = crate::runbook::files_in(&self.dir);
        if let Err(e) = &found
            && self.dir.exists()
        {
            tracing::warn!(
                "cannot read the runbooks directory {}: {e}",
                self.dir.display()
            );
        }
        let stamps: BTreeMap<PathBuf, (u64, Option<SystemTime>)> = found
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let meta = std::fs::metadata(&p).ok()?;
                Some((p, (meta.len(), meta.modified().ok())))
            })
            .collect();
        let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
        let before = files.len();
        files.retain(|path, _| {
            let keep = stamps.contains_key(path);
            if !keep {
                tracing::info!("runbook file {} was removed", path.display());
            }
            keep
        });
        let mut changed = before - files.len();
        for (path, stamp) in stamps {
            if files.get(&path).is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            changed += 1;
            let previous = files.remove(&path).and_then(|f| f.active);
            files.insert(path.clone(), read(&path, stamp, previous, &self.step_env));
        }
        if changed > 0 {
            duplicates(&mut files);
        }
        changed
    }

    /// The active version of the runbook called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Active>> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        files
            .values()
            .filter_map(|f| f.active.as_ref())
            .find(|a| a.runbook.name == name)
            .cloned()
    }

    /// The active runbook with a webhook trigger called `hook`, and that trigger (the first
    /// runbook by file path when several declare it).
    pub fn trigger(&self, hook: &str) -> Option<(Arc<Active>, crate::runbook::model::Trigger)> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        files
            .values()
            .filter_map(|f| f.active.as_ref())
            .find_map(|a| {
                a.runbook
                    .triggers
                    .iter()
                    .find(|t| t.webhook == hook)
                    .map(|t| (a.clone(), t.clone()))
            })
    }

    /// Every active runbook (the scheduler plans their schedules).
    pub fn actives(&self) -> Vec<Arc<Active>> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        files.values().filter_map(|f| f.active.clone()).collect()
    }

    /// Names of the active runbooks.
    pub fn names(&self) -> Vec<String> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        files
            .values()
            .filter_map(|f| f.active.as_ref().map(|a| a.runbook.name.clone()))
            .collect()
    }

    /// (valid, invalid) file counts, for metrics.
    pub fn counts(&self) -> (usize, usize) {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        let valid = files.values().filter(|f| f.valid).count();
        (valid, files.len() - valid)
    }

    /// `GET /v1/runbooks`: every file, its runbook, whether its latest version validates,
    /// its diagnostics, and the version that is active.
    pub fn listing(&self) -> Json {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        let items: Vec<Json> = files
            .iter()
            .map(|(path, f)| {
                let active = f.active.as_ref().map(|a| {
                    json!({
                        "loaded_at": a.loaded_at,
                        "steps": a.runbook.steps.len(),
                        "params": a.runbook.params.iter().map(|p| json!({
                            "name": p.name, "required": p.required, "secret": p.secret,
                        })).collect::<Vec<_>>(),
                    })
                });
                json!({
                    "file": path.strip_prefix(&self.dir).unwrap_or(path).display().to_string(),
                    "name": f.active.as_ref().map(|a| a.runbook.name.clone()),
                    "description": f.active.as_ref().and_then(|a| a.runbook.description.clone()),
                    "valid": f.valid,
                    "active": active,
                    "diagnostics": f.diagnostics,
                    "report": f.rendered,
                })
            })
            .collect();
        json!(items)
    }
}

/// Reads and checks one file; an invalid one keeps `previous` active.
fn read(
    path: &Path,
    stamp: (u64, Option<SystemTime>),
    previous: Option<Arc<Active>>,
    step_env: &StepEnvSettings,
) -> File {
    let name = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot read runbook {name}: {e}");
            return File {
                stamp,
                diagnostics: json!([{ "file": name, "severity": "error", "message": e.to_string() }]),
                rendered: e.to_string(),
                valid: false,
                active: previous,
            };
        }
    };
    let dir = runbook::dir_of(path);
    let checked = runbook::load_with(&name, &bytes, runbook::Files::Dir(&dir));
    let rendered = checked.render();
    let diagnostics = json!(
        checked
            .diagnostics
            .iter()
            .map(|d| JsonDiagnostic::new(&name, d))
            .collect::<Vec<_>>()
    );
    let refused = checked
        .runbook
        .as_ref()
        .and_then(|runbook| step_env.refuse(&runbook.secret_envs()).err());
    if let Some(message) = refused {
        tracing::warn!("runbook {name} is not offered: {message}");
        return File {
            stamp,
            diagnostics: json!([{
                "file": name, "severity": "error", "message": message,
                "hint": "a secret Sensei reads must not be passed to steps; remove it from `step_env.pass` or read the secret from another variable",
            }]),
            rendered: message,
            valid: false,
            active: previous,
        };
    }
    match checked.runbook {
        Some(runbook) => {
            tracing::info!("runbook {} loaded from {name}", runbook.name);
            File {
                stamp,
                diagnostics,
                rendered,
                valid: true,
                active: Some(Arc::new(Active {
                    runbook,
                    path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
                    text: checked.source.text,
                    loaded_at: Utc::now(),
                })),
            }
        }
        None => {
            let kept = if previous.is_some() {
                "; its last good version stays active"
            } else {
                ""
            };
            tracing::warn!("runbook {name} is not valid{kept}:\n{rendered}");
            File {
                stamp,
                diagnostics,
                rendered,
                valid: false,
                active: previous,
            }
        }
    }
}

/// Runbook names are unique within the directory: a later file (in path order) whose name is
/// taken is reported and not offered.
fn duplicates(files: &mut BTreeMap<PathBuf, File>) {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, file) in files.iter_mut() {
        let Some(name) = file.active.as_ref().map(|a| a.runbook.name.clone()) else {
            continue;
        };
        match seen.get(&name) {
            Some(first) => {
                let message = format!(
                    "runbook name `{name}` is already used by {}",
                    first.display()
                );
                tracing::warn!("{}: {message}", path.display());
                file.valid = false;
                file.active = None;
                file.rendered = message.clone();
                file.diagnostics = json!([{
                    "file": path.display().to_string(), "severity": "error", "message": message,
                    "hint": "runbook names are unique within a directory; rename one of them",
                }]);
            }
            None => {
                seen.insert(name, path.clone());
            }
        }
    }
}

/// Checks posted runbook text (`POST /v1/runbooks/validate`): the diagnostics, and whether
/// it is valid.
pub fn validate(text: &[u8]) -> (bool, Json) {
    let name = "<posted>";
    let checked = runbook::load_bytes(name, text);
    let diagnostics: Vec<JsonDiagnostic> = checked
        .diagnostics
        .iter()
        .map(|d| JsonDiagnostic::new(name, d))
        .collect();
    let valid = checked.runbook.is_some();
    let doc = json!({
        "valid": valid,
        "name": checked.runbook.as_ref().map(|r| r.name.clone()),
        "diagnostics": diagnostics,
        "rendered": checked.render(),
    });
    (valid, doc)
}
