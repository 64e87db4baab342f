//! Step actions against the real binary: `http` steps against a small HTTP server on loopback
//! that records what it receives, `check`, `wait`, step outputs read by later templates, the
//! runbook's `env`, the working directory of steps, and the inspecting commands' output.

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Sandbox;

/// A request as the server received it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Header names lowercased.
    headers: HashMap<String, String>,
    body: String,
}

/// A canned answer: status, extra headers, body.
type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// A tiny HTTP/1.1 server on 127.0.0.1: one thread per connection, one request per
/// connection, answers by path from a fixed table; `/hang` reads the request and never
/// answers (the connection stays open until the client gives up).
struct Server {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(routes: Vec<(&'static str, Answer)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let stream = stream.expect("accept a connection");
                let (routes, seen) = (routes.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &routes, &seen));
            }
        });
        Server { base, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("the requests lock").clone()
    }
}

fn serve(stream: TcpStream, routes: &[(&str, Answer)], seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // A connection closed before a request line carries no request.
    if reader.read_line(&mut line).expect("read the request line") == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().expect("a method").to_owned();
    let path = parts.next().expect("a path").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        let read = reader.read_line(&mut header).expect("read a header");
        assert_ne!(read, 0, "the connection closed in the headers of {line:?}");
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
        }
    }
    // No Content-Length: no body.
    let length: usize = headers
        .get("content-length")
        .map_or(0, |l| l.parse().expect("a Content-Length"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("read the body");
    let route = path
        .split_once('?')
        .map_or(path.as_str(), |(r, _)| r)
        .to_owned();
    seen.lock().expect("the requests lock").push(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if route == "/hang" {
        // Block until the client closes the connection.
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
        return;
    }
    // A path the test did not route answers 404, as a real server would.
    let (status, extra, body) = routes
        .iter()
        .find(|(p, _)| *p == route)
        .map(|(_, a)| a.clone())
        .unwrap_or((404, vec![], "not found"));
    let mut response = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(body);
    let mut stream = reader.into_inner();
    // A client that gave up (a timeout under test) no longer reads the answer.
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn file_arg(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8")
}

const CALL: &str = r#"version: 1
name: http-call
params:
  base: { type: string }
  note: { type: string }
steps:
  - id: call
    http:
      method: POST
      url: "{{params.base}}/orders?dry=1"
      headers:
        X-Note: "note-{{params.note}}"
        X-Migration: "{{migration.id}}"
      body:
        note: "{{params.note}}"
        count: 3
        nested: { migration: "{{migration.id}}", tags: ["{{params.note}}", plain] }
      expect_status: [201]
  - id: verify
    needs: [call]
    check: "{{and (eq steps.call.outputs.status 201) (eq steps.call.outputs.body.rows 42)}}"
  - id: use
    needs: [verify]
    run: "echo {{steps.call.outputs.body.version}} {{steps.call.outputs.body.rows}} > used"
"#;

#[test]
fn an_http_step_sends_method_headers_and_a_json_body_and_its_outputs_feed_later_steps() {
    let server = Server::start(vec![(
        "/orders",
        (
            201,
            vec![("Content-Type", "application/json"), ("X-Reply", "yes")],
            r#"{"version": "v2", "rows": 42}"#,
        ),
    )]);
    let sb = Sandbox::new();
    let file = sb.write("call.yaml", CALL);
    let note = r#"a"}, "evil": true, "x": {"y": "it's \ done"#;
    let run = sb
        .sensei(&[
            "run",
            file_arg(&file),
            "-p",
            &format!("base={}", server.base),
            "-p",
            &format!("note={note}"),
        ])
        .ok();
    let id = run.id();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/orders?dry=1");
    assert_eq!(request.headers["x-note"], format!("note-{note}"));
    assert_eq!(request.headers["x-migration"], id);
    assert!(
        request.headers["content-type"].starts_with("application/json"),
        "{request:?}"
    );
    let body: Value = serde_json::from_str(&request.body)
        .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", request.body));
    assert_eq!(
        body,
        json!({
            "note": note,
            "count": 3,
            "nested": { "migration": id, "tags": [note, "plain"] },
        }),
        "the param arrives as one JSON string"
    );

    let call = sb.step(&id, "call");
    assert_eq!(call["state"], "succeeded");
    assert_eq!(call["outputs"]["status"], 201);
    assert_eq!(call["outputs"]["body"]["rows"], 42);
    assert_eq!(call["outputs"]["headers"]["x-reply"], "yes");
    assert_eq!(sb.step(&id, "verify")["state"], "succeeded");
    assert_eq!(sb.read("used"), "v2 42\n");
}

#[test]
fn an_unexpected_status_fails_the_step_and_names_the_status() {
    let server = Server::start(vec![
        ("/teapot", (418, vec![], "short and stout")),
        ("/broken", (500, vec![], "oops")),
    ]);
    let sb = Sandbox::new();
    for (path, expect, wanted) in [
        ("/teapot", "expect_status: [200, 204]", "status 200 or 204"),
        ("/broken", "method: GET", "a 2xx status"),
    ] {
        let file = sb.write(
            "status.yaml",
            &format!(
                "version: 1\nname: status\nsteps:\n  - id: call\n    http: {{ url: \"{}{path}\", {expect} }}\n  - id: after\n    needs: [call]\n    run: touch after.ran\n",
                server.base
            ),
        );
        let run = sb.sensei(&["run", file_arg(&file)]);
        assert_eq!(run.code, 1, "{run:?}");
        let id = run.id();
        assert_eq!(sb.state(&id), "failed");
        let call = sb.step(&id, "call");
        assert_eq!(call["state"], "failed");
        let error = call["error"].as_str().expect("the call's error");
        let code = if path == "/teapot" { "418" } else { "500" };
        assert!(
            error.contains(&format!("answered {code}, expected {wanted}")),
            "{error}"
        );
        assert!(!sb.path("after.ran").exists());
    }
}

#[test]
fn an_http_timeout_fails_the_step_without_waiting_for_the_default() {
    let server = Server::start(vec![]);
    let sb = Sandbox::new();
    let file = sb.write(
        "hang.yaml",
        &format!(
            "version: 1\nname: hang\nsteps:\n  - id: call\n    http: {{ url: \"{}/hang\", timeout: 300ms }}\n",
            server.base
        ),
    );
    let started = Instant::now();
    let run = sb.sensei(&["run", file_arg(&file)]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    let error = sb.step(&id, "call")["error"]
        .as_str()
        .expect("the call's error")
        .to_owned();
    assert!(error.contains("no response within 300ms"), "{error}");
    assert!(
        took < Duration::from_secs(10),
        "the http timeout was not applied: the run took {took:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

/// A secret of short lines: too short for each to be masked on its own, so only masking the
/// response whole (before it is cut into log lines) hides it.
const SHORT_LINES: &str = "xy1\nxy2\nxy3";

#[test]
fn a_secret_in_an_http_response_is_masked_before_the_body_is_cut_into_lines() {
    let server = Server::start(vec![(
        "/echo",
        (200, vec![], "before\nxy1\nxy2\nxy3\nafter"),
    )]);
    let sb = Sandbox::new();
    let file = sb.write(
        "echo.yaml",
        &format!(
            "version: 1\nname: echo\nparams:\n  key: {{ type: string, secret: true }}\nsteps:\n  - id: call\n    http: {{ url: \"{}/echo\" }}\n",
            server.base
        ),
    );
    let run = sb
        .sensei(&["run", file_arg(&file), "-p", &format!("key={SHORT_LINES}")])
        .ok();
    let id = run.id();
    let logs = sb.sensei(&["logs", &id, "call"]).ok();
    assert!(
        logs.stdout.ends_with("HTTP 200\nbefore\n***\nafter\n"),
        "{}",
        logs.stdout
    );
    let shown = sb.shown(&id);
    let texts: Vec<(&str, &str)> = shown
        .iter()
        .map(|(w, t)| (w.as_str(), t.as_str()))
        .collect();
    support::assert_hidden(&texts, &["xy2"]);
}

#[test]
fn a_check_passes_on_true_and_fails_on_false_naming_its_template() {
    let sb = Sandbox::new();
    let file = sb.write(
        "check.yaml",
        r#"version: 1
name: check
params:
  rows: { type: integer, default: 5 }
steps:
  - id: count
    run: echo rows=5 >> $SENSEI_OUTPUT
  - id: same
    needs: [count]
    check: "{{eq steps.count.outputs.rows \"5\"}}"
  - id: more
    needs: [same]
    check: "{{gt params.rows 10}}"
  - id: after
    needs: [more]
    run: touch after.ran
"#,
    );
    let run = sb.sensei(&["run", file_arg(&file)]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    assert_eq!(sb.step(&id, "same")["state"], "succeeded");
    let more = sb.step(&id, "more");
    assert_eq!(more["state"], "failed");
    assert_eq!(
        more["error"], "check `{{gt params.rows 10}}` rendered false",
        "{more}"
    );
    assert!(!sb.path("after.ran").exists());
    assert_eq!(sb.state(&id), "failed");
}

#[test]
fn a_wait_step_waits_its_duration() {
    let sb = Sandbox::new();
    let file = sb.write(
        "wait.yaml",
        "version: 1\nname: wait\nsteps:\n  - id: settle\n    wait: 300ms\n  - id: after\n    needs: [settle]\n    run: touch after.ran\n",
    );
    let run = sb.sensei(&["run", file_arg(&file)]).ok();
    let id = run.id();
    let succeeded = sb
        .events(&id)
        .into_iter()
        .find(|e| e["kind"] == "step_succeeded" && e["step"] == "settle")
        .expect("settle succeeded");
    let ms = succeeded["data"]["duration_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("no duration_ms: {succeeded}"));
    assert!(ms >= 300, "waited only {ms}ms: {succeeded}");
    assert!(sb.path("after.ran").exists());
}

#[test]
fn outputs_written_to_sensei_output_reach_a_later_steps_template() {
    let sb = Sandbox::new();
    let file = sb.write(
        "outputs.yaml",
        r#"version: 1
name: outputs
steps:
  - id: count
    run: "echo rows=42 >> $SENSEI_OUTPUT; echo 'table=order items' >> $SENSEI_OUTPUT"
  - id: report
    needs: [count]
    run: "echo {{steps.count.outputs.rows}} {{steps.count.outputs.table}} > report"
"#,
    );
    let run = sb.sensei(&["run", file_arg(&file)]).ok();
    let id = run.id();
    assert_eq!(sb.read("report"), "42 order items\n");
    assert_eq!(
        sb.step(&id, "count")["outputs"],
        json!({ "rows": "42", "table": "order items" })
    );
}

#[test]
fn outputs_json_with_a_last_line_that_is_not_json_fails_clearly() {
    let sb = Sandbox::new();
    let file = sb.write(
        "json.yaml",
        "version: 1\nname: json\nsteps:\n  - id: list\n    outputs: json\n    run: \"echo '{\\\"ok\\\": 1}'; echo done-not-json\"\n  - id: after\n    needs: [list]\n    run: touch after.ran\n",
    );
    let run = sb.sensei(&["run", file_arg(&file)]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    let list = sb.step(&id, "list");
    assert_eq!(list["state"], "failed");
    assert_eq!(
        list["error"],
        "the step declares `outputs: json`, but its last line of output is not a JSON object: `done-not-json`"
    );
    assert!(!sb.path("after.ran").exists());
}

#[test]
fn the_runbook_env_is_rendered_and_reaches_the_process() {
    let sb = Sandbox::new();
    let file = sb.write(
        "env.yaml",
        r#"version: 1
name: env-test
env:
  APP: "sensei-{{migration.id}}"
  BOOK: "{{runbook.name}}"
  PLAIN: plain value
steps:
  - id: show
    run: echo "$APP $BOOK $PLAIN" > env.out
"#,
    );
    let run = sb.sensei(&["run", file_arg(&file)]).ok();
    let id = run.id();
    assert_eq!(
        sb.read("env.out"),
        format!("sensei-{id} env-test plain value\n")
    );
}

#[test]
fn steps_run_in_the_runbook_directory_whatever_the_callers_directory() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("books/cutover")).expect("mkdir");
    std::fs::create_dir_all(sb.path("elsewhere")).expect("mkdir");
    sb.write(
        "books/cutover/script.sh",
        "#!/bin/sh\necho script ran in \"$(pwd)\" > script.out\n",
    );
    sb.write(
        "books/cutover/here.yaml",
        r#"version: 1
name: here
steps:
  - id: where
    run: pwd > where.out
  - id: script
    needs: [where]
    run: sh ./script.sh
"#,
    );
    let run = sb
        .command(&["run", "../books/cutover/here.yaml"])
        .current_dir(sb.path("elsewhere"))
        .output()
        .expect("run");
    assert!(run.status.success(), "{run:?}");
    let dir = std::fs::canonicalize(sb.path("books/cutover")).expect("canonical");
    assert_eq!(
        sb.read("books/cutover/where.out").trim_end(),
        dir.to_str().expect("utf-8")
    );
    assert!(
        sb.read("books/cutover/script.out")
            .starts_with("script ran in")
    );
    assert!(!sb.path("elsewhere/where.out").exists());
}

#[test]
fn logs_show_a_steps_stdout_and_stderr_lines() {
    let sb = Sandbox::new();
    let file = sb.write(
        "logs.yaml",
        r#"version: 1
name: logs
steps:
  - id: talk
    run: "echo to-stdout; echo to-stderr >&2; echo again-stdout"
  - id: quiet
    needs: [talk]
    run: echo other-step
"#,
    );
    let id = sb.sensei(&["run", file_arg(&file)]).ok().id();
    let logs = sb.sensei(&["logs", &id, "talk"]).ok();
    let lines: Vec<&str> = logs.stdout.lines().collect();
    for want in ["to-stdout", "to-stderr", "again-stdout"] {
        assert!(lines.contains(&want), "{want} missing:\n{}", logs.stdout);
    }
    let pos = |l: &str| lines.iter().position(|x| *x == l);
    assert!(pos("to-stdout") < pos("again-stdout"), "{}", logs.stdout);
    assert!(!logs.stdout.contains("other-step"), "{}", logs.stdout);
    let all = sb.sensei(&["logs", &id]).ok();
    assert!(all.stdout.contains("quiet | other-step"), "{}", all.stdout);
    assert!(all.stdout.contains("talk | to-stderr"), "{}", all.stdout);
    let unknown = sb.sensei(&["logs", &id, "nope"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("has no step `nope`"));
}

#[test]
fn inspecting_commands_print_json_that_parses() {
    let sb = Sandbox::new();
    let file = sb.write(
        "json.yaml",
        r#"version: 1
name: json-out
defaults:
  retry: { attempts: 2, backoff: 10ms, on_exit_codes: [75] }
steps:
  - id: flaky
    run: "echo line; echo err >&2; [ -e tried ] || { touch tried; exit 75; }"
  - id: fan
    needs: [flaky]
    for_each: [a, b]
    run: echo {{item}}
"#,
    );
    let id = sb.sensei(&["run", file_arg(&file)]).ok().id();
    let parse = |args: &[&str]| -> Value {
        let run = sb.sensei(args).ok();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "`sensei {}` is not JSON ({e}):\n{}",
                args.join(" "),
                run.stdout
            )
        })
    };

    let status = parse(&["status", &id, "--format", "json"]);
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["state"], "certified");
    let steps = status["steps"].as_array().cloned().expect("steps");
    let ids: Vec<&str> = steps
        .iter()
        .map(|s| s["id"].as_str().expect("a step id"))
        .collect();
    assert_eq!(ids, ["flaky", "fan[a]", "fan[b]"], "{status}");
    for step in &steps {
        assert_eq!(step["id"], step["step"], "{step}");
        assert_eq!(step["state"], "succeeded");
        assert!(step["attempts"].is_u64(), "{step}");
    }
    assert_eq!(steps[0]["attempts"], 2);

    let list = parse(&["list", "--format", "json"]);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["state"], "certified");

    let events = parse(&["events", &id, "--format", "json"]);
    let events = events.as_array().cloned().expect("a list of events");
    assert!(events.iter().any(|e| e["kind"] == "step_retrying"));
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );

    let logs = parse(&["logs", &id, "--format", "json"]);
    let logs = logs.as_array().cloned().expect("a list of log lines");
    assert!(
        logs.iter()
            .any(|l| l["step"] == "flaky" && l["text"] == "err" && l["stream"] == "stderr"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l["step"] == "flaky" && l["attempt"] == 2)
    );
    let one = parse(&["logs", &id, "fan[a]", "--format", "json"]);
    assert_eq!(one.as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one[0]["text"], "a");
}

#[test]
fn inspecting_output_into_a_closed_pipe_ends_quietly() {
    let sb = Sandbox::new();
    let file = sb.write(
        "many.yaml",
        "version: 1\nname: many\nsteps:\n  - id: talk\n    run: \"seq 1 2000\"\n",
    );
    let id = sb.sensei(&["run", file_arg(&file)]).ok().id();
    for args in [
        vec!["status", id.as_str()],
        vec!["list"],
        vec!["events", id.as_str()],
        vec!["logs", id.as_str()],
        vec!["logs", id.as_str(), "--format", "json"],
    ] {
        // The reader is gone before the command writes (`sensei logs ID | head -0`).
        let mut child = sb
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
    // A driver whose stdout closes keeps driving to the end (`sensei run FILE | head -1`).
    let mut child = sb
        .command(&["run", file_arg(&file)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let list = sb.sensei(&["list", "--format", "json"]).ok();
    let list: Value = serde_json::from_str(&list.stdout).expect("json");
    assert_eq!(list[0]["state"], "certified", "{list}");
}
