//! Checks of automatic gates: a `check` step that polls (`every`, `stable_for`, `probe`).
//!
//! A polling check is evaluated every `every`, after running its `probe` if it has one, and
//! passes once its condition has held continuously for `stable_for`; the step's `timeout`
//! fails it. These checks make sure the keys sit on a `check` step, belong together, and
//! leave the condition a chance to hold before the timeout.

use super::check::Checker;
use super::duration::Duration;
use super::model::{Action, Poll, Probe, Text};
use super::raw::{OutputsFormat, RawProbe, RawStep};
use super::wrappers::Spanned;
use crate::diag::Span;

/// The step's timeout as the checks see it: its value, and whether it comes from `defaults`.
#[derive(Clone, Copy)]
pub(crate) struct StepTimeout {
    pub value: Duration,
    pub inherited: bool,
}

/// A checked `probe`: what the model holds, and how the outputs of a `run` probe are read.
pub(crate) struct CheckedProbe {
    pub probe: Probe,
    pub outputs: Option<OutputsFormat>,
}

impl Checker<'_> {
    /// Checks the polling keys of a step; returns the step's [`Poll`] when it is a polling
    /// check, and the `outputs` format of its `run` probe (kept in `Step::outputs`).
    pub(crate) fn poll(
        &mut self,
        raw: &RawStep,
        action: Option<&Action>,
        timeout: Option<StepTimeout>,
    ) -> (Option<Poll>, Option<OutputsFormat>) {
        let keys: Vec<(&str, Span)> = [
            ("every", raw.every.as_ref().map(|e| e.span)),
            ("stable_for", raw.stable_for.as_ref().map(|s| s.span)),
            ("probe", raw.probe.as_ref().map(|p| self.key_span(p.span))),
        ]
        .into_iter()
        .filter_map(|(key, span)| Some((key, span?)))
        .collect();
        if keys.is_empty() {
            return (None, None);
        }
        match action {
            // A step without exactly one action has its error already; these keys add nothing.
            None => return (None, None),
            Some(Action::Check(_)) => {}
            Some(other) => {
                for (key, span) in keys {
                    self.error(span, format!("`{key}` belongs to a `check` step"))
                        .hint = Some(format!(
                        "`every`, `stable_for` and `probe` make a `check` poll until its condition holds; this is a `{}` step",
                        other.kind()
                    ));
                }
                return (None, None);
            }
        }
        let probe = raw.probe.as_ref().and_then(|p| self.probe(p));
        let Some(every) = &raw.every else {
            let (key, span) = keys[0];
            self.error(span, format!("`{key}` needs `every`")).hint = Some(
                "add `every` (e.g. `every: 30s`): the check is then evaluated at that interval until it holds".into(),
            );
            return (None, None);
        };
        if every.value.is_zero() {
            self.error(every.span, "`every` must be longer than 0s")
                .hint = Some("it is how often the check is evaluated, e.g. `every: 30s`".into());
        }
        let stable_for = raw
            .stable_for
            .as_ref()
            .map_or(Duration::default(), |s| s.value);
        match (timeout, &raw.stable_for) {
            (Some(timeout), Some(stable)) if stable.value >= timeout.value => {
                let from = if timeout.inherited {
                    ", from `defaults`"
                } else {
                    ""
                };
                self.error(
                    stable.span,
                    format!(
                        "`stable_for` ({}) is not shorter than the step's `timeout` ({}{from})",
                        stable.value, timeout.value
                    ),
                )
                .hint = Some(
                    "the condition could never hold that long before the timeout fails the step; lengthen `timeout` or shorten `stable_for`"
                        .into(),
                );
            }
            (None, _) => {
                self.warning(
                    every.span,
                    "this polling check has no `timeout`, so it could poll forever",
                )
                .hint = Some(
                    "add `timeout` (e.g. `timeout: 1h`) to fail the step when the condition has not held by then"
                        .into(),
                );
            }
            _ => {}
        }
        if raw.probe.is_none() {
            self.warning(
                every.span,
                "this polling check has no `probe`, so it reads the same values at every evaluation",
            )
            .hint = Some(
                "add a `probe` (`run`, `http` or `sql`) that measures the condition; the check reads its outputs as `probe.outputs.KEY`"
                    .into(),
            );
        }
        let (probe, outputs) = match probe {
            Some(p) => (Some(p.probe), p.outputs),
            None => (None, None),
        };
        (
            Some(Poll {
                every: every.value,
                stable_for,
                probe,
            }),
            outputs,
        )
    }

    fn probe(&mut self, probe: &Spanned<Box<RawProbe>>) -> Option<CheckedProbe> {
        let p = &probe.value;
        let json = p.outputs.as_ref().map(|o| (o.value, o.span));
        let given = [p.run.is_some(), p.http.is_some(), p.sql.is_some()];
        if given.iter().filter(|&&g| g).count() != 1 {
            let message = if given.iter().any(|&g| g) {
                let names: Vec<&str> = ["`run`", "`http`", "`sql`"]
                    .into_iter()
                    .zip(given)
                    .filter_map(|(n, g)| g.then_some(n))
                    .collect();
                match names.as_slice() {
                    [a, b] => format!("`probe` has both {a} and {b}"),
                    _ => format!("`probe` has {}", names.join(", ")),
                }
            } else {
                "`probe` has none of `run`, `http` or `sql`".to_owned()
            };
            let at = self.key_span(probe.span);
            self.error(at, message).hint = Some(
                "a probe has exactly one of `run` (a shell command), `http` (a request) or `sql` (a query); it runs before each evaluation"
                    .into(),
            );
            return None;
        }
        if let (Some((_, span)), None) = (json, &p.run) {
            self.error(span, "`outputs: json` is for a `run` probe")
                .hint = Some(if p.http.is_some() {
                "an `http` probe's outputs are `status`, `headers` and `body`, and the body is parsed as JSON when it is JSON".into()
            } else {
                "a `sql` probe's outputs are the first row's columns by name, `rows`, `row_count` and `rows_affected`, already JSON".into()
            });
        }
        if let Some(run) = &p.run {
            return Some(CheckedProbe {
                probe: Probe::Run(Text::new(run.value.as_str())),
                outputs: json.map(|(format, _)| format),
            });
        }
        if let Some(http) = &p.http {
            return Some(CheckedProbe {
                probe: Probe::Http(self.http(&http.value)),
                outputs: None,
            });
        }
        let sql = p.sql.as_ref().and_then(|sql| self.sql(sql))?;
        Some(CheckedProbe {
            probe: Probe::Sql(sql),
            outputs: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{HttpMethod, JsonText, OutputsFormat, Poll, Probe, Step, Text};
    use super::super::{Checked, load_bytes};
    use super::Duration;

    fn load(steps: &str) -> Checked {
        let yaml = format!(
            "version: 1\nname: t\nparams:\n  max_lag: {{ type: integer, default: 5 }}\nsteps:\n  - id: start\n    run: ./start.sh\n{steps}"
        );
        load_bytes("r.yaml", yaml.as_bytes())
    }

    /// Every diagnostic as `line:col: severity: message`, hint on the next entry when present.
    fn diagnostics(steps: &str) -> Vec<String> {
        let mut out = Vec::new();
        for d in load(steps).diagnostics {
            let s = d.span.unwrap_or_default();
            let kind = if d.is_error() { "error" } else { "warning" };
            out.push(format!("{}:{}: {kind}: {}", s.line, s.column, d.message));
            if let Some(hint) = d.hint {
                out.push(format!("  hint: {hint}"));
            }
        }
        out
    }

    fn step(steps: &str, id: &str) -> Step {
        let checked = load(steps);
        assert!(
            checked.diagnostics.is_empty(),
            "unexpected diagnostics: {}",
            checked.render()
        );
        let runbook = checked.runbook.expect("valid");
        runbook.step(id).expect("step").clone()
    }

    fn poll(steps: &str, id: &str) -> Poll {
        step(steps, id).poll.expect("a polling check")
    }

    fn d(text: &str) -> Duration {
        Duration::parse(text).expect("duration")
    }

    #[test]
    fn a_polling_check_with_a_run_probe_becomes_the_model() {
        let steps = "  - id: caught-up\n    needs: [start]\n    check: \"{{lt probe.outputs.lag_seconds params.max_lag}}\"\n    probe: { run: \"./scripts/replication-lag.sh --since {{steps.start.outputs.lsn}}\" }\n    every: 30s\n    stable_for: 5m\n    timeout: 1h\n";
        let step = step(steps, "caught-up");
        assert_eq!(step.timeout, Some(d("1h")));
        assert_eq!(step.outputs, None, "key=value lines unless `outputs: json`");
        let poll = step.poll.expect("polls");
        assert_eq!(poll.every, d("30s"));
        assert_eq!(poll.stable_for, d("5m"));
        match poll.probe {
            Some(Probe::Run(command)) => assert_eq!(
                command,
                Text::Template(
                    "./scripts/replication-lag.sh --since {{steps.start.outputs.lsn}}".into()
                )
            ),
            other => panic!("expected a run probe, got {other:?}"),
        }
    }

    #[test]
    fn a_run_probe_with_json_outputs_sets_the_steps_output_format() {
        let steps = "  - id: caught-up\n    check: \"{{lt probe.outputs.lag 5}}\"\n    probe:\n      run: ./lag.sh --json\n      outputs: json\n    every: 10s\n    timeout: 10m\n";
        let step = step(steps, "caught-up");
        assert_eq!(step.outputs, Some(OutputsFormat::Json));
        assert!(matches!(
            step.poll.and_then(|p| p.probe),
            Some(Probe::Run(Text::Plain(c))) if c == "./lag.sh --json"
        ));
    }

    #[test]
    fn an_http_probe_becomes_a_request_like_an_http_steps() {
        let steps = "  - id: replica-ready\n    for_each: [eu, us]\n    check: \"{{and (eq probe.outputs.status 200) (eq probe.outputs.body.state \\\"ready\\\")}}\"\n    probe:\n      http:\n        method: POST\n        url: \"https://{{item}}.replica.internal/health\"\n        headers: { X-Region: \"{{item}}\" }\n        body: { deep: true, runbook: \"{{runbook.name}}\" }\n        expect_status: [200, 503]\n        timeout: 5s\n    every: 1m\n    timeout: 30m\n";
        let poll = poll(steps, "replica-ready");
        assert_eq!(poll.every, d("1m"));
        assert_eq!(poll.stable_for, Duration::default(), "default 0s");
        let Some(Probe::Http(http)) = poll.probe else {
            panic!("expected an http probe, got {:?}", poll.probe);
        };
        assert_eq!(http.method, HttpMethod::Post);
        assert_eq!(
            http.url.source(),
            "https://{{item}}.replica.internal/health"
        );
        assert_eq!(
            http.headers,
            [("X-Region".to_owned(), Text::new("{{item}}"))]
        );
        let body = serde_json::json!({"deep": true, "runbook": "{{runbook.name}}"});
        assert_eq!(http.body, Some(JsonText::new(&body)));
        assert_eq!(http.expect_status, [200, 503]);
        assert_eq!(http.timeout, Some(d("5s")));
    }

    #[test]
    fn checks_that_do_not_poll_have_no_poll() {
        let steps = "  - id: lag-small\n    needs: [start]\n    check: \"{{lt steps.start.outputs.lag 5}}\"\n";
        assert!(step(steps, "lag-small").poll.is_none());
        assert!(step(steps, "start").poll.is_none());
    }

    #[test]
    fn the_timeout_may_come_from_defaults_and_stable_for_must_fit_in_it() {
        let yaml = "version: 1\nname: t\ndefaults:\n  timeout: 30m\nsteps:\n  - id: a\n    check: \"{{probe.outputs.ok}}\"\n    probe: { run: ./ok.sh }\n    every: 1m\n    stable_for: 30m\n  - id: b\n    check: \"{{probe.outputs.ok}}\"\n    probe: { run: ./ok.sh }\n    every: 1m\n    stable_for: 29m\n";
        let checked = load_bytes("r.yaml", yaml.as_bytes());
        let found: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|d| format!("{}: {}", d.span.unwrap_or_default().line, d.message))
            .collect();
        assert_eq!(
            found,
            [
                "10: `stable_for` (30m) is not shorter than the step's `timeout` (30m, from `defaults`)"
            ]
        );
        let yaml = yaml.replace("stable_for: 30m", "stable_for: 10m");
        let checked = load_bytes("r.yaml", yaml.as_bytes());
        let b = checked
            .runbook
            .expect("valid")
            .step("b")
            .cloned()
            .expect("b");
        assert_eq!(b.timeout, Some(d("30m")));
        assert_eq!(b.poll.map(|p| p.stable_for), Some(d("29m")));
    }

    #[test]
    fn polling_without_a_timeout_or_a_probe_is_a_warning_not_an_error() {
        let steps = "  - id: lag-small\n    needs: [start]\n    check: \"{{lt steps.start.outputs.lag 5}}\"\n    every: 30s\n";
        assert_eq!(
            diagnostics(steps),
            [
                "11:12: warning: this polling check has no `timeout`, so it could poll forever",
                "  hint: add `timeout` (e.g. `timeout: 1h`) to fail the step when the condition has not held by then",
                "11:12: warning: this polling check has no `probe`, so it reads the same values at every evaluation",
                "  hint: add a `probe` (`run`, `http` or `sql`) that measures the condition; the check reads its outputs as `probe.outputs.KEY`",
            ]
        );
        let checked = load(steps);
        let poll = checked.runbook.expect("warnings do not block").steps[1]
            .poll
            .clone()
            .expect("polls");
        assert!(poll.probe.is_none());
    }

    #[test]
    fn polling_keys_on_other_actions_are_each_reported_and_not_on_a_step_without_one() {
        let steps = "  - id: soak\n    wait: 5m\n    every: 30s\n    stable_for: 1m\n    probe: { run: ./x.sh }\n  - id: nothing\n    every: 30s\n";
        assert_eq!(
            diagnostics(steps),
            [
                "10:12: error: `every` belongs to a `check` step",
                "  hint: `every`, `stable_for` and `probe` make a `check` poll until its condition holds; this is a `wait` step",
                "11:17: error: `stable_for` belongs to a `check` step",
                "  hint: `every`, `stable_for` and `probe` make a `check` poll until its condition holds; this is a `wait` step",
                "12:5: error: `probe` belongs to a `check` step",
                "  hint: `every`, `stable_for` and `probe` make a `check` poll until its condition holds; this is a `wait` step",
                "13:9: error: step `nothing` has no action",
                "  hint: give it exactly one of `run`, `http`, `gate`, `wait`, `check`, `sql`, `copy` or `compare`",
            ]
        );
    }

    #[test]
    fn stable_for_and_probe_without_every_are_one_mistake() {
        let steps = "  - id: c\n    check: \"{{probe.outputs.ok}}\"\n    stable_for: 1m\n    probe: { run: ./ok.sh }\n";
        assert_eq!(
            diagnostics(steps),
            [
                "10:17: error: `stable_for` needs `every`",
                "  hint: add `every` (e.g. `every: 30s`): the check is then evaluated at that interval until it holds",
            ]
        );
    }

    #[test]
    fn a_probe_needs_exactly_one_of_run_or_http() {
        let steps = "  - id: c\n    check: \"{{probe.outputs.ok}}\"\n    probe: { outputs: json }\n    every: 30s\n    timeout: 5m\n";
        assert_eq!(
            diagnostics(steps),
            [
                "10:5: error: `probe` has none of `run`, `http` or `sql`",
                "  hint: a probe has exactly one of `run` (a shell command), `http` (a request) or `sql` (a query); it runs before each evaluation",
            ]
        );
        let steps = "  - id: c\n    check: \"{{probe.outputs.ok}}\"\n    probe: { run: ./ok.sh, htp: {} }\n    every: 30s\n    timeout: 5m\n";
        assert_eq!(
            diagnostics(steps),
            [
                "10:28: error: unknown key `htp` in this probe",
                "  hint: did you mean `http`?",
            ]
        );
    }

    #[test]
    fn probe_is_a_root_only_in_the_check_of_a_step_with_a_probe() {
        let steps = "  - id: c\n    when: \"{{probe.outputs.ok}}\"\n    check: \"{{probe.outputs.ok}} {{probe}}\"\n    probe: { run: \"./ok.sh {{probe.outputs.ok}} {{params.max_lagg}}\" }\n    every: 30s\n    timeout: 5m\n";
        assert_eq!(
            diagnostics(steps),
            [
                "9:14: error: `probe` is not available here",
                "  hint: `probe` is set only in the `check` of a step that declares a `probe`",
                "11:30: error: `probe` is not available here",
                "  hint: `probe` is set only in the `check` of a step that declares a `probe`",
                "11:51: error: unknown param `max_lagg`",
                "  hint: did you mean `max_lag`?",
            ]
        );
    }

    #[test]
    fn probe_templates_follow_the_rules_of_a_steps() {
        let steps = "  - id: later\n    run: ./later.sh\n  - id: c\n    check: \"{{eq probe.outputs.status 200}}\"\n    probe:\n      http:\n        url: \"https://{{item}}/{{steps.later.outputs.path}}\"\n        expect_status: [99]\n    every: 30s\n    timeout: 5m\n";
        assert_eq!(
            diagnostics(steps),
            [
                "14:25: error: `item` is not available here",
                "  hint: `item` is set only in steps with `for_each`",
                "14:34: error: step `c` reads `steps.later` but does not depend on `later`",
                "  hint: add `later` to the `needs` of `c` so its results exist when `c` runs",
                "15:25: error: `99` is not an HTTP status",
                "  hint: HTTP statuses run from 100 to 599",
            ]
        );
    }

    #[test]
    fn outputs_json_on_a_probed_check_points_into_the_probe() {
        let steps = "  - id: c\n    check: \"{{probe.outputs.ok}}\"\n    probe: { run: ./ok.sh }\n    outputs: json\n    every: 30s\n    timeout: 5m\n";
        assert_eq!(
            diagnostics(steps),
            [
                "8:9: error: step `c` declares `outputs: json` but is not a `run` step",
                "  hint: for the outputs of a `run` probe, write `outputs: json` inside `probe`",
            ]
        );
    }
}
