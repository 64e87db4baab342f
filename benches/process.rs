//! Per-step overhead of `process::run` against the baseline of a plain
//! `std::process::Command::new("sh").arg("-c").arg("true").status()`, measured in the same run:
//! 1,000 `true` commands one after another, each way, plus `run` with the reaper watchdog
//! (two extra pipe writes per step). The target is an overhead close to make's, which is the
//! baseline: a fork/exec of `sh -c` and a wait.
//! Run with `cargo bench --bench process`.

use sensei::process::{Exit, Reaper, RunSpec, StepEnv, run};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const STEPS: u32 = 1_000;
/// Rounds of all three, interleaved, each figure the best round: the machine is shared.
const ROUNDS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir();
    let spec = RunSpec {
        command: "true".into(),
        dir: dir.clone(),
        env: StepEnv::minimal(),
        timeout: Some(Duration::from_secs(60)),
        kill_grace: Duration::from_secs(5),
        capture_last_line: false,
        input: None,
    };
    let reaper_program = Path::new(env!("CARGO_BIN_EXE_sensei"));
    let reaper = Reaper::spawn(reaper_program, &["__reap"]).expect("reaper");

    let baseline_run = || {
        timed(|| {
            for _ in 0..STEPS {
                let status = std::process::Command::new("sh")
                    .arg("-c")
                    .arg("true")
                    .current_dir(&dir)
                    .status()
                    .expect("sh");
                assert!(status.success());
            }
        })
    };
    let bare_run = || {
        timed(|| {
            runtime.block_on(async {
                for _ in 0..STEPS {
                    let (_keep, cancel) = watch::channel(false);
                    let outcome = run(spec.clone(), None, |_, _| {}, cancel).await;
                    assert_eq!(outcome.exit, Exit::Code(0));
                }
            })
        })
    };
    let watched_run = || {
        timed(|| {
            runtime.block_on(async {
                for _ in 0..STEPS {
                    let (_keep, cancel) = watch::channel(false);
                    let outcome = run(spec.clone(), Some(&reaper), |_, _| {}, cancel).await;
                    assert_eq!(outcome.exit, Exit::Code(0));
                }
            })
        })
    };
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        for (slot, time) in best
            .iter_mut()
            .zip([baseline_run(), bare_run(), watched_run()])
        {
            *slot = (*slot).min(time);
        }
    }
    let [baseline, bare, watched] = best;
    println!("{STEPS} sequential `sh -c true` (best of {ROUNDS} rounds):");
    report("baseline: Command::status()", baseline, baseline);
    report("process::run, no reaper", bare, baseline);
    report("process::run, with reaper", watched, baseline);
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn report(what: &str, total: Duration, baseline: Duration) {
    let per_step = total / STEPS;
    let extra = per_step.as_secs_f64() - (baseline / STEPS).as_secs_f64();
    println!(
        "  {what:<30} {:>7.0} ms total  {:>6.0} µs/step  ({:+.0} µs/step, {:.2}x)",
        total.as_secs_f64() * 1e3,
        per_step.as_secs_f64() * 1e6,
        extra * 1e6,
        total.as_secs_f64() / baseline.as_secs_f64()
    );
}
