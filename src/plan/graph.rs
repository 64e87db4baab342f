//! Waves and the critical path of a plan's DAG, with phases as barriers.

use super::PlanStep;
use crate::runbook::model::Phase;
use petgraph::Direction;
use petgraph::graph::DiGraph;

/// Per plan step: its wave (1-based, numbered across phases); and the critical path.
#[derive(Debug)]
pub(super) struct Layout {
    pub wave: Vec<usize>,
    pub critical_path: Vec<usize>,
}

impl Layout {
    /// The ids of a phase's steps, wave by wave.
    pub fn waves_of(&self, phase: Phase, steps: &[PlanStep]) -> Vec<Vec<String>> {
        let mut waves: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
        for (i, s) in steps.iter().enumerate().filter(|(_, s)| s.phase == phase) {
            waves.entry(self.wave[i]).or_default().push(s.id.clone());
        }
        waves.into_values().collect()
    }
}

/// `weights[i]` is (estimated milliseconds, 1): the critical path is the chain with the most
/// estimated time, then the most steps.
pub(super) fn layout(dag: &DiGraph<usize, ()>, phases: &[Phase], weights: &[(u64, u64)]) -> Layout {
    let order =
        petgraph::algo::toposort(dag, None).unwrap_or_else(|_| dag.node_indices().collect());
    let n = phases.len();
    let mut local = vec![0usize; n];
    let mut best = vec![(0u64, 0u64); n];
    let mut prev: Vec<Option<usize>> = vec![None; n];
    for node in &order {
        let i = dag[*node];
        let mut wave = 1;
        let mut longest: (u64, u64) = (0, 0);
        for pred in dag.neighbors_directed(*node, Direction::Incoming) {
            let j = dag[pred];
            // A step of an earlier phase is behind the barrier: it does not shape this phase.
            if phases[j] != phases[i] {
                continue;
            }
            wave = wave.max(local[j] + 1);
            // Ties go to the step written first, so the path is stable.
            if best[j] > longest || (best[j] == longest && prev[i].is_some_and(|p| j < p)) {
                longest = best[j];
                prev[i] = Some(j);
            }
        }
        local[i] = wave;
        best[i] = (longest.0 + weights[i].0, longest.1 + weights[i].1);
    }
    let mut wave = vec![0; n];
    let mut critical_path = Vec::new();
    let mut offset = 0;
    for phase in Phase::ALL {
        let members: Vec<usize> = (0..n).filter(|&i| phases[i] == phase).collect();
        for &i in &members {
            wave[i] = offset + local[i];
        }
        offset += members.iter().map(|&i| local[i]).max().unwrap_or(0);
        if let Some(&end) = members
            .iter()
            .max_by_key(|&&i| (best[i], std::cmp::Reverse(i)))
        {
            let mut chain = vec![end];
            while let Some(p) = prev[*chain.last().expect("non-empty")] {
                chain.push(p);
            }
            chain.reverse();
            critical_path.extend(chain);
        }
    }
    Layout {
        wave,
        critical_path,
    }
}
