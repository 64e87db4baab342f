//! What a previous driver left, read when a driver attaches: step processes that still run
//! on this host, gate rows, and the events a retry or recovery replays; the core settles
//! them (`core::recover`).

use super::Driver;
use crate::engine::core::{Orphan, Recovery};
use crate::engine::open::Attach;
use crate::engine::{EngineError, ROLLBACK_ATTEMPT};
use crate::event::StepState;
use crate::store::GateStatus;

impl Driver {
    /// Reads what a previous driver left (processes still running, gate rows, events), for
    /// the core to settle, then applies the operation this driver attached for.
    pub(in crate::engine) fn attach(&mut self, how: Attach) -> Result<(), EngineError> {
        let left = self.recovery(how)?;
        let now = self.now();
        self.core.at(now).recover(how, &left)?;
        self.core.operate(how, &self.lease, &left)
    }

    fn recovery(&self, how: Attach) -> Result<Recovery, EngineError> {
        let mut left = Recovery::default();
        let id = &self.core.migration.id;
        let rolling_back = self.core.rolling_back();
        for (node, n) in self.core.graph.nodes.iter().enumerate() {
            match n.row.state {
                StepState::Running | StepState::Interrupted => {
                    if let Some(o) = self.live_orphan(&n.id, None)? {
                        left.orphans.insert(n.id.clone(), o);
                    }
                }
                StepState::Waiting if !n.placeholder => {
                    if let Some(gate) = self.store.gate(id, &n.id)? {
                        left.gates.insert(n.id.clone(), gate);
                    }
                }
                StepState::Succeeded if rolling_back && self.core.has_rollback(node) => {
                    let attempt = Some(ROLLBACK_ATTEMPT);
                    if let Some(o) = self.live_orphan(&n.id, attempt)? {
                        left.undo_orphans.insert(n.id.clone(), o);
                    }
                }
                _ => {}
            }
        }
        if left
            .gates
            .values()
            .any(|g| g.status == GateStatus::Rejected)
        {
            left.decisions = self.store.gate_decisions(id).unwrap_or_default();
        }
        if matches!(
            how,
            Attach::Retry | Attach::Recover | Attach::Rollback | Attach::CancelRollback
        ) {
            left.events = self.store.events(id, 0)?;
        }
        Ok(left)
    }

    /// The process group of the step's latest attempt (of `attempt` when given), when it
    /// still runs on this host although no driver owns it.
    fn live_orphan(&self, step: &str, attempt: Option<u32>) -> Result<Option<Orphan>, EngineError> {
        let Some(p) = self.store.step_process(&self.core.migration.id, step)? else {
            return Ok(None);
        };
        let ours = p.host == self.store.host() && attempt.is_none_or(|a| a == p.attempt);
        Ok(
            (ours && crate::host::group_alive(p.pgid, p.pg_start)).then(|| Orphan {
                step: step.to_owned(),
                attempt: p.attempt,
                pgid: p.pgid,
            }),
        )
    }
}
