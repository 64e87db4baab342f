//! `compare` steps between the machine's real MariaDB and PostgreSQL (`SENSEI_TEST_MYSQL`,
//! `SENSEI_TEST_PG`; see `support/db.rs`), through the real `sensei` binary: the same data
//! stored under each engine's types compares equal and the migration is certified; a
//! changed, a missing and an extra row are each found, with their key ranges and keys, and
//! the migration fails; text keys, queries, missing columns, masked passwords; and a rough
//! rows/s figure on 100,000 rows.

#[path = "support/db.rs"]
mod db;
mod support;

use db::{Kind, TestDb};
use serde_json::Value as Json;
use support::{Sandbox, assert_hidden};

const ROWS: u32 = 200;

/// The shop's orders table on each engine, under the types a migration maps between.
const MY_TABLE: &str = "CREATE TABLE orders (
  id bigint PRIMARY KEY, code varchar(40) NOT NULL, customer varchar(100), total decimal(10,2),
  paid tinyint(1), created datetime(6), note text, rate double, score float, tag char(6),
  doc json, ext char(36), raw blob
) CHARACTER SET utf8mb4";
const PG_TABLE: &str = "CREATE TABLE orders (
  id bigint PRIMARY KEY, code text NOT NULL, customer text, total numeric(12,3),
  paid boolean, created timestamptz, note text, rate double precision, score real, tag char(6),
  doc jsonb, ext uuid, raw bytea
)";

/// Row `i` as SQL literals for `kind`: the same data, written as each engine takes it
/// (decimals with other scales, timestamps with offsets, booleans, upper-case uuids, ...).
fn row(kind: Kind, i: u32) -> String {
    let my = kind == Kind::Mysql;
    let names = [
        "Zoë",
        "zoe",
        "Ärger",
        "apple",
        "Banana",
        "李雷",
        "O''Brien 😀",
    ];
    let name = names[i as usize % names.len()];
    let code = format!("'{name}-{i}'");
    if i.is_multiple_of(11) {
        // Every column that may be NULL is.
        return format!(
            "({i}, {code}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        );
    }
    let total = if my {
        format!("{}.{:02}", i * 3, (i * 10) % 100)
    } else {
        format!("{}.{:02}0", i * 3, (i * 10) % 100)
    };
    let paid = if i.is_multiple_of(2) { "TRUE" } else { "FALSE" };
    let created = if my {
        format!("'2026-03-29 01:{:02}:{:02}.250000'", i % 60, (i * 7) % 60)
    } else {
        // The same instant, written two hours east of UTC.
        format!("'2026-03-29 03:{:02}:{:02}.25+02'", i % 60, (i * 7) % 60)
    };
    let note = match i % 3 {
        0 => "NULL".to_owned(),
        1 => "''".to_owned(),
        _ => format!("'note {i} ✓'"),
    };
    let rate = f64::from(i) / 7.0;
    let score = f64::from(i) * 1.234_567_8;
    let tag = if i.is_multiple_of(2) {
        "'ab'"
    } else {
        "'abcdef'"
    };
    let doc = if my {
        format!(r#"'{{"b": [1, 2.50], "a": "ü{i}"}}'"#)
    } else {
        format!(r#"'{{"a": "ü{i}", "b": [1, 2.5]}}'"#)
    };
    let ext = if my {
        format!("'{i:08X}-ABCD-4000-8000-{i:012X}'")
    } else {
        format!("'{i:08x}-abcd-4000-8000-{i:012x}'")
    };
    let bytes = format!("{:02x}00ff", i % 256);
    let raw = if my {
        format!("x'{bytes}'")
    } else {
        format!("'\\x{bytes}'")
    };
    format!(
        "({i}, {code}, '{name}', {total}, {paid}, {created}, {note}, {rate}, {score}, {tag}, {doc}, {ext}, {raw})"
    )
}

/// A MariaDB and a PostgreSQL database holding the same orders; `None` when the
/// environment names no servers.
fn same_orders() -> Option<(TestDb, TestDb)> {
    let my = TestDb::new(Kind::Mysql)?;
    let pg = TestDb::new(Kind::Postgres)?;
    for (db, table) in [(&my, MY_TABLE), (&pg, PG_TABLE)] {
        let rows: Vec<String> = (1..=ROWS).map(|i| row(db.kind, i)).collect();
        db.query(&format!(
            "{table}; INSERT INTO orders VALUES {}",
            rows.join(", ")
        ));
    }
    Some((my, pg))
}

/// Compares the orders by id in 4 ranges, and by `code` (a text key) through queries.
fn runbook(target_dsn: &str) -> String {
    format!(
        r#"version: 1
name: certify
params:
  source: {{ type: string, secret: true }}
  password: {{ type: string, default: "" }}
steps:
  - id: copied
    run: "true"
  - id: orders-match
    phase: validate
    compare:
      source: {{ dsn: "{{{{params.source}}}}", table: orders }}
      target: {{ dsn: "{target_dsn}", table: orders }}
      key: id
      ranges: 4
  - id: by-code
    phase: validate
    compare:
      source: {{ dsn: "{{{{params.source}}}}", query: "SELECT code, customer, total FROM orders WHERE id <= 150" }}
      target: {{ dsn: "{target_dsn}", query: "SELECT code, customer, total FROM orders WHERE id <= 150" }}
      key: code
      ranges: 3
"#
    )
}

fn run(sb: &Sandbox, text: &str, source: &str) -> support::Run {
    run_with(sb, text, source, &[])
}

fn run_with(sb: &Sandbox, text: &str, source: &str, more: &[&str]) -> support::Run {
    let file = sb.write("certify.yaml", text);
    let source = format!("source={source}");
    let mut args = vec!["run", file.to_str().expect("utf-8"), "-p", &source];
    for param in more {
        args.extend(["-p", param]);
    }
    sb.sensei(&args)
}

fn logs(sb: &Sandbox, id: &str, step: &str) -> String {
    sb.sensei(&["logs", id, step]).ok().stdout
}

#[test]
fn the_same_data_on_both_engines_matches_and_the_migration_is_certified() {
    let Some((my, pg)) = same_orders() else {
        return;
    };
    let sb = Sandbox::new();
    let run = run(&sb, &runbook(&pg.dsn()), &my.dsn());
    let id = run.id();
    assert_eq!(run.code, 0, "{run:?}\n{}", logs(&sb, &id, "orders-match"));
    assert_eq!(sb.state(&id), "certified");
    let step = sb.step(&id, "orders-match");
    let out = &step["outputs"];
    assert_eq!(out["matched"], Json::Bool(true), "{step}");
    assert_eq!(out["ranges"], 4);
    assert_eq!(out["rows_source"], ROWS);
    assert_eq!(out["rows_target"], ROWS);
    assert_eq!(out["checksum_source"], out["checksum_target"]);
    assert_eq!(out["differing_ranges"], serde_json::json!([]));
    assert_eq!(step["progress"]["done"], 4, "{step}");
    assert_eq!(step["progress"]["total"], 4, "{step}");
    let shown = logs(&sb, &id, "orders-match");
    for line in [
        "column total: source DECIMAL, target NUMERIC: compared as number",
        "column created: source DATETIME, target TIMESTAMPTZ: compared as timestamp",
        "column paid: source BOOLEAN, target BOOL: compared as number",
        "column doc: source BLOB, target JSONB: compared as json",
        "column ext: source CHAR, target UUID: compared as uuid",
        "column score: source FLOAT, target FLOAT4: compared as single",
        "range 1/4 id 1..50: source 50 rows, target 50 rows: match",
        "source and target match",
    ] {
        assert!(shown.contains(line), "`{line}` in:\n{shown}");
    }
    // A text key (unicode, mixed case) is merged in byte order on both servers.
    let by_code = sb.step(&id, "by-code");
    assert_eq!(by_code["outputs"]["matched"], Json::Bool(true), "{by_code}");
    assert_eq!(by_code["outputs"]["rows_source"], 150);
    assert_eq!(by_code["outputs"]["ranges"], 3);
}

#[test]
fn a_changed_a_missing_and_an_extra_row_are_found_and_the_migration_fails() {
    let Some((my, pg)) = same_orders() else {
        return;
    };
    my.query("DELETE FROM orders WHERE id = 150");
    pg.query(
        "UPDATE orders SET total = 150.001 WHERE id = 50; UPDATE orders SET note = NULL WHERE id = 79; DELETE FROM orders WHERE id = 120",
    );
    let sb = Sandbox::new();
    let run = run(&sb, &runbook(&pg.dsn()), &my.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.state(&id), "failed");
    let states = sb.states(&id);
    assert!(states.contains(&"validating".to_owned()), "{states:?}");
    assert!(!states.contains(&"certified".to_owned()), "{states:?}");
    let step = sb.step(&id, "orders-match");
    assert_eq!(step["state"], "failed");
    assert_eq!(step["exit_code"], 3);
    assert_eq!(
        step["error"],
        "source and target differ in 3 of 4 key ranges (source 199 rows, target 199): id 1..50 (1 different), id 51..100 (1 different), id 101..150 (1 missing in target, 1 extra in target); sample keys: id 50 different (total), id 79 different (note), id 120 missing in target, id 150 extra in target",
        "{step}"
    );
    let shown = logs(&sb, &id, "orders-match");
    assert!(
        shown.contains("range 4/4 id 151..200: source 50 rows, target 50 rows: match"),
        "{shown}"
    );
    assert!(
        shown.contains("range 3/4 id 101..150: source 49 rows, target 49 rows: differ: 1 missing in target, 1 extra in target; checksums "),
        "{shown}"
    );
}

#[test]
fn columns_on_one_side_only_are_named_and_nothing_is_certified() {
    let Some(my) = TestDb::new(Kind::Mysql) else {
        return;
    };
    let Some(pg) = TestDb::new(Kind::Postgres) else {
        return;
    };
    my.query("CREATE TABLE t (id int PRIMARY KEY, name text, legacy_flag int)");
    pg.query("CREATE TABLE t (id int PRIMARY KEY, name text)");
    let sb = Sandbox::new();
    let text = format!(
        "version: 1\nname: cols\nparams:\n  source: {{ type: string }}\nsteps:\n  - id: same\n    phase: validate\n    compare:\n      source: {{ dsn: \"{{{{params.source}}}}\", table: t }}\n      target: {{ dsn: \"{}\", table: t }}\n      key: id\n",
        pg.dsn()
    );
    let run = run(&sb, &text, &my.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    let step = sb.step(&run.id(), "same");
    assert_eq!(
        step["error"],
        "the comparison could not be made: the target has no column `legacy_flag` (the source's columns: id, name, legacy_flag)",
        "{step}"
    );
    assert_eq!(step["exit_code"], 1);
}

#[test]
fn dsn_passwords_of_both_sides_never_show() {
    let Some((my, pg)) = same_orders() else {
        return;
    };
    const PASSWORD: &str = "Cmp-s3cret-Pa55";
    // PostgreSQL trusts local connections: the password is carried, not checked. It comes
    // from a param that is not `secret: true`, into a DSN written in the runbook: known to
    // be a password once the DSN renders.
    let target = pg.dsn_with(Some("{{params.password}}"));
    let target = target.replace("%7B%7Bparams.password%7D%7D", "{{params.password}}");
    assert!(target.contains(":{{params.password}}@"), "{target}");
    pg.query("UPDATE orders SET customer = 'changed' WHERE id = 7");
    let sb = Sandbox::new();
    let password = format!("password={PASSWORD}");
    let run = run_with(&sb, &runbook(&target), &my.dsn(), &[&password]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    let step = sb.step(&id, "orders-match");
    let error = step["error"].as_str().unwrap_or_default();
    assert!(error.contains("id 7 different (customer)"), "{step}");
    let mut texts = sb.shown(&id);
    texts.push(("sensei run".into(), format!("{}{}", run.stdout, run.stderr)));
    let texts: Vec<(&str, &str)> = texts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_hidden(&texts, &[PASSWORD]);
}

#[test]
fn a_hundred_thousand_rows_compare_and_the_speed_is_reported() {
    let Some(my) = TestDb::new(Kind::Mysql) else {
        return;
    };
    let Some(pg) = TestDb::new(Kind::Postgres) else {
        return;
    };
    const N: u32 = 100_000;
    my.query(&format!(
        "CREATE TABLE big (id bigint PRIMARY KEY, name varchar(50), amount decimal(12,2), at datetime(3), flag tinyint(1)) CHARACTER SET utf8mb4;
         INSERT INTO big SELECT seq, concat('customer-', seq), seq * 1.25, '2026-01-01' + INTERVAL seq SECOND, seq % 2 FROM seq_1_to_{N}"
    ));
    pg.query(&format!(
        "CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(14,3), at timestamptz, flag boolean);
         INSERT INTO big SELECT g, 'customer-' || g, g * 1.25, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', g % 2 = 1 FROM generate_series(1, {N}) g"
    ));
    let sb = Sandbox::new();
    let text = format!(
        "version: 1\nname: big\nparams:\n  source: {{ type: string }}\nsteps:\n  - id: big\n    phase: validate\n    compare:\n      source: {{ dsn: \"{{{{params.source}}}}\", table: big }}\n      target: {{ dsn: \"{}\", table: big }}\n      key: id\n      ranges: 32\n",
        pg.dsn()
    );
    let started = std::time::Instant::now();
    let run = run(&sb, &text, &my.dsn());
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.id();
    let step = sb.step(&id, "big");
    assert_eq!(step["outputs"]["rows_source"], N);
    assert_eq!(step["outputs"]["ranges"], 32);
    let shown = logs(&sb, &id, "big");
    let speed = shown
        .lines()
        .find(|l| l.starts_with("compared "))
        .unwrap_or_else(|| panic!("no speed line in:\n{shown}"));
    eprintln!(
        "compare of {N} rows on each side: {speed}; the whole migration took {:.2} s (a debug build unless the tests run with --release)",
        elapsed.as_secs_f64()
    );
}

#[test]
fn a_timeout_cancels_the_comparison_on_the_server() {
    let Some(pg) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let Some(my) = TestDb::new(Kind::Mysql) else {
        return;
    };
    my.query("CREATE TABLE t (id int PRIMARY KEY)");
    const SLOW: &str = "SELECT 1 AS id, pg_sleep(60) AS z";
    let sb = Sandbox::new();
    let text = format!(
        "version: 1\nname: slow\nparams:\n  source: {{ type: string }}\nsteps:\n  - id: slow\n    timeout: 2s\n    compare:\n      source: {{ dsn: \"{{{{params.source}}}}\", query: \"{SLOW}\" }}\n      target: {{ dsn: \"{}\", table: t }}\n      key: id\n      columns: [id]\n",
        my.dsn()
    );
    let started = std::time::Instant::now();
    let run = run(&sb, &text, &pg.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let step = sb.step(&run.id(), "slow");
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(
            "timed out after 2s; source: cancelled the statement on the server (pg_cancel_backend("
        ),
        "{step}"
    );
    // The server's own account: no session of the test's database still sleeps.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let sleeping = || {
        pg.admin_query(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' AND query LIKE '%pg_sleep%'",
            pg.name
        ))[0][0]
            .clone()
    };
    while sleeping().as_deref() != Some("0") {
        assert!(
            std::time::Instant::now() < deadline,
            "the query still runs on the server"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn keys_a_server_orders_otherwise_stop_the_comparison_rather_than_mislead() {
    let Some(my) = TestDb::new(Kind::Mysql) else {
        return;
    };
    let Some(pg) = TestDb::new(Kind::Postgres) else {
        return;
    };
    my.query("CREATE TABLE t (mood varchar(10) PRIMARY KEY, n int); INSERT INTO t VALUES ('happy', 1), ('sad', 2)");
    // A PostgreSQL enum sorts by declaration, not by its labels.
    pg.query("CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE t (mood mood PRIMARY KEY, n int); INSERT INTO t VALUES ('happy', 1), ('sad', 2)");
    let sb = Sandbox::new();
    let text = format!(
        "version: 1\nname: enum\nparams:\n  source: {{ type: string }}\nsteps:\n  - id: same\n    compare:\n      source: {{ dsn: \"{{{{params.source}}}}\", table: t }}\n      target: {{ dsn: \"{}\", table: t }}\n      key: mood\n",
        pg.dsn()
    );
    let run = run(&sb, &text, &my.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    let step = sb.step(&run.id(), "same");
    assert_eq!(
        step["error"],
        "the comparison could not be made: the target returned key happy after sad: its server does not order this key as sensei compares it (numbers by value, text by its bytes)",
        "{step}"
    );
}

#[test]
fn a_key_held_by_several_rows_compares_its_rows_in_any_order() {
    let Some(my) = TestDb::new(Kind::Mysql) else {
        return;
    };
    let Some(pg) = TestDb::new(Kind::Postgres) else {
        return;
    };
    my.query("CREATE TABLE d (k int, v text); INSERT INTO d VALUES (1, 'a'), (1, 'b'), (2, 'c')");
    pg.query("CREATE TABLE d (k int, v text); INSERT INTO d VALUES (1, 'b'), (1, 'a'), (2, 'c'), (2, 'c')");
    let sb = Sandbox::new();
    let text = format!(
        "version: 1\nname: dup\nparams:\n  source: {{ type: string }}\nsteps:\n  - id: same\n    compare:\n      source: {{ dsn: \"{{{{params.source}}}}\", table: d }}\n      target: {{ dsn: \"{}\", table: d }}\n      key: k\n      ranges: 2\n",
        pg.dsn()
    );
    let run = run(&sb, &text, &my.dsn());
    assert_eq!(run.code, 1, "{run:?}");
    let step = sb.step(&run.id(), "same");
    assert_eq!(
        step["error"],
        "source and target differ in 1 of 2 key ranges (source 3 rows, target 4): k 2..2 (1 extra in target); sample keys: k 2 extra in target",
        "{step}"
    );
}
