//! Runs the real `sensei serve` on a free loopback port with a temporary state directory and
//! runbooks directory, and talks to it with a small blocking HTTP client. Waiting is polling
//! with deadlines, never sleeping as synchronisation.
#![allow(dead_code)]

mod answers;
pub mod axe;
pub mod console;
pub mod hooks;
pub mod runbooks;
pub mod webdriver;

pub use answers::{header, json_body};

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sensei");

/// Tokens of the test configuration: (name, token, roles).
pub const TOKENS: &[(&str, &str, &str)] = &[
    ("ops", "ops-token", "[operator]"),
    ("alice", "alice-token", "[approver]"),
    ("bob", "bob-token", "[approver]"),
    ("vic", "vic-token", "[viewer]"),
    ("root", "root-token", "[admin]"),
];

/// A free loopback port: bind port 0, note the port, let it go.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A scratch directory with `runbooks/`, `state/` and the server's log.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("runbooks")).expect("runbooks dir");
        Dir { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn runbook(&self, file: &str, text: &str) {
        std::fs::write(self.path("runbooks").join(file), text).expect("write runbook");
    }

    /// The configuration with [`TOKENS`] (secrets through the environment), plus `extra`.
    pub fn config_with_tokens(&self, extra: &str) -> PathBuf {
        let mut yaml = String::from("tokens:\n");
        for (name, _, roles) in TOKENS {
            let var = format!("TOK_{}", name.to_uppercase());
            yaml.push_str(&format!(
                "  - {{ name: {name}, roles: {roles}, token_env: {var} }}\n"
            ));
        }
        yaml.push_str(extra);
        let path = self.path("sensei.yaml");
        std::fs::write(&path, yaml).expect("write config");
        path
    }

    /// Starts `sensei serve` with the test tokens' configuration, calling as `ops`.
    pub fn serve_ops(&self) -> Server {
        self.serve_with_tokens(&[], &[])
    }

    /// Starts `sensei serve` with the test tokens' configuration (plus `args` and `env`),
    /// calling as the operator `ops` by default.
    pub fn serve_with_tokens(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let config = self.config_with_tokens("");
        let mut all = vec!["--config", config.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        let mut server = self.serve_env(&all, env);
        server.token = Some("ops-token");
        server
    }

    /// Starts `sensei serve` on a free port with `args` and waits until `/healthz` answers.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_env(args, &[])
    }

    /// [`Dir::serve`] with extra environment variables (such as `SENSEI_NOW`).
    pub fn serve_env(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = self.path(&format!("serve-{port}.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(self.path("state"))
            .arg("--runbooks")
            .arg(self.path("runbooks"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SENSEI_STATE_DIR")
            .env_remove("SENSEI_CONFIG")
            .env("SENSEI_LOG", "info,sensei=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (name, token, _) in TOKENS {
            cmd.env(format!("TOK_{}", name.to_uppercase()), token);
        }
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().expect("spawn sensei serve");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            token: None,
        };
        server.wait_healthy();
        server
    }
}

/// A running server; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    /// Sent as the bearer token by [`Server::call`] unless a call names another.
    pub token: Option<&'static str>,
}

/// An answer: status, content type, body as text and, when the content type says JSON, the
/// parsed body (`Null` for any other content type).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem document with this status.
    pub fn problem(self, status: u16) -> Reply {
        let reply = self.expect(status);
        assert_eq!(reply.content_type, "application/problem+json", "{reply:?}");
        assert_eq!(reply.json["status"], status, "{reply:?}");
        assert!(reply.json["type"].is_string() && reply.json["detail"].is_string());
        reply
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl Server {
    /// The server's log so far (the file exists from the spawn on).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_else(|e| panic!("cannot read the log {}: {e}", self.log.display()))
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Refused connections are expected until the server listens: keep polling.
            if let Ok(reply) = self.try_call("GET", "/healthz", None, None)
                && reply.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request
            .header("Content-Type", "application/json")
            // No body: an empty one.
            .body(body.unwrap_or_default().to_vec())
            .expect("request");
        let response = agent().run(request)?;
        let status = response.status().as_u16();
        let content_type = header(response.headers(), "content-type");
        let text = response.into_body().read_to_string()?;
        let json = json_body(method, path, &content_type, &text);
        Ok(Reply {
            status,
            content_type,
            text,
            json,
        })
    }

    /// A call with an explicit token (or none) and an optional JSON body.
    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Reply {
        self.try_call(method, path, token, body.map(str::as_bytes))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call_as(self.token, "GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.call_as(self.token, "POST", path, Some(body))
    }

    /// Creates a migration of `runbook` as `token`; its id.
    pub fn create(&self, token: Option<&str>, runbook: &str, params: &str) -> String {
        let body = format!(r#"{{"runbook":"{runbook}","params":{params}}}"#);
        let reply = self
            .call_as(token, "POST", "/v1/migrations", Some(&body))
            .expect(201);
        reply.json["id"].as_str().expect("id").to_owned()
    }

    pub fn state(&self, id: &str) -> String {
        let reply = self.get(&format!("/v1/migrations/{id}/status")).expect(200);
        reply.json["state"]
            .as_str()
            .unwrap_or_else(|| panic!("no state in the status of {id}: {}", reply.text))
            .to_owned()
    }

    /// Polls the status until the migration is in `state` (deadline 30 s).
    pub fn wait_state(&self, id: &str, state: &str) {
        wait_for(&format!("{id} to be {state}"), || {
            (self.state(id) == state).then_some(())
        });
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        let reply = self.get(&format!("/v1/migrations/{id}/events")).expect(200);
        reply
            .json
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("the events of {id} are not a list: {}", reply.text))
    }

    /// Opens the live event stream.
    pub fn stream(&self, id: &str) -> Stream {
        let mut request = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}/v1/migrations/{id}/events", self.base))
            .header("Accept", "text/event-stream");
        if let Some(token) = self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request.body(()).expect("request");
        let response = agent().run(request).expect("open stream");
        assert_eq!(response.status().as_u16(), 200);
        let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        Stream {
            lines: BufReader::new(reader),
        }
    }

    /// Sends only the head of a POST whose `Content-Length` says `length`, and reads the
    /// answer: a server that refuses by the declared length answers without the body (a
    /// client writing a large body it will not read would only see a broken pipe).
    pub fn post_head_only(&self, path: &str, length: usize) -> (u16, String) {
        use std::io::Write;
        let addr = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let token = self.token.expect("post_head_only calls with a token");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .expect("write head");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if answer.is_empty() => panic!("no answer: {e}"),
                Err(_) => break,
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                // No Content-Length: the answer ends when the server closes the connection.
                let declared = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .map(|v| {
                        v.parse::<usize>()
                            .unwrap_or_else(|e| panic!("Content-Length {v:?}: {e}"))
                    });
                if declared.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in the answer: {text:?}"));
        (status, text)
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code (deadline 30 s).
    pub fn terminate(mut self) -> i32 {
        let pid = self.child.id() as i32;
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}: {sent}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // -1: killed by a signal, which no caller expects.
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SSE stream being read.
pub struct Stream {
    lines: BufReader<Box<dyn Read + Send>>,
}

/// One SSE message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

impl Stream {
    /// The next message; `None` when the server ended the stream (a failed read or a
    /// message whose data is not JSON fails the test).
    pub fn next(&mut self) -> Option<Message> {
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        loop {
            let mut line = String::new();
            let read = self
                .lines
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("reading the event stream: {e}"));
            if read == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !event.is_empty() || !data.is_empty() {
                    let data = serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("{event} data is not JSON ({e}): {data}"));
                    return Some(Message { id, event, data });
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id:") {
                let v = v.trim();
                id = Some(
                    v.parse()
                        .unwrap_or_else(|e| panic!("the SSE id {v:?} is not a number: {e}")),
                );
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }

    /// Reads messages until one of `kind` arrives; every message read on the way.
    pub fn until(&mut self, kind: &str) -> Vec<Message> {
        let mut seen = Vec::new();
        while let Some(m) = self.next() {
            let done = m.event == kind;
            seen.push(m);
            if done {
                return seen;
            }
        }
        panic!("the stream ended before a {kind} event: {seen:?}");
    }
}

/// Polls `probe` until it gives a value (deadline 30 s).
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `kind` of each event of an events document, in order.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("an event without a kind: {e}"))
                .to_owned()
        })
        .collect()
}
