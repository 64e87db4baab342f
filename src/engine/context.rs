//! The values templates see while a migration runs (SPEC §2 roots): `params`, `steps.<id>`
//! (`outputs`, `status`), `item`, `migration` and `runbook`.

use super::graph::Graph;
use crate::event::MigrationId;
use crate::runbook::params::Params;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};

/// The parts of the context that do not change while a step runs.
#[derive(Debug, Clone)]
pub struct Context {
    pub params: Params,
    pub migration: MigrationId,
    pub runbook: String,
    pub started_at: DateTime<Utc>,
}

impl Context {
    /// The context of one node: its item, and the outputs and status of every step that has
    /// finished. Fan-out expansions are visible by their own ids (`steps.copy[orders]`);
    /// a single step by its id.
    pub fn for_node(&self, graph: &Graph, node: usize, state: &str) -> Json {
        let mut steps = Map::new();
        for n in &graph.nodes {
            if n.row.state.is_settled() || n.row.outputs.is_some() {
                steps.insert(
                    n.id.clone(),
                    json!({
                        "outputs": n.row.outputs.clone().unwrap_or_else(|| json!({})),
                        "status": n.row.state.as_str(),
                    }),
                );
            }
        }
        let mut ctx = self.base(state);
        if let Some(obj) = ctx.as_object_mut() {
            obj.insert("steps".into(), Json::Object(steps));
            if let Some(item) = &graph.nodes[node].item {
                obj.insert("item".into(), item.clone());
            }
        }
        ctx
    }

    /// What every template may read, whatever step it belongs to (the runbook's `env`).
    pub fn base(&self, state: &str) -> Json {
        json!({
            "params": Json::Object(self.params.clone()),
            "migration": {
                "id": self.migration.as_str(),
                "state": state,
                "started_at": self.started_at.to_rfc3339(),
            },
            "runbook": { "name": self.runbook },
        })
    }
}
