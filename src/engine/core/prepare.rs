//! Rendering a step's action into what runs: templates filled with the escaping their context
//! needs (shell-quoted commands, JSON-encoded bodies), before anything is committed or spawned,
//! so a template that cannot render fails the step without running anything. An attempt goes
//! on from its step's last recorded checkpoint: `{{checkpoint}}` (see `Context::focus`) and
//! `$SENSEI_CHECKPOINT` ([`Core::attempt_env`]) both hold it.

use super::Core;
use crate::db::dsn::Dsn;
use crate::db::spec::SqlSpec;
use crate::engine::actions::Prepared;
use crate::engine::poll::Poll;
use crate::process::StepEnv;
use crate::runbook::model::{Action, Http, Probe, Sql, SqlSource, Text};
use crate::runbook::render::{Escape, Values};
use std::sync::Arc;

impl Core {
    pub(in crate::engine) fn prepare(
        &mut self,
        node: usize,
        action: &Action,
        json_outputs: bool,
    ) -> Result<Prepared, String> {
        let renders = match action {
            Action::Run(command) => command.is_template(),
            Action::Http(_)
            | Action::Check(_)
            | Action::Sql(_)
            | Action::Copy(_)
            | Action::Compare(_) => true,
            Action::Wait(_) | Action::Gate(_) => false,
        };
        if renders {
            self.focus(node);
        }
        let prepared = self.rendered(node, action, json_outputs)?;
        // A DSN's password found only now (rendered from step outputs) is masked from here
        // on in everything the migration records, not only in the attempt's own output.
        let secrets = match &prepared {
            Prepared::Sql { secrets, .. }
            | Prepared::Copy { secrets, .. }
            | Prepared::Compare { secrets, .. } => Some(secrets),
            Prepared::Poll(poll) => match &poll.probe {
                Some(Prepared::Sql { secrets, .. }) => Some(secrets),
                _ => None,
            },
            _ => None,
        };
        if let Some(secrets) = secrets
            && !self.masker.covers(secrets)
        {
            self.masker = Arc::new(self.masker.with(secrets));
        }
        Ok(prepared)
    }

    fn rendered(
        &self,
        node: usize,
        action: &Action,
        json_outputs: bool,
    ) -> Result<Prepared, String> {
        let ctx = self.ctx.values();
        let env = self.attempt_env(node);
        match action {
            Action::Run(command) => self.prepare_run(command, ctx, env, json_outputs),
            Action::Http(http) => self.prepare_http(node, http, ctx),
            // The wait is measured from the attempt's recorded start, not from whenever its
            // task first runs.
            Action::Wait(d) => Ok(Prepared::Wait {
                duration: d.as_std(),
                until: self.now
                    + chrono::Duration::from_std(d.as_std()).unwrap_or(chrono::Duration::MAX),
            }),
            Action::Check(template) => {
                let step = self.graph.step(&self.runbook, node);
                let Some(poll) = &step.poll else {
                    return Err("a check without `every` is decided when it starts".into());
                };
                let probe = match &poll.probe {
                    None => None,
                    Some(Probe::Run(command)) => {
                        Some(self.prepare_run(command, ctx, env, step.outputs.is_some())?)
                    }
                    Some(Probe::Http(http)) => Some(self.prepare_http(node, http, ctx)?),
                    // The poll gives each evaluation the time left as its process's timeout.
                    Some(Probe::Sql(sql)) => Some(self.prepare_sql(sql, ctx, env, None)?),
                };
                Ok(Prepared::Poll(Box::new(Poll {
                    template: template.clone(),
                    // The check renders again and again while the migration moves on: it
                    // keeps the values of now (and adds its probe's outputs).
                    ctx: ctx.json().clone(),
                    renderer: Arc::clone(&self.renderer),
                    probe,
                    every: poll.every.as_std(),
                    stable_for: poll.stable_for.as_std(),
                    timeout: step.timeout.map(|t| t.as_std()),
                    started: self.now,
                })))
            }
            Action::Sql(sql) => {
                let timeout = self.graph.step(&self.runbook, node).timeout;
                self.prepare_sql(sql, ctx, env, timeout.map(|t| t.as_std()))
            }
            Action::Copy(copy) => self.prepare_copy(node, copy, ctx, env),
            Action::Compare(compare) => {
                let timeout = self.graph.step(&self.runbook, node).timeout;
                self.prepare_compare(compare, ctx, env, timeout.map(|t| t.as_std()))
            }
            Action::Gate(_) => Err("a gate does not run".into()),
        }
    }

    /// A `sql` rendered: its DSN and query as text (a query's values inserted as they are:
    /// `params` is the way for values), its params as values, the file as written.
    fn prepare_sql(
        &self,
        sql: &Sql,
        ctx: &Values,
        env: StepEnv,
        timeout: Option<std::time::Duration>,
    ) -> Result<Prepared, String> {
        let dsn_text = sql
            .dsn
            .render(&self.renderer, ctx, Escape::None)
            .map_err(|e| format!("the DSN cannot be rendered: {e}"))?;
        // The message never quotes the DSN: it may hold a password.
        let dsn = Dsn::parse(&dsn_text).map_err(|e| format!("`dsn`: {e}; {}", e.hint()))?;
        let query = match &sql.source {
            SqlSource::Query(text) => text
                .render(&self.renderer, ctx, Escape::None)
                .map_err(|e| format!("the query cannot be rendered: {e}"))?,
            SqlSource::File { text, .. } => text.clone(),
        };
        let params = sql
            .params
            .iter()
            .map(|p| p.render(&self.renderer, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`params` cannot be rendered: {e}"))?;
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the sensei binary that runs `sql` steps: {e}"))?;
        Ok(Prepared::Sql {
            spec: SqlSpec {
                dsn: dsn_text,
                query,
                params,
                transaction: sql.transaction,
                timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            },
            exe,
            env,
            secrets: dsn.secrets(),
        })
    }

    /// The environment of an attempt of `node`: the migration's, with the step's last
    /// recorded checkpoint as `$SENSEI_CHECKPOINT`. Every action that starts a process for
    /// an attempt takes its environment from here.
    pub(in crate::engine) fn attempt_env(&self, node: usize) -> StepEnv {
        let checkpoint = self.graph.nodes[node].row.checkpoint.as_ref();
        self.env
            .with_checkpoint(checkpoint.map(|c| c.value.as_str()))
    }

    fn prepare_run(
        &self,
        command: &Text,
        ctx: &Values,
        env: StepEnv,
        json_outputs: bool,
    ) -> Result<Prepared, String> {
        let command = command
            .render(&self.renderer, ctx, Escape::Shell)
            .map_err(|e| format!("the command cannot be rendered: {e}"))?;
        Ok(Prepared::Run {
            command,
            env,
            json_outputs,
        })
    }

    fn prepare_http(&self, node: usize, http: &Http, ctx: &Values) -> Result<Prepared, String> {
        let text = |t: &Text| {
            t.render(&self.renderer, ctx, Escape::None)
                .map_err(|e| format!("the request cannot be rendered: {e}"))
        };
        let url = text(&http.url)?;
        let headers = http
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), text(v)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let body = match &http.body {
            Some(body) => Some(
                body.render(&self.renderer, ctx)
                    .map_err(|e| format!("the request body cannot be rendered: {e}"))?,
            ),
            None => None,
        };
        let retry = &self.graph.step(&self.runbook, node).retry;
        Ok(Prepared::Http {
            method: reqwest::Method::from_bytes(http.method.as_str().as_bytes())
                .unwrap_or(reqwest::Method::GET),
            url,
            headers,
            body,
            expect_status: http.expect_status.clone(),
            transient_status: retry
                .on_exit_codes
                .iter()
                .filter_map(|&c| u16::try_from(c).ok())
                .collect(),
            timeout: http.timeout.map(|t| t.as_std()),
        })
    }
}
