//! Secret params never leave the engine unmasked, whatever shape the output takes: a fan-out
//! over a secret list (step ids are shown everywhere, so they must not carry the value), a
//! multi-line secret (logs are stored line by line), and a secret across the 64 KiB cut of a
//! long output line. Each test looks at everything a person or a tool can see — `sensei plan`,
//! `run`, `status`, `events`, `logs`, text and JSON, the API and its event stream — and at
//! every table of the state database except the stored params themselves.

mod harness;
mod support;

use support::{Sandbox, assert_hidden, stored_params, stored_texts};

/// Runs `sensei plan` on `file` with `params`, in text and JSON: (what, output).
fn plans(sb: &Sandbox, file: &str, params: &[&str]) -> Vec<(String, String)> {
    ["text", "json"]
        .iter()
        .map(|format| {
            let mut args = vec!["plan", file, "--format", format];
            for p in params {
                args.extend(["-p", p]);
            }
            let run = sb.sensei(&args).ok();
            (format!("plan --format {format}"), run.stdout + &run.stderr)
        })
        .collect()
}

fn check_hidden(shown: &[(String, String)], needles: &[&str]) {
    let texts: Vec<(&str, &str)> = shown
        .iter()
        .map(|(what, text)| (what.as_str(), text.as_str()))
        .collect();
    assert_hidden(&texts, needles);
}

/// The step ids of a status document.
fn step_ids(sb: &Sandbox, id: &str) -> Vec<String> {
    sb.status(id)["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step id").to_owned())
        .collect()
}

const FAN: &str = r#"version: 1
name: fan
params:
  hosts: { type: list, secret: true }
steps:
  - id: fan
    for_each: "{{params.hosts}}"
    run: "echo {{item}} >> seen; echo connecting to {{item}}"
  - id: after
    needs: [fan]
    run: echo done
"#;

#[test]
fn a_fan_out_over_a_secret_list_names_its_steps_by_position() {
    let sb = Sandbox::new();
    let file = sb.write("fan.yaml", FAN);
    let file = file.to_str().expect("utf-8");
    let hosts = "hosts=alpha-s3cret-host,bravo-s3cret-host";
    let mut shown = plans(&sb, file, &[hosts]);
    assert!(
        shown[0].1.contains("fan[#1], fan[#2]"),
        "positional ids in the plan:\n{}",
        shown[0].1
    );
    let plan: serde_json::Value = serde_json::from_str(&shown[1].1).expect("plan json");
    assert_eq!(plan["steps"][0]["id"], "fan[#1]");
    assert_eq!(plan["steps"][0]["item"], "***");
    let run = sb.sensei(&["run", file, "-p", hosts]).ok();
    let id = run.id();
    assert_eq!(step_ids(&sb, &id), ["fan[#1]", "fan[#2]", "after"]);
    // The element itself still reaches the step's command: that is what it is for.
    let seen = sb.read("seen");
    assert!(
        seen.contains("alpha-s3cret-host") && seen.contains("bravo-s3cret-host"),
        "{seen}"
    );
    shown.push(("sensei run".into(), run.stdout + &run.stderr));
    shown.extend(sb.shown(&id));
    check_hidden(&shown, &["s3cret"]);
    assert!(stored_params(&sb.path(".sensei")).contains("alpha-s3cret-host"));
}

#[test]
fn a_duplicate_in_a_secret_list_is_refused_by_position() {
    let sb = Sandbox::new();
    let file = sb.write("fan.yaml", FAN);
    let run = sb.sensei(&[
        "plan",
        file.to_str().expect("utf-8"),
        "-p",
        "hosts=a-s3cret,b-s3cret,a-s3cret",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("`for_each` of step `fan` has the same element at #1 and #3"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
}

#[test]
fn a_fan_out_over_masked_outputs_names_its_steps_by_position() {
    // Outputs are masked, so two elements holding different secrets both read `***`: named by
    // value they were one step, and the other element never ran.
    let sb = Sandbox::new();
    let file = sb.write(
        "shards.yaml",
        r#"version: 1
name: shards
params:
  one: { type: string, secret: true }
  two: { type: string, secret: true }
env:
  ONE: "{{params.one}}"
  TWO: "{{params.two}}"
steps:
  - id: discover
    outputs: json
    run: |
      printf '{"shards": ["%s", "%s", "plain"]}\n' "$ONE" "$TWO"
  - id: per
    needs: [discover]
    for_each: "{{steps.discover.outputs.shards}}"
    run: "echo shard {{item}} >> seen"
"#,
    );
    let file = file.to_str().expect("utf-8");
    let run = sb
        .sensei(&[
            "run",
            file,
            "-p",
            "one=first-s3cret",
            "-p",
            "two=second-s3cret",
        ])
        .ok();
    let id = run.id();
    assert_eq!(
        step_ids(&sb, &id),
        ["discover", "per[*]", "per[#1]", "per[#2]", "per[#3]"]
    );
    assert_eq!(sb.read("seen").lines().count(), 3, "{}", sb.read("seen"));
    let mut shown = sb.shown(&id);
    shown.push(("sensei run".into(), run.stdout + &run.stderr));
    check_hidden(&shown, &["s3cret"]);
}

#[test]
fn a_resumed_migration_names_masked_expansions_as_before() {
    // The expansions are rebuilt from the `step_expanded` event, whose items are masked: the
    // names must come out the same, or the resumed graph would hold other steps than the rows.
    let sb = Sandbox::new();
    let file = sb.write(
        "resume.yaml",
        r#"version: 1
name: resume
params:
  one: { type: string, secret: true }
env:
  ONE: "{{params.one}}"
steps:
  - id: discover
    outputs: json
    run: |
      printf '{"shards": ["%s", "plain"]}\n' "$ONE"
  - id: per
    needs: [discover]
    idempotent: true
    for_each: "{{steps.discover.outputs.shards}}"
    run: "echo $$ >> per.pid; while [ ! -e go ]; do sleep 0.02; done; echo {{item}} >> seen"
"#,
    );
    let file = file.to_str().expect("utf-8");
    let bg = sb.spawn(&["run", file, "-p", "one=first-s3cret"]);
    let id = bg.id();
    support::wait_for("an expansion to run", || {
        let pids = sb.path("per.pid");
        (pids.exists() && !support::pids_in(&pids).is_empty()).then_some(())
    });
    bg.kill9();
    for pid in support::pids_in(&sb.path("per.pid")) {
        support::wait_for("the step's processes to die with the engine", || {
            (!support::alive(pid)).then_some(())
        });
    }
    sb.write("go", "");
    let resumed = sb.sensei(&["resume", &id]).ok();
    assert_eq!(sb.state(&id), "certified");
    assert_eq!(
        step_ids(&sb, &id),
        ["discover", "per[*]", "per[#1]", "per[#2]"]
    );
    let mut shown = sb.shown(&id);
    shown.push(("sensei resume".into(), resumed.stdout + &resumed.stderr));
    check_hidden(&shown, &["s3cret"]);
}

/// A key of three lines, each one long enough to be masked on its own, and a short last one.
const KEY: &str = "alpha-line-one-of-the-key\nbravo-line-two-of-the-key\n  charlie-line-three\n==";

#[test]
fn every_line_of_a_multi_line_secret_is_masked() {
    let sb = Sandbox::new();
    let file = sb.write(
        "key.yaml",
        r#"version: 1
name: key
params:
  key: { type: string, secret: true }
env:
  KEY: "{{params.key}}"
steps:
  - id: show
    run: printf '%s\n' "$KEY"
  - id: fail
    needs: [show]
    run: printf 'the key:\n%s\n' "$KEY" >&2; exit 3
"#,
    );
    let file = file.to_str().expect("utf-8");
    let param = format!("key={KEY}");
    let mut shown = plans(&sb, file, &[&param]);
    let run = sb.sensei(&["run", file, "-p", &param]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    // The error quotes the last line of stderr: the key's, masked.
    let error = sb.step(&id, "fail")["error"].clone();
    assert_eq!(error, "exited with code 3: ==", "{error}");
    let logs = sb.sensei(&["logs", &id, "show"]).ok();
    assert_eq!(logs.stdout, "***\n***\n  ***\n==\n");
    shown.push(("sensei run".into(), run.stdout + &run.stderr));
    shown.extend(sb.shown(&id));
    check_hidden(&shown, &["alpha-line", "bravo-line", "charlie-line"]);
    assert!(stored_params(&sb.path(".sensei")).contains("charlie-line"));
}

/// 24 bytes, placed so that the 64 KiB cut falls after its 12th: `straddle-s3c|ret-value-42`.
const STRADDLE: &str = "straddle-s3cret-value-42";

#[test]
fn a_secret_across_the_cut_of_a_long_line_is_masked() {
    let sb = Sandbox::new();
    let file = sb.write(
        "long.yaml",
        r#"version: 1
name: long
params:
  token: { type: string, secret: true }
env:
  TOKEN: "{{params.token}}"
steps:
  - id: out
    run: head -c 65524 /dev/zero | tr '\0' x; printf '%s tail\n' "$TOKEN"
  - id: err
    needs: [out]
    run: (head -c 65524 /dev/zero | tr '\0' y; printf '%s tail\n' "$TOKEN") >&2; exit 4
"#,
    );
    let file = file.to_str().expect("utf-8");
    let param = format!("token={STRADDLE}");
    let run = sb.sensei(&["run", file, "-p", &param]);
    assert_eq!(run.code, 1, "{run:?}");
    let id = run.id();
    let logs = sb.sensei(&["logs", &id, "out"]).ok();
    assert!(
        logs.stdout.replace('\n', "").ends_with("xxx*** tail"),
        "{}",
        &logs.stdout[logs.stdout.len().saturating_sub(100)..]
    );
    let error = sb.step(&id, "err")["error"].clone();
    assert!(
        error.as_str().expect("error").ends_with("yyy*** tail"),
        "{error}"
    );
    let mut shown = sb.shown(&id);
    shown.push(("sensei run".into(), run.stdout + &run.stderr));
    // Neither half of the secret shows.
    check_hidden(&shown, &["straddle-s3c", "ret-value-42"]);
}

#[test]
fn the_api_and_its_event_stream_show_no_secret() {
    let dir = harness::Dir::new();
    dir.runbook(
        "leaky.yaml",
        r#"version: 1
name: leaky
params:
  hosts: { type: list, secret: true }
  key: { type: string, secret: true }
env:
  KEY: "{{params.key}}"
steps:
  - id: fan
    for_each: "{{params.hosts}}"
    run: echo connecting to {{item}}
  - id: show
    needs: [fan]
    run: printf '%s\n' "$KEY"; head -c 65524 /dev/zero | tr '\0' x; printf '%s tail\n' "$KEY"
"#,
    );
    let s = dir.serve_ops();
    let key = format!("{KEY}\n{STRADDLE}");
    let params = serde_json::json!({ "hosts": ["alpha-s3cret-host"], "key": key });
    let id = s.create(Some("ops-token"), "leaky", &params.to_string());
    s.post(&format!("/v1/migrations/{id}/start"), "")
        .expect(200);
    s.wait_state(&id, "certified");
    let mut shown = Vec::new();
    let detail = s.get(&format!("/v1/migrations/{id}")).expect(200);
    let steps: Vec<String> = detail.json["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {}", detail.text))
        .iter()
        .map(|s| s["step"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(steps, ["fan[#1]", "show"]);
    shown.push(("GET migration".to_owned(), detail.text));
    shown.push((
        "GET status".to_owned(),
        s.get(&format!("/v1/migrations/{id}/status"))
            .expect(200)
            .text,
    ));
    shown.push((
        "GET events".to_owned(),
        s.get(&format!("/v1/migrations/{id}/events"))
            .expect(200)
            .text,
    ));
    for step in &steps {
        let path = format!(
            "/v1/migrations/{id}/steps/{}/logs",
            step.replace('[', "%5B")
                .replace(']', "%5D")
                .replace('#', "%23")
        );
        let logs = s.get(&path).expect(200);
        assert!(
            logs.json.as_array().is_some_and(|l| !l.is_empty()),
            "{}",
            logs.text
        );
        shown.push((format!("GET {path}"), logs.text));
    }
    let mut stream = s.stream(&id);
    let mut streamed = String::new();
    while let Some(message) = stream.next() {
        streamed.push_str(&format!("{} {}\n", message.event, message.data));
        if message.data["data"]["to"] == "certified" {
            break;
        }
    }
    assert!(streamed.contains("fan[#1]"), "{streamed}");
    shown.push(("the event stream".to_owned(), streamed));
    let state = dir.path("state");
    shown.push(("the state database".to_owned(), stored_texts(&state)));
    check_hidden(
        &shown,
        &[
            "s3cret",
            "alpha-line",
            "bravo-line",
            "charlie-line",
            "straddle-s3c",
            "ret-value-42",
        ],
    );
    assert!(stored_params(&state).contains("charlie-line"));
}

/// Longer than the 80 characters a message quotes of a template.
const LONG: &str =
    "long-s3cret-0123456789-long-s3cret-0123456789-long-s3cret-0123456789-long-s3cret-0123456789";

#[test]
fn a_secret_in_a_template_error_is_masked_whole() {
    // A message quoting a rendered value used to cut it to 80 characters before the mask
    // looked at it: the mask, which knows only the whole secret, then found nothing. And the
    // error of a polling check reached the step's row (which the status shows) unmasked.
    let sb = Sandbox::new();
    let steps = [
        (
            "when",
            "  - id: cond\n    when: \"{{params.token}}\"\n    run: echo ran\n",
        ),
        (
            "poll",
            "  - id: cond\n    check: \"{{params.token}}\"\n    every: 10ms\n    timeout: 10s\n",
        ),
    ];
    let tokens = [
        (LONG, "got a text of 91 characters"),
        ("short-s3cret", "got `***`"),
    ];
    for ((name, step), (token, got)) in steps
        .iter()
        .flat_map(|s| tokens.iter().map(move |t| (s, t)))
    {
        let file = sb.write(
            &format!("{name}.yaml"),
            &format!(
                "version: 1\nname: {name}\nparams:\n  token: {{ type: string, secret: true }}\nsteps:\n{step}"
            ),
        );
        let run = sb.sensei(&[
            "run",
            file.to_str().expect("utf-8"),
            "-p",
            &format!("token={token}"),
        ]);
        assert_eq!(run.code, 1, "{run:?}");
        let id = run.id();
        let error = sb.step(&id, "cond")["error"].clone();
        assert!(
            error
                .as_str()
                .expect("error")
                .ends_with(&format!("must render true or false, {got}")),
            "{name}: {error}"
        );
        let mut shown = sb.shown(&id);
        shown.push(("sensei run".into(), run.stdout + &run.stderr));
        check_hidden(&shown, &["s3cret"]);
    }
}

#[test]
fn a_secret_param_of_the_wrong_type_is_not_quoted() {
    let sb = Sandbox::new();
    let file = sb.write(
        "port.yaml",
        "version: 1\nname: port\nparams:\n  port: { type: integer, secret: true }\nsteps:\n  - id: a\n    run: echo\n",
    );
    let run = sb.sensei(&["plan", file.to_str().expect("utf-8"), "-p", "port=s3cret"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("param `port` must be an integer, got `***`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
}
