//! Speed and memory of the engine (issue #3), against `make -j2` on the same DAG in the same
//! run, with FULL durability (every step's start and end committed with fsync, in group
//! commits):
//! - 1,000 `true` steps, wide (all independent) and layered (100 layers of 10, each step
//!   needing the whole previous layer), concurrency 2: sensei/make ratio (target <= 1.25);
//! - 10,000 `wait: 0s` steps at concurrency 64: steps per second (target >= 10,000) and peak
//!   memory (target < 50 MB).
//!
//! - the floor (see `floor`): the same wide DAG with nothing but the durability rule, a
//!   commit with fsync before each spawn, and the same without fsync. It shows how much of
//!   the ratio is the rule itself on this machine's disk, and how much is the engine.
//!
//! Run with `cargo bench --bench engine`.

mod common;
mod floor;

use common::{ms, ratio, run_child};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

const RUNS: usize = 3;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_sensei");
    for (shape, layers, width) in [("wide", 1, 1_000), ("layered", 100, 10)] {
        let runbook = write(
            dir.path(),
            &format!("{shape}.yaml"),
            &runbook(shape, layers, width, 2, "run: \"true\""),
        );
        let makefile = write(dir.path(), &format!("{shape}.mk"), &makefile(layers, width));
        let make = best(|| run_child("make", &["-s", "-j2", "-f", &makefile, "all"]).0);
        let sensei = best(|| sensei_run(bin, dir.path(), &runbook).0);
        println!(
            "1,000 `true` steps, {shape:<7} concurrency 2: make -j2 {:>7.1} ms, sensei {:>7.1} ms, ratio {:.2} (target <= 1.25)",
            ms(make),
            ms(sensei),
            ratio(sensei, make)
        );
        if shape == "wide" {
            let full = best(|| floor::wide(dir.path(), 1_000, 2, "FULL"));
            let normal = best(|| floor::wide(dir.path(), 1_000, 2, "NORMAL"));
            println!(
                "  floor, a FULL commit before each spawn and nothing else: {:>7.1} ms; floor/make {:.2}, sensei/floor {:.2}",
                ms(full),
                ratio(full, make),
                ratio(sensei, full)
            );
            println!(
                "  the same floor without fsync (NORMAL):                   {:>7.1} ms; floor/make {:.2}",
                ms(normal),
                ratio(normal, make)
            );
        }
    }
    let waits = write(
        dir.path(),
        "waits.yaml",
        &runbook("waits", 1, 10_000, 64, "wait: 0s"),
    );
    let (wall, rss) = sensei_run(bin, dir.path(), &waits);
    println!(
        "10,000 `wait: 0s` steps, concurrency 64: {:.1} ms, {:.0} steps/s (target >= 10,000), peak memory {:.1} MB (target < 50 MB)",
        ms(wall),
        10_000.0 / wall.as_secs_f64(),
        rss as f64 / 1024.0
    );
    // Every step renders a template: the values templates read must not be rebuilt (with
    // every finished step in them) for each step started.
    let templated = write(
        dir.path(),
        "templated.yaml",
        &runbook(
            "templated",
            1,
            10_000,
            64,
            "wait: 0s\n    when: '{{ eq migration.state \"running\" }}'",
        ),
    );
    let (templated, _) = sensei_run(bin, dir.path(), &templated);
    println!(
        "10,000 `wait: 0s` steps with a `when` template, concurrency 64: {:.1} ms, {:.0} steps/s ({:.2}x the time without)",
        ms(templated),
        10_000.0 / templated.as_secs_f64(),
        ratio(templated, wall)
    );
}

fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| f()).min().expect("runs")
}

/// `sensei run` with a fresh state directory each time.
fn sensei_run(bin: &str, dir: &Path, runbook: &str) -> (Duration, i64) {
    let state = dir.join(format!("state-{}", fastrand::u64(..)));
    let state = state.to_string_lossy().into_owned();
    run_child(bin, &["run", runbook, "--state-dir", &state])
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_string_lossy().into_owned()
}

fn id(layer: usize, i: usize) -> String {
    format!("s-{layer}-{i}")
}

/// `layers` layers of `width` steps; each step needs every step of the previous layer.
fn runbook(name: &str, layers: usize, width: usize, concurrency: usize, action: &str) -> String {
    let mut y = format!("version: 1\nname: {name}\nconcurrency: {concurrency}\nsteps:\n");
    for layer in 0..layers {
        for i in 0..width {
            let _ = writeln!(y, "  - id: {}", id(layer, i));
            if layer > 0 {
                let needs: Vec<String> = (0..width).map(|j| id(layer - 1, j)).collect();
                let _ = writeln!(y, "    needs: [{}]", needs.join(", "));
            }
            let _ = writeln!(y, "    {action}");
        }
    }
    y
}

/// The same DAG for make: one phony target per step running `true`.
fn makefile(layers: usize, width: usize) -> String {
    let last: Vec<String> = (0..width).map(|i| id(layers - 1, i)).collect();
    let mut m = format!(".PHONY: all\nall: {}\n", last.join(" "));
    for layer in 0..layers {
        for i in 0..width {
            let needs: Vec<String> = if layer > 0 {
                (0..width).map(|j| id(layer - 1, j)).collect()
            } else {
                Vec::new()
            };
            let _ = writeln!(
                m,
                ".PHONY: {}\n{}: {}\n\ttrue",
                id(layer, i),
                id(layer, i),
                needs.join(" ")
            );
        }
    }
    m
}
