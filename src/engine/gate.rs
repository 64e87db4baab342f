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
    #[error("{who} may not decide gate `{gate}`: it takes a token with the role {}, and {who}'s has {}", .roles.join(" or "), held_roles(.held))]
    Role {
        who: String,
        gate: String,
        roles: Vec<String>,
        held: Vec<String>,
    },
}

fn held_roles(roles: &[String]) -> String {
    if roles.is_empty() {
        "none".to_owned()
    } else {
        roles.join(", ")
    }
}

/// Whom a decision comes from: a name, and the roles its token holds — `None` for an
/// identity nobody proved (the CLI's `--as` on a local store, a server without tokens), which
/// holds every role, as it may do anything else.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    pub who: &'a str,
    pub roles: Option<&'a [String]>,
}

fn others(approvers: &[String]) -> String {
    if approvers.is_empty() {
        "someone else".to_owned()
    } else {
        format!("one of: {}", approvers.join(", "))
    }
}

/// Checks that `decider` may decide `gate` of `migration` now; `roles` are the gate's own
/// (runbook `roles`), one of which the decider's token must hold.
pub fn may_decide(
    migration: &Migration,
    gate: &GateInfo,
    decider: Decider<'_>,
    roles: &[String],
) -> Result<(), GateRefusal> {
    let who = decider.who;
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
    if let Some(held) = decider.roles
        && !roles.is_empty()
        && !held.iter().any(|h| h == "admin" || roles.contains(h))
    {
        return Err(GateRefusal::Role {
            who: who.to_owned(),
            gate: gate.step.clone(),
            roles: roles.to_vec(),
            held: held.to_vec(),
        });
    }
    Ok(())
}
