//! Starting steps: `when`, dynamic fan-out, gates, checks, and the actions that run — within
//! the migration's concurrency and the runbook's pools. Everything decided here is committed
//! before any process starts (see `Driver::commit`).

use super::actions::Prepared;
use super::driver::Driver;
use crate::event::{EventKind, NewEvent, StepState};
use crate::runbook::model::{Action, ForEach, Gate, Phase};
use crate::store::GateOpen;
use serde_json::{Value as Json, json};
use std::time::Duration;

impl Driver {
    /// Starts what can start in `phase`.
    pub(super) fn launch_ready(&mut self, phase: Phase) {
        let ready: Vec<usize> = self.graph.ready(phase).collect();
        for node in ready {
            if self.busy >= self.concurrency && self.needs_slot(node) {
                break;
            }
            self.launch(node);
        }
        // Window waiters whose window may have changed.
        for node in self.window_waiters_due() {
            if self.busy < self.concurrency && self.graph.nodes[node].phase == phase {
                self.launch(node);
            }
        }
        // Pool waiters whose pool has room again.
        let waiting: Vec<usize> = self.pool_waiting.iter().copied().collect();
        for node in waiting {
            if self.busy < self.concurrency && self.graph.nodes[node].phase == phase {
                self.launch(node);
            }
        }
    }

    fn needs_slot(&self, node: usize) -> bool {
        let step = self.graph.step(&self.runbook, node);
        !self.graph.nodes[node].placeholder
            && matches!(
                step.action,
                Action::Run(_) | Action::Http(_) | Action::Wait(_)
            )
    }

    fn launch(&mut self, node: usize) {
        if self.graph.nodes[node].row.reason.as_deref() == Some(super::open::KEPT) {
            return self.pass_kept(node);
        }
        let step = self.graph.step(&self.runbook, node).clone();
        if let Some(when) = &step.when {
            self.focus(node);
            match self.renderer.render_bool_in(when, self.ctx.values()) {
                Ok(true) => {}
                Ok(false) => return self.skip(node, "`when` rendered false"),
                Err(e) => {
                    return self.fail_at_start(node, format!("`when` cannot be rendered: {e}"));
                }
            }
        }
        if self.graph.nodes[node].placeholder {
            return self.expand(node, &step.for_each);
        }
        match &step.action {
            Action::Gate(gate) => self.open_gate(node, gate),
            Action::Check(template) if step.poll.is_none() => {
                self.focus(node);
                match self.renderer.render_bool_in(template, self.ctx.values()) {
                    Ok(true) => self.succeed_at_once(node),
                    Ok(false) => {
                        self.fail_at_start(node, format!("check `{template}` rendered false"))
                    }
                    Err(e) => self.fail_at_start(node, format!("check cannot be rendered: {e}")),
                }
            }
            _ => {
                if !self.window_allows(node) {
                    return;
                }
                self.window_waiting.remove(&node);
                if !self.take_pool_slot(node, step.pool.as_deref()) {
                    return;
                }
                match self.prepare(node, &step.action, step.outputs.is_some()) {
                    Ok(action) => self.start(node, action),
                    Err(e) => {
                        self.release_slot(node);
                        self.fail_at_start(node, e);
                    }
                }
            }
        }
    }

    /// Takes a concurrency slot and, for a pooled step, a pool slot; a full pool makes the
    /// step wait, with the reason in its row.
    fn take_pool_slot(&mut self, node: usize, pool: Option<&str>) -> bool {
        if let Some(pool) = pool {
            let free = self.pools.get(pool).copied().unwrap_or(0);
            if free == 0 {
                if self.pool_waiting.insert(node) {
                    let reason = format!("waiting for a slot in pool {pool}");
                    self.update(node, |row| {
                        row.state = StepState::Waiting;
                        row.reason = Some(reason);
                    });
                }
                return false;
            }
            self.pools.insert(pool.to_owned(), free - 1);
        }
        self.pool_waiting.remove(&node);
        self.busy += 1;
        true
    }

    /// Gives back the slots a step held.
    pub(super) fn release_slot(&mut self, node: usize) {
        self.busy = self.busy.saturating_sub(1);
        if let Some(pool) = &self.graph.step(&self.runbook, node).pool {
            *self.pools.entry(pool.clone()).or_insert(0) += 1;
        }
    }

    /// Records the start of an attempt; the process starts after the commit.
    pub(super) fn start(&mut self, node: usize, action: Prepared) {
        let now = self.clock().now();
        self.update(node, |row| {
            row.state = StepState::Running;
            row.attempts += 1;
            row.started_at = Some(now);
            row.finished_at = None;
            row.error = None;
            row.reason = None;
        });
        let mut data = json!({ "attempt": self.graph.nodes[node].row.attempts });
        if let (Prepared::Run { command, .. }, Some(obj)) = (&action, data.as_object_mut()) {
            obj.insert("command".into(), Json::String(command.clone()));
        }
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::for_step(EventKind::StepStarted, &id, data));
        self.spawn.push((node, action));
    }

    fn skip(&mut self, node: usize, reason: &str) {
        let now = self.clock().now();
        self.update(node, |row| {
            row.state = StepState::Skipped;
            row.finished_at = Some(now);
            row.reason = Some(reason.to_owned());
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::for_step(
            EventKind::StepSkipped,
            &id,
            json!({ "reason": reason }),
        ));
    }

    fn succeed_at_once(&mut self, node: usize) {
        let now = self.clock().now();
        self.update(node, |row| {
            row.state = StepState::Succeeded;
            row.attempts += 1;
            row.started_at = Some(now);
            row.finished_at = Some(now);
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::for_step(
            EventKind::StepSucceeded,
            &id,
            json!({ "attempt": self.graph.nodes[node].row.attempts }),
        ));
    }

    /// A step that succeeded before a retry passes again without running.
    fn pass_kept(&mut self, node: usize) {
        self.update(node, |row| {
            row.state = StepState::Succeeded;
            row.reason = None;
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::for_step(
            EventKind::StepSucceeded,
            &id,
            json!({ "kept": true }),
        ));
    }

    /// A step that fails before anything runs (a template that cannot render, a false check).
    fn fail_at_start(&mut self, node: usize, error: String) {
        let now = self.clock().now();
        let error = self.masker.mask(&error).into_owned();
        self.update(node, |row| {
            row.state = StepState::Failed;
            row.attempts += 1;
            row.started_at = Some(now);
            row.finished_at = Some(now);
            row.error = Some(error.clone());
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::for_step(
            EventKind::StepFailed,
            &id,
            json!({ "error": error }),
        ));
        self.failed_for_good();
    }

    /// Expands a dynamic fan-out now that the steps it reads have finished.
    fn expand(&mut self, node: usize, for_each: &Option<ForEach>) {
        let Some(ForEach::Template(template)) = for_each else {
            return self.fail_at_start(
                node,
                "a dynamic fan-out without a `for_each` template".into(),
            );
        };
        self.focus(node);
        let items = match self.renderer.render_value_in(template, self.ctx.values()) {
            Ok(Json::Array(items)) => items,
            Ok(other) => {
                return self.fail_at_start(
                    node,
                    format!("`for_each` must give a list, but `{template}` gave {other}"),
                );
            }
            Err(e) => {
                return self.fail_at_start(node, format!("`for_each` cannot be rendered: {e}"));
            }
        };
        let added = self.graph.expand(node, &items, &self.masker);
        let ids: Vec<String> = added
            .iter()
            .map(|&i| self.graph.nodes[i].id.clone())
            .collect();
        for &i in &added {
            self.batch.steps.push(self.graph.nodes[i].row.clone());
        }
        let count = added.len();
        self.update(node, |row| {
            row.state = StepState::Waiting;
            row.reason = Some(format!("on its {count} expansions"));
        });
        let id = self.graph.nodes[node].id.clone();
        self.emit(NewEvent::for_step(
            EventKind::StepExpanded,
            &id,
            json!({ "items": items, "steps": ids }),
        ));
    }

    /// Opens a gate: it waits for decisions recorded in the store by `sensei approve`/the API.
    fn open_gate(&mut self, node: usize, gate: &Gate) {
        let now = self.clock().now();
        let deadline = gate
            .timeout
            .and_then(|t| chrono::Duration::from_std(t.as_std()).ok())
            .map(|t| now + t);
        let id = self.graph.nodes[node].id.clone();
        let who = if gate.approvers.is_empty() {
            format!("anyone but {}", self.migration.starter)
        } else {
            gate.approvers.join(", ")
        };
        self.update(node, |row| {
            row.state = StepState::Waiting;
            row.attempts += 1;
            row.started_at = Some(now);
            row.reason = Some(format!("gate: {} of {who}", gate.required));
        });
        self.batch.gates.push(GateOpen {
            step: id.clone(),
            approvers: gate.approvers.clone(),
            required: gate.required,
            deadline,
        });
        self.emit(NewEvent::for_step(
            EventKind::GateWaiting,
            &id,
            json!({
                "approvers": gate.approvers,
                "required": gate.required,
                "deadline": deadline.map(|d| d.to_rfc3339()),
                "starter": self.migration.starter,
                "digest": self.migration.digest,
            }),
        ));
        if let Some(deadline) = deadline {
            self.gate_reminders
                .insert(node, super::outside::reminder_at(now, deadline));
        }
        self.gates.insert(node, deadline);
    }

    /// Starts the attempts whose backoff has passed.
    pub(super) fn due_retries(&mut self) {
        let now = self.clock().now();
        let (due, later): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|(at, _)| *at <= now);
        self.retries = later;
        for (_, node) in due {
            let step = self.graph.step(&self.runbook, node).clone();
            match self.prepare(node, &step.action, step.outputs.is_some()) {
                Ok(action) => {
                    self.busy += 1;
                    if let Some(pool) = &step.pool {
                        let free = self.pools.entry(pool.clone()).or_insert(0);
                        *free = free.saturating_sub(1);
                    }
                    self.start(node, action);
                }
                Err(e) => self.fail_at_start(node, e),
            }
        }
    }

    /// The backoff before attempt `next` (2, 3, ...): exponential, capped, with jitter so
    /// that many retrying steps do not hammer a recovering service at the same moment.
    pub(super) fn backoff(&self, node: usize, next: u32) -> Duration {
        let retry = &self.graph.step(&self.runbook, node).retry;
        let base = retry.backoff.as_std();
        let exp = base.saturating_mul(1u32 << (next.saturating_sub(2)).min(20));
        let capped = exp.min(retry.max_backoff.as_std());
        // "Equal jitter": between half and all of the capped delay.
        capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
    }

    /// Points the template values at `node` (its `item`, the state now); render with
    /// `self.ctx.values()` next.
    pub(super) fn focus(&mut self, node: usize) {
        self.ctx.focus(&self.graph, node, self.state.as_str());
    }
}
