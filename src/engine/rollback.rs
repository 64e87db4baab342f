//! Rollback (SPEC §3): the `rollback` action of every succeeded step, dependents before what
//! they depend on, one at a time. Each undone step is committed as `rolled_back` before the
//! next starts, so a crash during a rollback resumes it where it stopped. The first rollback
//! that fails stops the rollback: undoing more on top of a failed undo could make things
//! worse, and an operator must look.

use super::EngineError;
use super::actions::{self, Attempt, Outcome, Prepared};
use super::driver::Driver;
use crate::event::{EventKind, MigrationState, NewEvent, StepState};
use crate::runbook::render::Escape;
use serde_json::json;
use tokio::sync::watch;

/// Rollback output is logged as attempt 0 of the step.
pub const ROLLBACK_ATTEMPT: u32 = 0;

impl Driver {
    /// Rolls back every succeeded step that has a `rollback` action.
    pub(super) async fn rollback(&mut self) -> Result<(), EngineError> {
        if self.state == MigrationState::Paused {
            self.set_state(MigrationState::Running, "resumed to roll back")?;
        }
        let mut order = self.graph.topological_order();
        order.reverse();
        let todo: Vec<usize> = order
            .into_iter()
            .filter(|&n| {
                self.graph.nodes[n].row.state == StepState::Succeeded
                    && self.graph.step(&self.runbook, n).rollback.is_some()
            })
            .collect();
        let ids: Vec<String> = todo
            .iter()
            .map(|&n| self.graph.nodes[n].id.clone())
            .collect();
        self.emit(NewEvent::new(
            EventKind::RollbackStarted,
            json!({ "steps": ids }),
        ));
        self.commit().await?;
        let mut rolled_back = 0;
        let mut failed = None;
        for node in todo {
            match self.undo(node).await {
                Ok(()) => rolled_back += 1,
                Err(error) => {
                    let id = self.graph.nodes[node].id.clone();
                    self.emit(NewEvent::for_step(
                        EventKind::RollbackFailed,
                        &id,
                        json!({ "error": error }),
                    ));
                    failed = Some(id);
                    self.commit().await?;
                    break;
                }
            }
            self.commit().await?;
        }
        self.emit(NewEvent::new(
            EventKind::RollbackFinished,
            json!({ "ok": failed.is_none(), "rolled_back": rolled_back, "failed_step": failed }),
        ));
        Ok(())
    }

    /// Runs one step's rollback action; on success its row becomes `rolled_back`.
    async fn undo(&mut self, node: usize) -> Result<(), String> {
        let step = self.graph.step(&self.runbook, node).clone();
        let Some(template) = &step.rollback else {
            return Ok(());
        };
        let command = if template.contains("{{") {
            self.focus(node);
            self.renderer
                .render_in(template, self.ctx.values(), Escape::Shell)
                .map_err(|e| format!("the rollback command cannot be rendered: {e}"))?
        } else {
            template.clone()
        };
        let attempt = Attempt {
            migration: self.migration.id.clone(),
            step: self.graph.nodes[node].id.clone(),
            attempt: ROLLBACK_ATTEMPT,
            dir: self.opts.dir.clone(),
            timeout: step.timeout.map(|t| t.as_std()),
            transient_codes: Vec::new(),
            store: self.store.clone(),
            masker: self.masker.clone(),
            reaper: self.opts.reaper.clone(),
            http: self.http.clone(),
            clock: self.opts.clock.clone(),
        };
        let (_keep, cancel) = watch::channel(false);
        let action = Prepared::Run {
            command,
            env: self.env.clone(),
            json_outputs: false,
        };
        match actions::perform(action, attempt, cancel).await {
            Outcome::Succeeded { .. } => {
                self.update(node, |row| row.state = StepState::RolledBack);
                let id = self.graph.nodes[node].id.clone();
                self.emit(NewEvent::for_step(
                    EventKind::StepRolledBack,
                    &id,
                    json!({}),
                ));
                Ok(())
            }
            Outcome::Failed { error, .. } => Err(error),
            Outcome::Cancelled => Err("cancelled".into()),
        }
    }
}
