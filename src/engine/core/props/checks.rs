//! The checks made on what the core decides: each start it asks for, and what is in flight.

use super::world::{World, fail};
use super::*;

impl World {
    pub(super) fn check_start(&self, start: &Start) -> Result<(), TestCaseError> {
        if start.work == Work::Undo {
            return self.check_undo(start);
        }
        let state = self.core.state;
        if matches!(state, MigrationState::Paused) || state.is_at_rest() || self.core.stop.is_some()
        {
            return Err(fail(format!(
                "{} started while {state} (stop {:?})",
                start.step, self.core.stop
            )));
        }
        if self.succeeded.contains(&start.step) {
            return Err(fail(format!(
                "{} started again after it succeeded",
                start.step
            )));
        }
        let node = self
            .core
            .graph
            .find(&start.step)
            .ok_or_else(|| fail("no node".into()))?;
        if let Some(window) = self
            .core
            .graph
            .step(&self.core.runbook, node)
            .window
            .as_deref()
        {
            let window = self
                .core
                .runbook
                .window(window)
                .ok_or_else(|| fail("no window".into()))?;
            if !matches!(
                calendar::window_state(window, self.now),
                WindowState::Open { .. }
            ) {
                return Err(fail(format!(
                    "{} started outside its window at {}",
                    start.step, self.now
                )));
            }
        }
        Ok(())
    }

    /// A rollback not allowed past the point of no return (`c`) undoes nothing before it
    /// once it has succeeded: of the steps with a rollback, only `d` (which needs it) is
    /// after it.
    fn check_undo(&self, start: &Start) -> Result<(), TestCaseError> {
        let point = self
            .core
            .graph
            .find("c")
            .ok_or_else(|| fail("no node c".into()))?;
        let passed = self.core.graph.nodes[point].row.state == StepState::Succeeded;
        if passed && !self.core.past_point_of_no_return && start.step != "d" {
            return Err(fail(format!(
                "{} rolled back past the point of no return c",
                start.step
            )));
        }
        Ok(())
    }

    pub(super) fn check_flight(&self) -> Result<(), TestCaseError> {
        let pooled = self
            .running
            .iter()
            .filter(|(s, _)| matches!(s.step.as_str(), "a" | "b"))
            .count();
        if self.running.len() > CONCURRENCY || pooled > POOL_SIZE {
            return Err(fail(format!(
                "{} in flight, {pooled} in the pool",
                self.running.len()
            )));
        }
        if self.core.in_flight() != self.running.len() {
            return Err(fail(format!(
                "the core counts {} in flight, {} run",
                self.core.in_flight(),
                self.running.len()
            )));
        }
        Ok(())
    }
}
