//! Rendering a `compare` step: both DSNs, tables or queries, key and column names, as text
//! (names are quoted by the step's process, so a rendered name stays a name).

use super::Core;
use crate::db::compare::spec::{CompareSpec, From, SideSpec};
use crate::db::dsn::Dsn;
use crate::engine::actions::Prepared;
use crate::process::StepEnv;
use crate::runbook::model::{Compare, CompareFrom, CompareSide, Text};
use crate::runbook::render::{Escape, Values};

impl Core {
    pub(super) fn prepare_compare(
        &self,
        compare: &Compare,
        ctx: &Values,
        env: StepEnv,
        timeout: Option<std::time::Duration>,
    ) -> Result<Prepared, String> {
        let text = |t: &Text, what: &str| {
            t.render(&self.renderer, ctx, Escape::None)
                .map_err(|e| format!("{what} cannot be rendered: {e}"))
        };
        let mut secrets = Vec::new();
        let mut side = |s: &CompareSide, name: &str| -> Result<SideSpec, String> {
            let dsn = text(&s.dsn, &format!("the {name}'s DSN"))?;
            // The message never quotes the DSN: it may hold a password.
            let parsed =
                Dsn::parse(&dsn).map_err(|e| format!("the {name}'s `dsn`: {e}; {}", e.hint()))?;
            secrets.extend(parsed.secrets());
            let from = match &s.from {
                CompareFrom::Table(t) => From::Table(text(t, &format!("the {name}'s table"))?),
                CompareFrom::Query(q) => From::Query(text(q, &format!("the {name}'s query"))?),
            };
            Ok(SideSpec { dsn, from })
        };
        let source = side(&compare.source, "source")?;
        let target = side(&compare.target, "target")?;
        let names = |list: &[Text], what: &str| {
            list.iter()
                .map(|t| text(t, what))
                .collect::<Result<Vec<_>, _>>()
        };
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the sensei binary that runs `compare` steps: {e}"))?;
        Ok(Prepared::Compare {
            spec: Box::new(CompareSpec {
                source,
                target,
                key: names(&compare.key, "`key`")?,
                columns: names(&compare.columns, "`columns`")?,
                ranges: compare.ranges,
                samples: compare.samples,
                timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            }),
            exe,
            env,
            secrets,
        })
    }
}
