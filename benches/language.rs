//! Speed and memory of the runbook language on a 10,000-step layered runbook (issue #2).
//!
//! Generates a runbook of 1,000 layers x 10 steps where each step needs the 10 steps of the
//! previous layer (about 1.2 MB of YAML), then reports, against a baseline measured in the
//! same run (serde-saphyr deserializing the same file into plain structs):
//! - in-process `validate` (parse + every check) and `plan` (validate + params + DAG + text);
//! - the real `sensei validate` / `sensei plan` binaries: wall time and peak memory (max RSS).
//!
//! Targets on a 2-core machine: validate < 300 ms, plan < 500 ms, peak memory < 100 MB.
//! Run with `cargo bench --bench language`.

mod common;

use common::{RUNS, best_of, ms, ratio, run_child};

use std::fmt::Write as _;

const LAYERS: usize = 1_000;
const WIDTH: usize = 10;

fn main() {
    let yaml = layered_runbook(LAYERS, WIDTH);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("layered.yaml");
    std::fs::write(&file, &yaml).expect("write runbook");
    println!(
        "runbook: {} steps in {} layers, {:.2} MB of YAML",
        LAYERS * WIDTH,
        LAYERS,
        yaml.len() as f64 / 1e6
    );

    let baseline = best_of(|| {
        let parsed: Baseline = serde_saphyr::from_str(&yaml).expect("baseline parse");
        assert_eq!(parsed.steps.len(), LAYERS * WIDTH);
    });
    let validate = best_of(|| {
        let checked = sensei::runbook::load_bytes("layered.yaml", yaml.as_bytes());
        assert!(checked.runbook.is_some(), "{}", checked.render());
    });
    let plan = best_of(|| {
        let checked = sensei::runbook::load_bytes("layered.yaml", yaml.as_bytes());
        let runbook = checked.runbook.expect("valid");
        let params = sensei::runbook::params::resolve_text(&runbook, &[]).expect("params");
        let plan = sensei::plan::build(&runbook, &checked.source.text, &params, chrono::Utc::now())
            .expect("plan");
        let text = sensei::plan::render::text(&plan);
        assert!(text.contains("critical path (1000 steps)"));
    });
    println!("\nin process (best of {RUNS}):");
    println!(
        "  baseline: serde-saphyr into structs   {:>8.1} ms",
        ms(baseline)
    );
    println!(
        "  validate                              {:>8.1} ms  ({:.2}x baseline; target < 300 ms)",
        ms(validate),
        ratio(validate, baseline)
    );
    println!(
        "  plan (validate + DAG + text)          {:>8.1} ms  ({:.2}x baseline; target < 500 ms)",
        ms(plan),
        ratio(plan, baseline)
    );

    let bin = env!("CARGO_BIN_EXE_sensei");
    let file = file.to_string_lossy().into_owned();
    println!("\nthe sensei binary (best of {RUNS}):");
    for args in [vec!["validate", file.as_str()], vec!["plan", file.as_str()]] {
        let (wall, rss) = (0..RUNS)
            .map(|_| run_child(bin, &args))
            .min()
            .expect("runs");
        println!(
            "  sensei {:<8} wall {:>8.1} ms  peak memory {:>6.1} MB  (target < 100 MB)",
            args[0],
            ms(wall),
            rss as f64 / 1024.0
        );
    }
}

/// `LAYERS` layers of `WIDTH` steps; each step needs every step of the previous layer.
fn layered_runbook(layers: usize, width: usize) -> String {
    let mut y = String::from("version: 1\nname: layered\nconcurrency: 10\nsteps:\n");
    for layer in 0..layers {
        for i in 0..width {
            let _ = writeln!(y, "  - id: step-{layer}-{i}");
            if layer > 0 {
                let needs: Vec<String> = (0..width)
                    .map(|j| format!("step-{}-{j}", layer - 1))
                    .collect();
                let _ = writeln!(y, "    needs: [{}]", needs.join(", "));
            }
            let _ = writeln!(y, "    run: \"true\"");
        }
    }
    y
}

#[derive(serde::Deserialize)]
struct Baseline {
    #[allow(dead_code)]
    version: u32,
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    concurrency: u32,
    steps: Vec<BaselineStep>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct BaselineStep {
    id: String,
    #[serde(default)]
    needs: Vec<String>,
    run: String,
}
