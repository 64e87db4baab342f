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
        let out = r.render(template, &c, escape).expect("renders");
        let masked = masker.mask(&out);
        for leak in ["u:it", "k1", "k2", "6543"] {
            assert!(!masked.contains(leak), "{masked}");
        }
    }
}
