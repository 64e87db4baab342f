//! A DSN's password is a secret wherever the DSN goes, even passed in a param not declared
//! `secret: true`: in a step's outputs, in an error the server echoes, in fan-out ids, in
//! logs, events, status, plans, the API and the state database. It still reaches the
//! driver: the servers here authenticate with it (MariaDB) or carry it (PostgreSQL trusts
//! local connections).

#[path = "support/db.rs"]
mod db;
mod harness;
mod support;

use db::{Kind, TestDb};
use support::{assert_hidden, stored_params, stored_texts};

const PASSWORD: &str = "Pa55-s3cret-w0rd";

/// Echoes the DSN (in a column and in an error the server writes), and fans out over DSNs.
fn runbook(p1: &str, failing: &str) -> String {
    format!(
        r#"version: 1
name: leaky
params:
  dsn: {{ type: string }}
  shards: {{ type: list }}
steps:
  - id: echo
    sql: {{ dsn: "{{{{params.dsn}}}}", query: "SELECT {p1} AS said", params: ["{{{{params.dsn}}}}"] }}
  - id: fan
    for_each: "{{{{params.shards}}}}"
    sql: {{ dsn: "{{{{item}}}}", query: "SELECT 1 AS one" }}
  - id: broken
    needs: [echo, fan]
    sql: {{ dsn: "{{{{params.dsn}}}}", query: "{failing}", params: ["{{{{params.dsn}}}}"] }}
"#
    )
}

fn nothing_shows_the_password(kind: Kind, dsn: &str, text: &str, servers_words: &str) {
    let dir = harness::Dir::new();
    dir.runbook("leaky.yaml", text);
    let s = dir.serve_ops();
    let shards = [dsn.to_owned(), format!("{dsn}?connect_timeout=5")];
    let shards = match kind {
        Kind::Postgres => shards.to_vec(),
        // MySQL's URL takes no such parameter; another spelling of the host is another DSN.
        Kind::Mysql => vec![dsn.to_owned(), dsn.replace("127.0.0.1", "localhost")],
    };
    let params = serde_json::json!({ "dsn": dsn, "shards": shards });
    let id = s.create(Some("ops-token"), "leaky", &params.to_string());
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "failed");
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    let steps: Vec<String> = detail.json["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {}", detail.text))
        .iter()
        .map(|s| s["step"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        steps,
        ["echo", "fan[#1]", "fan[#2]", "broken"],
        "{}",
        detail.text
    );
    let by_id = |step: &str| {
        detail.json["steps"]
            .as_array()
            .and_then(|list| list.iter().find(|s| s["step"] == step).cloned())
            .unwrap_or_default()
    };
    assert_eq!(by_id("fan[#2]")["state"], "succeeded", "{}", detail.text);
    let said = by_id("echo")["outputs"]["said"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.contains(":***@"), "the output is masked: {said}");
    let error = by_id("broken")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(servers_words) && error.contains("***"),
        "{error}"
    );
    let mut shown = vec![("GET migration".to_owned(), detail.text.clone())];
    for path in [
        format!("/v1/migrations/{id}/status"),
        format!("/v1/migrations/{id}/events"),
    ] {
        shown.push((format!("GET {path}"), s.get(&path).expect(200).text));
    }
    for step in &steps {
        let path = format!(
            "/v1/migrations/{id}/steps/{}/logs",
            step.replace('[', "%5B")
                .replace(']', "%5D")
                .replace('#', "%23")
        );
        shown.push((format!("GET {path}"), s.get(&path).expect(200).text));
    }
    let plan = std::process::Command::new(support::BIN)
        .args(["plan", "--format", "json"])
        .arg(dir.path("runbooks").join("leaky.yaml"))
        .args(["-p", &format!("dsn={dsn}"), "-p"])
        .arg(format!("shards={}", serde_json::json!(shards)))
        .output()
        .expect("plan runs");
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(plan.contains("fan[#1]"), "{plan}");
    shown.push(("sensei plan".to_owned(), plan));
    let state = dir.path("state");
    shown.push(("the state database".to_owned(), stored_texts(&state)));
    let texts: Vec<(&str, &str)> = shown
        .iter()
        .map(|(w, t)| (w.as_str(), t.as_str()))
        .collect();
    assert_hidden(&texts, &[PASSWORD, "s3cret"]);
    assert!(
        stored_params(&state).contains(PASSWORD),
        "the test looked where it is"
    );
}

#[test]
fn postgres_dsn_passwords_are_masked_everywhere() {
    let Some(db) = TestDb::new(Kind::Postgres) else {
        return;
    };
    let text = runbook("$1", "SELECT $1::int");
    nothing_shows_the_password(
        Kind::Postgres,
        &db.dsn_with(Some(PASSWORD)),
        &text,
        "invalid input syntax for type integer",
    );
}

#[test]
fn mysql_dsn_passwords_are_masked_everywhere() {
    let Some(db) = TestDb::new(Kind::Mysql) else {
        return;
    };
    let user = format!("u{}", &db.name[9..]);
    db.query(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'; CREATE USER '{user}'@'localhost' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON {0}.* TO '{user}'@'%'; GRANT ALL ON {0}.* TO '{user}'@'localhost'",
        db.name
    ));
    let dsn = {
        let mut url = url::Url::parse(&db.dsn()).expect("a URL");
        url.set_username(&user).expect("a user");
        url.set_password(Some(PASSWORD)).expect("a password");
        url.to_string()
    };
    /// Drops the users however the test ends (they outlive the database).
    struct Users<'a>(&'a TestDb, String);
    impl Drop for Users<'_> {
        fn drop(&mut self) {
            let user = &self.1;
            self.0.query(&format!(
                "DROP USER IF EXISTS '{user}'@'%'; DROP USER IF EXISTS '{user}'@'localhost'"
            ));
        }
    }
    let _users = Users(&db, user);
    // The server's error message is the value itself.
    let text = runbook("?", "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = ?");
    nothing_shows_the_password(Kind::Mysql, &dsn, &text, "SQLSTATE 45000");
}
