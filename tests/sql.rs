//! `sql` steps against the machine's real PostgreSQL and MariaDB (`SENSEI_TEST_PG`,
//! `SENSEI_TEST_MYSQL`; see `support/db.rs`), through the real `sensei` binary: tables made,
//! filled and read, outputs read by later templates and fanned out over, transactions that
//! keep nothing or what ran, failures with the server's message, statements cancelled on the
//! server at a timeout and at a cancel, a polling SQL check, and TLS.

#[path = "support/db.rs"]
mod db;
mod support;

use db::{Kind, TestDb};
use std::time::{Duration, Instant};
use support::{Sandbox, wait_for};

/// The SQL that differs between the engines.
struct Dialect {
    /// A placeholder of `params`.
    p1: &'static str,
    sleep: &'static str,
    /// A check that reads a probe's boolean column `ready`.
    ready: &'static str,
}

fn dialect(kind: Kind) -> Dialect {
    match kind {
        Kind::Postgres => Dialect {
            p1: "$1",
            sleep: "SELECT pg_sleep(60)",
            ready: "{{probe.outputs.ready}}",
        },
        // MySQL has no boolean type: a comparison is 1 or 0.
        Kind::Mysql => Dialect {
            p1: "?",
            sleep: "SELECT SLEEP(60)",
            ready: "{{eq probe.outputs.ready 1}}",
        },
    }
}

fn run_with_dsn(sb: &Sandbox, file: &str, dsn: &str) -> support::Run {
    sb.sensei(&["run", file, "-p", &format!("dsn={dsn}")])
}

fn logs(sb: &Sandbox, id: &str, step: &str) -> String {
    let run = sb.sensei(&["logs", id, step]).ok();
    run.stdout
}

const INJECTION: &str = "x'); DROP TABLE items; --";

fn a_runbook_creates_fills_reads_and_fans_out(kind: Kind) {
    let Some(db) = TestDb::new(kind) else { return };
    let d = dialect(kind);
    let sb = Sandbox::new();
    sb.write(
        "schema.sql",
        "-- the shop's items\nCREATE TABLE items (id int PRIMARY KEY, name varchar(100), price numeric(10,2));\n",
    );
    let file = sb.write(
        "shop.yaml",
        &format!(
            r#"version: 1
name: shop
params:
  dsn: {{ type: string, secret: true }}
  label: {{ type: string, default: "{INJECTION}" }}
steps:
  - id: create
    sql: {{ dsn: "{{{{params.dsn}}}}", file: schema.sql }}
  - id: fill
    needs: [create]
    sql:
      dsn: "{{{{params.dsn}}}}"
      query: "INSERT INTO items (id, name, price) VALUES (1, 'apple', 1.50), (2, 'pear', 2.25), (3, {p1}, 19.99)"
      params: ["{{{{params.label}}}}"]
  - id: count
    needs: [fill]
    sql: {{ dsn: "{{{{params.dsn}}}}", query: "SELECT count(*) AS n, max(price) AS top FROM items" }}
  - id: report
    needs: [count]
    run: echo {{{{steps.count.outputs.n}}}} {{{{steps.count.outputs.top}}}} > report.txt
  - id: list
    needs: [count]
    sql: {{ dsn: "{{{{params.dsn}}}}", query: "SELECT id, name FROM items WHERE id < 3 ORDER BY id" }}
  - id: shout
    needs: [list]
    for_each: "{{{{steps.list.outputs.rows}}}}"
    sql:
      dsn: "{{{{params.dsn}}}}"
      query: "UPDATE items SET name = upper(name) WHERE id = {p1}"
      params: ["{{{{item.id}}}}"]
  - id: verify
    phase: validate
    check: "{{{{eq steps.count.outputs.n 3}}}}"
"#,
            p1 = d.p1
        ),
    );
    let run = run_with_dsn(&sb, file.to_str().expect("utf-8"), &db.dsn());
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.id();
    assert_eq!(sb.read("report.txt"), "3 19.99\n");
    assert_eq!(
        db.query("SELECT id, name FROM items ORDER BY id"),
        [
            vec![Some("1".into()), Some("APPLE".into())],
            vec![Some("2".into()), Some("PEAR".into())],
            vec![Some("3".into()), Some(INJECTION.into())],
        ],
        "a param reaches the SQL as a value, never as code"
    );
    let status = sb.status(&id);
    let steps: Vec<&str> = status["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .filter(|s| s.starts_with("shout[") && *s != "shout[*]")
        .collect();
    assert_eq!(steps.len(), 2, "one expansion per row: {status}");
    let fill = logs(&sb, &id, "fill");
    assert!(fill.contains("INSERT: 3 rows affected"), "{fill}");
    assert!(fill.contains("COMMIT"), "{fill}");
    let create = logs(&sb, &id, "create");
    assert!(create.contains("CREATE: 0 rows affected"), "{create}");
}

#[test]
fn postgres_runbook_creates_fills_reads_and_fans_out() {
    a_runbook_creates_fills_reads_and_fans_out(Kind::Postgres);
}

#[test]
fn mysql_runbook_creates_fills_reads_and_fans_out() {
    a_runbook_creates_fills_reads_and_fans_out(Kind::Mysql);
}

fn transactions_keep_all_or_what_ran(kind: Kind) {
    let Some(db) = TestDb::new(kind) else { return };
    db.query("CREATE TABLE t (id int PRIMARY KEY)");
    let sb = Sandbox::new();
    let runbook = |transaction: bool, id: u32| {
        format!(
            "version: 1\nname: tx\nparams:\n  dsn: {{ type: string }}\nsteps:\n  - id: insert\n    sql:\n      dsn: \"{{{{params.dsn}}}}\"\n      query: \"INSERT INTO t VALUES ({id}); INSERT INTO t VALUES ({id})\"\n      transaction: {transaction}\n"
        )
    };
    let file = sb.write("atomic.yaml", &runbook(true, 1));
    let run = run_with_dsn(&sb, file.to_str().expect("utf-8"), &db.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    let step = sb.step(&run.id(), "insert");
    let error = step["error"].as_str().unwrap_or_default();
    let servers_words = match kind {
        Kind::Postgres => "duplicate key value violates unique constraint",
        Kind::Mysql => "Duplicate entry '1'",
    };
    assert!(error.starts_with("the SQL failed: "), "{step}");
    assert!(error.contains(servers_words), "{step}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM t"),
        Some("0".into()),
        "rolled back"
    );
    let shown = logs(&sb, &run.id(), "insert");
    assert!(
        shown.contains("rolled back: nothing of this step remains"),
        "{shown}"
    );

    let file = sb.write("kept.yaml", &runbook(false, 2));
    let run = run_with_dsn(&sb, file.to_str().expect("utf-8"), &db.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM t WHERE id = 2"),
        Some("1".into()),
        "without a transaction the first statement stays"
    );
    let shown = logs(&sb, &run.id(), "insert");
    assert!(
        shown.contains("no transaction: what ran before the error stays"),
        "{shown}"
    );
}

#[test]
fn postgres_transactions_keep_all_or_what_ran() {
    transactions_keep_all_or_what_ran(Kind::Postgres);
}

#[test]
fn mysql_transactions_keep_all_or_what_ran() {
    transactions_keep_all_or_what_ran(Kind::Mysql);
}

/// How many sessions of the test's database run `statement`, by the server's own account.
fn running(db: &TestDb, statement: &str) -> usize {
    let sql = match db.kind {
        Kind::Postgres => format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' AND query = '{statement}'",
            db.name
        ),
        Kind::Mysql => format!(
            "SELECT count(*) FROM information_schema.processlist WHERE db = '{}' AND info = '{statement}'",
            db.name
        ),
    };
    db.admin_query(&sql)[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Polls until no session runs `statement`; fails after `within`.
fn gone_within(db: &TestDb, statement: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while running(db, statement) != 0 {
        assert!(
            Instant::now() < deadline,
            "`{statement}` still runs on the server {within:?} after the step ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_timeout_cancels_the_statement_on_the_server(kind: Kind) {
    let Some(db) = TestDb::new(kind) else { return };
    let d = dialect(kind);
    let sb = Sandbox::new();
    let file = sb.write(
        "slow.yaml",
        &format!(
            "version: 1\nname: slow\nparams:\n  dsn: {{ type: string }}\nsteps:\n  - id: sleepy\n    timeout: 2s\n    sql: {{ dsn: \"{{{{params.dsn}}}}\", query: \"{}\" }}\n",
            d.sleep
        ),
    );
    let started = Instant::now();
    let run = run_with_dsn(&sb, file.to_str().expect("utf-8"), &db.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let step = sb.step(&run.id(), "sleepy");
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("timed out after 2s; cancelled the statement on the server ("),
        "{step}"
    );
    gone_within(&db, d.sleep, Duration::from_secs(3));
    if kind == Kind::Postgres {
        // 57014 (query_canceled) comes only from a cancel: a client that merely went away
        // does not produce it.
        let shown = logs(&sb, &run.id(), "sleepy");
        assert!(shown.contains("(SQLSTATE 57014)"), "{shown}");
    }
}

#[test]
fn postgres_timeout_cancels_the_statement_on_the_server() {
    a_timeout_cancels_the_statement_on_the_server(Kind::Postgres);
}

#[test]
fn mysql_timeout_cancels_the_statement_on_the_server() {
    a_timeout_cancels_the_statement_on_the_server(Kind::Mysql);
}

fn a_cancel_cancels_the_statement_on_the_server(kind: Kind) {
    let Some(db) = TestDb::new(kind) else { return };
    let d = dialect(kind);
    let sb = Sandbox::new();
    let file = sb.write(
        "slow.yaml",
        &format!(
            "version: 1\nname: slow\nparams:\n  dsn: {{ type: string }}\nsteps:\n  - id: sleepy\n    sql: {{ dsn: \"{{{{params.dsn}}}}\", query: \"{}\" }}\n",
            d.sleep
        ),
    );
    let dsn = format!("dsn={}", db.dsn());
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8"), "-p", &dsn]);
    let id = bg.id();
    wait_for("the statement to run on the server", || {
        (running(&db, d.sleep) == 1).then_some(())
    });
    sb.sensei(&["cancel", &id]).ok();
    gone_within(&db, d.sleep, Duration::from_secs(5));
    bg.finish();
    assert_eq!(sb.state(&id), "cancelled");
    let shown = logs(&sb, &id, "sleepy");
    assert!(
        shown.contains("cancel: cancelled the statement on the server"),
        "{shown}"
    );
}

#[test]
fn postgres_cancel_cancels_the_statement_on_the_server() {
    a_cancel_cancels_the_statement_on_the_server(Kind::Postgres);
}

#[test]
fn mysql_cancel_cancels_the_statement_on_the_server() {
    a_cancel_cancels_the_statement_on_the_server(Kind::Mysql);
}

fn a_sql_probe_polls_until_its_condition_holds(kind: Kind) {
    let Some(db) = TestDb::new(kind) else { return };
    let d = dialect(kind);
    db.query("CREATE TABLE ticks (n int NOT NULL); INSERT INTO ticks VALUES (0)");
    let sb = Sandbox::new();
    // Each evaluation counts one tick; the condition holds from the third on.
    let file = sb.write(
        "lag.yaml",
        &format!(
            r#"version: 1
name: lag
params:
  dsn: {{ type: string }}
steps:
  - id: caught-up
    check: "{ready}"
    probe:
      sql:
        dsn: "{{{{params.dsn}}}}"
        query: "UPDATE ticks SET n = n + 1; SELECT n >= 3 AS ready FROM ticks"
    every: 100ms
    stable_for: 150ms
    timeout: 30s
"#,
            ready = d.ready
        ),
    );
    let run = run_with_dsn(&sb, file.to_str().expect("utf-8"), &db.dsn());
    assert_eq!(run.code, 0, "{run:?}");
    let ticks: u32 = db
        .scalar("SELECT n FROM ticks")
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(
        ticks >= 5,
        "held from the 3rd evaluation for 150 ms: {ticks} evaluations"
    );
    let shown = logs(&sb, &run.id(), "caught-up");
    assert_eq!(
        shown.matches("the check did not hold").count(),
        2,
        "{shown}"
    );
    assert!(shown.contains("check holds (for 0s of 150ms)"), "{shown}");
}

#[test]
fn postgres_sql_probe_polls_until_its_condition_holds() {
    a_sql_probe_polls_until_its_condition_holds(Kind::Postgres);
}

#[test]
fn mysql_sql_probe_polls_until_its_condition_holds() {
    a_sql_probe_polls_until_its_condition_holds(Kind::Mysql);
}

#[test]
fn postgres_tls_is_what_sslmode_says() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    if db.scalar("SHOW ssl").as_deref() != Some("on") {
        eprintln!("skipped: the PostgreSQL server has no TLS (`ssl = off`)");
        return;
    }
    let sb = Sandbox::new();
    let file = sb.write(
        "tls.yaml",
        "version: 1\nname: tls\nparams:\n  dsn: { type: string }\nsteps:\n  - id: ping\n    sql: { dsn: \"{{params.dsn}}\", query: \"SELECT 1 AS one\" }\n",
    );
    let file = file.to_str().expect("utf-8");
    for (mode, shown) in [("require", ", TLS"), ("disable", ", no TLS")] {
        let run = run_with_dsn(&sb, file, &format!("{}?sslmode={mode}", db.dsn())).ok();
        let log = logs(&sb, &run.id(), "ping");
        assert!(
            log.lines().any(|l| l.ends_with(shown)),
            "sslmode={mode}: {log}"
        );
    }
    // The server's certificate is self-signed: verifying it fails, and says so.
    let run = run_with_dsn(&sb, file, &format!("{}?sslmode=verify-full", db.dsn()));
    assert_eq!(run.code, 1, "{run:?}");
    let step = sb.step(&run.id(), "ping");
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("could not connect to 127.0.0.1"),
        "{step}"
    );
    assert!(error.to_lowercase().contains("certificate"), "{step}");
}

#[test]
fn a_resumed_migration_runs_the_sql_file_it_was_created_with() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    db.query("CREATE TABLE t (v text)");
    let sb = Sandbox::new();
    sb.write("insert.sql", "INSERT INTO t VALUES ('approved');\n");
    let file = sb.write(
        "gated.yaml",
        "version: 1\nname: gated\nparams:\n  dsn: { type: string }\nsteps:\n  - id: signoff\n    gate: { approvers: [alice] }\n  - id: insert\n    sql: { dsn: \"{{params.dsn}}\", file: insert.sql }\n",
    );
    let file = file.to_str().expect("utf-8");
    let dsn = format!("dsn={}", db.dsn());
    let planned = sb
        .sensei(&["plan", file, "-p", &dsn, "--format", "json"])
        .ok();
    let digest = |text: &str| -> String {
        serde_json::from_str::<serde_json::Value>(text).expect("json")["digest"]
            .as_str()
            .expect("a digest")
            .to_owned()
    };
    let before = digest(&planned.stdout);
    let bg = sb.spawn(&["run", file, "-p", &dsn]);
    let id = bg.id();
    wait_for("the gate", || {
        (sb.step(&id, "signoff")["state"] == "waiting").then_some(())
    });
    sb.write("insert.sql", "INSERT INTO t VALUES ('edited later');\n");
    let planned = sb
        .sensei(&["plan", file, "-p", &dsn, "--format", "json"])
        .ok();
    assert_ne!(
        digest(&planned.stdout),
        before,
        "the digest covers the file"
    );
    sb.sensei(&["approve", &id, "signoff", "--as", "alice"])
        .ok();
    let run = bg.finish();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(db.query("SELECT v FROM t"), [vec![Some("approved".into())]]);
}

#[test]
fn postgres_statement_of_a_killed_engine_ends_on_the_server() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let d = dialect(Kind::Postgres);
    let sb = Sandbox::new();
    let file = sb.write(
        "slow.yaml",
        &format!(
            "version: 1\nname: slow\nparams:\n  dsn: {{ type: string }}\nsteps:\n  - id: sleepy\n    sql: {{ dsn: \"{{{{params.dsn}}}}\", query: \"{}\" }}\n",
            d.sleep
        ),
    );
    let dsn = format!("dsn={}", db.dsn());
    let bg = sb.spawn(&["run", file.to_str().expect("utf-8"), "-p", &dsn]);
    wait_for("the statement to run on the server", || {
        (running(&db, d.sleep) == 1).then_some(())
    });
    // The watchdog kills the step's process outright (no cancel); the server notices the
    // client is gone (`client_connection_check_interval`, PostgreSQL 14 and later).
    bg.kill9();
    gone_within(&db, d.sleep, Duration::from_secs(10));
}
