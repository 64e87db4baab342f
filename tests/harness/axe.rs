//! The accessibility checks of the console's pages in the real browser: axe-core (vendored
//! in `tests/assets/`, checked against its digest, injected through WebDriver's execute
//! script, which the pages' `script-src 'self'` does not govern), run with the WCAG 2.0 and
//! 2.1 A and AA rules; and a walk with the Tab key that must reach every control.

use super::webdriver::Browser;
use serde_json::Value;
use sha2::{Digest, Sha256};

const AXE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/assets/axe.min.js");
/// Of `tests/assets/axe.min.js` (axe-core 4.14.1; see tests/assets/README.md).
const AXE_SHA256: &str = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c";

/// The rule sets axe runs: WCAG 2.0 and 2.1, levels A and AA (contrast, names and labels,
/// structure, keyboard access to scrolling regions, ...).
const RUN: &str = r#"
return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  resultTypes: ['violations'] })
  .then((r) => ({ rules: r.violations.length + r.passes.length + r.incomplete.length + r.inapplicable.length,
    violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary) })) }));
"#;

fn inject(b: &Browser) {
    let source = std::fs::read_to_string(AXE).unwrap_or_else(|e| panic!("{AXE}: {e}"));
    let digest = Sha256::digest(source.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(
        hex, AXE_SHA256,
        "tests/assets/axe.min.js is not the vendored axe-core 4.14.1; see tests/assets/README.md"
    );
    let loaded = b.eval("return typeof window.axe === 'object';");
    if loaded != Value::Bool(true) {
        let script = format!("{source}\n;return typeof window.axe;");
        let kind = b.eval(&script);
        assert_eq!(kind, "object", "axe-core did not load in the page");
    }
}

/// Runs axe in the page as it is now; panics listing every violation.
pub fn assert_accessible(b: &Browser, page: &str) {
    inject(b);
    let result = b.eval(RUN);
    let rules = result["rules"].as_u64().unwrap_or(0);
    assert!(rules > 20, "axe ran only {rules} rules on {page}: {result}");
    let violations = result["violations"].as_array().cloned().unwrap_or_default();
    let report: Vec<String> = violations
        .iter()
        .map(|v| {
            let nodes: Vec<&str> = v["nodes"]
                .as_array()
                .map(|n| n.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!(
                "{} ({}): {}\n    {}",
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or("?"),
                nodes.join("\n    ")
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "axe found {} violation(s) on the {page} page:\n  {}",
        report.len(),
        report.join("\n  ")
    );
}

/// Every control a keyboard user needs, as `tag#id.class "text"`.
const CONTROLS: &str = r#"
const d = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (e.getAttribute('data-key') ? '[' + e.getAttribute('data-key') + ']' : '') +
  (e.getAttribute('data-op') ? '[' + e.getAttribute('data-op') + ']' : '') + ' "' + (e.textContent || '').trim().slice(0, 30) + '"';
window.__describe = d;
return [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter((e) => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0).map(d);
"#;

/// Presses Tab until focus comes back round, and asserts it reached every visible control
/// (and that focus is always on something visible).
pub fn assert_keyboard_reachable(b: &Browser, page: &str) {
    let controls: Vec<String> = serde_json::from_value(b.eval(CONTROLS)).unwrap_or_default();
    assert!(!controls.is_empty(), "no controls on the {page} page");
    b.eval(
        "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return 1;",
    );
    let mut reached = Vec::new();
    for _ in 0..controls.len() * 2 + 10 {
        b.press_tab();
        let now = b.eval(
            "const e = document.activeElement; return e && e !== document.body ? window.__describe(e) : null;",
        );
        let Some(now) = now.as_str().map(str::to_owned) else {
            continue;
        };
        if reached.first() == Some(&now) {
            break;
        }
        reached.push(now);
    }
    b.eval("document.activeElement && document.activeElement.blur(); return 1;");
    let missed: Vec<&String> = controls.iter().filter(|c| !reached.contains(c)).collect();
    assert!(
        missed.is_empty(),
        "Tab never reaches {missed:?} on the {page} page; it goes {reached:?}"
    );
}
