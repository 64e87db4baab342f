//! The run-time DAG of a migration: the plan's steps with their current rows, and the
//! questions the driver asks of them (what is ready, is a phase done, in which order to roll
//! back). Dynamic fan-outs grow the graph while it runs.
//!
//! Every state change of a node goes through [`Graph::set_state`], which keeps counters up
//! to date, so finding ready steps costs O(1) per change instead of a scan of the whole
//! graph: 10,000-step runbooks stay fast.

use crate::event::StepState;
use crate::plan::{Plan, item_labels};
use crate::runbook::model::{Phase, Runbook, Step};
use crate::runbook::render::Masker;
use crate::store::StepRow;
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};

/// One plan step while the migration runs.
#[derive(Debug, Clone)]
pub struct Node {
    /// Plan step id: `copy`, `copy[orders]`, `copy[#1]`, `copy[*]`.
    pub id: String,
    /// Index of its runbook step.
    pub step: usize,
    pub item: Option<Json>,
    pub phase: Phase,
    pub needs: Vec<usize>,
    /// A `for_each` over step outputs (`copy[*]`); once expanded it finishes with its
    /// expansions.
    pub placeholder: bool,
    pub expansions: Vec<usize>,
    pub row: StepRow,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    index: HashMap<String, usize>,
    dependents: Vec<Vec<usize>>,
    /// Needs of each node that do not yet let it run.
    unmet: Vec<usize>,
    /// Pending nodes with every need met, per phase (in plan order).
    ready: [BTreeSet<usize>; 5],
    /// Nodes per phase that have not succeeded or been skipped.
    open: [usize; 5],
    /// Nodes per phase running, retrying or waiting.
    active: [usize; 5],
}

fn slot(phase: Phase) -> usize {
    Phase::ALL.iter().position(|&p| p == phase).unwrap_or(0)
}

fn is_active(state: StepState) -> bool {
    matches!(
        state,
        StepState::Running | StepState::Retrying | StepState::Waiting
    )
}

impl Graph {
    /// The graph of a plan, every row pending.
    pub fn from_plan(runbook: &Runbook, plan: &Plan) -> Graph {
        let steps: HashMap<&str, usize> = runbook
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut graph = Graph::default();
        for s in &plan.steps {
            let needs = s.needs.iter().filter_map(|n| graph.find(n)).collect();
            graph.push(Node {
                id: s.id.clone(),
                step: steps.get(s.step.as_str()).copied().unwrap_or(0),
                item: s.item.clone(),
                phase: s.phase,
                needs,
                placeholder: s.dynamic,
                expansions: Vec::new(),
                row: pending(&s.id),
            });
        }
        graph
    }

    /// Adds a pending node; its needs must already be in the graph (plan order is
    /// topological within what it needs).
    fn push(&mut self, node: Node) -> usize {
        let i = self.nodes.len();
        let unmet = node
            .needs
            .iter()
            .filter(|&&n| !self.nodes[n].row.state.lets_dependents_run())
            .count();
        for &n in &node.needs {
            self.dependents[n].push(i);
        }
        let phase = slot(node.phase);
        self.open[phase] += 1;
        if unmet == 0 {
            self.ready[phase].insert(i);
        }
        self.index.insert(node.id.clone(), i);
        self.nodes.push(node);
        self.dependents.push(Vec::new());
        self.unmet.push(unmet);
        i
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn step<'r>(&self, runbook: &'r Runbook, i: usize) -> &'r Step {
        &runbook.steps[self.nodes[i].step]
    }

    /// Changes a node's state, keeping readiness and the phase counters right.
    pub fn set_state(&mut self, i: usize, to: StepState) {
        let from = self.nodes[i].row.state;
        if from == to {
            return;
        }
        let phase = slot(self.nodes[i].phase);
        self.nodes[i].row.state = to;
        if from == StepState::Pending {
            self.ready[phase].remove(&i);
        }
        if to == StepState::Pending && self.unmet[i] == 0 {
            self.ready[phase].insert(i);
        }
        match (is_active(from), is_active(to)) {
            (true, false) => self.active[phase] -= 1,
            (false, true) => self.active[phase] += 1,
            _ => {}
        }
        let (was_done, is_done) = (from.lets_dependents_run(), to.lets_dependents_run());
        if was_done == is_done {
            return;
        }
        if is_done {
            self.open[phase] -= 1;
        } else {
            self.open[phase] += 1;
        }
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            let dphase = slot(self.nodes[d].phase);
            if is_done {
                self.unmet[d] -= 1;
                if self.unmet[d] == 0 && self.nodes[d].row.state == StepState::Pending {
                    self.ready[dphase].insert(d);
                }
            } else {
                self.unmet[d] += 1;
                self.ready[dphase].remove(&d);
            }
        }
    }

    /// Adds the expansions of a dynamic fan-out (`copy[a]`, `copy[b]`) beside its placeholder;
    /// they need what it needs, and its dependents keep waiting on the placeholder, which
    /// finishes with them. They are named as `sensei plan` names static ones
    /// ([`item_labels`]): by position when an element shows a secret.
    pub fn expand(&mut self, placeholder: usize, items: &[Json], masker: &Masker) -> Vec<usize> {
        let base = self.nodes[placeholder].clone();
        let name = base.id.trim_end_matches("[*]").to_owned();
        let mut added = Vec::with_capacity(items.len());
        for (item, label) in items.iter().zip(item_labels(items, masker, false)) {
            let id = format!("{name}[{label}]");
            let i = match self.find(&id) {
                Some(i) => i,
                None => self.push(Node {
                    row: pending(&id),
                    id,
                    item: Some(item.clone()),
                    placeholder: false,
                    expansions: Vec::new(),
                    ..base.clone()
                }),
            };
            added.push(i);
        }
        self.nodes[placeholder].expansions.clone_from(&added);
        added
    }

    /// Pending nodes of `phase` whose needs are met, in plan order.
    pub fn ready(&self, phase: Phase) -> impl Iterator<Item = usize> + '_ {
        self.ready[slot(phase)].iter().copied()
    }

    /// Every node of the phase succeeded or was skipped.
    pub fn phase_done(&self, phase: Phase) -> bool {
        self.open[slot(phase)] == 0
    }

    /// Nothing more can happen in the phase by itself: it is not done, yet nothing in it is
    /// ready, running, retrying or waiting (a failed step blocks its dependents).
    pub fn phase_stuck(&self, phase: Phase) -> bool {
        let s = slot(phase);
        self.open[s] > 0 && self.active[s] == 0 && self.ready[s].is_empty()
    }

    pub fn of_phase(&self, phase: Phase) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| self.nodes[i].phase == phase)
    }

    /// The nodes that need node `i` directly.
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// Dependencies before dependents (Kahn's algorithm; the plan has no cycles).
    pub fn topological_order(&self) -> Vec<usize> {
        let mut indegree: Vec<usize> = self.nodes.iter().map(|n| n.needs.len()).collect();
        let mut queue: std::collections::VecDeque<usize> = (0..self.nodes.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = queue.pop_front() {
            order.push(i);
            for &d in &self.dependents[i] {
                indegree[d] -= 1;
                if indegree[d] == 0 {
                    queue.push_back(d);
                }
            }
        }
        order
    }
}

/// A fresh row.
pub fn pending(id: &str) -> StepRow {
    StepRow::new(id, StepState::Pending)
}
