//! The `compare` action: the step's process is `sensei __step compare`
//! ([`crate::db::compare::child`]), run exactly like a `sql` step's
//! ([`super::sql::child`]): its spec on stdin, its `progress=` lines followed live, both DSNs'
//! passwords masked. A process that exits 3 found differences, and its last line says which;
//! one that exits 1 could not compare.

use super::sql::{Child, child};
use super::{Attempt, Outcome};
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
    let process = Child {
        kind: "compare",
        failed: "the comparison could not be made",
    };
    child(process, spec, exe, env, secrets, attempt, cancel).await
}
