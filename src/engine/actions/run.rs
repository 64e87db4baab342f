//! `run` steps: a shell command through `process`, its output logged, its outputs read from
//! `$SENSEI_OUTPUT` (or its last stdout line, `outputs: json`).

use super::{Attempt, Outcome};
use crate::process::{Exit, RunSpec, StepEnv};
use serde_json::{Map, Value as Json};
use std::time::Duration;
use tokio::sync::watch;

pub(super) async fn run(
    command: String,
    env: StepEnv,
    json_outputs: bool,
    attempt: &Attempt,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let spec = RunSpec {
        command,
        dir: attempt.dir.clone(),
        env,
        timeout: attempt.timeout,
        kill_grace: Duration::from_secs(5),
        capture_last_line: json_outputs,
        input: None,
    };
    let (outcome, stdout, stderr) = attempt.run_process(spec, |_| {}, cancel).await;
    let exit_code = match outcome.exit {
        Exit::Code(code) => Some(code),
        _ => None,
    };
    let failure = |error: String, transient: bool| Outcome::Failed {
        error,
        exit_code,
        transient,
    };
    match outcome.exit {
        Exit::Code(0) => {}
        Exit::Code(code) => {
            let tail = stderr
                .last
                .map(|last| format!(": {last}"))
                .unwrap_or_default();
            return failure(
                format!("exited with code {code}{tail}"),
                // Without `on_exit_codes` every exit code may be retried (up to `attempts`).
                attempt.transient_codes.is_empty() || attempt.transient_codes.contains(&code),
            );
        }
        Exit::Signal(n) => return failure(format!("killed by signal {n}"), false),
        Exit::TimedOut => {
            let limit = attempt.timeout.map(crate::runbook::duration::Duration);
            return failure(
                format!(
                    "timed out after {}; its processes were killed",
                    limit.map(|d| d.to_string()).unwrap_or_default()
                ),
                false,
            );
        }
        Exit::Cancelled => return Outcome::Cancelled,
        Exit::SpawnFailed(reason) => {
            return failure(attempt.masker.mask(&reason).into_owned(), false);
        }
    }
    let mut outputs: Map<String, Json> = outcome
        .outputs
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    if json_outputs {
        let last = outcome.last_stdout_line.unwrap_or_default();
        match serde_json::from_str::<Json>(&last) {
            Ok(Json::Object(fields)) => outputs.extend(fields),
            _ => {
                // Quoted as it was logged: a line in pieces was masked whole there.
                return failure(
                    format!(
                        "the step declares `outputs: json`, but its last line of output is not a JSON object: `{}`",
                        stdout.last.unwrap_or_default()
                    ),
                    false,
                );
            }
        }
    }
    let outputs = (!outputs.is_empty()).then(|| attempt.masker.mask_json(&Json::Object(outputs)));
    Outcome::Succeeded { outputs, exit_code }
}
