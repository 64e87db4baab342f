//! Helpers shared by the benchmarks: best-of timing, and running the real binary while
//! reading its peak memory.
#![allow(unsafe_code)] // wait4(2), to read a child's peak memory
#![allow(dead_code)] // each bench uses a subset

use std::process::Command;
use std::time::{Duration, Instant};

pub const RUNS: usize = 5;

pub fn best_of(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("runs")
}

/// Runs the binary; returns its wall time and peak resident memory in KiB.
pub fn run_child(bin: &str, args: &[&str]) -> (Duration, i64) {
    let start = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn sensei");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel; we reap our own child exactly once
    // (std's Child handle is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(reaped, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "sensei {args:?} failed"
    );
    drop(child);
    (wall, usage.ru_maxrss)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
