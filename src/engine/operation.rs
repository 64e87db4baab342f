//! Operator operations (start, pause, resume, cancel, retry, rollback) as paths through the
//! lifecycle. The CLI and the server ask here whether an operation is possible now, and the
//! driver walks the same path, so both refuse the same things with the same words.

use super::lifecycle::{self, IllegalTransition};
use crate::event::MigrationState::{self, *};
use crate::event::Operation;

/// An operation that the lifecycle does not allow in the migration's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {op} {} {state} migration; {}", lifecycle::article(*state), hint(*state))]
pub struct Refused {
    pub op: Operation,
    pub state: MigrationState,
}

impl Refused {
    /// Operations possible in the state, for the API's 409 body.
    pub fn possible(&self) -> Vec<Operation> {
        possible(self.state)
    }

    /// The state changes the lifecycle allows from here.
    pub fn allowed_transitions(&self) -> &'static [MigrationState] {
        lifecycle::allowed(self.state)
    }
}

fn hint(state: MigrationState) -> String {
    let ops: Vec<&str> = possible(state).iter().map(|o| o.as_str()).collect();
    let next: Vec<&str> = lifecycle::allowed(state)
        .iter()
        .map(|s| s.as_str())
        .collect();
    match (ops.is_empty(), next.is_empty()) {
        (_, true) => format!("{state} is final"),
        (true, false) => format!("from {state} it can only become {}", next.join(" or ")),
        (false, false) => format!(
            "from {state} it can only become {} (possible now: {})",
            next.join(" or "),
            ops.join(", ")
        ),
    }
}

/// The states an operation passes through, in order, starting from `state`. Every step of
/// the path is a transition the lifecycle allows; `rollback` of a failed migration is the
/// empty path (it stays failed).
pub fn path(op: Operation, state: MigrationState) -> Result<Vec<MigrationState>, Refused> {
    let path: &[MigrationState] = match (op, state) {
        (Operation::Start, Created) => &[Analyzing],
        (Operation::Pause, Running) => &[Paused],
        (Operation::Resume, Paused) => &[Running],
        (Operation::Cancel, Running) => &[Paused, Cancelled],
        (Operation::Cancel, Created | AwaitingApproval | Approved | Paused) => &[Cancelled],
        (Operation::Retry, Failed) => &[Analyzing],
        (Operation::Rollback, Running) => &[Failed],
        (Operation::Rollback, Paused) => &[Running, Failed],
        (Operation::Rollback, Failed) => &[],
        _ => return Err(Refused { op, state }),
    };
    debug_assert!(walk(state, path).is_ok());
    Ok(path.to_vec())
}

/// Checks a path against the lifecycle, one transition at a time.
pub fn walk(
    from: MigrationState,
    path: &[MigrationState],
) -> Result<MigrationState, IllegalTransition> {
    path.iter()
        .try_fold(from, |state, &to| lifecycle::transition(state, to))
}

/// The operations possible in a state.
pub fn possible(state: MigrationState) -> Vec<Operation> {
    Operation::ALL
        .iter()
        .copied()
        .filter(|&op| path(op, state).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_path_is_legal() {
        for &op in Operation::ALL {
            for &state in MigrationState::ALL {
                if let Ok(path) = path(op, state) {
                    assert!(walk(state, &path).is_ok(), "{op} from {state}: {path:?}");
                }
            }
        }
    }

    #[test]
    fn cancelling_a_running_migration_pauses_it_first() {
        assert_eq!(
            path(Operation::Cancel, Running),
            Ok(vec![Paused, Cancelled])
        );
    }

    #[test]
    fn refusals_say_what_is_possible() {
        let refused = path(Operation::Pause, Certified)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("cannot pause a certified migration; certified is final")
        );
        let refused = path(Operation::Resume, Running)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some(
                "cannot resume a running migration; from running it can only become paused or completed or failed (possible now: pause, cancel, rollback)"
            )
        );
    }
}
