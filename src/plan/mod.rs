//! Plans: a checked runbook with concrete params, resolved into the DAG that will run.
//!
//! `build` expands `for_each` over lists known now (`copy[orders]`, or `copy[#1]` for secret
//! elements; see `fanout.rs`), keeps a placeholder for fan-outs over step outputs (`copy[*]`),
//! wires `needs` (needing a fan-out step means needing every expansion), and derives what an
//! operator reviews before approving: waves per phase (phases are barriers), the critical
//! path, gates, the next window openings and schedule fire times, and a digest that approvals
//! bind to.

mod calendar;
mod fanout;
mod fit;
mod graph;
pub mod render;

pub use calendar::{Opening, SchedulePlan, WindowPlan};
pub use fanout::{base_step, item_label, item_labels};
pub use fit::WindowFit;

use crate::runbook::duration::Duration;
use crate::runbook::model::{Action, OnTimeout, Phase, Runbook};
use crate::runbook::params::{self, Params};
use crate::runbook::render::{Masker, secret_values};
use chrono::{DateTime, Utc};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::Value as Json;
use sha2::{Digest as _, Sha256};

/// One node of the plan: a step, or one expansion of a fan-out step.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    /// `copy`, `copy[orders]`, `copy[#1]` for a secret element, or `copy[*]` for a fan-out
    /// over step outputs.
    pub id: String,
    /// The runbook step it comes from.
    pub step: String,
    /// The element of a fan-out expansion, as its templates read it (`{{item}}`). It may be
    /// a secret, so the plan never shows it: it shows `shown_item`.
    #[serde(skip)]
    pub item: Option<Json>,
    /// The element as the plan shows it, secrets masked.
    #[serde(rename = "item", skip_serializing_if = "Option::is_none")]
    pub shown_item: Option<Json>,
    pub phase: Phase,
    pub action: &'static str,
    /// Ids of the plan steps it needs.
    pub needs: Vec<String>,
    /// 1-based; steps of one wave can run together.
    pub wave: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<String>,
    /// Expanded only at run time (a `for_each` over step outputs).
    pub dynamic: bool,
    /// Once it has succeeded, a rollback undoes only the steps after it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub point_of_no_return: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhasePlan {
    pub phase: Phase,
    /// Plan step ids, grouped in waves (empty when the phase has no steps: it passes at once).
    pub waves: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatePlan {
    pub id: String,
    pub phase: Phase,
    pub approvers: Vec<String>,
    pub required: u32,
    /// Roles a decider's token must hold one of (through a server).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    pub on_timeout: OnTimeout,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub runbook: String,
    /// `sha256:<hex>` of the runbook text, its SQL files and the resolved params (secrets
    /// excluded).
    pub digest: String,
    /// Resolved params, secret values shown as `***`.
    pub params: Params,
    pub phases: Vec<PhasePlan>,
    pub steps: Vec<PlanStep>,
    pub critical_path: Vec<String>,
    /// Sum of the estimates along the critical path, when every step on it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_path_estimate: Option<String>,
    pub gates: Vec<GatePlan>,
    pub windows: Vec<WindowPlan>,
    pub schedules: Vec<SchedulePlan>,
    /// Webhook names: `POST /v1/hooks/<name>`.
    pub triggers: Vec<String>,
    /// When the openings and fire times were computed from.
    pub computed_at: DateTime<Utc>,
    /// Position of each plan step in `steps`, by id.
    #[serde(skip)]
    index: std::collections::HashMap<String, usize>,
}

impl Plan {
    pub fn step(&self, id: &str) -> Option<&PlanStep> {
        self.index.get(id).map(|&i| &self.steps[i])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "`for_each` of step `{step}` has `{item}` twice; each element names an expansion, so elements must differ"
    )]
    DuplicateItem { step: String, item: String },
    #[error(
        "`for_each` of step `{step}` has the same element at #{first} and #{second}; elements must differ"
    )]
    DuplicateSecretItem {
        step: String,
        first: usize,
        second: usize,
    },
    #[error("`for_each` of step `{step}` must be a list, but {path} is {found}")]
    NotAList {
        step: String,
        path: String,
        found: &'static str,
    },
}

/// Resolves a checked runbook with concrete params into a plan. `now` is when window
/// openings and schedule fire times are computed from.
pub fn build(
    runbook: &Runbook,
    runbook_text: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    let masker = Masker::new(secret_values(runbook, params));
    let steps = fanout::expand(runbook, params, &masker)?;
    // Runbook steps by id: looked up once per plan step, so the plan stays linear in size.
    let by_id: std::collections::HashMap<&str, &crate::runbook::model::Step> =
        runbook.steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut dag = DiGraph::<usize, ()>::with_capacity(steps.len(), steps.len() * 2);
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| dag.add_node(i)).collect();
    let mut by_step: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        by_step.entry(s.step.as_str()).or_default().push(i);
    }
    let mut needs_of: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        let step = by_id[s.step.as_str()];
        for need in &step.needs {
            for &j in by_step.get(need.as_str()).into_iter().flatten() {
                dag.add_edge(nodes[j], nodes[i], ());
                needs_of[i].push(j);
            }
        }
    }
    let phases: Vec<Phase> = steps.iter().map(|s| s.phase).collect();
    let weights: Vec<(u64, u64)> = steps
        .iter()
        .map(|s| {
            let estimate = by_id[s.step.as_str()].estimate;
            (estimate.map_or(0, Duration::as_millis), 1)
        })
        .collect();
    let layout = graph::layout(&dag, &phases, &weights);
    let mut plan_steps: Vec<PlanStep> = steps
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.wave = layout.wave[i];
            s
        })
        .collect();
    let ids: Vec<String> = plan_steps.iter().map(|s| s.id.clone()).collect();
    for (s, needs) in plan_steps.iter_mut().zip(&needs_of) {
        s.needs = needs.iter().map(|&j| ids[j].clone()).collect();
    }
    let phases = Phase::ALL
        .iter()
        .map(|&phase| PhasePlan {
            phase,
            waves: layout.waves_of(phase, &plan_steps),
        })
        .collect();
    let masked = params::masked(runbook, params);
    Ok(Plan {
        runbook: runbook.name.clone(),
        digest: digest(runbook_text, &runbook.files(), &masked),
        critical_path: layout
            .critical_path
            .iter()
            .map(|&i| ids[i].clone())
            .collect(),
        critical_path_estimate: critical_estimate(&by_id, &plan_steps, &layout.critical_path),
        params: masked,
        gates: gates(&by_id, &plan_steps),
        windows: calendar::windows(runbook, &plan_steps, now),
        schedules: calendar::schedules(runbook, now),
        triggers: runbook.triggers.iter().map(|t| t.webhook.clone()).collect(),
        phases,
        index: ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect(),
        steps: plan_steps,
        computed_at: now,
    })
}

/// sha256 over the runbook text, the SQL files it reads (by path, with their text; a
/// runbook without any has the digest it always had) and the canonical JSON of the
/// (masked) params.
pub fn digest(
    runbook_text: &str,
    files: &std::collections::BTreeMap<String, String>,
    masked_params: &Params,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"sensei-plan-v1\n");
    hasher.update(runbook_text.as_bytes());
    hasher.update(b"\n");
    for (path, text) in files {
        // Lengths first, so no two sets of files hash alike.
        hasher.update(format!("file {} {}\n", path.len(), text.len()).as_bytes());
        hasher.update(path.as_bytes());
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(
        serde_json::to_string(masked_params)
            .unwrap_or_default()
            .as_bytes(),
    );
    let bytes = hasher.finalize();
    format!("sha256:{}", base16ct::lower::encode_string(&bytes))
}

type StepsById<'a> = std::collections::HashMap<&'a str, &'a crate::runbook::model::Step>;

fn gates(by_id: &StepsById, steps: &[PlanStep]) -> Vec<GatePlan> {
    steps
        .iter()
        .filter_map(|s| {
            let step = by_id.get(s.step.as_str())?;
            let Action::Gate(gate) = &step.action else {
                return None;
            };
            Some(GatePlan {
                id: s.id.clone(),
                phase: s.phase,
                approvers: gate.approvers.clone(),
                required: gate.required,
                roles: gate.roles.clone(),
                timeout: gate.timeout.map(|t| t.to_string()),
                on_timeout: gate.on_timeout,
            })
        })
        .collect()
}

fn critical_estimate(by_id: &StepsById, steps: &[PlanStep], path: &[usize]) -> Option<String> {
    let mut total = std::time::Duration::ZERO;
    for &i in path {
        total += by_id.get(steps[i].step.as_str())?.estimate?.as_std();
    }
    Some(Duration(total).to_string())
}
