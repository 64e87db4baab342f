//! `copy` steps against the machine's real MariaDB and PostgreSQL (`SENSEI_TEST_MYSQL`,
//! `SENSEI_TEST_PG`; see `support/db.rs`), through the real `sensei` binary: a table with
//! every kind of awkward value copied from MariaDB into PostgreSQL and back, compared value
//! by value; a sharded copy fanned out over key ranges under a pool; a `kill -9` of `sensei
//! run` in the middle of a copy, resumed without a row twice; and the errors a user meets
//! (a type `copy` does not convert, a zero date, a value the target refuses, a table that is
//! not there). Both DSNs' passwords are masked: `copy_secrets.rs`.
//!
//! The copy that is killed is held, not slowed: a statement trigger on the target blocks the
//! batch past a key until the test lets it go, so the test waits for a known checkpoint
//! (polling with a deadline) instead of guessing how long a copy takes.

#[path = "support/db.rs"]
mod db;
mod support;

use db::{Kind, TestDb};
use serde_json::Value;
use support::{Sandbox, wait_for};

/// Both servers, or `None` (the reason printed) when the environment lacks one. MariaDB's
/// database has a table `digits` (0 to 9), whose cross joins generate rows.
fn servers() -> Option<(TestDb, TestDb)> {
    let my = TestDb::new(Kind::Mysql)?;
    let pg = TestDb::new(Kind::Postgres)?;
    my.query("CREATE TABLE digits (d INT); INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)");
    Some((my, pg))
}

const MY_ORDERS: &str = "CREATE TABLE orders (
  id BIGINT PRIMARY KEY, customer_id INT NULL, amount DECIMAL(12,2) NULL,
  big BIGINT UNSIGNED NULL, ratio DOUBLE NULL, status ENUM('new','paid','shipped') NULL,
  note TEXT NULL, created_at TIMESTAMP(6) NULL, updated DATETIME(3) NULL, day DATE NULL,
  at_time TIME NULL, paid TINYINT(1) NULL, data BLOB NULL, doc JSON NULL, flags BIT(3) NULL
) CHARACTER SET utf8mb4";

const PG_ORDERS: &str = "CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id integer, amount numeric(12,2), big numeric(20),
  ratio double precision, status text, note text, created_at timestamptz, updated timestamp(3),
  day date, at_time interval, paid boolean, data bytea, doc json, flags smallint)";

/// Rows with NULLs, unicode and emoji, decimals, timestamps, tabs, newlines, backslashes
/// (`\N` too), binary data (with a backslash), JSON, MariaDB's extremes and a zero date;
/// then 1000 ordinary rows, so the copy takes several batches.
const MY_ROWS: &str = r#"SET SESSION sql_mode = ''; SET time_zone = '+00:00';
INSERT INTO orders VALUES
 (1, 7, 19.99, 18446744073709551615, 0.1, 'new', 'héllo wörld 你好 🎉🚀', '2024-05-01 10:00:00.123456', '2024-05-01 12:30:00.5', '2024-02-29', '10:30:00', 1, X'00FF0A5C09', '{"a": [1, 2.5, "x"], "b": null}', b'101'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, -5, -0.01, 0, -1.5, 'paid', 'tab\there\nnewline\r\nback\\slash \\N end', '1970-01-01 00:00:01', '1000-01-01 00:00:00', '0000-00-00', '-01:00:00', 0, X'', '[]', b'000'),
 (4, 2147483647, 9999999999.99, 1, 12345.678, 'shipped', '', '2038-01-19 03:14:07.999999', '9999-12-31 23:59:59.999', '1999-12-31', '838:59:59', 1, '\\x41', '"text"', b'111');
INSERT INTO orders (id, customer_id, amount, status, note, created_at, paid)
 SELECT 1000 + a.d * 100 + b.d * 10 + c.d, a.d, (a.d * 100 + b.d * 10 + c.d) / 100, 'paid',
        CONCAT('note ', a.d, b.d, c.d, ' ☃'), TIMESTAMP('2024-01-01') + INTERVAL (a.d * 100 + b.d * 10 + c.d) MINUTE, c.d % 2
 FROM digits a, digits b, digits c"#;

/// Every value of a MariaDB `orders` table as text both servers write the same way.
fn my_content(my: &TestDb, table: &str) -> Vec<Vec<Option<String>>> {
    my.query(&format!(
        "SET time_zone = '+00:00'; SELECT id, customer_id, amount, big, ratio, status, note, \
         DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(updated, '%Y-%m-%d %H:%i:%s.%f'), \
         IF(day = '0000-00-00', NULL, day), at_time, paid, LOWER(HEX(data)), doc, flags + 0 FROM {table} ORDER BY id"
    ))
}

fn pg_content(pg: &TestDb) -> Vec<Vec<Option<String>>> {
    pg.query(
        "SELECT id, customer_id, amount, big, ratio, status, note, \
         to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), to_char(updated, 'YYYY-MM-DD HH24:MI:SS.US'), \
         day, at_time, paid::int, encode(data, 'hex'), doc, flags FROM orders ORDER BY id",
    )
}

fn run(sb: &Sandbox, file: &str, params: &[(&str, &str)]) -> support::Run {
    let mut args = vec!["run".to_owned(), file.to_owned()];
    for (k, v) in params {
        args.push("-p".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sb.sensei(&args)
}

fn logs(sb: &Sandbox, id: &str, step: &str) -> String {
    sb.sensei(&["logs", id, step]).ok().stdout
}

const THERE_AND_BACK: &str = r#"version: 1
name: there-and-back
params:
  mariadb: { type: string, secret: true }
  postgres: { type: string, secret: true }
steps:
  - id: to-postgres
    copy:
      from: { dsn: "{{params.mariadb}}", table: orders, key: id }
      to: { dsn: "{{params.postgres}}" }
      batch: 300
      zero_dates: as_null
  - id: back
    needs: [to-postgres]
    copy:
      from: { dsn: "{{params.postgres}}", query: "SELECT * FROM orders WHERE id > 0", key: id }
      to: { dsn: "{{params.mariadb}}", table: orders_back }
      batch: 400
"#;

#[test]
fn a_mariadb_table_arrives_in_postgres_value_for_value_and_comes_back() {
    let Some((my, pg)) = servers() else { return };
    my.query(MY_ORDERS);
    my.query(&MY_ORDERS.replace("TABLE orders", "TABLE orders_back"));
    my.query(MY_ROWS);
    pg.query(PG_ORDERS);
    let sb = Sandbox::new();
    let file = sb.write("there-and-back.yaml", THERE_AND_BACK);
    let done = run(
        &sb,
        file.to_str().expect("utf-8"),
        &[("mariadb", &my.dsn()), ("postgres", &pg.dsn())],
    );
    assert_eq!(done.code, 0, "{done:?}");
    let id = done.id();
    let source = my_content(&my, "orders");
    assert_eq!(source.len(), 1004);
    assert_eq!(
        pg_content(&pg),
        source,
        "PostgreSQL holds what MariaDB held"
    );
    assert_eq!(
        my_content(&my, "orders_back"),
        source,
        "and MariaDB gets it back from PostgreSQL (the zero date as NULL)"
    );
    let step = sb.step(&id, "to-postgres");
    assert_eq!(step["outputs"]["rows"], 1004, "{step}");
    assert_eq!(step["outputs"]["batches"], 4, "{step}");
    assert_eq!(step["outputs"]["last_key"], 1999, "{step}");
    assert_eq!(step["checkpoint"]["value"], "1999", "{step}");
    let shown = logs(&sb, &id, "to-postgres");
    assert!(
        shown.contains("every id: 1004 rows in the source"),
        "{shown}"
    );
    assert!(shown.contains("copied 1004 rows in 4 batches"), "{shown}");
    // The passwords are not in the DSNs here; the log names where it connected.
    assert!(shown.contains("copying from MySQL/MariaDB at "), "{shown}");
}

/// Four shards of about the same size, their bounds computed from the data by a `sql` step.
const SHARDED: &str = r#"version: 1
name: sharded
params:
  mariadb: { type: string, secret: true }
  postgres: { type: string, secret: true }
pools: { source: 2 }
steps:
  - id: bounds
    sql:
      dsn: "{{params.mariadb}}"
      query: |
        SELECT MIN(id) AS `from`, MAX(id) + 1 AS `to`
        FROM (SELECT id, NTILE(4) OVER (ORDER BY id) AS shard FROM items) s
        GROUP BY shard ORDER BY 1
  - id: copy
    needs: [bounds]
    for_each: "{{steps.bounds.outputs.rows}}"
    pool: source
    copy:
      from: { dsn: "{{params.mariadb}}", query: "SELECT id, note, amount FROM items", key: id }
      to: { dsn: "{{params.postgres}}", table: items }
      batch: 250
      range: "{{item}}"
"#;

#[test]
fn a_sharded_copy_fans_out_over_key_ranges_under_a_pool() {
    let Some((my, pg)) = servers() else { return };
    my.query("CREATE TABLE items (id INT PRIMARY KEY, note VARCHAR(40), amount DECIMAL(10,2)) CHARACTER SET utf8mb4");
    my.query(
        "INSERT INTO items SELECT a.d * 1000 + b.d * 100 + c.d * 10 + e.d + 1, CONCAT('item ', a.d, b.d, c.d, e.d, ' ü'), (b.d * 100 + e.d) / 7
         FROM digits a, digits b, digits c, digits e WHERE a.d < 3",
    );
    pg.query("CREATE TABLE items (id int PRIMARY KEY, note text, amount numeric(10,2))");
    let sb = Sandbox::new();
    let file = sb.write("sharded.yaml", SHARDED);
    let done = run(
        &sb,
        file.to_str().expect("utf-8"),
        &[("mariadb", &my.dsn()), ("postgres", &pg.dsn())],
    );
    assert_eq!(done.code, 0, "{done:?}");
    let id = done.id();
    let source = my.query("SELECT id, note, amount FROM items ORDER BY id");
    assert_eq!(source.len(), 3000);
    assert_eq!(
        pg.query("SELECT id, note, amount FROM items ORDER BY id"),
        source
    );
    // Each shard ended at its own last key, and recorded it.
    let status = sb.status(&id);
    let mut checkpoints: Vec<String> = status["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"].as_str().is_some_and(|n| n.starts_with("copy[")))
        .filter_map(|s| s["checkpoint"]["value"].as_str().map(str::to_owned))
        .collect();
    checkpoints.sort();
    assert_eq!(checkpoints, ["1500", "2250", "3000", "750"], "{status}");
    // The pool let two shards read the source at a time, never more.
    let mut running = 0i32;
    let mut most = 0;
    for event in sb.events(&id) {
        let copy = event["step"]
            .as_str()
            .is_some_and(|s| s.starts_with("copy["));
        match event["kind"].as_str() {
            Some("step_started") if copy => running += 1,
            Some("step_succeeded" | "step_failed") if copy => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 2, "two shards at a time");
}

/// 10,000 rows in batches of 100; the target's trigger holds every batch past key 5000
/// until the table `go` has a row, so the copy stops with the checkpoint 5000 recorded.
const HELD: &str = r#"version: 1
name: held
params:
  mariadb: { type: string, secret: true }
  postgres: { type: string, secret: true }
steps:
  - id: copy
    copy:
      from: { dsn: "{{params.mariadb}}", table: big, key: id }
      to: { dsn: "{{params.postgres}}" }
      batch: 100
  - id: after
    needs: [copy]
    run: "true"
"#;

const HOLD_TRIGGER: &str = "CREATE TABLE go (x int);
CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WHILE (SELECT max(id) FROM added) > 5000 AND NOT EXISTS (SELECT 1 FROM go) LOOP
    PERFORM pg_sleep(0.02);
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER hold AFTER INSERT ON big REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION hold()";

#[test]
fn a_kill_9_in_the_middle_of_a_copy_resumes_after_the_checkpoint_without_a_row_twice() {
    let Some((my, pg)) = servers() else { return };
    my.query("CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20), n DECIMAL(8,2))");
    my.query(
        "INSERT INTO big SELECT a.d * 1000 + b.d * 100 + c.d * 10 + e.d + 1, CONCAT('v', a.d, b.d, c.d, e.d), a.d + e.d / 4
         FROM digits a, digits b, digits c, digits e",
    );
    pg.query("CREATE TABLE big (id int PRIMARY KEY, v text, n numeric(8,2))");
    pg.query(HOLD_TRIGGER);
    let sb = Sandbox::new();
    let file = sb.write("held.yaml", HELD);
    let file = file.to_str().expect("utf-8");
    let mariadb = format!("mariadb={}", my.dsn());
    let postgres = format!("postgres={}", pg.dsn());
    let running = sb.spawn(&["run", file, "-p", &mariadb, "-p", &postgres]);
    let id = running.id();
    let step = wait_for(
        "the checkpoint 5000 and its progress to be recorded",
        || {
            let step = sb.step(&id, "copy");
            (step["checkpoint"]["value"] == "5000" && step["progress"]["done"] == 5000)
                .then_some(step)
        },
    );
    assert_eq!(step["state"], "running", "{step}");
    assert_eq!(step["progress"]["total"], 10000, "{step}");
    running.kill9();

    // Let the held batch go (its transaction dies with its client, uncommitted), then play
    // the one race a checkpoint cannot close: a batch committed whose checkpoint was never
    // recorded. Its rows are on the target, wrong on purpose, after the checkpoint.
    pg.query("INSERT INTO go VALUES (1)");
    pg.query("INSERT INTO big SELECT g, 'stale', -1 FROM generate_series(5001, 5100) g");
    assert_eq!(pg.scalar("SELECT count(*) FROM big"), Some("5100".into()));

    // A copy is idempotent by itself: resume runs it again at once, from the checkpoint.
    let resumed = sb.sensei(&["resume", &id]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(
        resumed
            .stdout
            .contains(r#"▶ copy (attempt 2, from checkpoint "5000")"#),
        "{}",
        resumed.stdout
    );
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(pg.scalar("SELECT count(*) FROM big"), Some("10000".into()));
    assert_eq!(
        pg.scalar("SELECT count(DISTINCT id) FROM big"),
        Some("10000".into())
    );
    let checksum_pg =
        pg.query("SELECT sum(id), sum(n), md5(string_agg(v, ',' ORDER BY id)) FROM big");
    let checksum_my =
        my.query("SELECT sum(id), sum(n), md5(group_concat(v ORDER BY id SEPARATOR ',')) FROM big");
    assert_eq!(checksum_pg, checksum_my, "the same rows, once each");
    let shown = sb.sensei(&["logs", &id, "copy"]).ok().stdout;
    assert!(
        shown.contains("going on after the checkpoint: id 5000"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "deleted 100 rows of the target after the checkpoint 5000 before writing them again"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("5000 of them up to the checkpoint 5000"),
        "{shown}"
    );
}

fn failed_step(sb: &Sandbox, yaml: &str, my: &TestDb, pg: &TestDb) -> (Value, String) {
    let file = sb.write("failing.yaml", yaml);
    let done = run(
        sb,
        file.to_str().expect("utf-8"),
        &[("mariadb", &my.dsn()), ("postgres", &pg.dsn())],
    );
    assert_eq!(done.code, 1, "{done:?}");
    let id = done.id();
    let step = sb.step(&id, "copy");
    (step, logs(sb, &id, "copy"))
}

fn one_copy(from: &str, extra: &str) -> String {
    format!(
        "version: 1\nname: failing\nparams:\n  mariadb: {{ type: string, secret: true }}\n  postgres: {{ type: string, secret: true }}\nsteps:\n  - id: copy\n    copy:\n      from: {{ dsn: \"{{{{params.mariadb}}}}\", {from}, key: id }}\n      to: {{ dsn: \"{{{{params.postgres}}}}\", table: t }}\n{extra}"
    )
}

#[test]
fn what_cannot_be_copied_is_named_before_anything_is_written() {
    let Some((my, pg)) = servers() else { return };
    my.query(
        "SET SESSION sql_mode = ''; CREATE TABLE t (id INT PRIMARY KEY, shape POINT, at DATETIME, day DATE);
         INSERT INTO t VALUES (1, POINT(1, 2), '2024-01-01 00:00:00', '2024-01-01'), (2, NULL, NULL, '2024-00-00')",
    );
    pg.query("CREATE TABLE t (id int PRIMARY KEY, shape text, at integer, day date)");
    pg.query("INSERT INTO t VALUES (99, 'kept', 0, NULL)");
    let sb = Sandbox::new();
    let (step, _) = failed_step(&sb, &one_copy("table: t", ""), &my, &pg);
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the copy failed: the source's rows do not fit `t`: "),
        "{step}"
    );
    assert!(
        error.contains("`shape` is MySQL/MariaDB `GEOMETRY`, which `copy` does not convert: select it as text in `query` (`ST_AsText(col) AS col`"),
        "{error}"
    );
    assert!(
        error.contains("`at` is MySQL/MariaDB `DATETIME`, which cannot go into the PostgreSQL column `at` integer"),
        "{error}"
    );
    assert_eq!(step["exit_code"], 1, "{step}");
    assert_eq!(
        pg.query("SELECT id, shape FROM t"),
        [vec![Some("99".into()), Some("kept".into())]],
        "nothing was deleted or written"
    );

    // Converted in the query, the rows fit, but for the zero date, named with its key.
    let query = "query: \"SELECT id, ST_AsText(shape) AS shape, NULL AS at, day FROM t\"";
    let (step, shown) = failed_step(&sb, &one_copy(query, ""), &my, &pg);
    let error = step["error"].as_str().unwrap_or_default();
    assert_eq!(
        error,
        "the copy failed: row with id 2, column `day`: `2024-00-00` is a zero date, which PostgreSQL has no value for; write `zero_dates: as_null` in the step to copy zero dates as NULL, or fix them in the source",
        "{shown}"
    );
    let (step, _) = failed_step(
        &sb,
        &one_copy("table: t", "      range: { from: 1, to: 2 }\n")
            .replace("table: t, key", "table: missing, key"),
        &my,
        &pg,
    );
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("(MySQL error 1146"),
        "a missing source table is the server's word: {error}"
    );

    // A value the target refuses is named by the server, and by its row's key.
    pg.query("CREATE TABLE narrow (id int PRIMARY KEY, n numeric(3,2))");
    my.query("CREATE TABLE narrow (id INT PRIMARY KEY, n DECIMAL(8,2)); INSERT INTO narrow VALUES (1, 1.5), (2, 123.45)");
    let (step, shown) = failed_step(
        &sb,
        &one_copy("table: narrow", "").replace("table: t }", "table: narrow }"),
        &my,
        &pg,
    );
    assert_eq!(
        step["error"],
        "the copy failed: the target failed (row with id 2, column `n`): numeric field overflow (SQLSTATE 22003)",
        "{shown}"
    );
    assert!(
        shown.contains("detail: A field with precision 3, scale 2"),
        "{shown}"
    );
    assert_eq!(
        pg.scalar("SELECT count(*) FROM narrow"),
        Some("0".into()),
        "the batch rolled back"
    );

    let ok = one_copy(query, "      zero_dates: as_null\n");
    let file = sb.write("ok.yaml", &ok);
    let done = run(
        &sb,
        file.to_str().expect("utf-8"),
        &[("mariadb", &my.dsn()), ("postgres", &pg.dsn())],
    );
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(
        pg.query("SELECT id, shape, at, day FROM t ORDER BY id"),
        [
            vec![
                Some("1".into()),
                Some("POINT(1 2)".into()),
                None,
                Some("2024-01-01".into())
            ],
            vec![Some("2".into()), None, None, None],
        ],
        "the step owns its table: the row it did not copy is gone"
    );
}

#[test]
fn a_timeout_cancels_the_copy_on_both_servers_and_keeps_the_committed_batches() {
    let Some((my, pg)) = servers() else { return };
    my.query("CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20), n DECIMAL(8,2))");
    my.query(
        "INSERT INTO big SELECT a.d * 1000 + b.d * 100 + c.d * 10 + e.d + 1, 'v', 1
         FROM digits a, digits b, digits c, digits e WHERE a.d < 6",
    );
    pg.query("CREATE TABLE big (id int PRIMARY KEY, v text, n numeric(8,2))");
    pg.query(HOLD_TRIGGER);
    let sb = Sandbox::new();
    let file = sb.write(
        "held.yaml",
        &HELD.replace("      batch: 100\n", "      batch: 1000\n    timeout: 2s\n"),
    );
    let done = run(
        &sb,
        file.to_str().expect("utf-8"),
        &[("mariadb", &my.dsn()), ("postgres", &pg.dsn())],
    );
    assert_eq!(done.code, 1, "{done:?}");
    let step = sb.step(&done.id(), "copy");
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("timed out after 2s; source: ")
            && error.contains("target: cancelled the statement on the server (pg_cancel_backend("),
        "{step}"
    );
    assert_eq!(step["checkpoint"]["value"], "5000", "{step}");
    // The held batch rolled back on the server, the five before it stay.
    wait_for("the cancelled batch to end", || {
        (pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'COPY%'") == Some("0".into())).then_some(())
    });
    assert_eq!(pg.scalar("SELECT count(*) FROM big"), Some("5000".into()));
}
