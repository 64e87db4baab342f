//! A `copy` step's two DSNs hold two passwords, and both are secrets wherever they go — in
//! logs, events, status, the plan and the state database — even when neither param that
//! carries them says `secret: true`: the source's in a param that is a whole DSN, the
//! target's alone, put into a DSN the runbook writes. MariaDB authenticates with its
//! password; PostgreSQL, trusting local connections, carries its own.

#[path = "support/db.rs"]
mod db;
mod support;

use db::{Kind, TestDb};
use support::{Sandbox, assert_hidden};

const PASSWORD: &str = "C0py-s3cret-pw";
/// The target's: another one, so that finding one does not hide the other.
const PG_PASSWORD: &str = "Pg-t4rget-pw";

#[test]
fn both_dsns_passwords_are_masked_everywhere() {
    let (Some(my), Some(pg)) = (TestDb::new(Kind::Mysql), TestDb::new(Kind::Postgres)) else {
        return;
    };
    let user = format!("c{}", &my.name[9..]);
    my.query(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'; CREATE USER '{user}'@'localhost' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON {0}.* TO '{user}'@'%'; GRANT ALL ON {0}.* TO '{user}'@'localhost'",
        my.name
    ));
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
    let _users = Users(&my, user.clone());
    let source = {
        let mut url = url::Url::parse(&my.dsn()).expect("a URL");
        url.set_username(&user).expect("a user");
        url.set_password(Some(PASSWORD)).expect("a password");
        url.to_string()
    };
    my.query(
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two')",
    );
    pg.query("CREATE TABLE t (id int PRIMARY KEY, v text)");
    // The source's DSN is a plain param, the target's password alone is one, put into the
    // DSN written in the runbook: both passwords are secrets all the same.
    let target = pg.dsn().replacen("@", ":{{params.pw}}@", 1);
    assert!(target.contains(":{{params.pw}}@"), "{target}");
    let yaml = format!(
        "version: 1\nname: masked\nparams:\n  source: {{ type: string }}\n  pw: {{ type: string }}\nsteps:\n  - id: copy\n    copy:\n      from: {{ dsn: \"{{{{params.source}}}}\", table: t, key: id }}\n      to: {{ dsn: \"{target}\" }}\n  - id: broken\n    needs: [copy]\n    copy:\n      from: {{ dsn: \"{{{{params.source}}}}\", table: t, key: id }}\n      to: {{ dsn: \"{target}\", table: missing }}\n"
    );
    let sb = Sandbox::new();
    let file = sb.write("masked.yaml", &yaml);
    let file = file.to_str().expect("utf-8");
    let source_param = format!("source={source}");
    let pw = format!("pw={PG_PASSWORD}");
    let done = sb.sensei(&["run", file, "-p", &source_param, "-p", &pw]);
    assert_eq!(done.code, 1, "{done:?}");
    let id = done.id();
    assert_eq!(pg.scalar("SELECT count(*) FROM t"), Some("2".into()));
    let error = sb.step(&id, "broken")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("the target has no table `missing` on its search_path"),
        "{error}"
    );
    let mut shown = sb.shown(&id);
    let plan = sb.sensei(&[
        "plan",
        file,
        "-p",
        &source_param,
        "-p",
        &pw,
        "--format",
        "json",
    ]);
    shown.push((
        "sensei plan".into(),
        format!("{}{}", plan.stdout, plan.stderr),
    ));
    shown.push((
        "sensei run".into(),
        format!("{}{}", done.stdout, done.stderr),
    ));
    let texts: Vec<(&str, &str)> = shown
        .iter()
        .map(|(w, t)| (w.as_str(), t.as_str()))
        .collect();
    assert_hidden(&texts, &[PASSWORD, "s3cret", PG_PASSWORD, "t4rget"]);
    let stored = support::stored_params(&sb.path(".sensei"));
    assert!(
        stored.contains(PASSWORD) && stored.contains(PG_PASSWORD),
        "the test looked where it is"
    );
}
