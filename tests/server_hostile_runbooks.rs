//! Runbooks written to hurt the server: a template nested thousands of levels deep once
//! overflowed a worker's stack and aborted `sensei serve`, from any token's
//! `POST /v1/runbooks/validate` and, for a file in the runbooks directory, at every start.

mod harness;

use harness::Dir;
use harness::runbooks::FLOW;

/// A runbook whose one command nests `(not ...)` `levels` deep (line 5, column 15).
fn deep(levels: usize) -> String {
    format!(
        "version: 1\nname: deep\nsteps:\n  - id: a\n    run: echo {{{{not {}true{}}}}}\n",
        "(not ".repeat(levels),
        ")".repeat(levels)
    )
}

const TOO_DEEP: &str = "nests blocks, `(...)` or lists more than 64 levels deep";

#[test]
fn a_deep_template_posted_for_validation_is_a_located_422_and_the_server_keeps_serving() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    let s = dir.serve_ops();
    // The viewer role may validate; 1,100 levels aborted the server before.
    for levels in [1_100, 5_000, 100_000] {
        let reply = s
            .call_as(
                Some("vic-token"),
                "POST",
                "/v1/runbooks/validate",
                Some(&deep(levels)),
            )
            .problem(422);
        let first = &reply.json["diagnostics"][0];
        assert_eq!(
            (first["line"].as_u64(), first["column"].as_u64()),
            (Some(5), Some(15))
        );
        let message = first["message"].as_str().unwrap_or_default();
        assert!(message.contains(TOO_DEEP), "{}", reply.text);
        assert!(
            message.len() < 200,
            "the message quotes a short piece: {message}"
        );
    }
    let id = s.create(Some("ops-token"), "flow", "{}");
    assert_eq!(s.state(&id), "created");
    assert!(!s.log().contains("overflow"), "{}", s.log());
}

#[test]
fn a_runbook_file_that_cannot_load_is_reported_and_the_others_are_served() {
    let dir = Dir::new();
    dir.runbook("flow.yaml", FLOW);
    dir.runbook("deep.yaml", &deep(5_000));
    let s = dir.serve_ops();
    let listed = s.get("/v1/runbooks").expect(200);
    let entries = listed.json["runbooks"]
        .as_array()
        .unwrap_or_else(|| panic!("no runbooks list: {}", listed.text));
    let entry = |file: &str| {
        entries
            .iter()
            .find(|e| e["file"] == file)
            .unwrap_or_else(|| panic!("{file} not listed: {}", listed.text))
    };
    let bad = entry("deep.yaml");
    assert_eq!(bad["valid"], false);
    assert!(bad["active"].is_null(), "{bad}");
    let message = bad["diagnostics"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(TOO_DEEP), "{bad}");
    assert_eq!(entry("flow.yaml")["valid"], true);
    assert!(
        s.log().contains("deep.yaml"),
        "the log names the file: {}",
        s.log()
    );
    let id = s.create(Some("ops-token"), "flow", "{}");
    assert_eq!(s.state(&id), "created");
}
