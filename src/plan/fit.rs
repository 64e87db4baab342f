//! Whether a window is long enough for the work bound to it, from the steps' `estimate`s.
//!
//! The bound work of a window is every chain of `needs` that starts and ends at a step bound
//! to it, with the unbound steps in between (they run inside the window too, between two bound
//! steps). Counting from the opening, and assuming steps that can run together do (enough
//! `concurrency` and pool slots), each step starts when its bound predecessors are done. The
//! work fits when every bound step starts before the cutoff (`duration - cutoff` after the
//! opening, the same rule the engine applies) and all of it is done by the close. A window's
//! `duration` is elapsed time, so the answer is the same for every opening, DST or not.

use super::PlanStep;
use crate::runbook::duration::Duration;
use crate::runbook::model::{Runbook, Window};
use serde::Serialize;
use std::collections::HashMap;

/// How the estimated bound work of a window compares with the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WindowFit {
    /// `true` or `false`; `null` when a step of the bound work has no `estimate`.
    pub fits: Option<bool>,
    /// The chain that ends last, from its first bound step to its last.
    pub chain: Vec<String>,
    /// Estimated time from the opening until the bound work is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work: Option<String>,
    /// When the last bound step to start starts, counted from the opening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_start: Option<String>,
    /// Bound steps must start before this, counted from the opening (`duration - cutoff`).
    pub start_before: String,
    /// The bound work must be done by this, counted from the opening (`duration`).
    pub done_by: String,
    /// Steps of the bound work without an `estimate`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unestimated: Vec<String>,
    /// Why it does not fit, when it does not: `it ends 4h20m after opening, after the close
    /// at 4h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The fit of `window`'s bound work, or `None` when no step is bound to it.
pub(super) fn fit(runbook: &Runbook, steps: &[PlanStep], window: &Window) -> Option<WindowFit> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let preds: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            s.needs
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect();
    let bound: Vec<bool> = steps
        .iter()
        .map(|s| s.window.as_deref() == Some(window.name.as_str()))
        .collect();
    if !bound.contains(&true) {
        return None;
    }
    // Waves grow along `needs` (across phases too), so wave order is a topological order.
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| steps[i].wave);
    // After a bound step, and before one: the steps that run inside the window.
    let mut after = bound.clone();
    for &i in &order {
        after[i] |= preds[i].iter().any(|&j| after[j]);
    }
    let mut before = bound.clone();
    for &i in order.iter().rev() {
        for &j in &preds[i] {
            before[j] |= before[i];
        }
    }
    let inside = |i: usize| after[i] && before[i];
    let estimate = |i: usize| {
        runbook
            .step(&steps[i].step)
            .and_then(|s| s.estimate)
            .map(Duration::as_millis)
    };
    let mut start = vec![0u64; steps.len()];
    let mut finish = vec![0u64; steps.len()];
    let mut prev: Vec<Option<usize>> = vec![None; steps.len()];
    let mut unestimated = Vec::new();
    for &i in order.iter().filter(|&&i| inside(i)) {
        if let Some(&j) = preds[i]
            .iter()
            .filter(|&&j| inside(j))
            .max_by_key(|&&j| (finish[j], std::cmp::Reverse(j)))
        {
            start[i] = finish[j];
            prev[i] = Some(j);
        }
        let own = estimate(i).unwrap_or_else(|| {
            unestimated.push(steps[i].id.clone());
            0
        });
        finish[i] = start[i].saturating_add(own);
    }
    let last = |of: &[u64]| {
        (0..steps.len())
            .filter(|&i| bound[i])
            .max_by_key(|&i| (of[i], std::cmp::Reverse(i)))
    };
    let (ends_last, starts_last) = (last(&finish)?, last(&start)?);
    let mut chain = vec![ends_last];
    while let Some(p) = chain.last().and_then(|&c| prev[c]) {
        chain.push(p);
    }
    chain.reverse();
    let duration = window.duration.as_millis();
    let start_before = duration.saturating_sub(window.cutoff.as_millis());
    let (work, last_start) = (finish[ends_last], start[starts_last]);
    let known = unestimated.is_empty();
    let text = |ms: u64| Duration(std::time::Duration::from_millis(ms)).to_string();
    let mut problems = Vec::new();
    if known && work > duration {
        problems.push(format!(
            "it ends {} after opening, after the close at {}",
            text(work),
            window.duration
        ));
    }
    if known && last_start >= start_before {
        problems.push(format!(
            "`{}` starts {} after opening, not before the cutoff at {}",
            steps[starts_last].id,
            text(last_start),
            text(start_before)
        ));
    }
    Some(WindowFit {
        fits: known.then_some(problems.is_empty()),
        chain: chain.iter().map(|&i| steps[i].id.clone()).collect(),
        work: known.then(|| text(work)),
        last_start: known.then(|| text(last_start)),
        start_before: text(start_before),
        done_by: window.duration.to_string(),
        unestimated,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}
