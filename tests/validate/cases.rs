//! Every rule of the loader and the diagnostics its fixture must produce: position, message
//! and hint, exactly (see `every_invalid_fixture_reports_exactly_its_errors`).

/// One expected diagnostic: `line:col` (empty for a whole-file error), message, hint.
pub type Expected = (&'static str, &'static str, Option<&'static str>);

/// Each fixture (file name without `.yaml`) and every error it must report, in file order.
pub const CASES: &[(&str, &[Expected])] = &[
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
            Some(
                "give it exactly one of `run`, `http`, `gate`, `wait`, `check`, `sql`, `copy` or `compare`",
            ),
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
                "a probe has exactly one of `run` (a shell command), `http` (a request) or `sql` (a query); it runs before each evaluation",
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
        "sql-dsn-scheme",
        &[(
            "6:12",
            "`dsn`: the DSN's scheme `oracle` is not a database this version of sensei speaks to",
            Some(
                "write `postgres://user:password@host:5432/db` (or `postgresql://`) for PostgreSQL, `mysql://user:password@host:3306/db` (or `mariadb://`) for MySQL or MariaDB",
            ),
        )],
    ),
    (
        "compare-side-table-and-query",
        &[(
            "7:7",
            "the source has both `table` and `query`",
            Some(
                "give exactly one: `table` (a table, `name` or `schema.name`) or `query` (rows of a query)",
            ),
        )],
    ),
    (
        "sql-query-and-file",
        &[(
            "5:5",
            "`sql` has both `query` and `file`",
            Some(
                "give exactly one: `query` (SQL written here, a template) or `file` (a file of SQL beside the runbook)",
            ),
        )],
    ),
    (
        "rollback-on-gate",
        &[(
            "6:15",
            "a `gate` step has nothing to roll back",
            Some("only `run`, `http`, `sql` and `copy` steps take a `rollback` command"),
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
        "template-checkpoint-outside-run",
        &[(
            "6:35",
            "`checkpoint` is not available here",
            Some(
                "`checkpoint` is set only in a step's `run` command: the last `checkpoint=` its earlier attempts recorded",
            ),
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
