//! Checks of templates: they parse, call known helpers, and read only what exists where they
//! are rendered (SPEC §2 roots).

use super::check::Checker;
use super::model::{Action, Param, Step, Text};
use super::raw::{Phase, RawHttp, RawStep};
use super::template::{self, HELPERS};
use crate::diag::{self, Span};
use std::collections::{HashMap, HashSet, VecDeque};

/// Every root a template can start at somewhere.
const ALL_ROOTS: &[&str] = &[
    "params",
    "steps",
    "item",
    "migration",
    "runbook",
    "payload",
    "event",
    "probe",
    "checkpoint",
];
const MIGRATION_FIELDS: &[&str] = &["id", "state", "started_at"];
const STEP_FIELDS: &[&str] = &["outputs", "status"];

/// The steps' dependencies, to tell whether a template may read another step's results.
pub(crate) struct StepGraph {
    needs: HashMap<String, Vec<String>>,
    phase: HashMap<String, Phase>,
}

impl StepGraph {
    pub fn new(steps: &[Step]) -> Self {
        StepGraph {
            needs: steps
                .iter()
                .map(|s| (s.id.clone(), s.needs.clone()))
                .collect(),
            phase: steps.iter().map(|s| (s.id.clone(), s.phase)).collect(),
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.phase.contains_key(id)
    }

    /// True when `candidate` always finishes before `of` starts: an earlier phase, or a
    /// dependency through `needs`, directly or not.
    fn is_upstream(&self, of: &str, candidate: &str) -> bool {
        if let (Some(a), Some(b)) = (self.phase.get(candidate), self.phase.get(of))
            && a < b
        {
            return true;
        }
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([of]);
        while let Some(id) = queue.pop_front() {
            for need in self.needs.get(id).into_iter().flatten() {
                if need == candidate {
                    return true;
                }
                if seen.insert(need.as_str()) {
                    queue.push_back(need);
                }
            }
        }
        false
    }
}

/// Where a template is rendered, and so what it may read.
pub(crate) struct Scope<'a> {
    params: &'a [Param],
    roots: &'static [&'static str],
    /// In a step: its id and the graph, for `steps.<id>` reads.
    step: Option<(&'a str, &'a StepGraph)>,
    /// A rollback runs after its step succeeded, so it may read the step's own results.
    own_results: bool,
    place: &'static str,
}

impl<'a> Scope<'a> {
    pub fn runbook(params: &'a [Param]) -> Self {
        Scope {
            params,
            roots: &["params", "migration", "runbook"],
            step: None,
            own_results: false,
            place: "in `env`",
        }
    }
    pub fn schedule(params: &'a [Param]) -> Self {
        Scope {
            params,
            roots: &["runbook"],
            step: None,
            own_results: false,
            place: "in schedule params",
        }
    }
    pub fn trigger(params: &'a [Param]) -> Self {
        Scope {
            params,
            roots: &["payload", "runbook"],
            step: None,
            own_results: false,
            place: "in trigger params",
        }
    }
    pub fn alert(params: &'a [Param]) -> Self {
        Scope {
            params,
            roots: &["event", "migration", "runbook", "params", "steps"],
            step: None,
            own_results: false,
            place: "in alert templates",
        }
    }
    pub fn step(params: &'a [Param], id: &'a str, has_item: bool, graph: &'a StepGraph) -> Self {
        Scope {
            params,
            roots: if has_item {
                &["params", "steps", "item", "migration", "runbook"]
            } else {
                &["params", "steps", "migration", "runbook"]
            },
            step: Some((id, graph)),
            own_results: false,
            place: "here",
        }
    }

    /// A step's `run` command: like the step, plus `checkpoint` (the last one its earlier
    /// attempts recorded; `null` when none, so it is always defined).
    pub fn run(params: &'a [Param], id: &'a str, has_item: bool, graph: &'a StepGraph) -> Self {
        Scope {
            roots: if has_item {
                &[
                    "params",
                    "steps",
                    "item",
                    "migration",
                    "runbook",
                    "checkpoint",
                ]
            } else {
                &["params", "steps", "migration", "runbook", "checkpoint"]
            },
            ..Scope::step(params, id, has_item, graph)
        }
    }

    /// The `check` of a polling step with a `probe`: like the step, plus `probe`.
    pub fn probed_check(
        params: &'a [Param],
        id: &'a str,
        has_item: bool,
        graph: &'a StepGraph,
    ) -> Self {
        Scope {
            roots: if has_item {
                &["params", "steps", "item", "migration", "runbook", "probe"]
            } else {
                &["params", "steps", "migration", "runbook", "probe"]
            },
            ..Scope::step(params, id, has_item, graph)
        }
    }

    /// A step's `rollback`: like the step, plus its own outputs (to undo what it made).
    pub fn rollback(
        params: &'a [Param],
        id: &'a str,
        has_item: bool,
        graph: &'a StepGraph,
    ) -> Self {
        Scope {
            own_results: true,
            ..Scope::step(params, id, has_item, graph)
        }
    }
}

impl Checker<'_> {
    pub(crate) fn step_templates(
        &mut self,
        raw: &RawStep,
        step: &Step,
        params: &[Param],
        graph: &StepGraph,
    ) {
        // A step that writes `for_each` has an `item`, even when its `for_each` is malformed
        // (that error is reported already; `item` is not then reported as unavailable).
        let has_item = raw.for_each.is_some();
        let scope = Scope::step(params, &step.id, has_item, graph);
        if let Some(run) = &raw.run {
            // Only the step's own command goes on from a checkpoint.
            let scope = Scope::run(params, &step.id, has_item, graph);
            self.template(&run.value, run.span, &scope);
        }
        if let Some(when) = &raw.when {
            self.template(&when.value, when.span, &scope);
        }
        if let Some(check) = &raw.check {
            // A polling check reads what its probe measured; nothing else sees the probe.
            let scope = if raw.probe.is_some() {
                Scope::probed_check(params, &step.id, has_item, graph)
            } else {
                Scope::step(params, &step.id, has_item, graph)
            };
            self.template(&check.value, check.span, &scope);
        }
        if let Some(rollback) = &raw.rollback {
            let scope = Scope::rollback(params, &step.id, has_item, graph);
            self.template(&rollback.value, rollback.span, &scope);
        }
        if let (Some(check), Action::Check(Text::Plain(_))) = (&raw.check, &step.action) {
            self.warning(
                check.span,
                "this check has no template, so its result never changes",
            );
        }
        if let Some(http) = &raw.http {
            self.http_templates(&http.value, http.span, &scope);
        }
        if let Some(sql) = &raw.sql {
            self.sql_templates(&sql.value, &scope);
        }
        if let Some(copy) = &raw.copy {
            self.copy_templates(&copy.value, &scope);
        }
        if let Some(compare) = &raw.compare {
            self.compare_templates(&compare.value, &scope);
        }
        // A probe's templates are rendered like a `run` or `http` step's, with the same roots.
        if let Some(probe) = &raw.probe {
            if let Some(run) = &probe.value.run {
                self.template(&run.value, run.span, &scope);
            }
            if let Some(http) = &probe.value.http {
                self.http_templates(&http.value, http.span, &scope);
            }
            if let Some(sql) = &probe.value.sql {
                self.sql_templates(&sql.value, &scope);
            }
        }
        if let Some(f) = &raw.for_each
            && let serde_json::Value::String(text) = &f.value
        {
            let scope = Scope::step(params, &step.id, false, graph);
            self.template(text, f.span, &scope);
        }
    }
}

impl Checker<'_> {
    fn http_templates(&mut self, h: &RawHttp, span: crate::diag::Span, scope: &Scope) {
        self.template(&h.url.value, h.url.span, scope);
        for (_, v) in h.headers.iter().flat_map(|e| e.iter()) {
            self.template(&v.value, v.span, scope);
        }
        if let Some(body) = &h.body {
            self.json_templates(body, span, scope);
        }
    }
}

impl Checker<'_> {
    /// Checks one string written at `span`, if it is a template (by the rule [`Text::new`]
    /// types it with).
    ///
    /// [`Text::new`]: super::text::Text::new
    pub(crate) fn template(&mut self, text: &str, span: Span, scope: &Scope) {
        if !super::text::is_template(text) {
            return;
        }
        let analysis = match template::analyze(text) {
            Ok(a) => a,
            Err(error) => {
                let at = match error.near.as_deref() {
                    Some(near) => {
                        // Skip the occurrences of `near` before the faulty one.
                        let mut at = self.source.locate(span, near);
                        for _ in 0..error.earlier {
                            at = self.source.locate(at.shifted(1), near);
                        }
                        at
                    }
                    None => span,
                };
                self.error(at, format!("the template does not parse: {}", error.reason))
                    .hint =
                    Some("templates use Handlebars syntax, e.g. `{{params.batch_size}}`".into());
                return;
            }
        };
        for helper in &analysis.unknown_helpers {
            let at = self.source.locate(span, helper);
            let hint = diag::suggest(helper, HELPERS.iter().copied())
                .unwrap_or_else(|| format!("helpers are: {}", HELPERS.join(", ")));
            self.error(at, format!("unknown template helper `{helper}`"))
                .hint = Some(hint);
        }
        for path in &analysis.paths {
            let at = self.source.locate(span, path);
            self.path(path, at, scope);
        }
    }

    fn path(&mut self, path: &str, at: Span, scope: &Scope) {
        let segments = template::segments(path);
        let Some(root) = segments.first().copied() else {
            return;
        };
        if !scope.roots.contains(&root) {
            let (message, hint) = if ALL_ROOTS.contains(&root) {
                (
                    format!("`{root}` is not available {}", scope.place),
                    Some(root_help(root, scope)),
                )
            } else {
                (
                    format!("unknown template root `{root}` in `{{{{{path}}}}}`"),
                    diag::suggest(root, scope.roots.iter().copied()).or_else(|| {
                        Some(format!(
                            "templates {} read {}",
                            scope.place,
                            list(scope.roots)
                        ))
                    }),
                )
            };
            self.error(at, message).hint = hint;
            return;
        }
        let second = segments.get(1).copied();
        match (root, second) {
            ("params", Some(name))
                if !scope.params.iter().any(|p| p.name == name)
                    && !self.declared("params", name) =>
            {
                let hint = diag::suggest(name, scope.params.iter().map(|p| p.name.as_str()))
                    .unwrap_or_else(|| "declare it under `params:`".into());
                self.error(at, format!("unknown param `{name}`")).hint = Some(hint);
            }
            ("steps", Some(id)) => self.step_path(id, segments.get(2).copied(), at, scope),
            ("steps", None) => {
                self.error(at, "`steps` needs a step id: `steps.<id>.outputs.<key>`");
            }
            ("migration", Some(field)) if !MIGRATION_FIELDS.contains(&field) => {
                self.error(at, format!("`migration` has no `{field}`")).hint =
                    Some(format!("it has {}", list(MIGRATION_FIELDS)));
            }
            ("probe", Some(field)) if field != "outputs" => {
                self.error(at, format!("`probe` has no `{field}`")).hint = Some(
                    "read `probe.outputs.<key>`; an `http` probe's outputs are `status`, `headers` and `body`"
                        .into(),
                );
            }
            ("runbook", Some(field)) if field != "name" => {
                self.error(at, format!("`runbook` has no `{field}`")).hint =
                    Some("it has `name`".into());
            }
            _ => {}
        }
    }

    fn step_path(&mut self, id: &str, field: Option<&str>, at: Span, scope: &Scope) {
        let Some((current, graph)) = scope.step else {
            return; // alert templates may read any step
        };
        if !graph.contains(id) {
            if self.declared_step(id) {
                return; // the step did not load; its own errors are reported
            }
            let hint = diag::suggest(id, graph.phase.keys().map(String::as_str));
            self.error(at, format!("unknown step `{id}`")).hint = hint;
            return;
        }
        if id == current && !scope.own_results {
            self.error(
                at,
                format!("step `{current}` reads its own results before it has any"),
            )
            .hint = Some(
                "only its `rollback` may read `steps.<itself>`; other fields run before the step"
                    .into(),
            );
            return;
        }
        if id != current && !graph.is_upstream(current, id) {
            self.error(
                at,
                format!("step `{current}` reads `steps.{id}` but does not depend on `{id}`"),
            )
            .hint = Some(format!(
                "add `{id}` to the `needs` of `{current}` so its results exist when `{current}` runs"
            ));
            return;
        }
        if let Some(field) = field
            && !STEP_FIELDS.contains(&field)
        {
            self.error(at, format!("a step has no `{field}`")).hint = Some(format!(
                "read `steps.{id}.outputs.<key>` or `steps.{id}.status`"
            ));
        }
    }
}

fn root_help(root: &str, scope: &Scope) -> String {
    match root {
        "item" => "`item` is set only in steps with `for_each`".into(),
        "payload" => "`payload` (the webhook's JSON body) is set only in trigger params".into(),
        "event" => "`event` is set only in alert templates".into(),
        "probe" => "`probe` is set only in the `check` of a step that declares a `probe`".into(),
        "checkpoint" => "`checkpoint` is set only in a step's `run` command: the last `checkpoint=` its earlier attempts recorded".into(),
        _ => format!("templates {} read {}", scope.place, list(scope.roots)),
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
