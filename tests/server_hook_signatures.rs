//! The signing headers of webhook deliveries (`POST /v1/hooks/{name}`) have one accepted form
//! each, so no other spelling of an accepted signature (upper or mixed case, `+` for a `0`)
//! starts another migration, before or after a restart; a header in another form is refused
//! saying what form is expected; and docs/openapi.json states the same forms.

mod harness;

use harness::hooks::{SECRET, deliver, migrations, now, server, signed, signed_over};
use harness::{Dir, Server};
use sensei::alert::sign;
use serde_json::Value;

/// Other texts of `signature` that a lenient hex reader takes for the same MAC: upper case,
/// mixed case, and `+` for the `0` of a byte below 0x10 (if it has one).
fn spellings(signature: &str) -> Vec<(&'static str, String)> {
    let hex = signature.strip_prefix("sha256=").expect("sha256=");
    let mut letters = 0;
    let mixed: String = hex
        .chars()
        .map(|c| {
            letters += usize::from(c.is_ascii_alphabetic());
            if letters % 2 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let mut out = vec![
        ("upper case", format!("sha256={}", hex.to_uppercase())),
        ("mixed case", format!("sha256={mixed}")),
    ];
    let zero = (0..hex.len()).step_by(2).find(|&i| &hex[i..=i] == "0");
    if let Some(i) = zero {
        out.push((
            "`+` for `0`",
            format!("sha256={}+{}", &hex[..i], &hex[i + 1..]),
        ));
    }
    for (what, text) in &out {
        assert_ne!(text, signature, "{what}");
    }
    out
}

#[test]
fn another_spelling_of_an_accepted_signature_is_refused_also_after_a_restart() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    let body = br#"{"tables":["orders"],"batch":2}"#;
    // A delivery whose signature has a byte below 0x10, so that it can be spelt with `+`.
    let headers = (0..60)
        .map(|back| signed(SECRET, now() - back, body))
        .find(|h| spellings(&h[2].1).len() == 3)
        .expect("a signature with a byte below 0x10 among 60");
    deliver(&s, "deploy-finished", &headers, body).expect(202);
    assert_eq!(migrations(&s), 1);
    let replays = |s: &Server| {
        for (what, spelling) in spellings(&headers[2].1) {
            let mut replay = headers.clone();
            replay[2].1 = spelling;
            let r = deliver(s, "deploy-finished", &replay, body).problem(401);
            let detail = r.json["detail"].as_str().expect("a detail");
            assert!(
                detail.contains("must be `sha256=` followed by 64 lower-case hex digits"),
                "{what}: {detail}"
            );
        }
        assert_eq!(migrations(s), 1);
    };
    replays(&s);
    s.kill9();
    let s = server(&dir, &[]);
    let r = deliver(&s, "deploy-finished", &headers, body).problem(401);
    assert!(r.text.contains("accepted before"), "{}", r.text);
    replays(&s);
}

#[test]
fn a_signature_not_in_its_form_is_refused_saying_what_is_expected() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    let body = br#"{"tables":["orders"],"batch":2}"#;
    let good = signed(SECRET, now(), body);
    let sig = good[2].1.clone();
    let hex = sig.strip_prefix("sha256=").expect("sha256=");
    let cases = [
        (
            format!("sha256={}", hex.to_uppercase()),
            "is not a lower-case hex digit",
        ),
        (
            format!("sha256={}", &hex[..63]),
            "it has 63 characters after `sha256=`",
        ),
        (format!("{sig}0"), "it has 65 characters after `sha256=`"),
        (
            format!("sha256=g{}", &hex[1..]),
            "character 1 after `sha256=`, `g`, is not a lower-case hex digit",
        ),
        (hex.to_owned(), "it does not start with `sha256=`"),
        (format!("SHA256={hex}"), "it does not start with `sha256=`"),
    ];
    for (signature, reason) in cases {
        let mut headers = good.clone();
        headers[2].1 = signature.clone();
        let r = deliver(&s, "deploy-finished", &headers, body).problem(401);
        assert_eq!(r.json["type"], "urn:sensei:problem:unauthorized");
        let detail = r.json["detail"].as_str().expect("a detail");
        assert!(
            detail.starts_with(
                "X-Sensei-Signature must be `sha256=` followed by 64 lower-case hex digits (the HMAC-SHA256 of \"<timestamp>.<raw body>\"); "
            ) && detail.ends_with(reason),
            "{signature}: {detail}"
        );
    }
    assert_eq!(migrations(&s), 0);
    // None of them used up the delivery they spelt.
    deliver(&s, "deploy-finished", &good, body).expect(202);
    assert_eq!(migrations(&s), 1);
}

#[test]
fn a_timestamp_is_plain_decimal_digits_signed_as_sent() {
    let dir = Dir::new();
    let s = server(&dir, &[]);
    let body = br#"{"tables":["orders"],"batch":2}"#;
    let ts = now().to_string();
    // Each refused whether the sender signed the number's plain digits or the text it sent.
    let refused = [
        format!("0{ts}"),
        format!("+{ts}"),
        format!("-{ts}"),
        format!("{} {}", &ts[..5], &ts[5..]),
        format!("{ts}.0"),
    ];
    for sent in &refused {
        for signed in [ts.as_str(), sent.as_str()] {
            let headers = signed_over(SECRET, sent, signed, body);
            let r = deliver(&s, "deploy-finished", &headers, body).problem(401);
            let detail = r.json["detail"].as_str().expect("a detail");
            assert_eq!(
                detail,
                format!(
                    "X-Sensei-Timestamp must be unix seconds in ASCII decimal digits, without sign, spaces or leading zeros (like 1700000000), not `{sent}`"
                ),
                "{sent} signed as {signed}"
            );
        }
    }
    assert_eq!(migrations(&s), 0);
    // The plain digits, signed as sent.
    let headers = signed_over(SECRET, &ts, &ts, body);
    deliver(&s, "deploy-finished", &headers, body).expect(202);
    assert_eq!(migrations(&s), 1);
}

/// docs/openapi.json's patterns for the two headers accept exactly what the server does.
#[test]
fn the_openapi_header_patterns_are_the_forms_the_server_accepts() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    let parameters = doc["paths"]["/v1/hooks/{name}"]["post"]["parameters"]
        .as_array()
        .expect("the hook's parameters");
    let pattern = |header: &str| {
        let p = parameters
            .iter()
            .find(|p| p["name"] == header)
            .and_then(|p| p["schema"]["pattern"].as_str())
            .unwrap_or_else(|| panic!("no pattern for {header}"));
        regex::Regex::new(p).expect("a regular expression")
    };
    let timestamp = pattern(sign::TIMESTAMP_HEADER);
    for text in [
        "1764087134",
        "1",
        "10",
        "0",
        "01764087134",
        "+1764087134",
        "-1764087134",
        "1764 087134",
        "1.5",
        "",
        "１７",
    ] {
        assert_eq!(
            timestamp.is_match(text),
            sign::parse_timestamp(text).is_ok(),
            "{text:?}"
        );
    }
    let signature = pattern(sign::SIGNATURE_HEADER);
    let hex = "4f0c".repeat(16);
    for text in [
        format!("sha256={hex}"),
        format!("sha256={}", hex.to_uppercase()),
        format!("sha256={}", &hex[1..]),
        format!("sha256={hex}0"),
        format!("sha256=+{}", &hex[1..]),
        format!("SHA256={hex}"),
        hex.clone(),
    ] {
        assert_eq!(
            signature.is_match(&text),
            sign::Signature::parse(&text).is_ok(),
            "{text:?}"
        );
    }
}
