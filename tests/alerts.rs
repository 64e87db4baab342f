//! Alerts end to end, against real servers the tests start: an HTTP receiver on loopback (a
//! std TcpListener thread) and a real SMTP server (Python's aiosmtpd). The real `sensei`
//! binary runs migrations whose events alert; the receivers record what arrived.

mod support;

use sensei::alert::sign;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::http::{Received, Receiver};
use support::{Run, Sandbox};

const SECRET: &str = "pg://u:hunter2@db";
const KEY: &str = "k3y-for-signing";

/// A runbook whose `boom` step prints the secret and fails (or succeeds with `ok: true`).
fn runbook(alerts: &str, fail: bool) -> String {
    let exit = if fail { "exit 3" } else { "true" };
    format!(
        r#"version: 1
name: alerting
params:
  dsn: {{ type: string, secret: true }}
alerts:
{alerts}
steps:
  - id: boom
    run: echo "connecting to {{{{params.dsn}}}}"; {exit}
"#
    )
}

fn config(sb: &Sandbox, extra: &str) {
    sb.write(
        "sensei.yaml",
        &format!(
            "alerts: {{ backoff: 50ms, max_backoff: 200ms, wait_on_exit: 15s{extra} }}\npublic_url: https://sensei.example.com\n"
        ),
    );
}

fn run(sb: &Sandbox, args: &[&str]) -> Run {
    let out = sb
        .command(args)
        .env("SENSEI_TEST_HOOK_KEY", KEY)
        .output()
        .expect("run sensei");
    Run::from(out)
}

fn deliveries(sb: &Sandbox) -> Vec<Json> {
    let r = run(sb, &["alerts", "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).expect("alerts json")
}

fn outcomes(d: &Json) -> Vec<String> {
    d["attempt_log"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempt_log: {d}"))
        .iter()
        .map(|x| {
            x["outcome"]
                .as_str()
                .unwrap_or_else(|| panic!("an attempt without an outcome: {d}"))
                .to_owned()
        })
        .collect()
}

/// A string field of a JSON document, or a failure showing the document.
fn string<'a>(doc: &'a Json, field: &str) -> &'a str {
    doc[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{field}` in {doc}"))
}

#[test]
fn webhook_json_and_slack_payloads_are_signed_and_carry_no_secret() {
    let sb = Sandbox::new();
    let rx = Receiver::start(&[200]);
    config(&sb, ", allow_private_urls: true");
    let alerts = format!(
        r#"  channels:
    hook: {{ webhook: {{ url: "{}", secret_env: SENSEI_TEST_HOOK_KEY, headers: {{ X-Team: dba }} }} }}
    chat: {{ webhook: {{ url: "{}", format: slack }} }}
  rules:
    - {{ on: [step_failed, failed], notify: [hook] }}
    - {{ on: [failed], notify: [chat] }}"#,
        rx.url("/json"),
        rx.url("/slack")
    );
    sb.write("rb.yaml", &runbook(&alerts, true));
    let r = run(&sb, &["run", "rb.yaml", "-p", &format!("dsn={SECRET}")]);
    assert_eq!(r.code, 1, "{r:?}");
    let id = r.id();
    let got = rx.got();
    assert_eq!(got.len(), 3, "exactly one request per delivery");

    for req in &got {
        assert!(!req.body.contains("hunter2"), "a secret in {}", req.body);
        assert!(!format!("{:?}", req.headers).contains("hunter2"));
        assert_eq!(req.headers["content-type"], "application/json");
    }
    let json: Vec<&Received> = got.iter().filter(|r| r.path == "/json").collect();
    assert_eq!(json.len(), 2);
    for req in &json {
        let body = req.json();
        assert_eq!(body["version"], 1);
        assert_eq!(body["migration"], id.as_str());
        assert_eq!(body["runbook"], "alerting");
        assert_eq!(body["step"], "boom");
        assert_eq!(body["params"]["dsn"], "***");
        assert_eq!(req.headers["x-sensei-event-id"], string(&body, "event_id"));
        assert!(string(&body, "event_id").starts_with(&format!("{id}:")));
        assert_eq!(req.headers["x-team"], "dba");
        // Sent in the one form `POST /v1/hooks` accepts: the server's own scheme.
        let ts_text = &req.headers["x-sensei-timestamp"];
        let ts = sign::parse_timestamp(ts_text).expect("timestamp");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
        let sig = &req.headers["x-sensei-signature"];
        let signature = sign::Signature::parse(sig).expect("signature");
        assert!(
            signature.verifies(KEY.as_bytes(), ts_text, req.body.as_bytes()),
            "bad signature {sig}"
        );
        assert!(!signature.verifies(b"other", ts_text, req.body.as_bytes()));
        assert_eq!(
            body["link"],
            format!("https://sensei.example.com/v1/migrations/{id}")
        );
    }
    let by_event: HashMap<String, Json> = json
        .iter()
        .map(|r| (string(&r.json(), "event").to_owned(), r.json()))
        .collect();
    let failed_step = &by_event["step_failed"];
    assert_eq!(failed_step["state"], "running");
    assert!(
        string(failed_step, "error").contains("code 3"),
        "{failed_step}"
    );
    assert_eq!(by_event["failed"]["state"], "failed");

    let slack = got
        .iter()
        .find(|r| r.path == "/slack")
        .expect("slack")
        .json();
    let summary = string(&slack, "text");
    assert!(
        summary.contains(&format!("alerting {id}: failed")),
        "{summary}"
    );
    let blocks = slack["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "section");
    assert!(slack.to_string().contains("connecting to ***"), "{slack}");
    let unsigned = got.iter().find(|r| r.path == "/slack").expect("slack");
    assert!(!unsigned.headers.contains_key("x-sensei-signature"));

    let list = deliveries(&sb);
    assert_eq!(list.len(), 3);
    for d in &list {
        assert_eq!(d["state"], "delivered", "{d}");
        assert_eq!(outcomes(d), ["delivered"]);
        assert_eq!(d["attempt_log"][0]["status"], 200);
    }
}

#[test]
fn a_receiver_that_fails_first_is_retried_until_exactly_one_success_is_recorded() {
    let sb = Sandbox::new();
    let rx = Receiver::start(&[503, 500, 200]);
    config(&sb, ", allow_private_urls: true");
    let alerts = format!(
        "  channels:\n    hook: {{ webhook: {{ url: \"{}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}",
        rx.url("/hook")
    );
    sb.write("rb.yaml", &runbook(&alerts, false));
    let r = run(&sb, &["run", "rb.yaml", "-p", "dsn=not-a-real-secret"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("delivering 1 alert(s) (waiting up to 15s)"),
        "{r:?}"
    );
    assert!(r.stderr.contains("not delivered yet, retrying"), "{r:?}");
    let got = rx.got();
    assert_eq!(got.len(), 3, "{got:?}");
    let ids: Vec<&String> = got
        .iter()
        .map(|g| &g.headers["x-sensei-event-id"])
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one event id for every attempt: {ids:?}"
    );
    assert_eq!(got[0].body, got[2].body, "a retry sends the same message");

    let list = deliveries(&sb);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "delivered");
    assert_eq!(list[0]["attempts"], 3);
    assert_eq!(outcomes(&list[0]), ["retry", "retry", "delivered"]);
    let statuses: Vec<&Json> = list[0]["attempt_log"]
        .as_array()
        .expect("attempt_log")
        .iter()
        .map(|x| &x["status"])
        .collect();
    assert_eq!(
        statuses,
        [&Json::from(503), &Json::from(500), &Json::from(200)]
    );

    // Delivered once: a later delivery run sends nothing again.
    let again = run(&sb, &["alerts", "--deliver"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("delivered"), "{again:?}");
    assert_eq!(rx.got().len(), 3);
}

#[test]
fn a_permanent_refusal_is_recorded_at_once_and_never_fails_the_migration() {
    let sb = Sandbox::new();
    let rx = Receiver::start(&[404]);
    config(&sb, ", allow_private_urls: true");
    let alerts = format!(
        "  channels:\n    hook: {{ webhook: {{ url: \"{}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}",
        rx.url("/gone")
    );
    sb.write("rb.yaml", &runbook(&alerts, false));
    let r = run(&sb, &["run", "rb.yaml", "-p", "dsn=not-a-real-secret"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: alert `certified`") && r.stderr.contains("HTTP 404"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .lines()
            .last()
            .expect("a last line")
            .ends_with("certified"),
        "{r:?}"
    );
    let list = deliveries(&sb);
    assert_eq!(list[0]["state"], "failed");
    assert_eq!(outcomes(&list[0]), ["failed"]);
    assert_eq!(rx.got().len(), 1);
}

#[test]
fn a_private_url_is_refused_unless_the_config_allows_it() {
    let sb = Sandbox::new();
    let rx = Receiver::start(&[200]);
    config(&sb, "");
    let alerts = format!(
        "  channels:\n    hook: {{ webhook: {{ url: \"{}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}",
        rx.url("/internal")
    );
    sb.write("rb.yaml", &runbook(&alerts, false));
    let r = run(&sb, &["run", "rb.yaml", "-p", "dsn=not-a-real-secret"]);
    assert_eq!(r.code, 0, "{r:?}");
    let list = deliveries(&sb);
    assert_eq!(list[0]["state"], "failed");
    let error = string(&list[0], "last_error");
    assert!(error.contains("allow_private_urls"), "{error}");
    assert!(rx.got().is_empty());
    // `localhost` is refused as well: the guard looks at what a name resolves to.
    let sb2 = Sandbox::new();
    config(&sb2, "");
    let url = format!("http://localhost:{}/x", rx.port);
    sb2.write(
        "rb.yaml",
        &runbook(
            &format!("  channels:\n    hook: {{ webhook: {{ url: \"{url}\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}"),
            false,
        ),
    );
    assert_eq!(
        run(&sb2, &["run", "rb.yaml", "-p", "dsn=not-a-real-secret"]).code,
        0
    );
    assert_eq!(deliveries(&sb2)[0]["state"], "failed");
    assert!(rx.got().is_empty());
}

#[test]
fn a_broken_configuration_is_a_usage_error_with_its_position() {
    let sb = Sandbox::new();
    sb.write("bad.yaml", "alerts:\n  retry_four: 1h\n");
    sb.write("rb.yaml", &runbook("  channels: {}\n  rules: []", false));
    let r = run(
        &sb,
        &[
            "run",
            "rb.yaml",
            "-p",
            "dsn=not-a-real-secret",
            "--config",
            "bad.yaml",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.yaml:2:3:"), "{r:?}");
    assert!(!sb.path(".sensei").exists(), "nothing was created");
}

// ---- email, against a real SMTP server ----

/// argv: port, mail directory, then optionally `starttls CERT KEY` (STARTTLS required) or
/// `tls CERT KEY` (SMTPS), then optionally `USER:PASSWORD` (AUTH required, over TLS only).
const SMTP_SERVER: &str = r#"
import email, email.policy, json, os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        path = os.path.join(sys.argv[2], "%d.json" % time.time_ns())
        with open(path + ".tmp", "w") as f:
            json.dump({
                "from": envelope.mail_from,
                "rcpt": envelope.rcpt_tos,
                "subject": msg["subject"],
                "to": msg["to"], "cc": msg["cc"],
                "event_id": msg["x-sensei-event-id"],
                "content_type": msg.get_content_type(),
                "body": msg.get_content(),
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "login": session.auth_data if isinstance(session.auth_data, str) else None,
            }, f)
        os.rename(path + ".tmp", path)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    user, password = sys.argv[6].split(":", 1)
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode() and auth_data.password == password.encode())
    # handled=False: aiosmtpd answers 535 itself.
    return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

kwargs = {}
mode = sys.argv[3] if len(sys.argv) > 3 else "none"
if mode != "none":
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    else:
        # aiosmtpd only counts STARTTLS as TLS for AUTH; SMTPS is TLS from the first byte.
        kwargs.update(ssl_context=context, auth_require_tls=False)
if len(sys.argv) > 6:
    kwargs.update(authenticator=authenticator, auth_required=True)
controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]), **kwargs)
controller.start()
print("ready", flush=True)
time.sleep(120)  # stops by itself if the test forgets it
controller.stop()
"#;

/// A Python with aiosmtpd, or `None` (said on stderr; an error under CI, which installs it).
fn python_with_aiosmtpd() -> Option<&'static str> {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "aiosmtpd is missing under CI: .ci/run installs it"
    );
    eprintln!("SKIPPED: the email tests need Python's aiosmtpd (`pip install aiosmtpd`)");
    None
}

struct SmtpServer {
    child: Child,
    dir: std::path::PathBuf,
}

impl SmtpServer {
    fn start(python: &str, sb: &Sandbox, port: u16) -> SmtpServer {
        SmtpServer::start_with(python, sb, port, &[])
    }

    /// With the script's optional arguments (TLS mode and files, credentials).
    fn start_with(python: &str, sb: &Sandbox, port: u16, extra: &[&str]) -> SmtpServer {
        let script = sb.write("smtp_server.py", SMTP_SERVER);
        let dir = sb.path("mail");
        std::fs::create_dir_all(&dir).expect("mail dir");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&dir)
            .args(extra)
            .current_dir(sb.path("."))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("ready line");
        assert_eq!(ready.trim(), "ready", "the SMTP server did not start");
        SmtpServer { child, dir }
    }

    fn mails(&self) -> Vec<Json> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .expect("the mail directory")
            .map(|e| e.expect("a mail directory entry").path())
            .collect();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .map(|p| {
                serde_json::from_str(&std::fs::read_to_string(p).expect("mail")).expect("json")
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn mail_runbook() -> String {
    runbook(
        "  channels:\n    mail: { email: { to: [dba@example.com, lead@example.com], cc: [ops@example.com] } }\n  rules:\n    - { on: [step_failed], notify: [mail] }",
        true,
    )
}

fn smtp_config(sb: &Sandbox, port: u16, wait: &str) {
    sb.write(
        "sensei.yaml",
        &format!(
            "smtp: {{ host: 127.0.0.1, port: {port}, tls: none, from: sensei@example.com }}\nalerts: {{ backoff: 50ms, max_backoff: 200ms, wait_on_exit: {wait} }}\n"
        ),
    );
}

/// The email `mail_runbook` sends for migration `id`, as the test server recorded it.
fn assert_alert_mail(mail: &Json, id: &str) {
    let text = mail.to_string();
    assert!(!text.contains("hunter2"), "a secret in the email: {text}");
    assert_eq!(mail["from"], "sensei@example.com");
    let mut rcpt: Vec<&str> = mail["rcpt"]
        .as_array()
        .unwrap_or_else(|| panic!("no rcpt list: {mail}"))
        .iter()
        .map(|v| v.as_str().expect("a recipient"))
        .collect();
    rcpt.sort_unstable();
    assert_eq!(
        rcpt,
        ["dba@example.com", "lead@example.com", "ops@example.com"]
    );
    assert_eq!(
        mail["subject"],
        format!("[sensei] alerting {id}: step_failed (boom)")
    );
    assert_eq!(mail["content_type"], "text/plain");
    assert!(string(mail, "event_id").starts_with(&format!("{id}:")));
    let body = string(mail, "body");
    for want in [
        "step boom failed",
        &format!("Migration: {id}"),
        "Runbook:   alerting",
        "Step:      boom",
        "Last output of boom:",
        "connecting to ***",
    ] {
        assert!(body.contains(want), "{want:?} not in:\n{body}");
    }
}

#[test]
fn an_email_reaches_a_real_smtp_server_with_recipients_subject_and_body() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let sb = Sandbox::new();
    let port = free_port();
    let smtp = SmtpServer::start(python, &sb, port);
    smtp_config(&sb, port, "15s");
    sb.write("rb.yaml", &mail_runbook());
    let r = run(&sb, &["run", "rb.yaml", "-p", &format!("dsn={SECRET}")]);
    assert_eq!(r.code, 1, "{r:?}");
    let id = r.id();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{r:?}");
    assert_alert_mail(&mails[0], &id);
    assert_eq!(mails[0]["tls"], false);
    assert_eq!(deliveries(&sb)[0]["state"], "delivered");
}

#[test]
fn an_email_whose_smtp_server_is_down_arrives_on_a_later_delivery_run() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let sb = Sandbox::new();
    let port = free_port();
    smtp_config(&sb, port, "300ms");
    sb.write("rb.yaml", &mail_runbook());
    let started = Instant::now();
    let r = run(&sb, &["run", "rb.yaml", "-p", &format!("dsn={SECRET}")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the wait is bounded"
    );
    assert!(r.stdout.contains("1 alert(s) not delivered yet"), "{r:?}");
    let pending = &deliveries(&sb)[0];
    assert_eq!(pending["state"], "pending", "{pending}");
    assert!(
        pending["attempts"].as_u64().expect("attempts") >= 1,
        "{pending}"
    );
    assert!(
        string(pending, "last_error").contains("mail server"),
        "{pending}"
    );

    let smtp = SmtpServer::start(python, &sb, port);
    let later = run(&sb, &["alerts", "--deliver"]);
    assert_eq!(later.code, 0, "{later:?}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{later:?}");
    assert!(
        string(&mails[0], "subject").contains("step_failed"),
        "{}",
        mails[0]
    );
    let done = &deliveries(&sb)[0];
    assert_eq!(done["state"], "delivered", "{done}");
    assert_eq!(
        outcomes(done).last().map(String::as_str),
        Some("delivered"),
        "{done}"
    );
    assert_eq!(run(&sb, &["alerts", "--deliver"]).code, 0);
    assert_eq!(smtp.mails().len(), 1, "delivered once");
}

// ---- email over STARTTLS and SMTPS, verified against a private CA (`smtp.ca_file`) ----

/// Writes a private CA (`ca.pem`) and a certificate it signed for `localhost` and 127.0.0.1
/// (`cert.pem`, key `key.pem`) in the sandbox, or says why it cannot (an error under CI).
/// (A bare `openssl req -x509` certificate is a CA certificate, which rustls refuses as a
/// server's own: `CaUsedAsEndEntity`.)
fn private_ca_and_localhost_cert(sb: &Sandbox) -> Option<()> {
    sb.write(
        "leaf.ext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    );
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(sb.path("."))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sensei test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]) && openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]) && openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    if made {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "openssl is missing (or failed) under CI"
    );
    eprintln!("SKIPPED: the TLS email tests need the openssl command");
    None
}

/// `smtp:` for `localhost` with `tls` and the rest of the mapping (`, ca_file: ...`).
fn tls_smtp_config(sb: &Sandbox, port: u16, tls: &str, rest: &str, wait: &str) {
    sb.write(
        "sensei.yaml",
        &format!(
            "smtp: {{ host: localhost, port: {port}, tls: {tls}, from: sensei@example.com{rest} }}\nalerts: {{ backoff: 50ms, max_backoff: 200ms, wait_on_exit: {wait} }}\n"
        ),
    );
}

/// Runs `mail_runbook` (with `env`) against an SMTP server started with `server_args` after
/// the port and mail directory, configured with `smtp.tls: tls` and `rest`, and checks the
/// email arrived over TLS (and logged in as `ops` when `env` is given); `None`: skipped.
fn mail_over(tls: &str, rest: &str, server_args: &[&str], env: &[(&str, &str)]) -> Option<()> {
    let python = python_with_aiosmtpd()?;
    let sb = Sandbox::new();
    private_ca_and_localhost_cert(&sb)?;
    let port = free_port();
    let smtp = SmtpServer::start_with(python, &sb, port, server_args);
    tls_smtp_config(&sb, port, tls, rest, "15s");
    sb.write("rb.yaml", &mail_runbook());
    let mut cmd = sb.command(&["run", "rb.yaml", "-p", &format!("dsn={SECRET}")]);
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run sensei");
    let r = Run::from(out);
    assert_eq!(r.code, 1, "{r:?}");
    let id = r.id();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{r:?} {:?}", deliveries(&sb));
    assert_alert_mail(&mails[0], &id);
    assert_eq!(mails[0]["tls"], true, "{}", mails[0]);
    let login = env.first().map(|_| "ops");
    assert_eq!(mails[0]["login"].as_str(), login, "{}", mails[0]);
    let done = &deliveries(&sb)[0];
    assert_eq!(done["state"], "delivered", "{done}");
    Some(())
}

#[test]
fn an_email_goes_over_required_starttls_to_a_server_whose_private_ca_is_in_ca_file() {
    let args = ["starttls", "cert.pem", "key.pem"];
    mail_over("starttls", ", ca_file: ca.pem", &args, &[]);
}

#[test]
fn an_email_goes_over_smtps_to_a_server_whose_private_ca_is_in_ca_file() {
    let args = ["tls", "cert.pem", "key.pem"];
    mail_over("tls", ", ca_file: ca.pem", &args, &[]);
}

#[test]
fn smtp_auth_with_the_password_from_password_env_over_starttls_and_smtps() {
    let env = [("SENSEI_TEST_SMTP_PASSWORD", "s3cret-pw")];
    let rest = ", ca_file: ca.pem, username: ops, password_env: SENSEI_TEST_SMTP_PASSWORD";
    for tls in ["starttls", "tls"] {
        let args = [tls, "cert.pem", "key.pem", "ops:s3cret-pw"];
        mail_over(tls, rest, &args, &env);
    }
}

#[test]
fn a_wrong_smtp_password_fails_the_delivery_permanently_never_the_migration() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let sb = Sandbox::new();
    let Some(()) = private_ca_and_localhost_cert(&sb) else {
        return;
    };
    let port = free_port();
    let args = ["starttls", "cert.pem", "key.pem", "ops:s3cret-pw"];
    let smtp = SmtpServer::start_with(python, &sb, port, &args);
    let rest = ", ca_file: ca.pem, username: ops, password_env: SENSEI_TEST_SMTP_PASSWORD";
    tls_smtp_config(&sb, port, "starttls", rest, "2s");
    sb.write("rb.yaml", &mail_runbook());
    let out = sb
        .command(&["run", "rb.yaml", "-p", &format!("dsn={SECRET}")])
        .env("SENSEI_TEST_SMTP_PASSWORD", "wrong")
        .output()
        .expect("run sensei");
    assert_eq!(out.status.code(), Some(1), "the step's failure, only");
    assert!(smtp.mails().is_empty());
    let d = &deliveries(&sb)[0];
    assert_eq!(d["state"], "failed", "{d}");
    let error = string(d, "last_error");
    assert!(error.contains("535"), "{d}");
    assert!(!d.to_string().contains("wrong"), "the password leaked: {d}");
}

#[test]
fn starttls_to_a_private_ca_server_without_ca_file_fails_the_delivery_on_its_certificate() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let sb = Sandbox::new();
    let Some(()) = private_ca_and_localhost_cert(&sb) else {
        return;
    };
    let port = free_port();
    let smtp = SmtpServer::start_with(python, &sb, port, &["starttls", "cert.pem", "key.pem"]);
    tls_smtp_config(&sb, port, "starttls", "", "300ms");
    sb.write(
        "ok.yaml",
        &runbook(
            "  channels:\n    mail: { email: { to: [dba@example.com] } }\n  rules:\n    - { on: [completed], notify: [mail] }",
            false,
        ),
    );
    let r = run(&sb, &["run", "ok.yaml", "-p", &format!("dsn={SECRET}")]);
    assert_eq!(r.code, 0, "the migration completes all the same: {r:?}");
    assert_eq!(sb.state(&r.id()), "certified");
    assert!(smtp.mails().is_empty(), "nothing was sent in clear");
    let d = &deliveries(&sb)[0];
    assert_ne!(d["state"], "delivered", "{d}");
    assert!(d["attempts"].as_u64().expect("attempts") >= 1, "{d}");
    let error = string(d, "last_error");
    assert!(error.contains("certificate"), "{d}");
}

#[test]
fn tls_starttls_never_falls_back_to_plain_text_with_a_server_that_does_not_offer_it() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let sb = Sandbox::new();
    let Some(()) = private_ca_and_localhost_cert(&sb) else {
        return;
    };
    let port = free_port();
    let smtp = SmtpServer::start(python, &sb, port);
    tls_smtp_config(&sb, port, "starttls", ", ca_file: ca.pem", "300ms");
    sb.write("rb.yaml", &mail_runbook());
    let r = run(&sb, &["run", "rb.yaml", "-p", &format!("dsn={SECRET}")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(smtp.mails().is_empty(), "an email went in plain text");
    let d = &deliveries(&sb)[0];
    assert_ne!(d["state"], "delivered", "{d}");
    assert!(
        string(d, "last_error").to_lowercase().contains("starttls"),
        "{d}"
    );
}

#[test]
fn a_mail_server_that_accepts_and_stalls_is_given_up_on_after_alerts_timeout() {
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts, never greets, holds the connections open.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    sb.write(
        "sensei.yaml",
        &format!(
            "smtp: {{ host: 127.0.0.1, port: {port}, tls: none, from: sensei@example.com }}\nalerts: {{ backoff: 50ms, max_backoff: 200ms, timeout: 1s, wait_on_exit: 2s }}\n"
        ),
    );
    sb.write("rb.yaml", &mail_runbook());
    let started = Instant::now();
    let r = run(&sb, &["run", "rb.yaml", "-p", &format!("dsn={SECRET}")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by alerts.timeout: {:?}",
        started.elapsed()
    );
    let d = &deliveries(&sb)[0];
    assert_eq!(d["state"], "pending", "{d}");
    let error = string(d, "last_error");
    assert!(error.contains("alerts.timeout"), "{d}");
}

#[test]
fn a_ca_file_that_cannot_be_used_is_a_usage_error_naming_it() {
    let sb = Sandbox::new();
    sb.write("rb.yaml", &runbook("  channels: {}\n  rules: []", false));
    sb.write("empty.pem", "not a certificate\n");
    sb.write(
        "garbled.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    sb.write("fine.pem", "");
    for (tls, ca, want) in [
        ("starttls", "missing.pem", "cannot read it"),
        ("tls", "empty.pem", "no PEM certificate"),
        ("starttls", "garbled.pem", "smtp.ca_file garbled.pem: "),
        ("none", "fine.pem", "smtp.tls is none"),
    ] {
        sb.write(
            "bad.yaml",
            &format!(
                "smtp: {{ host: localhost, tls: {tls}, from: a@example.com, ca_file: {ca} }}\n"
            ),
        );
        let r = run(
            &sb,
            &["run", "rb.yaml", "-p", "dsn=x", "--config", "bad.yaml"],
        );
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("bad.yaml"), "{r:?}");
        assert!(r.stderr.contains(&format!("smtp.ca_file {ca}")), "{r:?}");
        assert!(r.stderr.contains(want), "{r:?}");
        assert!(!sb.path(".sensei").exists(), "nothing was created");
    }
}

#[test]
fn creation_gates_and_decisions_from_another_process_alert_too() {
    let sb = Sandbox::new();
    let rx = Receiver::start(&[200]);
    config(&sb, ", allow_private_urls: true");
    sb.write(
        "rb.yaml",
        &format!(
            r#"version: 1
name: gated
alerts:
  channels:
    hook: {{ webhook: {{ url: "{}" }} }}
  rules:
    - {{ on: [created, gate_waiting, gate_decided, certified], notify: [hook] }}
steps:
  - id: signoff
    gate: {{ approvers: [alice, bob], required: 1 }}
  - id: cutover
    run: "true"
"#,
            rx.url("/hook")
        ),
    );
    let bg = sb.spawn(&["run", "rb.yaml"]);
    let id = bg.id();
    support::wait_for("the gate to wait", || {
        (sb.step(&id, "signoff")["state"] == "waiting").then_some(())
    });
    let approve = sb.sensei(&["approve", &id, "signoff", "--as", "alice"]);
    assert_eq!(approve.code, 0, "{approve:?}");
    let done = bg.finish();
    assert_eq!(done.code, 0, "{done:?}");

    let events: Vec<String> = deliveries(&sb)
        .iter()
        .map(|d| {
            assert_eq!(d["state"], "delivered", "{d}");
            string(d, "event").to_owned()
        })
        .collect();
    assert_eq!(
        events,
        ["created", "gate_waiting", "gate_decided", "certified"]
    );
    let got = rx.got();
    let waiting = got
        .iter()
        .map(Received::json)
        .find(|b| b["event"] == "gate_waiting")
        .expect("gate_waiting payload");
    assert_eq!(waiting["step"], "signoff");
    assert_eq!(waiting["state"], "awaiting_approval");
    let summary = string(&waiting, "summary");
    assert!(
        summary.contains("alice, bob") && summary.contains("not starter"),
        "{summary}"
    );
    let decided = got
        .iter()
        .map(Received::json)
        .find(|b| b["event"] == "gate_decided")
        .expect("gate_decided payload");
    assert_eq!(decided["data"]["who"], "alice");
    assert!(
        string(&decided, "summary").contains("approve by alice"),
        "{decided}"
    );
}

#[test]
fn alerts_left_undelivered_go_out_with_the_next_command_on_the_same_store() {
    let sb = Sandbox::new();
    let port = free_port();
    sb.write(
        "sensei.yaml",
        "alerts: { allow_private_urls: true, backoff: 50ms, max_backoff: 100ms, wait_on_exit: 300ms }\n",
    );
    let alerts = format!(
        "  channels:\n    hook: {{ webhook: {{ url: \"http://127.0.0.1:{port}/late\" }} }}\n  rules:\n    - {{ on: [certified], notify: [hook] }}"
    );
    sb.write("rb.yaml", &runbook(&alerts, false));
    // Nothing listens yet: the alert stays in the outbox when the command exits.
    let first = run(&sb, &["run", "rb.yaml", "-p", "dsn=not-a-real-secret"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stdout.contains("1 alert(s) not delivered yet"),
        "{first:?}"
    );
    let id = first.id();
    assert_eq!(deliveries(&sb)[0]["state"], "pending");

    // The receiver comes up; once the alert is due again, the next migration run here sends
    // it too.
    let rx = Receiver::start_on(port, &[200]);
    support::wait_for("the alert to be due", || {
        let pending = &deliveries(&sb)[0];
        let next = string(pending, "next_attempt_at");
        let next = chrono::DateTime::parse_from_rfc3339(next)
            .unwrap_or_else(|e| panic!("next_attempt_at {next:?}: {e}"));
        (next < chrono::Utc::now()).then_some(())
    });
    sb.write("quiet.yaml", &runbook("  channels: {}\n  rules: []", false));
    let second = run(&sb, &["run", "quiet.yaml", "-p", "dsn=not-a-real-secret"]);
    assert_eq!(second.code, 0, "{second:?}");
    let got = rx.got();
    assert_eq!(got.len(), 1, "{second:?}");
    assert_eq!(got[0].json()["migration"], id.as_str());
    let d = &deliveries(&sb)[0];
    assert_eq!(d["state"], "delivered", "{d}");
    assert_eq!(outcomes(d).last().map(String::as_str), Some("delivered"));
}

#[test]
fn the_configuration_file_names_the_state_directory_unless_the_flag_does() {
    let sb = Sandbox::new();
    sb.write("sensei.yaml", "state_dir: from-config\n");
    sb.write("rb.yaml", &runbook("  channels: {}\n  rules: []", false));
    let out = sb
        .command(&["run", "rb.yaml", "-p", "dsn=not-a-real-secret"])
        .env_remove("SENSEI_STATE_DIR")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(sb.path("from-config/sensei.db").exists());
    let list = sb
        .command(&["list"])
        .env_remove("SENSEI_STATE_DIR")
        .output()
        .expect("list");
    assert!(String::from_utf8_lossy(&list.stdout).contains("certified"));
    // The flag (here through SENSEI_STATE_DIR) wins.
    assert_eq!(sb.sensei(&["list"]).code, 2);
}
