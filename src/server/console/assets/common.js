// Sensei console: helpers every page shares. Calls go to this server only (the page's
// Content-Security-Policy allows nothing else); the session cookie goes with them, and
// state-changing calls carry the CSRF value the page was given.
"use strict";

const Sensei = (() => {
  const meta = document.querySelector('meta[name="sensei-csrf"]');
  const csrf = meta ? meta.getAttribute("content") : "";

  function esc(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // An API call: resolves to {ok, status, body, detail} where detail is the problem
  // document's reason (or the status line) when the API refused.
  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (method !== "GET") {
      headers["X-Sensei-CSRF"] = csrf;
      headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      return { ok: false, status: 0, body: null, detail: "the server cannot be reached: " + e.message };
    }
    if (response.status === 401) {
      window.location.assign("/signin");
    }
    let parsed = null;
    try { parsed = await response.json(); } catch (e) { parsed = null; }
    const detail = parsed && parsed.detail ? parsed.detail : response.status + " " + response.statusText;
    return { ok: response.ok, status: response.status, body: parsed, detail };
  }

  // As `toLocaleString` writes it, with one formatter for every call (a burst of events
  // formats hundreds of times at once).
  const stamp = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", second: "numeric" });
  function time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : stamp.format(d);
  }

  function duration(fromIso, toIso) {
    if (!fromIso) return "";
    const from = new Date(fromIso).getTime();
    const to = toIso ? new Date(toIso).getTime() : Date.now();
    let s = Math.max(0, Math.round((to - from) / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return (h ? h + "h" : "") + (h || m ? m + "m" : "") + s + "s";
  }

  function badge(state) {
    return '<span class="badge st-' + esc(state) + '">' + esc(state) + "</span>";
  }

  function progress(done, total) {
    const pct = total ? Math.round((100 * done) / total) : 0;
    return '<span class="progress" role="img" aria-label="' + pct + '% done"><span data-pct="' + pct +
      '"></span></span>' + done + "/" + total;
  }

  // Widths set through the CSSOM (inline style attributes are refused by the CSP).
  function sizeBars(root) {
    root.querySelectorAll(".progress > span[data-pct]").forEach((bar) => {
      bar.style.width = bar.getAttribute("data-pct") + "%";
    });
  }

  // " 42%" for a running step that reports progress (`progress` of its row), else "".
  function percentOf(row) {
    const p = row && row.state === "running" && row.progress;
    if (!p) return "";
    return " " + (p.total ? Math.floor((100 * p.done) / p.total) : 100) + "%";
  }

  // An estimate (`eta` of a step or migration) in words: "about 3m05s left (at …)", or
  // "unknown: why".
  function left(eta) {
    if (!eta) return "";
    if (eta.remaining_ms == null) return "unknown: " + (eta.unknown || "no estimate");
    const now = new Date().toISOString();
    return "about " + duration(now, new Date(Date.now() + eta.remaining_ms).toISOString()) +
      " left (at " + time(eta.finishes_at) + ")";
  }

  return { esc, api, time, duration, badge, progress, sizeBars, csrf, percentOf, left };
})();
