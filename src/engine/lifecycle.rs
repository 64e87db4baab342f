//! The migration lifecycle of SPEC §3: the only place that decides whether a state may change.
//!
//! Every state change anywhere (engine, CLI, server) goes through [`transition`]; the store
//! refuses a batch whose expected state no longer holds, so two writers cannot both move a
//! migration from the same state.

use crate::event::MigrationState::{self, *};
use crate::runbook::model::Phase;

/// A state change the table of SPEC §3 forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*from, *to))]
pub struct IllegalTransition {
    pub from: MigrationState,
    pub to: MigrationState,
}

impl IllegalTransition {
    /// The states `from` may move to, for error messages and the API's 409 body.
    pub fn allowed(&self) -> &'static [MigrationState] {
        allowed(self.from)
    }
}

fn describe(from: MigrationState, to: MigrationState) -> String {
    let allowed = allowed(from);
    let a = article(from);
    if allowed.is_empty() {
        format!("{a} {from} migration cannot become {to}: {from} is final")
    } else {
        let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        format!(
            "{a} {from} migration cannot become {to}; from {from} it can only become {}",
            names.join(" or ")
        )
    }
}

/// "a running migration", "an approved migration".
pub fn article(state: MigrationState) -> &'static str {
    if state.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The transition table of SPEC §3.
pub fn allowed(from: MigrationState) -> &'static [MigrationState] {
    match from {
        Created => &[Analyzing, Cancelled],
        Analyzing => &[Planning, Failed],
        Planning => &[AwaitingApproval, Failed],
        AwaitingApproval => &[Approved, Cancelled],
        Approved => &[Running, Cancelled],
        Running => &[Paused, Completed, Failed],
        Paused => &[Running, Cancelled],
        Completed => &[Validating],
        Validating => &[Certified, Failed],
        Certified => &[],
        Failed => &[Analyzing],
        Cancelled => &[],
    }
}

/// Checks one state change. The single gatekeeper of the lifecycle.
pub fn transition(
    from: MigrationState,
    to: MigrationState,
) -> Result<MigrationState, IllegalTransition> {
    if allowed(from).contains(&to) {
        Ok(to)
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// The state a migration is in while the steps of `phase` run.
pub fn state_of_phase(phase: Phase) -> MigrationState {
    match phase {
        Phase::Analyze => Analyzing,
        Phase::Plan => Planning,
        Phase::Approve => AwaitingApproval,
        Phase::Execute => Running,
        Phase::Validate => Validating,
    }
}

/// The state a migration reaches when every step of `phase` has finished (before the
/// next phase's state).
pub fn state_after_phase(phase: Phase) -> MigrationState {
    match phase {
        Phase::Analyze => Planning,
        Phase::Plan => AwaitingApproval,
        Phase::Approve => Approved,
        Phase::Execute => Completed,
        Phase::Validate => Certified,
    }
}

/// The phase whose steps run in `state`, if steps run in it at all.
pub fn phase_of_state(state: MigrationState) -> Option<Phase> {
    match state {
        Analyzing => Some(Phase::Analyze),
        Planning => Some(Phase::Plan),
        AwaitingApproval => Some(Phase::Approve),
        Approved | Running | Paused => Some(Phase::Execute),
        Completed | Validating => Some(Phase::Validate),
        Created | Certified | Failed | Cancelled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §3 written out as pairs, independently of `allowed`'s match.
    const TABLE: &[(MigrationState, MigrationState)] = &[
        (Created, Analyzing),
        (Created, Cancelled),
        (Analyzing, Planning),
        (Analyzing, Failed),
        (Planning, AwaitingApproval),
        (Planning, Failed),
        (AwaitingApproval, Approved),
        (AwaitingApproval, Cancelled),
        (Approved, Running),
        (Approved, Cancelled),
        (Running, Paused),
        (Running, Completed),
        (Running, Failed),
        (Paused, Running),
        (Paused, Cancelled),
        (Completed, Validating),
        (Validating, Certified),
        (Validating, Failed),
        (Failed, Analyzing),
    ];

    #[test]
    fn every_pair_follows_the_spec_table() {
        let mut checked = 0;
        for &from in MigrationState::ALL {
            for &to in MigrationState::ALL {
                let expected = TABLE.contains(&(from, to));
                assert_eq!(transition(from, to).is_ok(), expected, "{from} -> {to}");
                checked += 1;
            }
        }
        assert_eq!(checked, 144);
    }

    #[test]
    fn refusals_name_the_allowed_transitions() {
        let err = transition(Running, Certified).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "a running migration cannot become certified; from running it can only become paused or completed or failed"
            )
        );
        let err = transition(Certified, Running).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("a certified migration cannot become running: certified is final")
        );
    }

    #[test]
    fn phases_walk_the_happy_path_in_order() {
        let mut state = Created;
        state = transition(state, Analyzing).unwrap_or(state);
        for phase in [
            Phase::Analyze,
            Phase::Plan,
            Phase::Approve,
            Phase::Execute,
            Phase::Validate,
        ] {
            assert_eq!(state, state_of_phase(phase));
            let next = state_after_phase(phase);
            state = transition(state, next).unwrap_or_else(|e| panic!("{e}"));
            if let Some(running) = match next {
                Approved => Some(Running),
                Completed => Some(Validating),
                _ => None,
            } {
                state = transition(state, running).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        assert_eq!(state, Certified);
    }
}
