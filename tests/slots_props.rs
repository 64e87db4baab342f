//! A property test of the limits (issue "Trust", item 6), against the real binary: random
//! runbooks (concurrency, a pool, needs, retries, timeouts) whose steps succeed, fail, retry
//! or time out at random, while random operations (pause, resume, cancel, cancel with
//! rollback, kill -9 and resume) hit the migration. Whatever happens:
//!
//! - in-flight work never exceeds `concurrency` or the pool's size (measured by the steps
//!   themselves, counting the live step processes around them);
//! - nothing starts while the migration is paused or cancelled (from the event history);
//! - every slot comes back: once no driver runs, no pool slot is held (the store's rows).
//!
//! The RNG has a fixed seed; a failure prints the case and its seed to replay it.
//! `SENSEI_PROPS_CASES` runs more cases (CI runs a few, bounded).

mod support;

use std::time::Duration;
use support::{Background, Sandbox, wait_for};

/// Run by every step: records its attempt, counts the live step processes of the migration
/// (all, and in its pool) with itself among them, then sleeps and exits as its plan says.
const STEP_SH: &str = r#"
name=$1; pool=$2
n=$(( $(cat "attempts.$name" 2>/dev/null || echo 0) + 1 )); echo $n > "attempts.$name"
plan=$(sed -n "${n}p" "plan.$name"); [ -n "$plan" ] || plan="0 0"
set -- $plan
mkdir -p running
echo "$pool" > "running/$$"
all=0; same=0
for f in running/*; do
  p=${f#running/}
  if [ -e "/proc/$p/stat" ] && [ "$(cut -d')' -f2 "/proc/$p/stat" | cut -d' ' -f2)" != Z ]; then
    all=$((all + 1))
    [ "$(cat "$f" 2>/dev/null)" = "$pool" ] && same=$((same + 1))
  fi
done
echo "$name $all $pool $same" >> measured
sleep "$2"
rm -f "running/$$"
exit "$1"
"#;

struct Case {
    concurrency: u32,
    pool_size: u32,
    steps: Vec<Step>,
}

struct Step {
    id: String,
    pool: bool,
    needs: Vec<usize>,
    attempts: u32,
    timeout: bool,
    /// Per attempt: exit code and seconds to sleep.
    plan: Vec<(i32, &'static str)>,
}

fn generate(rng: &mut fastrand::Rng) -> Case {
    let count = rng.usize(3..7);
    let steps = (0..count)
        .map(|i| {
            let attempts = rng.u32(1..4);
            let plan = (0..attempts + 1)
                .map(|_| {
                    let code = if rng.u8(..4) == 0 { 1 } else { 0 };
                    (code, ["0.05", "0.15", "0.3", "2"][rng.usize(..4)])
                })
                .collect();
            Step {
                id: format!("s{i}"),
                pool: rng.bool(),
                needs: (0..i).filter(|_| rng.u8(..4) == 0).collect(),
                attempts,
                timeout: rng.u8(..5) == 0,
                plan,
            }
        })
        .collect();
    Case {
        concurrency: rng.u32(1..4),
        pool_size: rng.u32(1..3),
        steps,
    }
}

impl Case {
    fn runbook(&self) -> String {
        let mut text = format!(
            "version: 1\nname: props\nconcurrency: {}\npools: {{ db: {} }}\nsteps:\n",
            self.concurrency, self.pool_size
        );
        for s in &self.steps {
            text.push_str(&format!("  - id: {}\n", s.id));
            if s.pool {
                text.push_str("    pool: db\n");
            }
            if !s.needs.is_empty() {
                let needs: Vec<String> = s.needs.iter().map(|n| format!("s{n}")).collect();
                text.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
            }
            text.push_str(&format!(
                "    retry: {{ attempts: {}, backoff: 20ms, max_backoff: 50ms }}\n",
                s.attempts
            ));
            if s.timeout {
                text.push_str("    timeout: 1s\n");
            }
            let pool = if s.pool { "db" } else { "-" };
            text.push_str(&format!("    run: sh step.sh {} {pool}\n", s.id));
        }
        text
    }

    fn write(&self, sb: &Sandbox) {
        sb.write("step.sh", STEP_SH);
        sb.write("p.yaml", &self.runbook());
        for s in &self.steps {
            let plan: String = s
                .plan
                .iter()
                .map(|(code, secs)| format!("{code} {secs}\n"))
                .collect();
            sb.write(&format!("plan.{}", s.id), &plan);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Pause,
    Resume,
    Cancel,
    CancelRollback,
    Crash,
}

const OPS: &[Op] = &[
    Op::Pause,
    Op::Resume,
    Op::Cancel,
    Op::CancelRollback,
    Op::Crash,
];

/// Drives one case: a run, random operations at random moments, then resumes until the
/// migration is at rest with no driver.
fn drive(sb: &Sandbox, rng: &mut fastrand::Rng, ops: &mut Vec<Op>) -> String {
    let mut driver: Option<Background> = Some(sb.spawn(&["run", "p.yaml", "--as", "ops"]));
    let id = driver.as_ref().map(Background::id).expect("a driver");
    for _ in 0..rng.usize(0..4) {
        std::thread::sleep(Duration::from_millis(rng.u64(20..400)));
        let op = OPS[rng.usize(..OPS.len())];
        ops.push(op);
        match op {
            Op::Pause => {
                sb.sensei(&["pause", &id, "--as", "ops"]);
            }
            Op::Resume => {
                if driver
                    .as_mut()
                    .is_none_or(|d| d.child.try_wait().is_ok_and(|s| s.is_some()))
                {
                    driver = Some(sb.spawn(&["resume", &id, "--as", "ops", "--retry-interrupted"]));
                }
            }
            Op::Cancel => {
                sb.sensei(&["cancel", &id, "--as", "ops"]);
            }
            Op::CancelRollback => {
                sb.sensei(&["cancel", "--rollback", &id, "--as", "ops"]);
            }
            Op::Crash => {
                if let Some(d) = driver.take() {
                    d.kill9();
                }
            }
        }
    }
    if let Some(d) = driver.take() {
        d.finish();
    }
    // Bring it to rest: resume what a crash or a pause left, a few times at most.
    for _ in 0..4 {
        let state = sb.state(&id);
        if matches!(state.as_str(), "certified" | "failed" | "cancelled") {
            break;
        }
        sb.spawn(&["resume", &id, "--as", "ops", "--retry-interrupted"])
            .finish();
    }
    id
}

fn check(case: &Case, sb: &Sandbox, id: &str) {
    // Limits, as the steps measured them.
    let measured = std::fs::read_to_string(sb.path("measured")).unwrap_or_default();
    for line in measured.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [step, all, pool, same] = fields[..] else {
            panic!("a measurement line: {line:?}");
        };
        let all: u32 = all.parse().expect("a count");
        let same: u32 = same.parse().expect("a count");
        assert!(
            all <= case.concurrency,
            "{step} ran with {all} steps at once (concurrency {})",
            case.concurrency
        );
        if pool == "db" {
            assert!(
                same <= case.pool_size,
                "{step} ran with {same} steps of pool db at once (size {})",
                case.pool_size
            );
        }
    }
    // Nothing starts while paused or cancelled.
    let events = sb.events(id);
    assert!(!events.is_empty(), "no events read");
    let mut state = String::from("created");
    for e in &events {
        if e["kind"] == "state_changed" {
            state = e["data"]["to"].as_str().expect("to").to_owned();
        }
        if e["kind"] == "step_started" {
            assert!(
                !matches!(
                    state.as_str(),
                    "paused" | "cancelled" | "failed" | "certified"
                ),
                "{} started while {state} (seq {})",
                e["step"],
                e["seq"]
            );
        }
    }
    // Every slot came back: no driver runs now, and no pool slot row has a live holder.
    let conn = rusqlite::Connection::open_with_flags(
        sb.path(".sensei/sensei.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the store");
    let leases: i64 = conn
        .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))
        .expect("count leases");
    let slots: Vec<(String, String)> = conn
        .prepare("SELECT step, token FROM pool_slots")
        .and_then(|mut q| q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("read pool slots");
    let live: Vec<&(String, String)> = slots
        .iter()
        .filter(|(_, token)| {
            conn.query_row(
                "SELECT count(*) FROM leases WHERE token = ?1",
                [token],
                |r| r.get::<_, i64>(0),
            )
            .expect("a lease count")
                > 0
        })
        .collect();
    assert!(
        live.is_empty(),
        "slots held with no driver: {live:?} ({leases} leases)"
    );
}

#[test]
fn limits_hold_whatever_happens() {
    let cases: u64 = std::env::var("SENSEI_PROPS_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let seed = 0x5107_5eed_u64;
    for n in 0..cases {
        let case_seed = seed.wrapping_add(n);
        let mut rng = fastrand::Rng::with_seed(case_seed);
        let case = generate(&mut rng);
        let sb = Sandbox::new();
        case.write(&sb);
        let mut report = Report {
            n,
            seed: case_seed,
            runbook: case.runbook(),
            ops: Vec::new(),
        };
        let id = drive(&sb, &mut rng, &mut report.ops);
        wait_for("the step processes to end", || {
            (live_steps(&sb) == 0).then_some(())
        });
        check(&case, &sb, &id);
    }
}

/// Step processes still running (their `running/<pid>` file, not a zombie).
fn live_steps(sb: &Sandbox) -> usize {
    let Ok(dir) = std::fs::read_dir(sb.path("running")) else {
        return 0; // no step ever ran
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| support::alive(pid))
        .count()
}

/// Prints the case when a check fails, so that it can be replayed.
struct Report {
    n: u64,
    seed: u64,
    runbook: String,
    ops: Vec<Op>,
}

impl Drop for Report {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "case {} failed: seed {:#x}, operations {:?}\n{}",
                self.n, self.seed, self.ops, self.runbook
            );
        }
    }
}
