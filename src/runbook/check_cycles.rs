//! Cycles in `needs`: each strongly connected component (petgraph's Tarjan) is reported once,
//! as the chain of its steps in the order they were written (`a → c → b → a`).

use super::check::Checker;
use super::raw::{Phase, RawStep};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet};

impl Checker<'_> {
    /// Reports each cycle of `needs` once, as the chain of its steps.
    pub(super) fn cycles(&mut self, steps: &[&RawStep], _phases: &HashMap<String, Phase>) {
        let mut graph = DiGraph::<usize, ()>::new();
        let mut index: HashMap<&str, NodeIndex> = HashMap::new();
        for (i, raw) in steps.iter().enumerate() {
            index
                .entry(raw.id.value.as_str())
                .or_insert_with(|| graph.add_node(i));
        }
        for raw in steps {
            let from = index[raw.id.value.as_str()];
            for need in raw.needs.iter().flatten() {
                if let Some(to) = index.get(need.value.as_str()) {
                    graph.add_edge(from, *to, ());
                }
            }
        }
        for scc in petgraph::algo::tarjan_scc(&graph) {
            let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: HashSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc.iter().min_by_key(|n| graph[**n]).expect("non-empty");
            let chain = cycle_from(&graph, start, &members);
            let names: Vec<&str> = chain
                .iter()
                .map(|n| steps[graph[*n]].id.value.as_str())
                .collect();
            let first = steps[graph[start]];
            let second = names.get(1).copied().unwrap_or(names[0]);
            let span = first
                .needs
                .iter()
                .flatten()
                .find(|n| n.value == second)
                .map_or(first.id.span, |n| n.span);
            self.error(span, format!("steps form a cycle: {}", names.join(" → ")))
                .hint = Some("remove one of these `needs` so the steps can run in an order".into());
        }
    }
}

/// A cycle through `start` inside one strongly connected component, as `[start, ..., start]`.
fn cycle_from(
    graph: &DiGraph<usize, ()>,
    start: NodeIndex,
    members: &HashSet<NodeIndex>,
) -> Vec<NodeIndex> {
    // Depth-first search for a path back to `start`; within an SCC one always exists.
    let ordered = |n: NodeIndex| {
        let mut next: Vec<NodeIndex> = graph.neighbors(n).collect();
        // Pop order follows the order `needs` were written in.
        next.sort_by_key(|m| std::cmp::Reverse(m.index()));
        next
    };
    let mut stack = vec![(start, ordered(start))];
    let mut on_path = HashSet::from([start]);
    while let Some((_, next)) = stack.last_mut() {
        let Some(n) = next.pop() else {
            if let Some((done, _)) = stack.pop() {
                on_path.remove(&done);
            }
            continue;
        };
        if n == start {
            let mut chain: Vec<NodeIndex> = stack.iter().map(|(n, _)| *n).collect();
            chain.push(start);
            return chain;
        }
        if members.contains(&n) && on_path.insert(n) {
            stack.push((n, ordered(n)));
        }
    }
    vec![start, start]
}
