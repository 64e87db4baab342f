//! The CLI as a client of a Sensei server (`--server URL`, `SENSEI_SERVER`): the inspecting
//! and lifecycle commands call the REST API instead of opening the local store, print the
//! same lines (the renderers work from the JSON views both share) and map answers to the
//! exit codes of SPEC §5.

use super::local::Local;
use super::{error, exit};
use serde_json::{Value as Json, json};
use std::time::Duration;

/// A blocking client of one server: a small runtime per command, as `drive` builds one.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// The HTTP method of a call.
#[derive(Debug, Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Client {
    /// The client when `--server` is given (`None`: the command works locally), or the exit
    /// code when it cannot be built.
    pub fn from_local(local: &Local) -> Option<Result<Client, u8>> {
        let base = local
            .server
            .as_deref()?
            .trim()
            .trim_end_matches('/')
            .to_owned();
        Some(Client::new(base, local.token.clone()))
    }

    fn new(base: String, token: Option<String>) -> Result<Client, u8> {
        if reqwest::Url::parse(&base).is_err() {
            error(format!(
                "--server {base} is not a URL (such as http://127.0.0.1:8080)"
            ));
            return Err(exit::USAGE);
        }
        let runtime = super::runtime()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Lifecycle calls wait up to 10 s on the server for their effect.
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                error(format!("cannot build the HTTP client: {e}"));
                exit::FAILED
            })?;
        Ok(Client {
            base,
            token: token.filter(|t| !t.trim().is_empty()),
            http,
            runtime,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of the path segments (each percent-encoded: step ids may hold brackets).
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<reqwest::Url, u8> {
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| {
            error(format!("--server {}: {e}", self.base));
            exit::USAGE
        })?;
        url.path_segments_mut()
            .map_err(|()| {
                error(format!("--server {} cannot take a path", self.base));
                exit::USAGE
            })?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Calls the API; the status and JSON body of a 2xx answer, else the error said (the
    /// problem's detail) and its exit code.
    pub fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Json>,
    ) -> Result<(u16, Json), u8> {
        let url = self.url(segments, query)?;
        let mut request = match method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Delete => self.http.delete(url),
        };
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        });
        let (status, text) = answer.map_err(|e| self.unreachable(&e))?;
        let doc: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if (200..300).contains(&status) {
            return Ok((status, doc));
        }
        Err(problem(status, &text))
    }

    pub fn get(&self, segments: &[&str]) -> Result<Json, u8> {
        self.call(Method::Get, segments, &[], None).map(|(_, d)| d)
    }

    /// Says that the server cannot be reached; the exit code.
    fn unreachable(&self, e: &reqwest::Error) -> u8 {
        error(format!(
            "cannot reach the server at {}: {}",
            self.base,
            chain(e)
        ));
        exit::FAILED
    }

    /// The runtime the client's calls run on (a follow waits on it too).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Opens the event stream of migration `id` (SSE) after seq `after`: the answer, whose
    /// body is read as it comes. Unlike the other calls it has no overall time limit.
    pub fn stream(&self, id: &str, after: i64) -> Result<reqwest::Response, u8> {
        let url = self.url(&["v1", "migrations", id, "events"], &[])?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                error(format!("cannot build the HTTP client: {e}"));
                exit::FAILED
            })?;
        let mut request = http
            .get(url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header("Last-Event-ID", after.to_string());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| self.unreachable(&e))?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(response);
            }
            let text = response.text().await.unwrap_or_default();
            Err(problem(status, &text))
        })
    }
}

/// Says the error of an answer that is not 2xx (the problem's detail); its exit code.
fn problem(status: u16, text: &str) -> u8 {
    let detail = serde_json::from_str::<Json>(text)
        .ok()
        .and_then(|doc| doc.get("detail").and_then(Json::as_str).map(str::to_owned))
        .unwrap_or_else(|| format!("the server answered {status}: {}", text.trim()));
    error(detail);
    exit::of_status(status)
}

/// An error with its causes, on one line (reqwest's own message names only the URL).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The id the server knows: `latest` (or none) is the newest migration.
pub fn resolve(client: &Client, id: Option<&str>) -> Result<String, u8> {
    match id {
        Some(id) if id != "latest" => Ok(id.to_owned()),
        _ => {
            let list = client.get(&["v1", "migrations"])?;
            match list
                .as_array()
                .and_then(|a| a.first())
                .and_then(|m| m["id"].as_str())
            {
                Some(id) => Ok(id.to_owned()),
                None => {
                    error("there are no migrations yet");
                    Err(exit::USAGE)
                }
            }
        }
    }
}

/// The status document of `GET /v1/migrations/{id}` as `sensei status --format json` shows
/// it locally (without the detail's extra fields), and the seq of the migration's newest
/// event (one of those fields).
pub fn status_and_seq(client: &Client, id: &str) -> Result<(Json, i64), u8> {
    let mut doc = client.get(&["v1", "migrations", id])?;
    let last_seq = doc["last_seq"].as_i64().unwrap_or_default();
    if let Some(obj) = doc.as_object_mut() {
        for extra in ["runbook_path", "decisions", "last_seq"] {
            obj.remove(extra);
        }
    }
    Ok((doc, last_seq))
}

/// A lifecycle call: POST `/v1/migrations/{id}/{op}` (DELETE for cancel). 200 done, 202
/// under way; both exit 0 with a line saying which.
pub fn operate(client: &Client, id: &str, op: &str, body: Json) -> u8 {
    let id = match resolve(client, Some(id)) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let answer = if op == "cancel" {
        client.call(Method::Delete, &["v1", "migrations", &id], &[], Some(body))
    } else {
        client.call(
            Method::Post,
            &["v1", "migrations", &id, op],
            &[],
            Some(body),
        )
    };
    match answer {
        Ok((status, doc)) => {
            let state = doc["state"].as_str().unwrap_or("unknown");
            if status == 202 {
                sayln!(
                    "{op} of {id} under way on {}; it is {state} (`sensei status {id} --server {}` shows progress)",
                    client.base(),
                    client.base()
                );
            } else {
                sayln!("{op} of {id} done on {}; it is {state}", client.base());
            }
            exit::OK
        }
        Err(code) => code,
    }
}

/// A request body with the operator's comment, if any: no comment is no field (the API
/// refuses `null`).
pub fn comment_body(comment: Option<&str>) -> Json {
    comment.map_or_else(|| json!({}), |c| json!({ "comment": c }))
}

/// `approve|reject ID GATE [--comment]`: POST `gates/{gate}/approve|reject`.
pub fn decide(client: &Client, id: &str, gate: &str, verb: &str, comment: Option<&str>) -> u8 {
    let id = match resolve(client, Some(id)) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let body = comment_body(comment);
    match client.call(
        Method::Post,
        &["v1", "migrations", &id, "gates", gate, verb],
        &[],
        Some(body),
    ) {
        Ok((_, doc)) => {
            super::decide::say_decided(&doc);
            exit::OK
        }
        Err(code) => code,
    }
}
