//! The `compare` action: the step's process is `sensei __step compare`
//! ([`crate::db::compare::child`]), run like a `sql` step's ([`super::sql::Child`]). A
//! process that exits 1 found differences, and its last line says which; one that exits 3
//! could not compare.

use super::sql::Child;
use super::{Attempt, Outcome};
use crate::db::compare::child::EXIT_CANNOT;
use crate::db::compare::spec::CompareSpec;
use crate::process::StepEnv;
use std::path::Path;
use tokio::sync::watch;

pub(super) async fn run(
    spec: &CompareSpec,
    exe: &Path,
    env: StepEnv,
    secrets: &[String],
    attempt: &Attempt,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let input = match serde_json::to_vec(spec) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Outcome::Failed {
                error: format!("the step cannot be encoded: {e}"),
                exit_code: None,
                transient: false,
            };
        }
    };
    let child = Child {
        kind: "compare",
        input,
        exe,
        env,
        secrets,
        failure: |code, reason| {
            if code == i32::from(EXIT_CANNOT) {
                format!("the comparison could not be made: {reason}")
            } else {
                reason
            }
        },
    };
    child.run(attempt, cancel).await
}
