//! The Markdown rendering of a plan, to paste into a pull request or change ticket.

use super::{fit_summary, gate_summary, lower, mermaid, on_close, params_line};
use crate::plan::Plan;
use std::fmt::Write as _;

/// Markdown for a pull request: digest, a Mermaid graph, the phase table, gates, windows and
/// schedules.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!(
        "### Sensei plan: `{}`\n\nDigest: `{}`\n\n",
        plan.runbook, plan.digest
    );
    if !plan.params.is_empty() {
        let _ = writeln!(out, "Params: {}\n", params_line(plan).replace('|', "\\|"));
    }
    let _ = writeln!(out, "```mermaid\n{}```\n", mermaid(plan));
    out.push_str("| phase | steps | waves |\n|---|---|---|\n");
    for phase in &plan.phases {
        let steps: Vec<String> = phase
            .waves
            .iter()
            .flatten()
            .map(|id| format!("`{id}`"))
            .collect();
        let shown = if steps.is_empty() {
            "(none: passes at once)".to_owned()
        } else {
            steps.join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {shown} | {} |",
            phase.phase.as_str(),
            phase.waves.len()
        );
    }
    let _ = writeln!(
        out,
        "\n**Critical path** ({} steps): {}\n",
        plan.critical_path.len(),
        plan.critical_path
            .iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(" → ")
    );
    if plan.gates.is_empty() {
        out.push_str("**Gates:** none (approved with reason `no gates`)\n\n");
    } else {
        out.push_str("| gate | phase | approval |\n|---|---|---|\n");
        for g in &plan.gates {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                g.id,
                g.phase.as_str(),
                gate_summary(g)
            );
        }
        out.push('\n');
    }
    if !plan.windows.is_empty() {
        out.push_str("| window | when | open | cutoff | on close | bound steps | bound work fits | next openings |\n|---|---|---|---|---|---|---|---|\n");
        for w in &plan.windows {
            let openings: Vec<String> = w
                .openings
                .iter()
                .map(|o| match &o.dst {
                    Some(dst) => format!("{} (⚠ {dst})", o.display),
                    None => o.display.clone(),
                })
                .collect();
            let steps: Vec<String> = w.steps.iter().map(|s| format!("`{s}`")).collect();
            let _ = writeln!(
                out,
                "| `{}` | `{}` {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                w.cron,
                w.timezone,
                w.duration,
                w.cutoff,
                on_close(w.on_close),
                steps.join(", "),
                w.fit
                    .as_ref()
                    .map_or("(no bound steps)".to_owned(), fit_summary),
                openings.join("<br>")
            );
        }
        out.push('\n');
        for w in &plan.windows {
            if let Some(problem) = w.fit.as_ref().and_then(|f| f.problem.as_ref()) {
                let _ = writeln!(
                    out,
                    "> **Warning:** the bound work does not fit in window `{}`: {problem}\n",
                    w.name
                );
            }
        }
    }
    if !plan.schedules.is_empty() {
        out.push_str("| schedule | overlap | catch-up | next fire times |\n|---|---|---|---|\n");
        for s in &plan.schedules {
            let _ = writeln!(
                out,
                "| `{}` {} | {} | {} | {} |",
                s.cron,
                s.timezone,
                lower(s.overlap),
                lower(s.catch_up),
                s.display.join("<br>")
            );
        }
        out.push('\n');
    }
    for t in &plan.triggers {
        let _ = writeln!(out, "Trigger: `POST /v1/hooks/{t}`\n");
    }
    out
}
