//! Several `sensei serve` processes sharing one PostgreSQL store (SPEC §4, "Store"): each
//! migration is driven by one lease holder, a dead or paused owner's migrations are taken
//! over by another server under the crash-resume rules, and schedules and alerts happen once
//! across servers. Real processes on loopback against the machine's PostgreSQL
//! (`SENSEI_TEST_PG`, which `.ci/run` sets; each test its own database).

#[path = "support/db.rs"]
mod db;
mod harness;
#[path = "support/http.rs"]
mod http;

use db::{Kind, TestDb};
use harness::{Dir, Server, kinds, wait_for};
use http::Receiver;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Leases short enough for a test: a paused server loses its lease within 1.5 s.
const LEASE_MS: &str = "1500";

/// A ledger of step runs (`ledger` in the runbooks directory, one line per run), and two
/// steps held until the file `go` exists: `hold_again` may run twice (idempotent),
/// `hold_once` may not. Each held step writes its pid, so a test can see that a dead
/// server's step processes did not outlive it.
const LEDGER: &str = r#"version: 1
name: ledger
steps:
  - id: once
    run: echo once >> ledger
  - id: hold_again
    needs: [once]
    idempotent: true
    run: echo hold_again >> ledger; echo $$ > again.pid; touch again.started; while [ ! -f go ]; do sleep 0.05; done
  - id: hold_once
    needs: [once]
    run: echo hold_once >> ledger; echo $$ > once.pid; touch once.started; while [ ! -f go ]; do sleep 0.05; done
  - id: after
    needs: [hold_again, hold_once]
    run: echo after >> ledger
  - id: verify
    phase: validate
    run: echo verify >> ledger
"#;

/// Three servers on the test's database, all on `dir`'s runbooks.
fn three(dir: &Dir, db: &TestDb, env: &[(&str, &str)]) -> Vec<Server> {
    (0..3).map(|_| one(dir, db, env)).collect()
}

fn one(dir: &Dir, db: &TestDb, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("SENSEI_TEST_LEASE_TTL_MS", LEASE_MS)];
    all.extend_from_slice(env);
    dir.serve_with_tokens(&["--store", &db.dsn(), "--allow-private-urls"], &all)
}

fn ledger(dir: &Dir) -> Vec<String> {
    std::fs::read_to_string(dir.path("runbooks/ledger"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn count(lines: &[String], what: &str) -> usize {
    lines.iter().filter(|l| *l == what).count()
}

fn pid(dir: &Dir, file: &str) -> i32 {
    std::fs::read_to_string(dir.path(&format!("runbooks/{file}")))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid")
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks that the process exists (a zombie reaped by init is gone).
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn signal(server: &Server, sig: &str) {
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill {sig} {pid}");
}

/// Waits (30 s) until the migration is in `state` as `servers[0]` reads it; on a timeout,
/// fails with the migration's events and every server's log.
fn wait_state(servers: &[&Server], id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if servers[0].state(id) == state {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs: Vec<String> = servers.iter().map(|s| s.log()).collect();
    panic!(
        "{id} is {} after 30 s, not {state}; events: {:?}\nlogs:\n{}",
        servers[0].state(id),
        kinds(&servers[0].events(id)),
        logs.join("\n-----\n")
    );
}

/// A count of `GET /v1/ready` (`migrations_owned`, `takeovers`) of each server.
fn ready(servers: &[&Server], count: &str) -> Vec<u64> {
    servers
        .iter()
        .map(|s| {
            s.get("/v1/ready").expect(200).json[count]
                .as_u64()
                .unwrap_or(0)
        })
        .collect()
}

/// How many migrations the servers took over, together.
fn takeovers(servers: &[Server]) -> u64 {
    ready(&servers.iter().collect::<Vec<_>>(), "takeovers")
        .iter()
        .sum()
}

/// Starts `id` on `owner` and waits until both held steps of [`LEDGER`] run; their pids.
fn start_held(owner: &Server, dir: &Dir, id: &str) -> (i32, i32) {
    owner
        .post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    wait_for("both held steps to start", || {
        (dir.path("runbooks/again.started").exists() && dir.path("runbooks/once.started").exists())
            .then_some(())
    });
    (pid(dir, "again.pid"), pid(dir, "once.pid"))
}

#[test]
fn kill_9_of_the_owner_mid_step_and_another_server_certifies() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let dir = Dir::new();
    let receiver = Receiver::start(&[200]);
    let alerting = format!(
        "alerts:\n  channels:\n    ops: {{ webhook: {{ url: \"{}\" }} }}\n  rules:\n    - {{ on: [paused], notify: [ops] }}\nsteps:\n",
        receiver.url("/paused")
    );
    dir.runbook("ledger.yaml", &LEDGER.replacen("steps:\n", &alerting, 1));
    let mut servers = three(&dir, &db, &[]);
    let owner = servers.remove(0);
    let id = owner.create(Some("ops-token"), "ledger", "{}");
    // Another server's event stream shows what the owner commits, as it happens.
    let mut stream = servers[0].stream(&id);
    let (again, once) = start_held(&owner, &dir, &id);
    let seen = stream.until("step_started");
    assert!(
        seen.iter().any(|m| m.event == "driver_attached"),
        "{seen:?}"
    );
    assert_eq!(
        ready(&[&owner], "migrations_owned"),
        vec![1],
        "the server that started it drives it"
    );
    std::fs::remove_file(dir.path("runbooks/again.started")).expect("rm");
    owner.kill9();

    // The dead server's watchdog kills its step processes: none is left running.
    wait_for("the dead server's step processes to be gone", || {
        (!alive(again) && !alive(once)).then_some(())
    });
    // Another server takes over within the lease time: the idempotent step runs again, the
    // other is interrupted and the migration pauses for an operator, with an alert event.
    let (a, b) = (&servers[0], &servers[1]);
    wait_state(&[a, b], &id, "paused");
    let events = a.events(&id);
    let seen = kinds(&events);
    assert!(seen.contains(&"step_interrupted".to_owned()), "{seen:?}");
    let takeover = events
        .iter()
        .rfind(|e| e["kind"] == "driver_attached")
        .expect("driver_attached");
    assert_eq!(takeover["data"]["op"], "resume");
    assert_eq!(
        takeovers(&servers),
        1,
        "exactly one server took the migration over"
    );
    let metrics: Vec<String> = servers
        .iter()
        .map(|s| s.get("/metrics").expect(200).text)
        .collect();
    assert_eq!(
        metrics
            .iter()
            .filter(|m| m.contains("\nsensei_lease_takeovers_total 1\n"))
            .count(),
        1,
        "one server counts the takeover in its metrics: {metrics:?}"
    );
    let paused = wait_for("the `paused` alert", || {
        let got = receiver.got();
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(paused[0].json()["event"], "paused", "{paused:?}");

    // An operator retries the interrupted step through any server; both held steps run
    // again, and it certifies.
    b.post(
        &format!("/v1/migrations/{id}/resume"),
        r#"{"interrupted": "retry"}"#,
    )
    .expect(200);
    wait_for("the idempotent step to run again", || {
        dir.path("runbooks/again.started").exists().then_some(())
    });
    std::fs::write(dir.path("runbooks/go"), "").expect("go");
    wait_state(&[a, b], &id, "certified");
    let lines = ledger(&dir);
    assert_eq!(count(&lines, "once"), 1, "{lines:?}");
    assert_eq!(
        count(&lines, "hold_again"),
        2,
        "ran again without an operator: {lines:?}"
    );
    assert_eq!(
        count(&lines, "hold_once"),
        2,
        "ran again only after the operator: {lines:?}"
    );
    assert_eq!(count(&lines, "after"), 1, "{lines:?}");
    assert_eq!(count(&lines, "verify"), 1, "{lines:?}");
}

#[test]
fn a_paused_owner_loses_its_lease_and_writes_nothing_when_it_wakes() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let dir = Dir::new();
    // The held steps print while they wait, so the paused server has output to write.
    dir.runbook(
        "ledger.yaml",
        &LEDGER.replace("do sleep 0.05; done", "do echo tick; sleep 0.05; done"),
    );
    let mut servers = three(&dir, &db, &[]);
    let owner = servers.remove(0);
    let (other, third) = (&servers[0], &servers[1]);
    let id = owner.create(Some("ops-token"), "ledger", "{}");
    let (again, once) = start_held(&owner, &dir, &id);
    signal(&owner, "-STOP");

    // Past its lease another server takes the migration over. The paused server's step
    // processes still run on this host, so even the idempotent step is not started a
    // second time beside its first copy: both are interrupted, and the migration pauses.
    wait_state(&[other, third], &id, "paused");
    assert_eq!(
        takeovers(&servers),
        1,
        "exactly one server took the migration over"
    );
    let before = other.events(&id);
    let taken_at = before
        .iter()
        .rfind(|e| e["kind"] == "driver_attached")
        .and_then(|e| e["at"].as_str())
        .expect("the takeover's driver_attached")
        .to_owned();
    // Step output read after the takeover: what the woken owner must not write. (A line it
    // read before its pause may still commit as it wakes: it was written under its lease.)
    let late_lines = |step: &str| -> Vec<Value> {
        let logs = other
            .get(&format!("/v1/migrations/{id}/steps/{step}/logs"))
            .expect(200)
            .json;
        let at =
            |l: &Value| chrono::DateTime::parse_from_rfc3339(l["at"].as_str().unwrap_or("")).ok();
        let taken = chrono::DateTime::parse_from_rfc3339(&taken_at).ok();
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|l| at(l) > taken)
            .cloned()
            .collect()
    };

    // The old owner wakes: its renewal finds the lease taken, so it stops driving, kills
    // its step processes, and writes nothing.
    signal(&owner, "-CONT");
    wait_for("the old owner to drive nothing", || {
        (ready(&[&owner], "migrations_owned") == vec![0]).then_some(())
    });
    wait_for("the old owner's step processes to be gone", || {
        (!alive(again) && !alive(once)).then_some(())
    });
    let after = other.events(&id);
    assert_eq!(
        kinds(&after),
        kinds(&before),
        "the woken owner wrote to the migration it lost"
    );
    for step in ["hold_again", "hold_once"] {
        let late = late_lines(step);
        assert!(
            late.is_empty(),
            "the woken owner wrote {step}'s output: {late:?}"
        );
    }
    assert!(
        owner.log().contains("taken over"),
        "the old owner says why it stopped:\n{}",
        owner.log()
    );

    // An operator retries the interrupted steps through another server; it certifies.
    third
        .post(
            &format!("/v1/migrations/{id}/resume"),
            r#"{"interrupted": "retry"}"#,
        )
        .expect(200);
    std::fs::write(dir.path("runbooks/go"), "").expect("go");
    wait_state(&[other, third, &owner], &id, "certified");
    let lines = ledger(&dir);
    assert_eq!(count(&lines, "once"), 1, "{lines:?}");
    assert_eq!(count(&lines, "hold_once"), 2, "{lines:?}");
    assert_eq!(count(&lines, "after"), 1, "{lines:?}");
    assert_eq!(count(&lines, "verify"), 1, "{lines:?}");
}

const TICK: &str = r#"version: 1
name: tick
schedules:
  - cron: "* * * * *"
steps:
  - id: work
    run: echo work >> ticks
"#;

#[test]
fn three_servers_fire_a_schedule_once_per_fire_time() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let dir = Dir::new();
    dir.runbook("tick.yaml", TICK);
    // Each round starts three servers two seconds before a minute boundary (their clocks
    // shifted by SENSEI_NOW), lets the fire time pass and stops them.
    let fires = ["12:01:00", "12:02:00", "12:03:00"];
    for fire in fires {
        let start = chrono::NaiveTime::parse_from_str(fire, "%H:%M:%S").expect("time")
            - chrono::Duration::seconds(2);
        let now = format!("2026-05-01T{}Z", start.format("%H:%M:%S"));
        let servers = three(&dir, &db, &[("SENSEI_NOW", &now)]);
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2026-05-01T{fire}Z"))
            .expect("fire")
            .to_utc();
        let id = sensei::schedule::scheduled_id("tick", 0, at).to_string();
        wait_for("the fire time's migration", || {
            (servers[0].get(&format!("/v1/migrations/{id}")).status == 200).then_some(())
        });
        let refs: Vec<&Server> = servers.iter().collect();
        wait_state(&refs, &id, "certified");
        for s in servers {
            assert_eq!(s.terminate(), 0);
        }
    }
    let listed = one(&dir, &db, &[])
        .get("/v1/migrations?runbook=tick")
        .expect(200)
        .json;
    let list = listed.as_array().expect("a list");
    assert_eq!(
        list.len(),
        fires.len(),
        "one migration per fire time: {listed}"
    );
    let ticks = std::fs::read_to_string(dir.path("runbooks/ticks")).unwrap_or_default();
    assert_eq!(ticks.lines().count(), fires.len(), "each ran once: {ticks}");
}

/// A step that fails, with a webhook alert on `step_failed`.
fn failing(url: &str) -> String {
    format!(
        r#"version: 1
name: failing
alerts:
  channels:
    ops: {{ webhook: {{ url: "{url}" }} }}
  rules:
    - {{ on: [step_failed], notify: [ops] }}
steps:
  - id: boom
    run: exit 3
"#
    )
}

#[test]
fn an_alert_is_delivered_by_exactly_one_of_three_servers() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let dir = Dir::new();
    let receiver = Receiver::start(&[200]);
    dir.runbook("failing.yaml", &failing(&receiver.url("/hook")));
    let servers: Vec<Server> = (0..3)
        .map(|_| {
            dir.serve_with_tokens(
                &["--store", &db.dsn(), "--allow-private-urls"],
                &[("SENSEI_TEST_LEASE_TTL_MS", LEASE_MS)],
            )
        })
        .collect();
    let id = servers[1].create(Some("ops-token"), "failing", "{}");
    servers[1]
        .post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    servers[1].wait_state(&id, "failed");
    let delivered = wait_for("the delivery to be recorded", || {
        let alerts = servers[2]
            .get(&format!("/v1/migrations/{id}/alerts"))
            .expect(200)
            .json;
        let list = alerts.as_array().cloned().unwrap_or_default();
        list.iter()
            .any(|d| d["state"] == "delivered")
            .then_some(list)
    });
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["attempts"], 1, "{delivered:?}");
    // A duplicate would come from another server's claim pass, each at most a second
    // apart: watch for one over two seconds, failing as soon as it shows.
    let watch_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch_until {
        let got = receiver.got();
        assert_eq!(got.len(), 1, "delivered more than once: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let body: Value = serde_json::from_str(&receiver.got()[0].body).expect("json");
    assert_eq!(body["event"], "step_failed");
}

#[test]
fn local_commands_use_the_shared_store_with_store_and_servers_see_their_migrations() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let dir = Dir::new();
    dir.runbook(
        "ledger.yaml",
        &LEDGER.replace("while [ ! -f go ]; do sleep 0.05; done", "true"),
    );
    let server = one(&dir, &db, &[]);
    let sensei = |args: &[&str]| {
        std::process::Command::new(harness::BIN)
            .args(args)
            .current_dir(dir.path("runbooks"))
            .env_remove("SENSEI_STATE_DIR")
            .env("SENSEI_STORE", db.dsn())
            .output()
            .expect("run sensei")
    };
    let run = sensei(&["run", "ledger.yaml"]);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("migration "))
        .and_then(|l| l.strip_suffix(" created"))
        .expect("the id")
        .to_owned();
    assert_eq!(
        server.state(&id),
        "certified",
        "the server reads what the CLI wrote"
    );
    let status = sensei(&["status", &id]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("certified"));
    // No state directory was made: the store is PostgreSQL.
    assert!(!dir.path("runbooks/.sensei").exists());

    let refused = std::process::Command::new(harness::BIN)
        .args(["list", "--store", "mysql://root:hunter2@db/x"])
        .current_dir(dir.path("runbooks"))
        .output()
        .expect("run sensei");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--store must be a postgres:// URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn webhook_replays_and_idempotency_keys_hold_across_servers() {
    use harness::hooks::{DEPLOY, SECRET, deliver, now, signed};
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let dir = Dir::new();
    dir.runbook("deploy.yaml", DEPLOY);
    let servers: Vec<Server> = (0..3)
        .map(|_| one(&dir, &db, &[("SENSEI_TEST_HOOK", SECRET)]))
        .collect();
    let body = br#"{"tables": ["orders"], "batch": 5}"#;

    // A delivery accepted by one server is a replay at every other.
    let ts = now();
    let headers = signed(SECRET, ts, body);
    deliver(&servers[0], "deploy-finished", &headers, body).expect(202);
    for s in &servers[1..] {
        deliver(s, "deploy-finished", &headers, body).expect(401);
    }

    // One key sent to all three servers at once (each signed afresh): one migration.
    let answers: Vec<String> = std::thread::scope(|scope| {
        let calls: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                scope.spawn(move || {
                    let mut headers = signed(SECRET, ts - 1 - i as i64, body);
                    headers.push(("Idempotency-Key", "deploy-7".to_owned()));
                    let reply = deliver(s, "deploy-finished", &headers, body).expect(202);
                    reply.json["id"].as_str().expect("an id").to_owned()
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().expect("call")).collect()
    });
    assert!(answers.iter().all(|id| *id == answers[0]), "{answers:?}");
    let listed = servers[2]
        .get("/v1/migrations?runbook=deploy")
        .expect(200)
        .json;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}
