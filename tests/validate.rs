//! `sensei validate` on invalid runbooks, run through the real binary.
//!
//! Every rule of the loader (SPEC §2) has a fixture in `tests/fixtures/invalid/`, named for the
//! rule, and [`CASES`] lists every diagnostic it must produce: position, message and hint,
//! exactly, and nothing else (so one mistake is not reported twice). Then the output formats,
//! directories, usage errors, the example runbooks, and hostile inputs built at test time.

use assert_cmd::Command;
use std::fmt::Write as _;
use std::path::Path;

const INVALID: &str = "tests/fixtures/invalid";

/// One expected diagnostic: `line:col` (empty for a whole-file error), message, hint.
type Expected = (&'static str, &'static str, Option<&'static str>);

/// Each fixture (file name without `.yaml`) and every error it must report, in file order.
const CASES: &[(&str, &[Expected])] = &[
    (
        "alert-unknown-step",
        &[(
            "8:15",
            "unknown step `cutover`",
            Some("did you mean `cut-over`?"),
        )],
    ),
    (
        "bad-cron-macro",
        &[(
            "4:11",
            "invalid `cron`: `@fortnightly` is not a cron macro; use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
            None,
        )],
    ),
    (
        "bad-cron",
        &[(
            "5:11",
            "invalid `cron`: `0 1 * *` has 4 fields; a cron expression has 5: minute hour day-of-month month day-of-week",
            None,
        )],
    ),
    (
        "bad-duration",
        &[(
            "4:12",
            "invalid `timeout`: `30 minutes` is not a duration: units are ms, s, m, h and d",
            Some("write it like 500ms, 30s, 10m, 4h, 2d or 1h30m"),
        )],
    ),
    (
        "bad-email-address",
        &[("5:31", "`dba.example.com` is not an email address", None)],
    ),
    (
        "bad-enum-value",
        &[(
            "3:13",
            "invalid `on_failure`: `explode` is not one of `rollback`, `pause`, `fail`",
            None,
        )],
    ),
    (
        "bad-http-status",
        &[(
            "5:86",
            "`999` is not an HTTP status",
            Some("HTTP statuses run from 100 to 599"),
        )],
    ),
    (
        "bad-name",
        &[(
            "2:7",
            "invalid runbook name `Orders Cutover`",
            Some(
                "use 1 to 63 lowercase letters, digits, `-` and `_`, starting with a letter or digit",
            ),
        )],
    ),
    (
        "bad-param-name",
        &[(
            "4:3",
            "invalid param name `batch-size`",
            Some(
                "param names are letters, digits and `_`, so templates can name them (`{{params.batch_size}}`)",
            ),
        )],
    ),
    (
        "bad-param-type",
        &[(
            "4:19",
            "invalid `type`: `array` is not one of `string`, `integer`, `number`, `boolean`, `list`, `object`",
            None,
        )],
    ),
    (
        "bad-pool-size",
        &[(
            "4:22",
            "`primary-db` must be a whole number, 0 or more, found the string \"two\"",
            None,
        )],
    ),
    (
        "bad-secret-env",
        &[(
            "5:17",
            "`s3cr3t-k3y!` is not an environment variable name",
            Some(
                "name the variable that holds the key, e.g. `SENSEI_HOOK_DEPLOY`; never the key itself",
            ),
        )],
    ),
    (
        "bad-step-id",
        &[(
            "4:9",
            "invalid step id `Copy Orders`",
            Some(
                "step ids are lowercase letters, digits, `-` and `_`, starting with a letter or digit",
            ),
        )],
    ),
    (
        "bad-timezone",
        &[(
            "7:15",
            "invalid `timezone`: `Europe/Berln` is not an IANA time zone",
            Some("did you mean `Europe/Berlin`?"),
        )],
    ),
    (
        "bad-webhook-name",
        &[(
            "4:14",
            "invalid webhook name `Deploy Finished`",
            Some(
                "webhook names appear in URLs (`/v1/hooks/NAME`): lowercase letters, digits, `-` and `_`",
            ),
        )],
    ),
    (
        "channel-two-kinds",
        &[(
            "5:5",
            "channel `dba` must have exactly one of `email` or `webhook`",
            Some("a channel sends either email or to a webhook; declare two channels to do both"),
        )],
    ),
    (
        "cron-dialect",
        &[
            (
                "5:11",
                "invalid `cron`: `0 1 1 * +MON`: a `+` before the day-of-week (\"both day fields must match\") is not part of sensei's cron, whose rule is that either day field matches",
                Some(
                    "drop the `+` to fire when either day field matches; for one weekday of the month write `SAT#1` (the first Saturday) or `SATL` (the last)",
                ),
            ),
            (
                "8:11",
                "invalid `cron`: `0 1 ? * SAT`: `?` in the day-of-month field is Quartz's \"no specific value\", not part of sensei's cron",
                Some("write `*`: with `*` in one day field, the other one decides"),
            ),
            (
                "11:11",
                "invalid `cron`: `0 1 */2 * MON`: `*/2` in the day-of-month field with a day-of-week that is not `*`: crons disagree on how these combine (cronie and Vixie cron fire only when both match, others when either does)",
                Some(
                    "sensei fires when either day field matches: write `1-31/2` for that; or leave the day-of-week `*`",
                ),
            ),
            (
                "14:11",
                "invalid `cron`: `0 3 15W * *`: `15W` in the day-of-month field: `W` (the weekday nearest a day) is Quartz's, not part of sensei's cron",
                Some(
                    "name the day (`15`), or a weekday of the month in the day-of-week field (`MON#3`, `FRIL`) with `*` as the day of the month",
                ),
            ),
            (
                "15:11",
                "invalid `cron`: `0 3 * MON *`: `MON` is not a value of the month field",
                Some(
                    "months are numbers from 1 to 12, or JAN to DEC; month names go in the 4th field and weekday names in the 5th",
                ),
            ),
        ],
    ),
    (
        "cycle",
        &[(
            "5:13",
            "steps form a cycle: a → c → b → a",
            Some("remove one of these `needs` so the steps can run in an order"),
        )],
    ),
    (
        "duplicate-approver",
        &[("5:37", "approver `alice` is listed twice", None)],
    ),
    (
        "duplicate-key",
        &[(
            "6:5",
            "key `run` appears twice in the same mapping",
            Some("remove one of them; YAML keeps only one value per key"),
        )],
    ),
    (
        "duplicate-step-id",
        &[(
            "6:9",
            "duplicate step id `copy`",
            Some("step ids must be unique in a runbook; rename one of them"),
        )],
    ),
    (
        "duplicate-webhook",
        &[("6:14", "webhook `deploy-finished` is declared twice", None)],
    ),
    (
        "email-to-nobody",
        &[(
            "5:30",
            "channel `dba-mail` sends email to nobody",
            Some("list at least one address in `to`"),
        )],
    ),
    (
        "empty-steps",
        &[(
            "3:8",
            "the runbook has no steps",
            Some("add at least one step with an `id` and an action"),
        )],
    ),
    (
        "for-each-duplicate-element",
        &[(
            "5:15",
            "`for_each` lists `orders` twice",
            Some("each element names an expansion (`step[element]`), so elements must differ"),
        )],
    ),
    (
        "for-each-non-list-param",
        &[(
            "7:18",
            "`for_each` needs a list, but param `table` is a string",
            Some("declare `table` with `type: list`"),
        )],
    ),
    (
        "for-each-not-list",
        &[(
            "5:15",
            "`for_each` must be a list or a single template such as \"{{params.tables}}\"",
            Some("the template must be exactly one `{{path}}` so its value stays a list"),
        )],
    ),
    (
        "gate-no-approvers",
        &[(
            "5:24",
            "gate `dba-signoff` has no approvers",
            Some(
                "list who may approve it (token names, or `--as` names locally), or leave `approvers` out to let anyone but the starter approve",
            ),
        )],
    ),
    (
        "gate-required-too-many",
        &[(
            "5:48",
            "gate `dba-signoff` requires 3 approvals but lists only 2 approvers",
            Some("lower `required` or add approvers"),
        )],
    ),
    (
        "gate-required-zero",
        &[("5:48", "`required` must be at least 1", None)],
    ),
    (
        "invalid-yaml",
        &[(
            "5:10",
            "invalid YAML: unclosed quote",
            Some("check the indentation and quoting around this position"),
        )],
    ),
    (
        "max-backoff-shorter",
        &[(
            "6:53",
            "`max_backoff` (30s) is shorter than `backoff` (1m)",
            None,
        )],
    ),
    (
        "missing-name",
        &[(
            "1:1",
            "the runbook has no `name`",
            Some("add `name: my-migration` at the top"),
        )],
    ),
    (
        "missing-required-key",
        &[(
            "5:5",
            "this window is missing the required key `duration`",
            None,
        )],
    ),
    (
        "missing-steps",
        &[(
            "1:1",
            "the runbook has no `steps`",
            Some(
                "add a `steps:` list; each step has an `id` and one action (run, http, gate, wait, check)",
            ),
        )],
    ),
    (
        "missing-version",
        &[(
            "1:1",
            "the runbook has no `version`",
            Some("add `version: 1` at the top"),
        )],
    ),
    (
        "misspelt-needs",
        &[(
            "8:5",
            "unknown key `neds` in this step",
            Some("did you mean `needs`?"),
        )],
    ),
    (
        "multiple-errors",
        &[
            (
                "4:1",
                "unknown key `owner` in the runbook",
                Some(
                    "allowed keys here: `version`, `name`, `description`, `params`, `env`, `defaults`, `concurrency`, `pools`, `on_failure`, `windows`, `schedules`, `triggers`, `alerts`, `steps`",
                ),
            ),
            (
                "8:11",
                "unknown pool `replica-db`",
                Some("declare it under `pools:`"),
            ),
            (
                "11:13",
                "step `verify` needs unknown step `cpy`",
                Some("did you mean `copy`?"),
            ),
            (
                "12:32",
                "unknown param `table`",
                Some("declare it under `params:`"),
            ),
            (
                "14:11",
                "invalid `wait`: `soon` is not a duration: expected a number followed by ms, s, m, h or d",
                Some("write it like 500ms, 30s, 10m, 4h, 2d or 1h30m"),
            ),
            (
                "17:43",
                "gate `signoff` requires 2 approvals but lists only 1 approver",
                Some("lower `required` or add approvers"),
            ),
        ],
    ),
    (
        "needs-later-phase",
        &[(
            "6:13",
            "step `analyze-schema` (phase analyze) needs `copy`, which runs in a later phase (execute)",
            Some(
                "phases run in order analyze, plan, approve, execute, validate; move one of the two steps",
            ),
        )],
    ),
    (
        "no-action",
        &[(
            "4:9",
            "step `copy` has no action",
            Some("give it exactly one of `run`, `http`, `gate`, `wait` or `check`"),
        )],
    ),
    (
        "no-cascade-from-broken-param",
        &[(
            "6:19",
            "invalid `type`: `array` is not one of `string`, `integer`, `number`, `boolean`, `list`, `object`",
            None,
        )],
    ),
    (
        "no-cascade-from-broken-step",
        &[
            (
                "6:9",
                "step `count-source` has 2 actions: `run`, `wait`",
                Some(
                    "a step does exactly one thing; split it into several steps joined by `needs`",
                ),
            ),
            (
                "11:14",
                "invalid `timeout`: `soon` is not a duration: expected a number followed by ms, s, m, h or d",
                Some("write it like 500ms, 30s, 10m, 4h, 2d or 1h30m"),
            ),
        ],
    ),
    (
        "not-a-mapping",
        &[(
            "1:1",
            "a runbook is a YAML mapping, but this file holds a list",
            Some("start with `version: 1`, `name: ...` and `steps:`"),
        )],
    ),
    (
        "outputs-json-not-run",
        &[(
            "4:9",
            "step `settle` declares `outputs: json` but is not a `run` step",
            None,
        )],
    ),
    (
        "param-default-wrong-type",
        &[(
            "4:41",
            "the default of param `batch_size` is a string, but the param is an integer",
            None,
        )],
    ),
    (
        "poll-every-not-on-check",
        &[(
            "6:12",
            "`every` belongs to a `check` step",
            Some(
                "`every`, `stable_for` and `probe` make a `check` poll until its condition holds; this is a `run` step",
            ),
        )],
    ),
    (
        "poll-every-zero",
        &[(
            "7:12",
            "`every` must be longer than 0s",
            Some("it is how often the check is evaluated, e.g. `every: 30s`"),
        )],
    ),
    (
        "poll-probe-outputs-json-http",
        &[(
            "6:73",
            "`outputs: json` is for a `run` probe",
            Some(
                "an `http` probe's outputs are `status`, `headers` and `body`, and the body is parsed as JSON when it is JSON",
            ),
        )],
    ),
    (
        "poll-probe-two-kinds",
        &[(
            "6:5",
            "`probe` has both `run` and `http`",
            Some(
                "a probe has exactly one of `run` (a shell command) or `http` (a request); it runs before each evaluation",
            ),
        )],
    ),
    (
        "poll-probe-without-every",
        &[(
            "6:5",
            "`probe` needs `every`",
            Some(
                "add `every` (e.g. `every: 30s`): the check is then evaluated at that interval until it holds",
            ),
        )],
    ),
    (
        "poll-stable-for-not-shorter-than-timeout",
        &[(
            "8:17",
            "`stable_for` (1h) is not shorter than the step's `timeout` (1h)",
            Some(
                "the condition could never hold that long before the timeout fails the step; lengthen `timeout` or shorten `stable_for`",
            ),
        )],
    ),
    (
        "poll-stable-for-without-every",
        &[(
            "7:17",
            "`stable_for` needs `every`",
            Some(
                "add `every` (e.g. `every: 30s`): the check is then evaluated at that interval until it holds",
            ),
        )],
    ),
    (
        "pool-no-slots",
        &[(
            "3:22",
            "pool `primary-db` has no slots",
            Some("a pool's size is the number of steps that may hold it at once: 1 or more"),
        )],
    ),
    (
        "retry-zero-attempts",
        &[(
            "4:22",
            "`attempts` must be at least 1 (the first run counts)",
            None,
        )],
    ),
    (
        "rollback-on-gate",
        &[(
            "6:15",
            "a `gate` step has nothing to roll back",
            Some("only `run` and `http` steps take a `rollback` command"),
        )],
    ),
    (
        "schedule-param-wrong-type",
        &[(
            "7:27",
            "param `batch_size` is an integer, but this value is a string",
            None,
        )],
    ),
    (
        "self-cycle",
        &[(
            "5:13",
            "steps form a cycle: copy → copy",
            Some("remove one of these `needs` so the steps can run in an order"),
        )],
    ),
    (
        "template-item-without-for-each",
        &[(
            "5:30",
            "`item` is not available here",
            Some("`item` is set only in steps with `for_each`"),
        )],
    ),
    (
        "template-own-results",
        &[(
            "5:44",
            "step `copy` reads its own results before it has any",
            Some("only its `rollback` may read `steps.<itself>`; other fields run before the step"),
        )],
    ),
    (
        "template-parse-error",
        &[(
            "7:28",
            "the template does not parse: `{{params.table}` is missing its closing `}}`",
            Some("templates use Handlebars syntax, e.g. `{{params.batch_size}}`"),
        )],
    ),
    (
        "template-probe-unknown-field",
        &[(
            "5:18",
            "`probe` has no `status`",
            Some(
                "read `probe.outputs.<key>`; an `http` probe's outputs are `status`, `headers` and `body`",
            ),
        )],
    ),
    (
        "template-probe-without-probe",
        &[(
            "8:18",
            "`probe` is not available here",
            Some("`probe` is set only in the `check` of a step that declares a `probe`"),
        )],
    ),
    (
        "template-root-not-available",
        &[(
            "5:30",
            "`payload` is not available here",
            Some("`payload` (the webhook's JSON body) is set only in trigger params"),
        )],
    ),
    (
        "template-step-not-upstream",
        &[(
            "7:32",
            "step `report` reads `steps.count-source` but does not depend on `count-source`",
            Some(
                "add `count-source` to the `needs` of `report` so its results exist when `report` runs",
            ),
        )],
    ),
    (
        "template-unknown-helper",
        &[(
            "7:30",
            "unknown template helper `jion`",
            Some("did you mean `join`?"),
        )],
    ),
    (
        "template-unknown-migration-field",
        &[(
            "5:38",
            "`migration` has no `owner`",
            Some("it has `id`, `state`, `started_at`"),
        )],
    ),
    (
        "template-unknown-root",
        &[(
            "5:36",
            "unknown template root `migraton` in `{{migraton.id}}`",
            Some("did you mean `migration`?"),
        )],
    ),
    (
        "template-unknown-step-field",
        &[(
            "8:32",
            "a step has no `result`",
            Some("read `steps.count-source.outputs.<key>` or `steps.count-source.status`"),
        )],
    ),
    (
        "template-unknown-step",
        &[(
            "8:32",
            "unknown step `count-sorce`",
            Some("did you mean `count-source`?"),
        )],
    ),
    (
        "trigger-template-root",
        &[(
            "8:26",
            "unknown template root `body` in `{{body.tables}}`",
            Some("templates in trigger params read `payload`, `runbook`"),
        )],
    ),
    (
        "two-actions",
        &[(
            "4:9",
            "step `copy` has 2 actions: `run`, `wait`",
            Some("a step does exactly one thing; split it into several steps joined by `needs`"),
        )],
    ),
    (
        "unknown-channel",
        &[(
            "8:16",
            "unknown channel `dba-email`",
            Some("did you mean `dba-mail`?"),
        )],
    ),
    (
        "unknown-event",
        &[(
            "7:12",
            "unknown event `failure`",
            Some("did you mean `failed`?"),
        )],
    ),
    (
        "unknown-key",
        &[(
            "4:1",
            "unknown key `owner` in the runbook",
            Some(
                "allowed keys here: `version`, `name`, `description`, `params`, `env`, `defaults`, `concurrency`, `pools`, `on_failure`, `windows`, `schedules`, `triggers`, `alerts`, `steps`",
            ),
        )],
    ),
    (
        "unknown-need",
        &[(
            "7:13",
            "step `verify` needs unknown step `copy-order`",
            Some("did you mean `copy-orders`?"),
        )],
    ),
    (
        "unknown-param",
        &[(
            "7:38",
            "unknown param `batchsize`",
            Some("did you mean `batch_size`?"),
        )],
    ),
    (
        "unknown-pool",
        &[(
            "6:11",
            "unknown pool `primary_db`",
            Some("did you mean `primary-db`?"),
        )],
    ),
    (
        "unknown-schedule-param",
        &[(
            "7:15",
            "unknown param `table`",
            Some("did you mean `tables`?"),
        )],
    ),
    (
        "unknown-window",
        &[(
            "9:13",
            "unknown window `saturday-nite`",
            Some("did you mean `saturday-night`?"),
        )],
    ),
    (
        "unsupported-version",
        &[(
            "1:10",
            "unsupported runbook version 2",
            Some("this sensei reads `version: 1`"),
        )],
    ),
    (
        "webhook-url-not-http",
        &[(
            "5:32",
            "`chat.example.com/hooks/T000` is not an http(s) URL",
            None,
        )],
    ),
    (
        "window-cutoff-too-long",
        &[(
            "7:13",
            "the cutoff of window `nightly` (2h) is not shorter than its duration (1h)",
            Some("no step could ever start in this window; shorten `cutoff`"),
        )],
    ),
    (
        "window-longer-than-period",
        &[(
            "6:15",
            "window `hourly` lasts 1h30m but opens again after 1h",
            Some("a window must close before it reopens: shorten `duration` or open it less often"),
        )],
    ),
    (
        "window-longer-than-period-dst",
        &[(
            "7:15",
            "window `nightly` lasts 23h30m but opens again after 23h across the DST change after Sun 2026-03-29 01:00 CET",
            Some(
                "a window must close before it reopens, also when clocks change: shorten `duration` or open it less often",
            ),
        )],
    ),
    (
        "window-never-opens",
        &[
            (
                "5:11",
                "window `leap` never opens: `0 1 30 2 *` matches no date",
                Some("check the day-of-month and month fields"),
            ),
            (
                "8:11",
                "this schedule never fires: `0 0 31 4 *` matches no date",
                Some("check the day-of-month and month fields"),
            ),
        ],
    ),
    (
        "window-zero-duration",
        &[
            (
                "6:15",
                "the cutoff of window `never-open` (0s, the default) is not shorter than its duration (0s)",
                Some(
                    "no step could ever start in this window; give it a `duration` longer than 0s",
                ),
            ),
            (
                "9:15",
                "the cutoff of window `never-open-either` (0s) is not shorter than its duration (0s)",
                Some(
                    "no step could ever start in this window; give it a `duration` longer than 0s",
                ),
            ),
        ],
    ),
    (
        "wrong-type",
        &[(
            "4:14",
            "`concurrency` must be a whole number, 0 or more, found the string \"four\"",
            None,
        )],
    ),
    (
        "zero-concurrency",
        &[("3:14", "`concurrency` must be at least 1", None)],
    ),
];

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Everything the command printed, for failure messages.
    fn dump(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `sensei validate ARGS` in `dir` (file names in the output are as given).
fn validate_in(dir: &Path, args: &[&str]) -> Output {
    let output = Command::cargo_bin("sensei")
        .expect("binary")
        .current_dir(dir)
        .arg("validate")
        .args(args)
        .output()
        .expect("runs");
    Output {
        // -1: killed by a signal (every caller asserts the code).
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `sensei validate ARGS` in the package root.
fn validate(args: &[&str]) -> Output {
    validate_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn fixture(name: &str) -> String {
    format!("{INVALID}/{name}.yaml")
}

/// The diagnostics that text output reports for `file`: (`line:col`, severity: message, hint).
fn diagnostics(stdout: &str, file: &str) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(file).and_then(|r| r.strip_prefix(':')) {
            // `L:C: error: message`, or ` error: message` for a whole-file problem.
            let (position, message) = match rest.strip_prefix(' ') {
                Some(message) => (String::new(), message),
                None => {
                    let mut parts = rest.splitn(3, ':');
                    let mut part = |what: &str| {
                        parts
                            .next()
                            .unwrap_or_else(|| panic!("no {what} in `{line}`"))
                    };
                    let (line, column) = (part("line"), part("column"));
                    let message = part("message").trim_start();
                    (format!("{line}:{column}"), message)
                }
            };
            out.push((position, message.to_owned(), None));
        } else if let Some((_, hint)) = line.split_once("= hint: ")
            && let Some(last) = out.last_mut()
        {
            last.2 = Some(hint.to_owned());
        }
    }
    out
}

fn no_panic(output: &Output) -> bool {
    let all = format!("{}{}", output.stdout, output.stderr);
    !all.contains("panicked") && !all.contains("RUST_BACKTRACE")
}

#[test]
fn every_invalid_fixture_reports_exactly_its_errors() {
    let mut failures = String::new();
    for (name, expected) in CASES {
        let file = fixture(name);
        let output = validate(&[&file]);
        let found = diagnostics(&output.stdout, &file);
        let wanted: Vec<(String, String, Option<String>)> = expected
            .iter()
            .map(|(position, message, hint)| {
                (
                    (*position).to_owned(),
                    format!("error: {message}"),
                    hint.map(str::to_owned),
                )
            })
            .collect();
        let errors = expected.len();
        let summary = format!(
            "checked 1 runbook: 0 valid, 1 with errors ({errors} error{}, 0 warnings)",
            if errors == 1 { "" } else { "s" }
        );
        let mut problems = Vec::new();
        if output.code != 1 {
            problems.push(format!("exit code {}, expected 1", output.code));
        }
        if found != wanted {
            problems.push(format!(
                "diagnostics\n  found:    {found:?}\n  expected: {wanted:?}"
            ));
        }
        if !output.stdout.ends_with(&format!("{summary}\n")) {
            problems.push(format!("summary line is not `{summary}`"));
        }
        if !output.stderr.is_empty() || !no_panic(&output) {
            problems.push("unexpected stderr or a panic".to_owned());
        }
        if !problems.is_empty() {
            let _ = writeln!(
                failures,
                "\n=== fixture {file}: {}\n{}",
                problems.join("; "),
                output.dump()
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn every_fixture_file_has_a_case_and_every_case_a_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(INVALID);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(n, _)| format!("{n}.yaml")).collect();
    cases.sort();
    assert_eq!(files, cases, "tests/fixtures/invalid and CASES differ");
    assert!(CASES.len() >= 28);
}

#[test]
fn text_output_shows_the_line_a_caret_under_the_mistake_and_the_hint() {
    let output = validate(&[&fixture("unknown-need")]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert_eq!(
        output.stdout,
        "tests/fixtures/invalid/unknown-need.yaml:7:13: error: step `verify` needs unknown step `copy-order`\n\
         \x20 |\n\
         7 |     needs: [copy-order]\n\
         \x20 |             ^^^^^^^^^^\n\
         \x20 = hint: did you mean `copy-orders`?\n\
         checked 1 runbook: 0 valid, 1 with errors (1 error, 0 warnings)\n",
        "{}",
        output.dump()
    );
}

#[test]
fn cycle_is_named_as_a_chain_in_order() {
    let output = validate(&[&fixture("cycle")]);
    assert!(
        output
            .stdout
            .contains("cycle.yaml:5:13: error: steps form a cycle: a → c → b → a\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn a_directory_of_invalid_fixtures_reports_every_file() {
    let output = validate(&[INVALID]);
    assert_eq!(output.code, 1, "{}", output.dump());
    let errors: usize = CASES.iter().map(|(_, e)| e.len()).sum();
    let summary = format!(
        "checked {n} runbooks: 0 valid, {n} with errors ({errors} errors, 0 warnings)\n",
        n = CASES.len()
    );
    assert!(output.stdout.ends_with(&summary), "{}", output.dump());
    for (name, _) in CASES {
        assert!(
            output.stdout.contains(&format!("{}:", fixture(name))),
            "{name} not reported\n{}",
            output.dump()
        );
    }
}

#[test]
fn json_format_carries_file_position_message_severity_and_hint() {
    let output = validate(&["--format", "json", &fixture("unknown-need")]);
    assert_eq!(output.code, 1, "{}", output.dump());
    let json: serde_json::Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", output.dump()));
    assert_eq!(json["errors"], 1);
    assert_eq!(json["warnings"], 0);
    let file = &json["files"][0];
    assert_eq!(file["file"], "tests/fixtures/invalid/unknown-need.yaml");
    assert_eq!(file["valid"], false);
    let d = &file["diagnostics"][0];
    assert_eq!(d["file"], "tests/fixtures/invalid/unknown-need.yaml");
    assert_eq!(d["line"], 7);
    assert_eq!(d["column"], 13);
    assert_eq!(d["end_column"], 23);
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["message"],
        "step `verify` needs unknown step `copy-order`"
    );
    assert_eq!(d["hint"], "did you mean `copy-orders`?");
    assert_eq!(file["diagnostics"].as_array().map(Vec::len), Some(1));
}

#[test]
fn json_format_of_several_files_and_a_whole_file_error() {
    let output = validate(&[
        "--format",
        "json",
        &fixture("multiple-errors"),
        &fixture("not-a-mapping"),
        "runbooks/hourly-sync.yaml",
    ]);
    assert_eq!(output.code, 1, "{}", output.dump());
    let json: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
    assert_eq!(json["errors"], 7);
    let files = json["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["diagnostics"].as_array().map(Vec::len), Some(6));
    assert_eq!(files[1]["diagnostics"][0]["line"], 1);
    assert_eq!(files[2]["valid"], true);
    assert_eq!(files[2]["name"], "hourly-sync");
}

#[test]
fn github_format_prints_workflow_annotations() {
    let output = validate(&[
        "--format",
        "github",
        &fixture("unknown-need"),
        &fixture("missing-steps"),
        "runbooks/hourly-sync.yaml",
    ]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert_eq!(
        output.stdout,
        "::error file=tests/fixtures/invalid/unknown-need.yaml,line=7,col=13::step `verify` needs unknown step `copy-order` (did you mean `copy-orders`?)\n\
         ::error file=tests/fixtures/invalid/missing-steps.yaml,line=1,col=1::the runbook has no `steps` (add a `steps:` list; each step has an `id` and one action (run, http, gate, wait, check))\n",
        "{}",
        output.dump()
    );
}

#[test]
fn whole_file_errors_are_located_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("empty.yaml"), "").expect("write");
    let output = validate_in(dir.path(), &["--format", "github", "empty.yaml"]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert_eq!(
        output.stdout,
        "::error file=empty.yaml,line=1,col=1::the runbook is empty (a runbook is a YAML mapping with at least `version: 1`, `name` and `steps`)\n"
    );
    std::fs::write(dir.path().join("nul.yaml"), b"version: 1\nname: a\x00b\n").expect("write");
    std::fs::write(
        dir.path().join("latin1.yaml"),
        b"version: 1\nname: \xe9t\xe9\n",
    )
    .expect("write");
    for (file, at) in [("nul.yaml", (2, 8)), ("latin1.yaml", (2, 7))] {
        let output = validate_in(dir.path(), &["--format", "json", file]);
        let doc: serde_json::Value = serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", output.dump()));
        let first = &doc["files"][0]["diagnostics"][0];
        assert_eq!(
            (first["line"].as_u64(), first["column"].as_u64()),
            (Some(at.0), Some(at.1)),
            "{}",
            output.dump()
        );
        // The text form names the position and shows no binary line.
        let output = validate_in(dir.path(), &[file]);
        assert!(
            output
                .stdout
                .starts_with(&format!("{file}:{}:{}: error: the file ", at.0, at.1)),
            "{}",
            output.dump()
        );
        assert!(!output.stdout.contains('\0') && !output.stdout.contains('\u{fffd}'));
    }
}

const VALID: &str = "version: 1\nname: valid\nsteps:\n  - id: copy\n    run: ./scripts/copy.sh\n";
const BROKEN: &str =
    "version: 1\nname: broken\nsteps:\n  - id: copy\n    neds: [a]\n    run: ./scripts/copy.sh\n";

#[test]
fn a_directory_with_a_valid_and_an_invalid_runbook_reports_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("books")).expect("mkdir");
    std::fs::write(dir.path().join("books/a-valid.yaml"), VALID).expect("write");
    std::fs::write(dir.path().join("books/b-broken.yml"), BROKEN).expect("write");
    std::fs::write(dir.path().join("books/notes.txt"), "not a runbook").expect("write");
    let output = validate_in(dir.path(), &["books"]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert!(
        output.stdout.starts_with(
            "books/a-valid.yaml: ok\nbooks/b-broken.yml:5:5: error: unknown key `neds` in this step\n"
        ),
        "{}",
        output.dump()
    );
    assert!(
        output
            .stdout
            .ends_with("checked 2 runbooks: 1 valid, 1 with errors (1 error, 0 warnings)\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn a_directory_of_valid_runbooks_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yaml"), VALID).expect("write");
    std::fs::create_dir(dir.path().join("nested")).expect("mkdir");
    std::fs::write(
        dir.path().join("nested/b.yaml"),
        VALID.replace("name: valid", "name: other"),
    )
    .expect("write");
    let output = validate_in(dir.path(), &["."]);
    assert_eq!(output.code, 0, "{}", output.dump());
    assert!(
        output
            .stdout
            .ends_with("checked 2 runbooks: 2 valid, 0 with errors (0 errors, 0 warnings)\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn the_example_runbooks_all_validate() {
    let output = validate(&["runbooks"]);
    assert_eq!(output.code, 0, "{}", output.dump());
    assert!(
        output
            .stdout
            .contains(" 0 with errors (0 errors, 0 warnings)\n"),
        "{}",
        output.dump()
    );
    let count = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks"))
        .expect("runbooks/")
        .filter(|e| {
            e.as_ref()
                .expect("an entry of runbooks/")
                .path()
                .extension()
                .is_some_and(|x| x == "yaml")
        })
        .count();
    assert!(count >= 1);
    assert_eq!(
        output.stdout.matches(": ok\n").count(),
        count,
        "{}",
        output.dump()
    );
}

#[test]
fn a_polling_check_without_timeout_or_probe_is_warned_about_but_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("poll.yaml"),
        "version: 1\nname: poll\nsteps:\n  - id: lag\n    run: ./lag.sh\n  - id: lag-small\n    needs: [lag]\n    check: \"{{lt steps.lag.outputs.seconds 5}}\"\n    every: 30s\n",
    )
    .expect("write");
    let output = validate_in(dir.path(), &["poll.yaml"]);
    assert_eq!(output.code, 0, "{}", output.dump());
    let found: Vec<(String, String)> = diagnostics(&output.stdout, "poll.yaml")
        .into_iter()
        .map(|(at, message, _)| (at, message))
        .collect();
    assert_eq!(
        found,
        [
            (
                "9:12".to_owned(),
                "warning: this polling check has no `timeout`, so it could poll forever".to_owned()
            ),
            (
                "9:12".to_owned(),
                "warning: this polling check has no `probe`, so it reads the same values at every evaluation".to_owned()
            ),
        ],
        "{}",
        output.dump()
    );
    assert!(
        output
            .stdout
            .ends_with("checked 1 runbook: 1 valid, 0 with errors (0 errors, 2 warnings)\n"),
        "{}",
        output.dump()
    );
}

#[test]
fn a_missing_path_is_a_usage_error_in_one_sentence() {
    let output = validate(&["tests/fixtures/no-such-runbook.yaml"]);
    assert_eq!(output.code, 2, "{}", output.dump());
    assert_eq!(
        output.stderr,
        "error: tests/fixtures/no-such-runbook.yaml does not exist\n"
    );
    assert!(output.stdout.is_empty(), "{}", output.dump());
}

#[test]
fn a_directory_without_runbooks_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("README.md"), "# notes").expect("write");
    let output = validate_in(dir.path(), &["."]);
    assert_eq!(output.code, 2, "{}", output.dump());
    assert_eq!(output.stderr, "error: . holds no .yaml or .yml files\n");
}

#[test]
fn no_path_at_all_is_a_usage_error() {
    let output = validate(&[]);
    assert_eq!(output.code, 2, "{}", output.dump());
    assert!(output.stderr.contains("<PATH>"), "{}", output.dump());
}

/// Writes `bytes` to a fresh file, validates it, and checks the one clear error it gets.
fn hostile(bytes: &[u8], message: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hostile.yaml"), bytes).expect("write");
    let output = validate_in(dir.path(), &["hostile.yaml"]);
    assert_eq!(output.code, 1, "{}", output.dump());
    assert!(no_panic(&output), "{}", output.dump());
    assert!(output.stderr.is_empty(), "{}", output.dump());
    let found = diagnostics(&output.stdout, "hostile.yaml");
    assert_eq!(found.len(), 1, "one error expected\n{}", output.dump());
    assert!(
        found[0].1.starts_with("error: ") && found[0].1.contains(message),
        "expected `{message}`\n{}",
        output.dump()
    );
    let header = output.stdout.lines().next().expect("an error line");
    assert!(header.len() < 300, "the error line is not short: {header}");
}

#[test]
fn hostile_alias_bomb() {
    let mut yaml = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        let _ = writeln!(yaml, "{}: &{} [{refs}]", pair[1], pair[1]);
    }
    hostile(
        yaml.as_bytes(),
        "the YAML expands too many aliases (an alias bomb?)",
    );
}

#[test]
fn hostile_deep_nesting() {
    hostile(
        "[".repeat(100_000).as_bytes(),
        "the YAML nests deeper than 64 levels",
    );
    hostile(
        "{a: ".repeat(100_000).as_bytes(),
        "the YAML nests deeper than 64 levels",
    );
}

/// A runbook whose one command nests a template `levels` deep (`(not` or `{{#if}}`).
fn deep_template(levels: usize, blocks: bool) -> String {
    let template = if blocks {
        format!(
            "{}x{}",
            "{{#if true}}".repeat(levels),
            "{{/if}}".repeat(levels)
        )
    } else {
        format!(
            "{{{{not {}true{}}}}}",
            "(not ".repeat(levels),
            ")".repeat(levels)
        )
    };
    format!("version: 1\nname: deep\nsteps:\n  - id: a\n    run: echo {template}\n")
}

/// The example runbooks keep their alerts commented out (their hosts do not exist); the
/// block must still be right when an operator uncomments it.
#[test]
fn example_alerts_validate_once_uncommented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for entry in std::fs::read_dir("runbooks").expect("runbooks/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        if !text.contains("\n# alerts:\n") {
            continue;
        }
        let mut inside = false;
        let uncommented: Vec<String> = text
            .lines()
            .map(|line| {
                inside = (inside && line.starts_with('#')) || line == "# alerts:";
                match (inside, line.strip_prefix("# ")) {
                    (true, Some(rest)) => rest.to_owned(),
                    (true, None) => String::new(),
                    (false, _) => line.to_owned(),
                }
            })
            .collect();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        std::fs::write(dir.path().join(&name), uncommented.join("\n") + "\n").expect("write");
        let output = validate_in(dir.path(), &[&name]);
        assert_eq!(output.code, 0, "{name} with its alerts:\n{}", output.dump());
        checked += 1;
    }
    assert!(
        checked >= 3,
        "{checked} example runbooks have commented alerts"
    );
}

#[test]
fn hostile_template_nesting() {
    // Once a stack overflow that aborted the CLI from about 4,500 levels: now one located
    // error, at every depth past the limit (including depths the parser itself gives up on).
    for levels in [65, 5_000, 200_000] {
        hostile(
            deep_template(levels, false).as_bytes(),
            "nests blocks, `(...)` or lists more than 64 levels deep",
        );
    }
    hostile(
        deep_template(5_000, true).as_bytes(),
        "nests blocks, `(...)` or lists more than 64 levels deep",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("deep.yaml"), deep_template(5_000, false)).expect("write");
    let output = validate_in(dir.path(), &["deep.yaml"]);
    assert!(
        output
            .stdout
            .starts_with("deep.yaml:5:15: error: the template does not parse: `{{not (not"),
        "{}",
        output.dump()
    );
    // 63 levels inside the expression (64 with the command itself) are fine.
    std::fs::write(dir.path().join("ok.yaml"), deep_template(63, false)).expect("write");
    let output = validate_in(dir.path(), &["ok.yaml"]);
    assert_eq!(output.code, 0, "{}", output.dump());
}

#[test]
fn hostile_huge_file() {
    let mut yaml = String::from("version: 1\nname: huge\nsteps:\n");
    let step = format!("  - id: s\n    run: {}\n", "x".repeat(1000));
    while yaml.len() < 50 * 1024 * 1024 {
        yaml.push_str(&step);
    }
    hostile(
        yaml.as_bytes(),
        "the file is 50.0 MiB; runbooks are limited to 8 MiB",
    );
}

#[test]
fn hostile_binary_garbage() {
    // Fixed-seed pseudo-random bytes (xorshift), with a NUL and an invalid UTF-8 byte early on.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    bytes[10] = 0;
    bytes[20] = 0xff;
    hostile(&bytes, "(a binary or differently encoded file?)");
}

#[test]
fn hostile_nul_byte_in_text() {
    hostile(
        b"version: 1\nname: a\x00b\nsteps: []\n",
        "the file holds a NUL byte (a binary or differently encoded file?)",
    );
}

#[test]
fn hostile_empty_and_comment_only_files() {
    hostile(b"", "the runbook is empty");
    hostile(b"  \n\n", "the runbook is empty");
    hostile(
        b"# orders cutover\n# TODO: write the steps\n---\n",
        "the runbook is empty",
    );
}
