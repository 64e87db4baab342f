//! Checks of the steps: ids, actions, references, phases and their templates (cycles are in
//! `check_cycles.rs`).

use super::check::Checker;
use super::check_poll::StepTimeout;
use super::check_templates::StepGraph;
use super::duration::Duration;
use super::model::{Action, ForEach, Gate, Http, JsonText, Param, Retry, Step, Text, Window};
use super::raw::{OutputsFormat, ParamType, Phase, RawHttp, RawStep};
use super::template;
use super::wrappers::{Recover, Spanned};
use crate::diag::{self, Span};
use std::collections::{HashMap, HashSet};

/// What the step checks need from the rest of the runbook.
pub(crate) struct Context<'a> {
    pub params: &'a [Param],
    pub pools: &'a [(String, u32)],
    pub windows: &'a [Window],
    pub default_retry: &'a Retry,
    pub default_timeout: Option<Duration>,
    /// Ids of steps that failed to load (their errors are reported): references to them are
    /// not reported again as unknown.
    pub broken_steps: &'a HashSet<String>,
}

impl Checker<'_> {
    pub(crate) fn steps(
        &mut self,
        steps: Option<&Vec<Recover<RawStep>>>,
        ctx: &Context,
    ) -> Vec<Step> {
        let Some(steps) = steps else {
            if self.root.get("steps").is_none() {
                self.error(Span::new(1, 1, 1), "the runbook has no `steps`")
                    .hint = Some("add a `steps:` list; each step has an `id` and one action (run, http, gate, wait, check)".into());
            }
            return Vec::new();
        };
        if steps.is_empty() {
            let span = self
                .root
                .get("steps")
                .map_or(Span::new(1, 1, 1), |n| n.span);
            self.error(span, "the runbook has no steps").hint =
                Some("add at least one step with an `id` and an action".into());
        }
        let loaded: Vec<&RawStep> = steps.iter().filter_map(|s| s.0.as_ref()).collect();
        let phases = self.ids(&loaded);
        // Sized up front and not cloned: on a 10,000-step runbook these vectors are a large
        // part of peak memory.
        let mut raws: Vec<&RawStep> = Vec::with_capacity(loaded.len());
        let mut out: Vec<Step> = Vec::with_capacity(loaded.len());
        for raw in &loaded {
            if let Some(step) = self.step(raw, &phases, ctx) {
                raws.push(raw);
                out.push(step);
            }
        }
        self.cycles(&loaded, &phases);
        let graph = StepGraph::new(&out);
        for (raw, step) in raws.iter().zip(&out) {
            self.step_templates(raw, step, ctx.params, &graph);
        }
        out
    }

    /// Valid, unique ids; returns each id's phase.
    fn ids(&mut self, steps: &[&RawStep]) -> HashMap<String, Phase> {
        let mut phases = HashMap::new();
        for raw in steps {
            let id = &raw.id;
            if !super::check::valid_name(&id.value, usize::MAX) {
                self.error(id.span, format!("invalid step id `{}`", id.value)).hint =
                    Some("step ids are lowercase letters, digits, `-` and `_`, starting with a letter or digit".into());
            }
            if phases.insert(id.value.clone(), phase_of(raw)).is_some() {
                self.error(id.span, format!("duplicate step id `{}`", id.value))
                    .hint = Some("step ids must be unique in a runbook; rename one of them".into());
            }
        }
        phases
    }

    fn step(
        &mut self,
        raw: &RawStep,
        phases: &HashMap<String, Phase>,
        ctx: &Context,
    ) -> Option<Step> {
        let id = &raw.id.value;
        let phase = phase_of(raw);
        let action = self.action(raw);
        let mut seen_needs = HashSet::new();
        for need in raw.needs.iter().flatten() {
            if !seen_needs.insert(need.value.as_str()) {
                self.warning(
                    need.span,
                    format!("`{}` is listed twice in `needs`", need.value),
                );
                continue;
            }
            self.need(id, phase, need, phases, ctx);
        }
        if let Some(pool) = &raw.pool
            && !ctx.pools.iter().any(|(name, _)| *name == pool.value)
            && !self.declared("pools", &pool.value)
        {
            let hint = diag::suggest(&pool.value, ctx.pools.iter().map(|(n, _)| n.as_str()))
                .unwrap_or_else(|| "declare it under `pools:`".into());
            self.error(pool.span, format!("unknown pool `{}`", pool.value))
                .hint = Some(hint);
        }
        if let Some(window) = &raw.window
            && !ctx.windows.iter().any(|w| w.name == window.value)
            && !self.declared("windows", &window.value)
        {
            let hint = diag::suggest(&window.value, ctx.windows.iter().map(|w| w.name.as_str()))
                .unwrap_or_else(|| "declare it under `windows:`".into());
            self.error(window.span, format!("unknown window `{}`", window.value))
                .hint = Some(hint);
        }
        if let (Some(rollback), Some(action)) = (&raw.rollback, &action)
            && !matches!(
                action,
                Action::Run(_) | Action::Http(_) | Action::Sql(_) | Action::Copy(_)
            )
        {
            self.error(
                rollback.span,
                format!("a `{}` step has nothing to roll back", action.kind()),
            )
            .hint =
                Some("only `run`, `http`, `sql` and `copy` steps take a `rollback` command".into());
        }
        if raw.outputs == Some(OutputsFormat::Json) && raw.run.is_none() {
            self.error(
                raw.id.span,
                format!("step `{id}` declares `outputs: json` but is not a `run` step"),
            )
            .hint = raw.probe.as_ref().map(|_| {
                "for the outputs of a `run` probe, write `outputs: json` inside `probe`".into()
            });
        }
        let for_each = self.for_each(raw.for_each.as_ref(), ctx.params);
        let retry = self.retry(raw.retry.as_deref(), ctx.default_retry);
        let timeout = match (&raw.timeout, ctx.default_timeout) {
            (Some(t), _) => Some(StepTimeout {
                value: t.value,
                inherited: false,
            }),
            (None, Some(value)) => Some(StepTimeout {
                value,
                inherited: true,
            }),
            (None, None) => None,
        };
        let (poll, probe_outputs) = self.poll(raw, action.as_ref(), timeout);
        Some(Step {
            id: id.clone(),
            description: raw.description.clone(),
            phase,
            needs: raw
                .needs
                .iter()
                .flatten()
                .map(|n| n.value.clone())
                .collect(),
            when: raw.when.as_ref().map(|w| Text::new(w.value.as_str())),
            for_each,
            pool: raw.pool.as_ref().map(|p| p.value.clone()),
            window: raw.window.as_ref().map(|w| w.value.clone()),
            // A comparison only reads, and a copy replaces its key range after its checkpoint:
            // both are safe to run again by themselves.
            idempotent: raw
                .idempotent
                .unwrap_or(raw.copy.is_some() || raw.compare.is_some()),
            point_of_no_return: raw.point_of_no_return.unwrap_or(false),
            timeout: timeout.map(|t| t.value),
            retry,
            estimate: raw.estimate.as_ref().map(|e| e.value),
            action: action?,
            rollback: raw.rollback.as_ref().map(|r| Text::new(r.value.as_str())),
            // A polling check's `run` probe declares its output format inside `probe`; the
            // step itself has no outputs, so the field says how the probe's are read.
            outputs: raw.outputs.or(probe_outputs),
            poll,
        })
    }

    fn action(&mut self, raw: &RawStep) -> Option<Action> {
        // `None` stands for a `sql`, `copy` or `compare` with errors (reported): it still
        // counts as an action.
        let mut actions: Vec<(&str, Option<Action>)> = Vec::new();
        if let Some(run) = &raw.run {
            actions.push(("run", Some(Action::Run(Text::new(run.value.as_str())))));
        }
        if let Some(http) = &raw.http {
            actions.push(("http", Some(Action::Http(self.http(&http.value)))));
        }
        if let Some(gate) = &raw.gate {
            actions.push(("gate", Some(Action::Gate(self.gate(&raw.id.value, gate)))));
        }
        if let Some(wait) = &raw.wait {
            actions.push(("wait", Some(Action::Wait(wait.value))));
        }
        if let Some(check) = &raw.check {
            actions.push((
                "check",
                Some(Action::Check(Text::new(check.value.as_str()))),
            ));
        }
        if let Some(sql) = &raw.sql {
            actions.push(("sql", self.sql(sql).map(Action::Sql)));
        }
        if let Some(copy) = &raw.copy {
            actions.push(("copy", self.copy(copy).map(Action::Copy)));
        }
        if let Some(compare) = &raw.compare {
            let checked = self.compare(compare).map(|c| Action::Compare(Box::new(c)));
            actions.push(("compare", checked));
        }
        match actions.len() {
            1 => actions.pop().and_then(|(_, a)| a),
            0 => {
                self.error(
                    raw.id.span,
                    format!("step `{}` has no action", raw.id.value),
                )
                .hint = Some(
                    "give it exactly one of `run`, `http`, `gate`, `wait`, `check`, `sql`, `copy` or `compare`"
                        .into(),
                );
                None
            }
            _ => {
                let names: Vec<String> = actions.iter().map(|(n, _)| format!("`{n}`")).collect();
                self.error(
                    raw.id.span,
                    format!(
                        "step `{}` has {} actions: {}",
                        raw.id.value,
                        names.len(),
                        names.join(", ")
                    ),
                )
                .hint = Some(
                    "a step does exactly one thing; split it into several steps joined by `needs`"
                        .into(),
                );
                None
            }
        }
    }

    /// An `http` step's or probe's request.
    pub(crate) fn http(&mut self, h: &RawHttp) -> Http {
        for status in h.expect_status.iter().flatten() {
            if !(100..=599).contains(&status.value) {
                self.error(
                    status.span,
                    format!("`{}` is not an HTTP status", status.value),
                )
                .hint = Some("HTTP statuses run from 100 to 599".into());
            }
        }
        Http {
            method: h.method.unwrap_or_default(),
            url: Text::new(h.url.value.as_str()),
            headers: h
                .headers
                .iter()
                .flat_map(|e| e.iter())
                .map(|(k, v)| (k.value.clone(), Text::new(v.value.as_str())))
                .collect(),
            body: h.body.as_ref().map(JsonText::new),
            expect_status: h.expect_status.iter().flatten().map(|s| s.value).collect(),
            timeout: h.timeout.as_ref().map(|t| t.value),
        }
    }

    fn gate(&mut self, id: &str, gate: &Spanned<Box<super::raw::RawGate>>) -> Gate {
        let g = &gate.value;
        // Without a list anyone but the starter may decide; an empty list is a mistake.
        let listed: &[Spanned<String>] = g.approvers.as_ref().map_or(&[], |a| &a.value);
        let approvers: Vec<String> = listed.iter().map(|a| a.value.clone()).collect();
        if let Some(list) = g.approvers.as_ref().filter(|a| a.value.is_empty()) {
            self.error(list.span, format!("gate `{id}` has no approvers"))
                .hint = Some(
                "list who may approve it (token names, or `--as` names locally), or leave `approvers` out to let anyone but the starter approve"
                    .into(),
            );
        }
        let mut seen = HashSet::new();
        for a in listed {
            if !seen.insert(&a.value) {
                self.error(a.span, format!("approver `{}` is listed twice", a.value));
            }
        }
        let required = g.required.as_ref().map_or(1, |r| r.value);
        if let Some(r) = &g.required {
            if r.value == 0 {
                self.error(r.span, "`required` must be at least 1");
            } else if r.value as usize > approvers.len() && !approvers.is_empty() {
                self.error(
                    r.span,
                    format!(
                        "gate `{id}` requires {} approvals but lists only {} approver{}",
                        r.value,
                        approvers.len(),
                        if approvers.len() == 1 { "" } else { "s" }
                    ),
                )
                .hint = Some("lower `required` or add approvers".into());
            }
        }
        let roles: &[Spanned<super::raw::GateRole>] = g.roles.as_ref().map_or(&[], |r| &r.value);
        if let Some(list) = g.roles.as_ref().filter(|r| r.value.is_empty()) {
            self.error(list.span, format!("gate `{id}` lists no roles")).hint =
                Some("name the roles whose holders may decide it (viewer, operator, approver, admin), or leave `roles` out".into());
        }
        Gate {
            approvers,
            required,
            roles: roles.iter().map(|r| r.value.as_str().to_owned()).collect(),
            timeout: g.timeout.as_ref().map(|t| t.value),
            on_timeout: g.on_timeout.unwrap_or_default(),
        }
    }

    fn need(
        &mut self,
        id: &str,
        phase: Phase,
        need: &Spanned<String>,
        phases: &HashMap<String, Phase>,
        ctx: &Context,
    ) {
        match phases.get(&need.value) {
            None if ctx.broken_steps.contains(&need.value) => {}
            None => {
                let hint = diag::suggest(&need.value, phases.keys().map(String::as_str))
                    .unwrap_or_else(|| "`needs` lists ids of other steps".into());
                self.error(
                    need.span,
                    format!("step `{id}` needs unknown step `{}`", need.value),
                )
                .hint = Some(hint);
            }
            Some(other) if *other > phase => {
                self.error(
                    need.span,
                    format!(
                        "step `{id}` (phase {}) needs `{}`, which runs in a later phase ({})",
                        phase.as_str(),
                        need.value,
                        other.as_str()
                    ),
                )
                .hint = Some("phases run in order analyze, plan, approve, execute, validate; move one of the two steps".into());
            }
            Some(_) => {}
        }
    }

    fn for_each(
        &mut self,
        for_each: Option<&Spanned<serde_json::Value>>,
        params: &[Param],
    ) -> Option<ForEach> {
        let f = for_each?;
        match &f.value {
            serde_json::Value::Array(items) => {
                let mut seen = std::collections::HashSet::new();
                for item in items {
                    let label = crate::plan::item_label(item);
                    if !seen.insert(label.clone()) {
                        self.error(f.span, format!("`for_each` lists `{label}` twice"))
                            .hint = Some("each element names an expansion (`step[element]`), so elements must differ".into());
                    }
                }
                if items.is_empty() {
                    self.warning(f.span, "`for_each` is empty: this step never runs");
                }
                Some(ForEach::List(items.clone()))
            }
            serde_json::Value::String(text) if is_single_expression(text) => {
                self.for_each_param_type(text, f.span, params);
                Some(ForEach::Template(Text::new(text.as_str())))
            }
            _ => {
                self.error(
                    f.span,
                    "`for_each` must be a list or a single template such as \"{{params.tables}}\"",
                )
                .hint = Some(
                    "the template must be exactly one `{{path}}` so its value stays a list".into(),
                );
                None
            }
        }
    }

    /// `for_each: "{{params.x}}"` needs `x` to be a list param.
    fn for_each_param_type(&mut self, text: &str, span: Span, params: &[Param]) {
        let Ok(analysis) = template::analyze(text.trim()) else {
            return;
        };
        let Some(path) = analysis.paths.first() else {
            return;
        };
        let segments = template::segments(path);
        if segments.len() != 2 || segments[0] != "params" {
            return;
        }
        if let Some(param) = params.iter().find(|p| p.name == segments[1])
            && param.kind != ParamType::List
        {
            let at = self.source.locate(span, path);
            self.error(
                at,
                format!(
                    "`for_each` needs a list, but param `{}` is {}",
                    param.name,
                    super::check::article(param.kind)
                ),
            )
            .hint = Some(format!("declare `{}` with `type: list`", param.name));
        }
    }
}

fn phase_of(raw: &RawStep) -> Phase {
    match &raw.phase {
        Some(p) => p.value,
        None if raw.gate.is_some() => Phase::Approve,
        None => Phase::Execute,
    }
}

/// `{{path}}` and nothing else.
pub fn is_single_expression(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("{{")
        && t.ends_with("}}")
        && t.matches("{{").count() == 1
        && template::analyze(t).is_ok_and(|a| a.paths.len() == 1 && a.unknown_helpers.is_empty())
}
