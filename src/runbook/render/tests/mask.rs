//! Masking secrets, and the forms of a secret a template can print.

use super::*;
use std::borrow::Cow;

#[test]
fn the_masker_hides_every_occurrence() {
    let m = Masker::new([
        "hunter2".to_owned(),
        "hunter".to_owned(),
        String::new(),
        "s3cr3t".to_owned(),
    ]);
    assert!(!m.is_empty());
    assert_eq!(
        m.mask("pw=hunter2 and hunter2, hunter"),
        "pw=*** and ***, ***"
    );
    assert_eq!(m.mask("nothing here"), "nothing here");
    assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
    // Overlapping secrets: the whole stretch is hidden, no part of either shows.
    let m = Masker::new(["abcd".to_owned(), "cdef".to_owned()]);
    assert_eq!(m.mask("xabcdefx"), "x***x");
    let m = Masker::new(["aa".to_owned()]);
    assert_eq!(m.mask("aaa b aa"), "*** b ***");
    assert_eq!(
        Masker::new(["pw".to_owned()])
            .mask_json(&json!({"pw-key": ["pw1", 2, {"k": "my pw"}], "n": null})),
        json!({"***-key": ["***1", 2, {"k": "my ***"}], "n": null})
    );
    assert_eq!(
        Masker::new(["1234".to_owned()]).mask_json(&json!([1234, 5])),
        json!(["***", 5])
    );
    let empty = Masker::default();
    assert!(empty.is_empty());
    assert_eq!(empty.mask("hunter2"), "hunter2");
    assert_eq!(empty.mask_json(&json!({"a": "b"})), json!({"a": "b"}));
    assert_eq!(
        format!("{:?}", Masker::new(["hunter2".to_owned()])),
        "Masker { secrets: 1 }"
    );
}

#[test]
fn secret_values_cover_every_form_a_template_prints() {
    let yaml = "version: 1\nname: s\nparams:\n  dsn: { type: string, secret: true }\n  keys: { type: list, secret: true }\n  port: { type: integer, secret: true }\n  flag: { type: boolean, secret: true }\n  table: { type: string }\nsteps:\n  - id: a\n    run: x\n";
    let checked = crate::runbook::load_bytes("s.yaml", yaml.as_bytes());
    let runbook = checked.runbook.expect("valid");
    let params: crate::runbook::params::Params = serde_json::from_value(json!({
        "dsn": "pg://u:it's\"<&>$x@h",
        "keys": ["k1", "k2"],
        "port": 6543,
        "flag": true,
        "table": "orders",
    }))
    .expect("params");
    let secrets = secret_values(&runbook, &params);
    for expected in [
        "pg://u:it's\"<&>$x@h",
        "pg://u:it'\\''s\"<&>$x@h",
        "pg://u:it's\\\"<&>\\$x@h",
        "pg://u:it's\"<&>\\$x@h",
        "pg://u:it's\\\"<&>$x@h",
        "pg://u:it&#x27;s&quot;&lt;&amp;&gt;$x@h",
        "k1",
        "k2",
        "[\"k1\",\"k2\"]",
        "6543",
    ] {
        assert!(
            secrets.contains(&expected.to_owned()),
            "{expected} in {secrets:?}"
        );
    }
    assert!(
        !secrets
            .iter()
            .any(|s| s == "orders" || s == "true" || s.is_empty())
    );

    // Whatever a template makes of a secret, the masker hides it.
    let masker = Masker::new(secrets);
    let r = Renderer::new();
    let c = json!({ "params": params });
    for (template, escape) in [
        ("connect {{params.dsn}} {{params.keys}}", Escape::Shell),
        (
            "connect \"{{params.dsn}}\" {{join params.keys \" \"}}",
            Escape::Shell,
        ),
        (
            "{\"dsn\": \"{{params.dsn}}\", \"k\": {{params.keys}}}",
            Escape::Json,
        ),
        ("<p>{{params.dsn}} {{params.port}}</p>", Escape::Html),
        ("cat <<EOF\n{{params.dsn}}\nEOF", Escape::Shell),
        ("echo '{{params.dsn}}'", Escape::Shell),
    ] {
        let out = render_with(&r, template, &c, escape).expect("renders");
        let masked = masker.mask(&out);
        for leak in ["u:it", "k1", "k2", "6543"] {
            assert!(!masked.contains(leak), "{masked}");
        }
    }
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked_unless_it_is_short() {
    let key = "-----BEGIN KEY-----\n  MIIEvQIBADANBg\r\n  kqhkiG9w0BAQEF\n==\n}\n-----END KEY-----";
    let m = Masker::new([key.to_owned()]);
    // Output is logged line by line: each line must be hidden on its own.
    for (line, shown) in [
        ("-----BEGIN KEY-----", "***"),
        ("MIIEvQIBADANBg", "***"),
        ("    kqhkiG9w0BAQEF tail", "    *** tail"),
        ("-----END KEY-----", "***"),
        // Lines shorter than MIN_FRAGMENT are left alone: hiding every `}` garbles logs.
        ("==", "=="),
        ("}", "}"),
    ] {
        assert_eq!(m.mask(line), shown, "{line}");
    }
    assert_eq!(m.mask(&format!("a {key} b")), "a *** b");
    assert_eq!(MIN_FRAGMENT, 4);
    assert_eq!(
        Masker::new(["ab\ncdef".to_owned()]).mask("ab cdef"),
        "ab ***"
    );
}

/// Masks `pieces` of one line as `run` hands them on, and joins what is shown.
fn pieces(m: &Masker, pieces: &[&str]) -> Vec<String> {
    let mut held = String::new();
    let mut shown = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        shown.extend(m.mask_piece(&mut held, piece, i + 1 == pieces.len()));
    }
    assert!(held.is_empty());
    shown
}

#[test]
fn a_line_in_pieces_is_masked_as_if_it_came_whole() {
    let m = Masker::new(["hunter2-s3cret".to_owned(), "é-key".to_owned()]);
    // A secret across the cut shows in neither piece.
    let shown = pieces(&m, &["aaaa bbbb hunter2", "-s3cret cccc"]);
    assert!(shown.concat().contains("***"), "{shown:?}");
    assert_eq!(shown.concat(), "aaaa bbbb *** cccc");
    // A secret wholly in the first piece is shown masked at once; only what could begin a
    // secret is held.
    let shown = pieces(&m, &["hunter2-s3cret and more text here", " end"]);
    assert_eq!(shown[0], "*** and m");
    assert_eq!(shown.concat(), "*** and more text here end");
    // A piece shorter than what may begin a secret is held whole.
    let mut held = String::new();
    assert_eq!(m.mask_piece(&mut held, "hun", false), None);
    assert_eq!(
        m.mask_piece(&mut held, "ter2-s3cret", true).as_deref(),
        Some("***")
    );
    // Cuts stay on character boundaries.
    let shown = pieces(&m, &["ééééééééééééééééééé", "-key ok"]);
    assert_eq!(shown.concat(), "éééééééééééééééééé*** ok");
    // Without secrets nothing is held.
    let none = Masker::default();
    let mut held = String::new();
    assert_eq!(
        none.mask_piece(&mut held, "abc", false).as_deref(),
        Some("abc")
    );
    assert!(held.is_empty());
}
