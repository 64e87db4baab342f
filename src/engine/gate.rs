//! Who may decide a gate (SPEC §5–§6): one of its approvers when it lists any, and never the
//! migration's starter. The same rules for the CLI and the API; the store then makes the
//! decision itself atomic (first decision wins, one vote per person).

use crate::store::{GateInfo, GateStatus, Migration};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    #[error("{who} started migration {migration}, so {who} cannot decide its gate `{gate}`; ask {}", others(.approvers))]
    Starter {
        who: String,
        migration: String,
        gate: String,
        approvers: Vec<String>,
    },
    #[error("{who} is not an approver of gate `{gate}`; its approvers are {}", .approvers.join(", "))]
    NotApprover {
        who: String,
        gate: String,
        approvers: Vec<String>,
    },
    #[error("gate `{gate}` is not waiting for a decision (it is {status})")]
    Closed { gate: String, status: String },
}

fn others(approvers: &[String]) -> String {
    if approvers.is_empty() {
        "someone else".to_owned()
    } else {
        format!("one of: {}", approvers.join(", "))
    }
}

/// Checks that `who` may decide `gate` of `migration` now.
pub fn may_decide(migration: &Migration, gate: &GateInfo, who: &str) -> Result<(), GateRefusal> {
    if gate.status != GateStatus::Open {
        return Err(GateRefusal::Closed {
            gate: gate.step.clone(),
            status: gate.status.describe().to_owned(),
        });
    }
    if who == migration.starter {
        return Err(GateRefusal::Starter {
            who: who.to_owned(),
            migration: migration.id.to_string(),
            gate: gate.step.clone(),
            approvers: gate
                .approvers
                .iter()
                .filter(|a| *a != who)
                .cloned()
                .collect(),
        });
    }
    if !gate.approvers.is_empty() && !gate.approvers.iter().any(|a| a == who) {
        return Err(GateRefusal::NotApprover {
            who: who.to_owned(),
            gate: gate.step.clone(),
            approvers: gate.approvers.clone(),
        });
    }
    Ok(())
}
