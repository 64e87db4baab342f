//! Speed and memory of the runbook language on a 10,000-step layered runbook (issue #2).
//!
//! Generates a runbook of 1,000 layers x 10 steps where each step needs the 10 steps of the
//! previous layer (about 1.2 MB of YAML), then reports, against a baseline measured in the
//! same run (serde-saphyr deserializing the same file into plain structs):
//! - in-process `validate` (parse + every check) and `plan` (validate + params + DAG + text);
//! - the real `sensei validate` / `sensei plan` binaries: wall time and peak memory (max RSS).
//!
//! Targets on a 2-core machine: validate < 300 ms, plan < 500 ms, peak memory < 100 MB.
//!
//! Then a 1 MiB runbook full of `{{...}}` tags (the API's default body limit), one command
//! written as lines and one as a single line, validated in process against serde-saphyr
//! reading the same file (issue #11: template positions were computed in quadratic time, so
//! 40,000 tags took about a minute). Target: well under a second (< 250 ms).
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

    tagged();

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

/// Validates 1 MiB runbooks full of tags and prints the times against the YAML baseline.
fn tagged() {
    println!("\n1 MiB of template tags, in process (best of {RUNS}):");
    for one_line in [false, true] {
        let yaml = tagged_runbook(1 << 20, one_line);
        let tags = yaml.matches("{{").count();
        let baseline = best_of(|| {
            let parsed: serde_json::Value = serde_saphyr::from_str(&yaml).expect("baseline");
            assert!(parsed.is_object());
        });
        let validate = best_of(|| {
            let checked = sensei::runbook::load_bytes("tags.yaml", yaml.as_bytes());
            assert!(checked.runbook.is_some(), "{}", checked.render());
        });
        println!(
            "  {tags} tags on {:<7} validate {:>8.1} ms  ({:.2}x serde-saphyr's {:.1} ms; target < 250 ms)",
            if one_line { "1 line" } else { "lines" },
            ms(validate),
            ratio(validate, baseline),
            ms(baseline)
        );
    }
}

/// A runbook of about `bytes` whose one command is a script full of tags.
fn tagged_runbook(bytes: usize, one_line: bool) -> String {
    let mut y = String::from(
        "version: 1\nname: tags\nparams:\n  table: { type: string, default: orders }\n  rows: { type: integer, default: 5 }\nsteps:\n  - id: copy\n    run: ",
    );
    y.push_str(if one_line { "echo" } else { "|\n" });
    let mut i = 0;
    while y.len() < bytes {
        let tag = if i % 2 == 0 {
            "{{params.table}}"
        } else {
            "{{params.rows}}"
        };
        if one_line {
            let _ = write!(y, " {tag}");
        } else {
            let _ = writeln!(y, "      echo {tag} {i}");
        }
        i += 1;
    }
    y.push('\n');
    y
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
