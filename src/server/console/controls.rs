//! The migration page's lifecycle buttons: for each operation the lifecycle allows in the
//! migration's state ([`operation::possible`], the rule the API applies), the API call it
//! makes and the confirmation that names what it will do, with the steps it touches.
//!
//! Which operations exist, and what each does, are decided elsewhere: the lifecycle in
//! `engine::operation`, rollback's choice of steps (succeeded ones with a `rollback` command)
//! in `engine::core::rollback`, the API's bodies in `server::routes::lifecycle`. This module
//! only puts them in words; the API still judges every call, and its refusal is shown as it
//! is (the state may have moved on since the page looked).

use crate::engine::operation;
#[cfg(test)]
use crate::event::MigrationId;
use crate::event::{MigrationState, Operation, StepState};
use crate::runbook::model::Runbook;
use crate::store::{Migration, StepRow};
use serde::Serialize;
use serde_json::{Value as Json, json};

/// One button.
#[derive(Debug, Serialize)]
pub struct Control {
    /// Unique on the page: the operation, or `resume-retry`, `cancel-rollback`, ...
    pub key: &'static str,
    pub label: &'static str,
    pub method: &'static str,
    /// After `/v1/migrations/{id}`.
    pub path: &'static str,
    pub body: Json,
    /// The question the operator answers first.
    pub confirm: String,
    /// Destroys or ends something.
    pub danger: bool,
}

/// `a, b, c` or `a, b, c and 4 more`.
fn names(ids: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

/// `1 step`, `3 steps`.
fn steps(n: usize) -> String {
    if n == 1 {
        "1 step".to_owned()
    } else {
        format!("{n} steps")
    }
}

/// `is` or `are`, for `n` of something.
fn are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// What the migration's steps are, as the buttons speak of them.
struct Census<'a> {
    succeeded: Vec<&'a str>,
    /// Succeeded, with a `rollback` command: what a rollback undoes.
    undone: Vec<&'a str>,
    interrupted: Vec<&'a str>,
    failed: Vec<&'a str>,
    /// Neither succeeded nor skipped: what a retry runs again.
    again: Vec<&'a str>,
    /// The first point of no return that succeeded: rollbacks stop there
    /// (`engine::core::rollback` decides which steps are after it).
    passed_point: Option<&'a str>,
}

impl<'a> Census<'a> {
    fn of(rows: &'a [StepRow], runbook: Option<&Runbook>) -> Census<'a> {
        let in_state = |state: StepState| -> Vec<&'a str> {
            rows.iter()
                .filter(|r| r.state == state)
                .map(|r| r.step.as_str())
                .collect()
        };
        let succeeded = in_state(StepState::Succeeded);
        // A fan-out part `copy[a]` is its runbook step `copy`: its rollback, its point.
        let step_of = |id: &str| runbook.and_then(|r| r.step(crate::plan::base_step(id)));
        let undoes = |id: &&str| step_of(id).is_some_and(|s| s.rollback.is_some());
        let is_point = |id: &&str| step_of(id).is_some_and(|s| s.point_of_no_return);
        Census {
            passed_point: succeeded.iter().copied().find(is_point),
            undone: succeeded.iter().copied().filter(undoes).collect(),
            interrupted: in_state(StepState::Interrupted),
            failed: in_state(StepState::Failed),
            again: rows
                .iter()
                .filter(|r| !r.state.lets_dependents_run())
                .map(|r| r.step.as_str())
                .collect(),
            succeeded,
        }
    }

    /// "the 3 steps that succeeded (a, b, c)", or which of them, when some have no rollback.
    fn to_undo(&self) -> String {
        let (n, all) = (self.undone.len(), self.succeeded.len());
        if n == all {
            format!("the {} that succeeded ({})", steps(n), names(&self.undone))
        } else {
            format!(
                "the {} of its {all} succeeded steps that have a rollback command ({})",
                n,
                names(&self.undone)
            )
        }
    }

    /// Said after a rollback's question: what it leaves alone.
    fn not_undone(&self) -> String {
        match self.succeeded.len() - self.undone.len() {
            0 => String::new(),
            k => format!(
                " The other {} that succeeded {} no rollback command and {} as {}.",
                steps(k),
                if k == 1 { "has" } else { "have" },
                if k == 1 { "stays" } else { "stay" },
                if k == 1 { "it is" } else { "they are" },
            ),
        }
    }
}

impl Control {
    fn new(
        key: &'static str,
        label: &'static str,
        method: &'static str,
        path: &'static str,
    ) -> Self {
        Control {
            key,
            label,
            method,
            path,
            body: json!({}),
            confirm: String::new(),
            danger: false,
        }
    }

    fn asking(mut self, confirm: String) -> Self {
        self.confirm = confirm;
        self
    }

    fn sending(mut self, body: Json) -> Self {
        self.body = body;
        self
    }

    fn dangerous(mut self) -> Self {
        self.danger = true;
        self
    }
}

/// The buttons for migration `m` with step rows `rows`; `runbook` is its runbook as it
/// started (`None` when its text no longer loads: rollbacks are then described without
/// their steps).
pub fn controls(m: &Migration, rows: &[StepRow], runbook: Option<&Runbook>) -> Vec<Control> {
    let id = m.id.to_string();
    let c = Census::of(rows, runbook);
    let running = m.state == MigrationState::Running;
    let mut out = Vec::new();
    for op in operation::possible(m.state) {
        match op {
            Operation::Start => out.push(Control::new("start", "Start", "POST", "/start").asking(
                format!(
                    "Start migration {id}? It runs from its analyze phase on, and stops at its \
                     gates until they are approved."
                ),
            )),
            Operation::Pause => out.push(Control::new("pause", "Pause", "POST", "/pause").asking(
                format!(
                    "Pause migration {id}? Running steps finish, and no new step starts until \
                     it is resumed."
                ),
            )),
            Operation::Resume => out.extend(resume(&id, &c)),
            Operation::Retry => out.push(Control::new("retry", "Retry", "POST", "/retry").asking(
                format!(
                    "Retry migration {id}? It starts again from its analyze phase: the {} that \
                     succeeded {} kept, the other {} run again ({}).",
                    steps(c.succeeded.len()),
                    are(c.succeeded.len()),
                    c.again.len(),
                    names(&c.again)
                ),
            )),
            Operation::Rollback => {
                out.push(rollback(&id, &c, running));
                out.extend(rollback_past(&id, &c));
            }
            Operation::Cancel => out.extend(cancel(&id, &c, running)),
        }
    }
    out
}

/// Resume; with steps a crash interrupted, one button to run them again and one to skip them.
fn resume(id: &str, c: &Census<'_>) -> Vec<Control> {
    if c.interrupted.is_empty() {
        // A step that failed (and paused it, `on_failure: pause`) runs again on resume.
        let again = match c.failed.len() {
            0 => String::new(),
            n => format!(
                " The {} that failed ({}) {} again.",
                steps(n),
                names(&c.failed),
                if n == 1 { "runs" } else { "run" }
            ),
        };
        return vec![
            Control::new("resume", "Resume", "POST", "/resume").asking(format!(
                "Resume migration {id}? It continues where it paused; the {} done {} not run \
             again.{again}",
                steps(c.succeeded.len()),
                are(c.succeeded.len())
            )),
        ];
    }
    let (n, which) = (steps(c.interrupted.len()), names(&c.interrupted));
    vec![
        Control::new(
            "resume-retry",
            "Resume, running interrupted steps again",
            "POST",
            "/resume",
        )
        .sending(json!({ "interrupted": "retry" }))
        .asking(format!(
            "Resume migration {id} and run its {n} interrupted by a crash again ({which})? \
                 They stopped mid-run, so running them twice must be safe."
        )),
        Control::new(
            "resume-skip",
            "Resume, skipping interrupted steps",
            "POST",
            "/resume",
        )
        .sending(json!({ "interrupted": "skip" }))
        .asking(format!(
            "Resume migration {id} and skip its {n} interrupted by a crash ({which})? They \
                 count as done without running again, and the steps after them run."
        ))
        .dangerous(),
    ]
}

fn rollback(id: &str, c: &Census<'_>, running: bool) -> Control {
    let button = Control::new("rollback", "Roll back", "POST", "/rollback").dangerous();
    if c.undone.is_empty() {
        return button.asking(format!(
            "Roll back migration {id}? No step that succeeded has a rollback command, so nothing \
             is undone; it ends failed."
        ));
    }
    let kill = if running {
        " Running steps are killed first."
    } else {
        ""
    };
    if c.passed_point.is_some() {
        return button.asking(format!(
            "Roll back migration {id}?{kill}{} The rollback commands run one at a time, the \
             last step first; then it ends failed (a retry can run it again).",
            stops_at(c)
        ));
    }
    button.asking(format!(
        "Roll back migration {id} and undo {}?{kill} The rollback commands run one at a time, \
         the last step first; then it ends failed (a retry can run it again).{}",
        c.to_undo(),
        c.not_undone()
    ))
}

/// What a rollback's question adds once a point of no return has succeeded.
fn stops_at(c: &Census<'_>) -> String {
    match c.passed_point {
        None => String::new(),
        Some(point) => format!(
            " The point of no return {point} has succeeded, so it stops there: only the steps \
             after it are undone, and the others are kept."
        ),
    }
}

/// Once a point of no return has succeeded: the admin's rollback that crosses it.
fn rollback_past(id: &str, c: &Census<'_>) -> Option<Control> {
    let point = c.passed_point?;
    Some(
        Control::new(
            "rollback-past",
            "Roll back past the point of no return",
            "POST",
            "/rollback",
        )
        .sending(json!({ "past_point_of_no_return": true }))
        .asking(format!(
            "Roll back migration {id} past its point of no return {point}, and undo {}? This \
             undoes what cannot usually be undone; only an admin may ask for it.",
            c.to_undo()
        ))
        .dangerous(),
    )
}

/// Cancel; and cancel with rollback, when a succeeded step has a rollback command.
fn cancel(id: &str, c: &Census<'_>, running: bool) -> Vec<Control> {
    let kill = if running {
        " Running steps are killed."
    } else {
        ""
    };
    let kept = match c.succeeded.len() {
        0 => String::new(),
        n => format!(
            " Nothing is rolled back: what the {} that succeeded changed stays changed.",
            steps(n)
        ),
    };
    let mut out = vec![
        Control::new("cancel", "Cancel", "DELETE", "")
            .asking(format!(
                "Cancel migration {id}?{kill} It ends cancelled, which is final.{kept}"
            ))
            .dangerous(),
    ];
    if !c.undone.is_empty() {
        out.push(
            Control::new("cancel-rollback", "Cancel and roll back", "DELETE", "")
                .sending(json!({ "rollback": true }))
                .asking(format!(
                    "Cancel migration {id} and roll back {}?{kill} The rollback commands run one \
                     at a time, the last step first; then it ends cancelled, which is final.{}",
                    match c.passed_point {
                        Some(_) => "what came after its point of no return".to_owned(),
                        None => c.to_undo(),
                    },
                    match c.passed_point {
                        Some(_) => stops_at(c),
                        None => c.not_undone(),
                    }
                ))
                .dangerous(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    const TEXT: &str = "version: 1\nname: t\nsteps:\n  - id: a\n    run: echo\n    rollback: echo undo\n  - id: b\n    run: echo\n  - id: c\n    run: echo\n";

    fn migration(state: MigrationState) -> Migration {
        Migration {
            id: MigrationId::from("m-1".to_owned()),
            runbook: "t".into(),
            runbook_path: "t.yaml".into(),
            runbook_text: TEXT.into(),
            params: json!({}),
            masked_params: json!({}),
            digest: String::new(),
            state,
            starter: "ops".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            last_seq: 0,
            runbook_files: Default::default(),
        }
    }

    fn rows(states: &[(&str, StepState)]) -> Vec<StepRow> {
        states.iter().map(|(id, s)| StepRow::new(id, *s)).collect()
    }

    fn runbook() -> Runbook {
        crate::runbook::load_bytes("t.yaml", TEXT.as_bytes())
            .runbook
            .expect("valid")
    }

    #[test]
    fn a_running_migration_pauses_cancels_or_rolls_back_only_what_has_a_rollback() {
        let r = runbook();
        let steps = rows(&[
            ("a", StepState::Succeeded),
            ("b", StepState::Succeeded),
            ("c", StepState::Running),
        ]);
        let list = controls(&migration(MigrationState::Running), &steps, Some(&r));
        let keys: Vec<&str> = list.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["pause", "cancel", "cancel-rollback", "rollback"]);
        assert_eq!(
            list[3].confirm,
            "Roll back migration m-1 and undo the 1 of its 2 succeeded steps that have a rollback command (a)? Running steps are killed first. The rollback commands run one at a time, the last step first; then it ends failed (a retry can run it again). The other 1 step that succeeded has no rollback command and stays as it is."
        );
        assert!(
            list[1]
                .confirm
                .starts_with("Cancel migration m-1? Running steps are killed. It ends cancelled"),
            "{}",
            list[1].confirm
        );
    }

    #[test]
    fn a_failed_migration_retries_what_did_not_succeed() {
        let steps = rows(&[
            ("a", StepState::Succeeded),
            ("b", StepState::Failed),
            ("c", StepState::Cancelled),
        ]);
        let list = controls(&migration(MigrationState::Failed), &steps, Some(&runbook()));
        let keys: Vec<&str> = list.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["retry", "rollback"]);
        assert_eq!(
            list[0].confirm,
            "Retry migration m-1? It starts again from its analyze phase: the 1 step that succeeded is kept, the other 2 run again (b, c)."
        );
    }

    #[test]
    fn a_final_migration_offers_nothing() {
        let steps = rows(&[("a", StepState::Succeeded)]);
        for state in [MigrationState::Certified, MigrationState::Cancelled] {
            assert!(controls(&migration(state), &steps, None).is_empty());
        }
    }

    #[test]
    fn past_a_point_of_no_return_a_rollback_says_it_stops_there_and_an_admin_may_cross_it() {
        let text = TEXT.replace(
            "    run: echo\n    rollback: echo undo\n",
            "    run: echo\n    rollback: echo undo\n    point_of_no_return: true\n",
        );
        let r = crate::runbook::load_bytes("t.yaml", text.as_bytes())
            .runbook
            .expect("valid");
        let steps = rows(&[
            ("a", StepState::Succeeded),
            ("b", StepState::Failed),
            ("c", StepState::Cancelled),
        ]);
        let list = controls(&migration(MigrationState::Failed), &steps, Some(&r));
        let keys: Vec<&str> = list.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["retry", "rollback", "rollback-past"]);
        assert!(
            list[1]
                .confirm
                .contains("The point of no return a has succeeded, so it stops there"),
            "{}",
            list[1].confirm
        );
        assert_eq!(list[2].body, json!({ "past_point_of_no_return": true }));
        assert!(list[2].confirm.contains("only an admin may ask for it"));
    }
}
