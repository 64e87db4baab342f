//! What a step's process gets of Sensei's environment: the fixed list, the configuration's
//! pass-through names, the runbook's `env`, `SENSEI_OUTPUT` and `SENSEI_CHECKPOINT`, and
//! never a secret Sensei reads (API tokens, the SMTP password, hook and alert signing keys,
//! the CLI's token).
//! Checked for `run` steps, rollback commands and probes, under `sensei serve` (read back
//! through the logs endpoint, as a viewer would) and under `sensei run`.

mod harness;
mod support;

use serde_json::Value;
use std::collections::BTreeMap;

/// Prints its environment from a run step, its rollback and a probe, then fails so that the
/// rollback runs. Reads a trigger key and an alert signing key from the server's environment.
const ENVDUMP: &str = r#"version: 1
name: envdump
on_failure: rollback
env:
  FROM_RUNBOOK: "runbook-{{runbook.name}}"
triggers:
  - webhook: envdump-hook
    secret_env: HOOK_KEY
alerts:
  channels:
    signed: { webhook: { url: "https://alerts.invalid/hook", format: json, secret_env: ALERT_KEY } }
  rules:
    - on: [certified]
      notify: [signed]
steps:
  - id: dump
    run: env
    rollback: env
  - id: poll
    needs: [dump]
    check: "{{gt probe.outputs.n 0}}"
    probe: { run: "env; echo n=1 >> $SENSEI_OUTPUT" }
    every: 1s
    timeout: 1m
  - id: fail
    needs: [poll]
    run: exit 3
"#;

/// The secrets in Sensei's environment: (variable, value).
const SECRETS: &[(&str, &str)] = &[
    ("SMTP_PW", "smtp-password-value"),
    ("HOOK_KEY", "hook-key-value"),
    ("ALERT_KEY", "alert-key-value"),
    ("SENSEI_TOKEN", "client-token-value"),
];

/// Ordinary variables of Sensei's environment: passed by the file, by a flag, and not at all.
const PASSED: (&str, &str) = ("PASSED_VAR", "passed-value");
const FLAG_PASSED: (&str, &str) = ("FLAG_VAR", "flag-value");
const UNLISTED: (&str, &str) = ("UNLISTED_VAR", "unlisted-value");

/// `smtp` with a password variable, and the pass-through list.
const CONFIG: &str = "smtp: { host: 127.0.0.1, port: 2525, tls: none, from: s@example.com, username: ops, password_env: SMTP_PW }\n\
    step_env: { pass: [PASSED_VAR] }\n";

/// The environment Sensei runs with: secrets, ordinary variables and a locale.
fn sensei_env() -> Vec<(&'static str, &'static str)> {
    let mut env = SECRETS.to_vec();
    env.extend([PASSED, FLAG_PASSED, UNLISTED, ("LANG", "C.UTF-8")]);
    env
}

/// `NAME=value` lines of `env` output, as a map (a multi-line value is not expected here).
fn parse_env(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One process's printed environment: exactly the documented parts, no secret anywhere.
fn assert_minimal(what: &str, lines: &[String], secrets: &[&str], passed: &[(&str, &str)]) {
    let env = parse_env(lines);
    assert!(!env.is_empty(), "{what}: no environment printed: {lines:?}");
    let text = lines.join("\n");
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what}: a secret of Sensei's reached the step:\n{text}"
        );
    }
    assert!(env.contains_key("PATH"), "{what}: no PATH:\n{text}");
    assert_eq!(
        env.get("LANG").map(String::as_str),
        Some("C.UTF-8"),
        "{what}"
    );
    assert_eq!(
        env.get("FROM_RUNBOOK").map(String::as_str),
        Some("runbook-envdump"),
        "{what}"
    );
    assert!(env.contains_key("SENSEI_OUTPUT"), "{what}:\n{text}");
    // No checkpoint was recorded: the variable is there, empty.
    assert_eq!(
        env.get("SENSEI_CHECKPOINT").map(String::as_str),
        Some(""),
        "{what}"
    );
    for (name, value) in passed {
        assert_eq!(env.get(*name).map(String::as_str), Some(*value), "{what}");
    }
    // Every name is one the documentation lists (PWD is set by the shell itself).
    let allowed = |name: &str| {
        sensei::process::always_inherited(name)
            || passed.iter().any(|(p, _)| *p == name)
            || ["FROM_RUNBOOK", "SENSEI_OUTPUT", "SENSEI_CHECKPOINT", "PWD"].contains(&name)
    };
    let extra: Vec<&String> = env.keys().filter(|n| !allowed(n)).collect();
    assert!(
        extra.is_empty(),
        "{what}: variables that are not the step's: {extra:?}"
    );
}

/// The stdout lines of a step's log document, by attempt (0 is the rollback).
fn stdout_by_attempt(lines: &Value) -> BTreeMap<u64, Vec<String>> {
    let mut by_attempt: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in lines.as_array().expect("log lines") {
        if line["stream"] == "stdout" {
            let attempt = line["attempt"].as_u64().expect("attempt");
            let text = line["text"].as_str().expect("text").to_owned();
            by_attempt.entry(attempt).or_default().push(text);
        }
    }
    by_attempt
}

/// Asserts the run, rollback and probe environments in the logs of `dump` and `poll`.
fn assert_logs(dump: &Value, poll: &Value, secrets: &[&str], passed: &[(&str, &str)]) {
    let dump = stdout_by_attempt(dump);
    let run = dump.get(&1).expect("the run's output");
    assert_minimal("run step", run, secrets, passed);
    let rollback = dump.get(&0).expect("the rollback's output");
    assert_minimal("rollback command", rollback, secrets, passed);
    let poll = stdout_by_attempt(poll);
    let probe = poll.get(&1).expect("the probe's output");
    assert_minimal("probe", probe, secrets, passed);
}

#[test]
fn under_serve_steps_rollbacks_and_probes_get_no_secret_of_the_server() {
    let dir = harness::Dir::new();
    dir.runbook("envdump.yaml", ENVDUMP);
    // A runbook reading its key from a passed variable would hand it to every step.
    dir.runbook(
        "leaky.yaml",
        "version: 1\nname: leaky\ntriggers:\n  - webhook: leak\n    secret_env: PASSED_VAR\nsteps:\n  - id: a\n    run: 'true'\n",
    );
    dir.config_with_tokens(CONFIG);
    let config = dir.path("sensei.yaml");
    let mut s = dir.serve_env(
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--step-env-pass",
            FLAG_PASSED.0,
        ],
        &sensei_env(),
    );
    s.token = Some("vic-token");
    let id = s.create(Some("ops-token"), "envdump", "{}");
    s.call_as(
        Some("ops-token"),
        "POST",
        &format!("/v1/migrations/{id}/start"),
        None,
    )
    .expect(200);
    harness::wait_for("the rollback to finish", || {
        let events = s
            .call_as(
                Some("vic-token"),
                "GET",
                &format!("/v1/migrations/{id}/events"),
                None,
            )
            .expect(200);
        harness::kinds(events.json.as_array().expect("events"))
            .contains(&"rollback_finished".to_owned())
            .then_some(())
    });
    // Read as a viewer: whoever may read the logs must not learn a secret from them.
    let logs = |step: &str| {
        s.call_as(
            Some("vic-token"),
            "GET",
            &format!("/v1/migrations/{id}/steps/{step}/logs"),
            None,
        )
        .expect(200)
        .json
    };
    let mut secrets: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    secrets.extend(harness::TOKENS.iter().map(|(_, token, _)| *token));
    secrets.push(UNLISTED.1);
    assert_logs(
        &logs("dump"),
        &logs("poll"),
        &secrets,
        &[PASSED, FLAG_PASSED],
    );

    let listing = s.get("/v1/runbooks").expect(200).json;
    let leaky = listing["runbooks"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["file"] == "leaky.yaml"))
        .expect("leaky.yaml listed");
    assert_eq!(leaky["valid"], false, "{leaky}");
    let message = leaky["diagnostics"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("`PASSED_VAR`") && message.contains("webhook trigger `leak`"),
        "{message}"
    );
}

#[test]
fn under_run_steps_rollbacks_and_probes_get_no_secret_of_the_caller() {
    let sb = support::Sandbox::new();
    let file = sb.write("envdump.yaml", ENVDUMP);
    let config = sb.write(
        "sensei.yaml",
        &format!(
            "{CONFIG}tokens:\n  - {{ name: alice, roles: [approver], token_env: TOK_ALICE }}\n"
        ),
    );
    let mut env = sensei_env();
    env.push(("TOK_ALICE", "alice-token-value"));
    let run = sb
        .command(&[
            "run",
            file.to_str().expect("utf-8"),
            "--config",
            config.to_str().expect("utf-8"),
        ])
        .envs(env.iter().copied())
        .output()
        .expect("run sensei");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = support::migration_id(&stdout).expect("an id");
    let logs = |step: &str| {
        let out = sb.sensei(&["logs", &id, step, "--format", "json"]).ok();
        serde_json::from_str::<Value>(&out.stdout).expect("logs json")
    };
    let mut secrets: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    secrets.extend(["alice-token-value", UNLISTED.1, FLAG_PASSED.1]);
    assert_logs(&logs("dump"), &logs("poll"), &secrets, &[PASSED]);
}

#[test]
fn passing_a_secret_sensei_reads_is_refused_at_configuration_load() {
    let sb = support::Sandbox::new();
    let file = sb.write("envdump.yaml", ENVDUMP);
    let cases = [
        (
            "tokens:\n  - { name: alice, roles: [approver], token_env: TOK_ALICE }\nstep_env: { pass: [TOK_ALICE] }\n",
            "`TOK_ALICE`, which holds the API token `alice`",
        ),
        (
            "smtp: { host: h, from: a@b.example, password_env: SMTP_PW }\nstep_env: { pass: [SMTP_PW] }\n",
            "`SMTP_PW`, which holds the SMTP password",
        ),
        (
            "step_env: { pass: [SENSEI_TOKEN] }\n",
            "`SENSEI_TOKEN`, which holds the bearer token the CLI sends",
        ),
        (
            "step_env: { pass: [NOT-A-NAME] }\n",
            "`NOT-A-NAME` is not an environment variable name",
        ),
    ];
    // (`--runbooks missing`: a server that wrongly accepted the file stops at once too.)
    for (config, expected) in cases {
        let path = sb.write("bad.yaml", config);
        let path = path.to_str().expect("utf-8");
        let run = sb.sensei(&["run", file.to_str().expect("utf-8"), "--config", path]);
        assert_eq!(run.code, 2, "{config}: {run:?}");
        assert!(run.stderr.contains(expected), "{config}: {}", run.stderr);
        let serve = sb.sensei(&[
            "serve",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--runbooks",
            "missing",
        ]);
        assert_eq!(serve.code, 2, "{config}: {serve:?}");
        assert!(
            serve.stderr.contains(expected),
            "{config}: {}",
            serve.stderr
        );
    }
    // The same through flags: `--token-entry` and `--step-env-pass`.
    let serve = sb.sensei(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--runbooks",
        "missing",
        "--token-entry",
        "name=bot,roles=operator,token_env=BOT_TOKEN",
        "--step-env-pass",
        "BOT_TOKEN",
    ]);
    assert_eq!(serve.code, 2, "{serve:?}");
    assert!(
        serve
            .stderr
            .contains("`BOT_TOKEN`, which holds the API token `bot`"),
        "{}",
        serve.stderr
    );
    // A runbook reading a secret from a passed variable is refused before anything runs.
    let passes_hook_key = sb.write("pass.yaml", "step_env: { pass: [HOOK_KEY] }\n");
    let run = sb.sensei(&[
        "run",
        file.to_str().expect("utf-8"),
        "--config",
        passes_hook_key.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("`HOOK_KEY`, which holds the key of the webhook trigger `envdump-hook`"),
        "{}",
        run.stderr
    );
    assert!(!sb.path(".sensei/sensei.db").exists(), "nothing is created");
}

#[test]
fn a_key_the_runbook_reads_is_withheld_from_its_steps_whatever_a_later_configuration_passes() {
    let sb = support::Sandbox::new();
    let file = sb.write(
        "hooked.yaml",
        "version: 1\nname: hooked\ntriggers:\n  - webhook: hooked\n    secret_env: HOOK_KEY\nsteps:\n  - id: dump\n    run: env; test -f go\n",
    );
    let first = sb.sensei(&["run", file.to_str().expect("utf-8")]);
    assert_eq!(first.code, 1, "{first:?}");
    let id = first.id();
    let logs = || {
        let out = sb.sensei(&["logs", &id, "dump", "--format", "json"]).ok();
        let lines: Value = serde_json::from_str(&out.stdout).expect("logs json");
        lines.as_array().expect("log lines").clone()
    };
    let before = logs().len();
    sb.write("go", "");
    // The configuration changed since the migration was created: `retry` cannot refuse the
    // runbook as `run` does, so its driver withholds the key.
    let config = sb.write(
        "sensei.yaml",
        "step_env: { pass: [HOOK_KEY, PASSED_VAR] }\n",
    );
    let retry = sb
        .command(&["retry", &id, "--config", config.to_str().expect("utf-8")])
        .envs([("HOOK_KEY", "hook-key-value"), PASSED])
        .output()
        .expect("retry");
    assert_eq!(retry.status.code(), Some(0), "{retry:?}");
    // A retry numbers its attempts from 1 again: its lines are the ones after the first run's.
    let retried = Value::Array(logs().split_off(before));
    let retried = stdout_by_attempt(&retried)
        .remove(&1)
        .expect("the retry's output");
    let env = parse_env(&retried);
    assert_eq!(env.get(PASSED.0).map(String::as_str), Some(PASSED.1));
    assert!(!env.contains_key("HOOK_KEY"), "{retried:?}");
}

#[test]
fn a_step_cannot_read_the_environment_of_sensei_itself_through_proc() {
    let sb = support::Sandbox::new();
    let file = sb.write(
        "peek.yaml",
        "version: 1\nname: peek\nsteps:\n  - id: peek\n    run: echo peeking; tr '\\0' '\\n' < /proc/$PPID/environ; true\n",
    );
    // Root may read every process's environment, so as root Sensei runs as `nobody`.
    let mut command = if nix::unistd::geteuid().is_root() {
        if std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("not checked: running as root without `setpriv` to run as another user");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let mut command = std::process::Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        command.arg(support::BIN);
        command
    } else {
        std::process::Command::new(support::BIN)
    };
    let run = command
        .args(["run", file.to_str().expect("utf-8")])
        .current_dir(sb.dir.path())
        .env("SENSEI_STATE_DIR", sb.path(".sensei"))
        .env("SECRET_X", "peeked-secret")
        .output()
        .expect("run sensei");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}{run:?}");
    let id = support::migration_id(&stdout).expect("an id");
    let logs = sb.sensei(&["logs", &id, "peek"]).ok().stdout;
    assert!(logs.lines().any(|l| l == "peeking"), "{logs}");
    assert!(!logs.contains("peeked-secret"), "{logs}");
}
