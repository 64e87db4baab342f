//! The `copy` action: the step's process is `sensei __step copy` ([`crate::db::copy::child`]),
//! run exactly like a `sql` step's ([`super::sql::child`]): its spec on stdin, its
//! `checkpoint=` and `progress=` lines followed live, both DSNs' passwords masked.

use super::sql::{Child, child};
use super::{Attempt, Outcome};
use crate::db::copy::CopySpec;
use crate::process::StepEnv;
use std::path::Path;
use tokio::sync::watch;

pub(super) async fn run(
    spec: &CopySpec,
    exe: &Path,
    env: StepEnv,
    secrets: &[String],
    attempt: &Attempt,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let process = Child {
        kind: "copy",
        failed: "the copy failed",
    };
    child(process, spec, exe, env, secrets, attempt, cancel).await
}
