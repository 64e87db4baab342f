//! The pages' HTML: one shell (header, navigation, who is signed in, the CSRF value the
//! scripts send back), the sign-in form, and each page's skeleton, which its script fills
//! from the API. Every value from outside is escaped here, by [`escape`], and data handed to
//! a script is JSON inside a non-executed `<script type="application/json">`.

use super::data::RunbookView;
use super::session::Identity;
use crate::event::MigrationState;
use crate::server::AppState;
use crate::store::Migration;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value as Json;

/// Text made safe for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script type="application/json">` element (no `</script>`).
fn script_json(value: &Json) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

fn head(title: &str, csrf: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="sensei-csrf" content="{csrf}">
<title>{title} · Sensei</title>
<link rel="stylesheet" href="/assets/console.css">
</head>
"#,
        title = escape(title),
        csrf = escape(csrf),
    )
}

/// A page: header, `main` (already HTML) and the scripts (asset names) that fill it.
pub fn shell(
    title: &str,
    who: &Identity,
    state: &AppState,
    main: &str,
    scripts: &[&str],
) -> String {
    let caller = &who.caller;
    let whom = if caller.authenticated {
        let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
        format!(
            r#"Signed in as <strong id="caller">{}</strong> ({}) <form method="post" action="/signout" class="inline"><button type="submit">Sign out</button></form>"#,
            escape(&caller.name),
            escape(&roles.join(", "))
        )
    } else if state.tokens.is_empty() {
        r#"<span id="caller">local</span>: no tokens configured, open on loopback"#.to_owned()
    } else {
        escape(&caller.name)
    };
    let mut out = head(title, &who.csrf);
    out.push_str(&format!(
        r##"<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<nav aria-label="Main"><a class="brand" href="/">Sensei</a> <a href="/">Migrations</a> <a href="/runbooks">Runbooks</a></nav>
<div class="who">{whom}</div>
</header>
<main id="main">
{main}
</main>
"##
    ));
    for script in scripts {
        out.push_str(&format!(
            "<script src=\"/assets/{}\"></script>\n",
            escape(script)
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The sign-in form, with the reason the last attempt failed.
pub fn signin(error: Option<&str>) -> String {
    let problem = error
        .map(|e| format!(r#"<p class="problem" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let mut out = head("Sign in", "");
    out.push_str(&format!(
        r#"<body>
<main id="main" class="signin">
<h1>Sign in to Sensei</h1>
{problem}
<form method="post" action="/signin">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
<p class="hint">The same bearer token the API takes. It is sent once; the console keeps an HttpOnly session cookie, not the token.</p>
</main>
</body>
</html>
"#
    ));
    out
}

fn options(values: impl IntoIterator<Item = String>) -> String {
    values
        .into_iter()
        .map(|v| format!("<option value=\"{0}\">{0}</option>", escape(&v)))
        .collect()
}

/// The migrations page: filters and an empty table `list.js` fills and keeps current.
pub fn migrations(who: &Identity, state: &AppState, runbooks: &[String]) -> String {
    let states = options(MigrationState::ALL.iter().map(|s| s.as_str().to_owned()));
    let runbooks = options(runbooks.iter().cloned());
    let main = format!(
        r#"<h1>Migrations</h1>
<form class="filters" id="filters">
<label for="f-state">State</label>
<select id="f-state"><option value="">any</option>{states}</select>
<label for="f-runbook">Runbook</label>
<select id="f-runbook"><option value="">any</option>{runbooks}</select>
</form>
<p id="status" class="status" role="status" aria-live="polite">Loading…</p>
<table id="migrations">
<thead><tr><th scope="col">Migration</th><th scope="col">State</th><th scope="col">Runbook</th><th scope="col">Starter</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col">Duration</th><th scope="col">Progress</th></tr></thead>
<tbody></tbody>
</table>"#
    );
    shell("Migrations", who, state, &main, &["common.js", "list.js"])
}

/// The migration page: sections `migration.js` and `dag.js` fill from the API and its
/// event stream; `doc` is the embedded page data (`data::migration`), `windows` the windows
/// section (`windows::section`) rendered at `now` on the server's clock, which `windows.js`
/// keeps current.
pub fn migration(
    who: &Identity,
    state: &AppState,
    m: &Migration,
    doc: &Json,
    windows: &str,
    now: DateTime<Utc>,
) -> String {
    let main = format!(
        r#"<script type="application/json" id="page-data">{data}</script>
<h1>Migration <code>{id}</code></h1>
<p class="meta" id="meta">Runbook <strong>{runbook}</strong>, started by <strong>{starter}</strong></p>
<div id="message" class="message" role="alert" aria-live="assertive"></div>
<section aria-labelledby="h-life"><h2 id="h-life">Lifecycle</h2>
<ol class="strip" id="strip" aria-label="Lifecycle states"></ol>
<div id="actions" class="actions"></div>
</section>
<section aria-labelledby="h-gates"><h2 id="h-gates">Gates</h2><div id="gates"><p>None waiting.</p></div></section>
<section aria-labelledby="h-windows"><h2 id="h-windows">Windows</h2><div id="windows" data-now="{now}">
{windows}</div></section>
<section aria-labelledby="h-steps"><h2 id="h-steps">Steps</h2>
<p id="progress" class="status" role="status"></p>
<div class="dag-tools" id="dag-tools" role="group" aria-label="Graph view"><button type="button" data-zoom="out">Zoom out</button> <button type="button" data-zoom="in">Zoom in</button> <button type="button" data-zoom="fit">Fit to width</button> <span id="dag-zoom">100%</span>
<span class="hint" id="dag-help">Tab reaches the graph once; the arrow keys move between steps, Enter or Space opens one.</span></div>
<div id="dag" class="dag"></div>
</section>
<section aria-labelledby="h-detail"><h2 id="h-detail">Step detail</h2><div id="detail"><p>Choose a step in the graph.</p></div></section>
<section aria-labelledby="h-events"><h2 id="h-events">Events</h2>
<div class="timeline-box" id="timeline-box" tabindex="0" role="region" aria-labelledby="h-events"><ol id="timeline" class="timeline"></ol></div></section>"#,
        data = script_json(doc),
        id = escape(&m.id.to_string()),
        runbook = escape(&m.runbook),
        starter = escape(&m.starter),
        now = now.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    shell(
        &format!("Migration {}", m.id),
        who,
        state,
        &main,
        &[
            "common.js",
            "dag.js",
            "windows.js",
            "lifecycle.js",
            "migration.js",
        ],
    )
}

/// The runbooks page, rendered here in full: each file's validation and plan.
pub fn runbooks(who: &Identity, state: &AppState, runbooks: &[RunbookView]) -> String {
    let mut main = format!(
        "<h1>Runbooks</h1>\n<p class=\"meta\">From <code>{}</code>.</p>\n",
        escape(&state.runbooks.dir().display().to_string())
    );
    if runbooks.is_empty() {
        main.push_str("<p>No runbook files.</p>\n");
    }
    for r in runbooks {
        let title = r.name.as_deref().unwrap_or(&r.file);
        let (class, verdict) = if r.valid {
            ("ok", "valid")
        } else {
            ("bad", "invalid")
        };
        main.push_str(&format!(
            "<section class=\"runbook\"><h2>{title} <span class=\"badge {class}\">{verdict}</span></h2>\n<p class=\"meta\">File <code>{file}</code>{desc}</p>\n",
            title = escape(title),
            file = escape(&r.file),
            desc = r
                .description
                .as_deref()
                .map(|d| format!(": {}", escape(d)))
                .unwrap_or_default(),
        ));
        if r.report.trim().is_empty() {
            main.push_str("<p>No diagnostics.</p>\n");
        } else {
            main.push_str(&format!(
                "<h3>Diagnostics</h3>\n<pre class=\"report\" tabindex=\"0\" role=\"region\" aria-label=\"Diagnostics of {}\">{}</pre>\n",
                escape(title),
                escape(&r.report)
            ));
        }
        match &r.plan {
            Ok(text) => main.push_str(&format!(
                "<h3>Plan</h3>\n<pre class=\"plan\" tabindex=\"0\" role=\"region\" aria-label=\"Plan of {}\">{}</pre>\n",
                escape(title),
                escape(text)
            )),
            Err(why) => main.push_str(&format!("<p class=\"hint\">{}</p>\n", escape(why))),
        }
        main.push_str("</section>\n");
    }
    shell("Runbooks", who, state, &main, &[])
}
