//! Renderings of a plan: text for the terminal, JSON for tools, Mermaid and DOT diagrams, and
//! Markdown to paste into a pull request.

mod markdown;

pub use markdown::markdown;

use super::{Plan, PlanStep};
use crate::runbook::model::{OnClose, OnTimeout, Phase};
use std::fmt::Write as _;

/// The plan for a terminal.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plan for {}", plan.runbook);
    let _ = writeln!(out, "digest {}", plan.digest);
    if !plan.params.is_empty() {
        let _ = writeln!(out, "params {}", params_line(plan));
    }
    let _ = writeln!(out, "\nphases");
    for phase in &plan.phases {
        let steps: usize = phase.waves.iter().map(Vec::len).sum();
        if steps == 0 {
            let _ = writeln!(
                out,
                "  {:<9} no steps: passes at once",
                phase.phase.as_str()
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<9} {steps} step{}, {} wave{}",
            phase.phase.as_str(),
            plural(steps),
            phase.waves.len(),
            plural(phase.waves.len())
        );
        for wave in &phase.waves {
            let number = plan.step(&wave[0]).map_or(0, |s| s.wave);
            let names: Vec<String> = wave.iter().map(|id| decorated(plan, id)).collect();
            let _ = writeln!(out, "    wave {number:<3} {}", names.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "\ncritical path ({} step{}{})",
        plan.critical_path.len(),
        plural(plan.critical_path.len()),
        plan.critical_path_estimate
            .as_deref()
            .map(|e| format!(", about {e}"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "  {}", plan.critical_path.join(" → "));
    if !plan.gates.is_empty() {
        let _ = writeln!(out, "\ngates");
        for g in &plan.gates {
            let _ = writeln!(out, "  {}: {}", g.id, gate_summary(g));
        }
    } else {
        let _ = writeln!(
            out,
            "\ngates\n  none: the migration is approved with reason `no gates`"
        );
    }
    for w in &plan.windows {
        let _ = writeln!(
            out,
            "\nwindow {}: cron \"{}\" {}, open {}, cutoff {}, on close {}",
            w.name,
            w.cron,
            w.timezone,
            w.duration,
            w.cutoff,
            on_close(w.on_close)
        );
        let _ = writeln!(
            out,
            "  bound steps: {}",
            if w.steps.is_empty() {
                "none".to_owned()
            } else {
                w.steps.join(", ")
            }
        );
        if let Some(fit) = &w.fit {
            let _ = writeln!(out, "  fits: {}", fit_summary(fit));
            if let Some(problem) = &fit.problem {
                let _ = writeln!(
                    out,
                    "  warning: the bound work does not fit in window {}: {problem}",
                    w.name
                );
            }
        }
        for o in &w.openings {
            let _ = writeln!(out, "  opens {}", o.display);
            if let Some(dst) = &o.dst {
                let _ = writeln!(out, "    note: {dst}");
            }
        }
    }
    for s in &plan.schedules {
        let _ = writeln!(
            out,
            "\nschedule \"{}\" {} (overlap {}, catch-up {})",
            s.cron,
            s.timezone,
            lower(s.overlap),
            lower(s.catch_up)
        );
        let _ = writeln!(out, "  next: {}", s.display.join(", "));
    }
    for t in &plan.triggers {
        let _ = writeln!(out, "\ntrigger POST /v1/hooks/{t}");
    }
    out
}

/// The plan as JSON (the shape of `Plan`).
pub fn json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).unwrap_or_default();
    text.push('\n');
    text
}

/// A Mermaid flowchart: one subgraph per phase, an arrow per `needs`.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    let index = ids(plan);
    let mut previous: Option<Phase> = None;
    for phase in plan.phases.iter().filter(|p| !p.waves.is_empty()) {
        let _ = writeln!(
            out,
            "  subgraph {}[\"{}\"]",
            phase.phase.as_str(),
            phase.phase.as_str()
        );
        for id in phase.waves.iter().flatten() {
            if let Some(step) = plan.step(id) {
                let label = escape_mermaid(&label(plan, step));
                let (open, close) = match step.action {
                    "gate" => ("{{", "}}"),
                    "wait" => ("([", "])"),
                    "check" => ("[/", "/]"),
                    _ => ("[", "]"),
                };
                let _ = writeln!(out, "    {}{open}\"{label}\"{close}", index(id));
            }
        }
        out.push_str("  end\n");
        if let Some(prev) = previous {
            let _ = writeln!(out, "  {} ==> {}", prev.as_str(), phase.phase.as_str());
        }
        previous = Some(phase.phase);
    }
    for step in &plan.steps {
        for need in &step.needs {
            let _ = writeln!(out, "  {} --> {}", index(need), index(&step.id));
        }
    }
    out
}

/// A Graphviz DOT graph: one cluster per phase, an edge per `needs`.
pub fn dot(plan: &Plan) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];\n",
        plan.runbook
    );
    let index = ids(plan);
    for phase in plan.phases.iter().filter(|p| !p.waves.is_empty()) {
        let _ = writeln!(
            out,
            "  subgraph cluster_{} {{\n    label=\"{}\";",
            phase.phase.as_str(),
            phase.phase.as_str()
        );
        for id in phase.waves.iter().flatten() {
            if let Some(step) = plan.step(id) {
                let shape = match step.action {
                    "gate" => "hexagon",
                    "wait" => "ellipse",
                    "check" => "diamond",
                    _ => "box",
                };
                let _ = writeln!(
                    out,
                    "    {} [label=\"{}\", shape={shape}];",
                    index(id),
                    escape_dot(&label(plan, step))
                );
            }
        }
        out.push_str("  }\n");
    }
    for step in &plan.steps {
        for need in &step.needs {
            let _ = writeln!(out, "  {} -> {};", index(need), index(&step.id));
        }
    }
    out.push_str("}\n");
    out
}

/// Diagram node names (`s0`, `s1`, ...) by plan step id: ids may hold `[` and `-`.
fn ids(plan: &Plan) -> impl Fn(&str) -> String + '_ {
    let map: std::collections::HashMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    move |id: &str| format!("s{}", map.get(id).copied().unwrap_or(usize::MAX))
}

fn label(plan: &Plan, step: &PlanStep) -> String {
    let mut label = step.id.clone();
    if let Some(w) = &step.window {
        let _ = write!(label, " ⏱ {w}");
    }
    if step.action == "gate"
        && let Some(g) = plan.gates.iter().find(|g| g.id == step.id)
    {
        if g.approvers.is_empty() {
            let _ = write!(label, " ({} of anyone)", g.required);
        } else {
            let _ = write!(label, " ({} of {})", g.required, g.approvers.len());
        }
    }
    label
}

/// A step id with what an operator should notice about it.
fn decorated(plan: &Plan, id: &str) -> String {
    let Some(step) = plan.step(id) else {
        return id.to_owned();
    };
    let mut notes = Vec::new();
    if step.action != "run" {
        notes.push(step.action.to_owned());
    }
    if let Some(w) = &step.window {
        notes.push(format!("window {w}"));
    }
    if let Some(p) = &step.pool {
        notes.push(format!("pool {p}"));
    }
    if step.dynamic {
        notes.push("fan-out at run time".into());
    }
    if step.point_of_no_return {
        notes.push("POINT OF NO RETURN: a rollback stops here once it has succeeded".into());
    }
    if notes.is_empty() {
        id.to_owned()
    } else {
        format!("{id} ({})", notes.join(", "))
    }
}

/// `true (bound work a → b, 26m: last start +21m, cutoff +3h30m; done +26m, close +4h)`:
/// offsets from the opening.
fn fit_summary(fit: &super::WindowFit) -> String {
    let chain = fit.chain.join(" → ");
    match (fit.fits, &fit.work, &fit.last_start) {
        (Some(fits), Some(work), Some(start)) => format!(
            "{fits} (bound work {chain}, {work}: last start +{start}, cutoff +{}; done +{work}, close +{})",
            fit.start_before, fit.done_by
        ),
        _ => format!("unknown (no estimate: {})", fit.unestimated.join(", ")),
    }
}

fn gate_summary(g: &super::GatePlan) -> String {
    let who = if g.approvers.is_empty() {
        "anyone but the starter".to_owned()
    } else {
        g.approvers.join(", ")
    };
    let mut text = format!("{} of {who}", g.required);
    if !g.roles.is_empty() {
        let _ = write!(text, " holding {}", g.roles.join(" or "));
    }
    if let Some(t) = &g.timeout {
        let then = match g.on_timeout {
            OnTimeout::Fail => "fail",
            OnTimeout::Cancel => "cancel",
            OnTimeout::Approve => "approve",
        };
        let _ = write!(text, "; after {t}: {then}");
    }
    text
}

fn on_close(o: OnClose) -> &'static str {
    match o {
        OnClose::Pause => "pause",
        OnClose::Rollback => "rollback",
        OnClose::Fail => "fail",
    }
}

fn params_line(plan: &Plan) -> String {
    plan.params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn escape_mermaid(text: &str) -> String {
    text.replace('"', "#quot;")
}

fn escape_dot(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The wire name of a settings enum (`skip`, `latest`).
fn lower(value: impl std::fmt::Debug) -> String {
    format!("{value:?}").to_lowercase()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
