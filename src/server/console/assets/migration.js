// The migration page: lifecycle strip, gates, the live DAG, step detail with its log and
// the event timeline (the windows are `windows.js`', the lifecycle buttons `lifecycle.js`').
// It follows the event stream (`/v1/migrations/{id}/events` as SSE) and batches what
// arrives: events are gathered for a quarter second, then the migration document is read
// once and drawn in the next animation frame; one read at a time, and one more if events
// came in meanwhile, so a burst of thousands of events costs a few redraws, not thousands.
// Each drawing sets the performance mark `sensei:drawn` (the first also
// `sensei:first-drawn`), which the console benchmark reads.
"use strict";

(() => {
  const { esc, api, time, duration, badge } = Sensei;
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const id = page.id;
  const base = "/v1/migrations/" + encodeURIComponent(id);
  const plan = page.plan;
  const $ = (x) => document.getElementById(x);
  let doc = null, events = [], selected = null, selectedGroup = false, stream = null;
  let pending = [], timer = null, reading = false, readAgain = false;
  const lifecycle = SenseiLifecycle.create(page, say, () => refresh());

  function say(text, ok) {
    const box = $("message");
    box.className = "message " + (ok ? "ok" : "bad");
    box.textContent = text;
  }

  // ---- lifecycle ----
  function renderStrip() {
    const visited = new Set(["created"]);
    for (const e of events) if (e.kind === "state_changed" && e.data && e.data.to) visited.add(e.data.to);
    $("strip").innerHTML = page.states.map((s) => {
      const cls = (s === doc.state ? "current " : "") + (visited.has(s) ? "visited" : "");
      const note = s === doc.state ? " (current)" : visited.has(s) ? " (visited)" : "";
      return '<li class="' + cls + '"' + (s === doc.state ? ' aria-current="step"' : "") + ">" + esc(s) +
        '<span class="sr-only">' + note + "</span></li>";
    }).join("");
  }

  // ---- gates ----
  function renderGates() {
    const box = $("gates");
    const gates = plan ? plan.gates : [];
    if (!gates.length) { box.innerHTML = "<p>This runbook has no gates.</p>"; return; }
    const rows = new Map(doc.steps.map((r) => [r.id, r]));
    const keep = {};
    box.querySelectorAll("textarea").forEach((t) => { keep[t.id] = t.value; });
    const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.id : null;
    box.innerHTML = gates.map((g, i) => {
      const row = rows.get(g.id);
      const state = row ? row.state : "pending";
      const votes = (doc.decisions || []).filter((d) => d.step === g.id);
      let html = '<div class="gate" data-gate="' + esc(g.id) + '"><strong>' + esc(g.id) + "</strong> " + badge(state) +
        " <span>needs " + g.required + " of: " + esc(g.approvers.join(", ")) + "</span>";
      if (votes.length) {
        html += "<ul>" + votes.map((v) => "<li>" + esc(v.who) + " " + esc(v.decision) + "d" +
          (v.comment ? ": “" + esc(v.comment) + "”" : "") + " at " + esc(time(v.at)) + "</li>").join("") + "</ul>";
      }
      if (state === "waiting") {
        html += '<p>Plan digest being approved: <code>' + esc(doc.digest) + "</code></p>";
        if (page.may.approve) {
          html += '<label for="comment-' + i + '">Comment</label><textarea id="comment-' + i + '" rows="2"></textarea>' +
            '<button type="button" class="primary" data-decide="approve" id="approve-' + i + '" data-i="' + i + '">Approve</button> ' +
            '<button type="button" class="danger" data-decide="reject" id="reject-' + i + '" data-i="' + i + '">Reject</button>';
        } else {
          html += '<p class="hint">You (' + esc(page.caller) + ") may not decide gates: that needs the approver or admin role.</p>";
        }
        html += '<p class="gate-reply" id="gate-reply-' + i + '" role="status"></p>';
      }
      return html + "</div>";
    }).join("");
    for (const k of Object.keys(keep)) { const t = $(k); if (t) t.value = keep[k]; }
    if (focused && $(focused)) $(focused).focus();
  }

  $("gates").addEventListener("click", async (e) => {
    const decision = e.target.getAttribute && e.target.getAttribute("data-decide");
    if (!decision) return;
    const i = e.target.getAttribute("data-i");
    const gate = plan.gates[Number(i)].id;
    const comment = $("comment-" + i).value;
    const body = comment ? { comment } : {};
    const reply = await api("POST", base + "/gates/" + encodeURIComponent(gate) + "/" + decision, body);
    const text = reply.ok ? decision + "d: " + reply.body.status : decision + " refused: " + reply.detail;
    say(text, reply.ok);
    const out = $("gate-reply-" + i);
    if (out) out.textContent = text;
    if (reply.ok) refresh();
  });

  // ---- steps ----
  function drawDag() {
    const active = document.activeElement;
    const key = active && active.getAttribute && active.getAttribute("data-key");
    SenseiDag.draw($("dag"), plan, doc.steps, selected);
    if (key) {
      const again = $("dag").querySelector('g.node[data-key="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
    const p = doc.progress;
    const counts = Object.keys(p.by_state).map((s) => p.by_state[s] + " " + s).join(", ");
    // The time to finish of a migration being driven; one that waits for people or ended says so by its state.
    const resting = ["created", "awaiting_approval", "paused", "failed", "certified", "cancelled"].includes(doc.state);
    $("progress").textContent = p.done + " of " + p.total + " steps done" + (counts ? " (" + counts + ")" : "") +
      (doc.eta && !resting ? "; time to finish: " + Sensei.left(doc.eta) : "");
  }

  async function renderDetail() {
    const box = $("detail");
    if (!selected) return;
    if (selectedGroup) {
      const parts = doc.steps.filter((r) => r.id.split("[")[0] === selected);
      box.innerHTML = "<p><strong>" + esc(selected) + "</strong>: " + parts.length + " part(s)</p><ul>" +
        parts.map((r) => '<li><a href="#" data-step="' + esc(r.id) + '">' + esc(r.id) + "</a> " + badge(r.state) + "</li>").join("") + "</ul>";
      return;
    }
    const r = doc.steps.find((s) => s.id === selected);
    if (!r) { box.innerHTML = "<p>" + esc(selected) + " has not been expanded yet.</p>"; return; }
    const logs = await api("GET", base + "/steps/" + encodeURIComponent(r.id) + "/logs");
    const lines = logs.ok && Array.isArray(logs.body) ? logs.body : [];
    const text = lines.slice(-2000).map((l) => "[" + l.attempt + " " + l.stream + "] " + l.text).join("\n");
    box.innerHTML = '<dl class="kv"><dt>Step</dt><dd>' + esc(r.id) + "</dd><dt>State</dt><dd>" + badge(r.state) +
      "</dd><dt>Attempts</dt><dd>" + esc(r.attempts) + "</dd><dt>Exit code</dt><dd>" + esc(r.exit_code == null ? "—" : r.exit_code) +
      "</dd><dt>Started</dt><dd>" + esc(time(r.started_at)) + "</dd><dt>Finished</dt><dd>" + esc(time(r.finished_at)) +
      "</dd><dt>Duration</dt><dd>" + esc(duration(r.started_at, r.finished_at)) + "</dd>" +
      (r.progress ? "<dt>Progress</dt><dd>" + Sensei.progress(r.progress.done, r.progress.total) +
        " (reported " + esc(time(r.progress.at)) + ")</dd>" : "") +
      (r.eta ? "<dt>Time left</dt><dd>" + esc(Sensei.left(r.eta)) + "</dd>" : "") +
      (r.checkpoint ? "<dt>Checkpoint</dt><dd><code>" + esc(r.checkpoint.value.length > 200 ? r.checkpoint.value.slice(0, 200) + "…" : r.checkpoint.value) + "</code> (attempt " +
        esc(r.checkpoint.attempt) + ", recorded " + esc(time(r.checkpoint.at)) + ")</dd>" : "") +
      (r.reason ? "<dt>Reason</dt><dd>" + esc(r.reason) + "</dd>" : "") +
      (r.error ? "<dt>Error</dt><dd>" + esc(r.error) + "</dd>" : "") +
      "<dt>Outputs</dt><dd><pre tabindex=\"0\" role=\"region\" aria-label=\"outputs of " + esc(r.id) + "\">" +
      esc(r.outputs ? JSON.stringify(r.outputs, null, 2) : "—") + "</pre></dd></dl>" +
      "<h3>Log</h3><pre class=\"log\" tabindex=\"0\" role=\"region\" aria-label=\"log of " + esc(r.id) + "\">" + esc(text || "(no output yet)") + "</pre>";
    Sensei.sizeBars(box);
  }

  $("detail").addEventListener("click", (e) => {
    const step = e.target.getAttribute && e.target.getAttribute("data-step");
    if (!step) return;
    e.preventDefault();
    selected = step; selectedGroup = false;
    drawDag(); renderDetail();
  });

  // ---- events ----
  function describe(e) {
    const d = e.data || {};
    if (e.kind === "state_changed") return (d.from || "") + " → " + d.to + (d.by ? " by " + d.by : "") + (d.reason ? ": " + d.reason : "");
    if (e.kind === "gate_decided") return (d.who || d.by || "") + " " + (d.decision || "") + (d.comment ? ": " + d.comment : "");
    return d.reason || d.error || d.message || "";
  }

  // The timeline keeps the last TIMELINE events: a burst adds only what stays, and what
  // falls off goes in one removal, not one at a time.
  const TIMELINE = 1000;
  function appendEvents(all) {
    // Progress shows on its step; up to 101 reports per attempt would bury the timeline.
    const list = all.filter((e) => e.kind !== "step_progress");
    if (!list.length) return;
    const box = $("timeline");
    const kept = list.slice(-TIMELINE);
    const html = kept.map((e) =>
      '<li><time datetime="' + esc(e.at) + '">' + esc(time(e.at)) + "</time>#" + e.seq + " <strong>" + esc(e.kind) + "</strong>" +
      (e.step ? " " + esc(e.step) : "") + " " + esc(describe(e)) + "</li>").join("");
    const excess = box.childElementCount + kept.length - TIMELINE;
    if (excess >= box.childElementCount) {
      box.innerHTML = html;
    } else {
      if (excess > 0) {
        const range = document.createRange();
        range.setStartBefore(box.firstElementChild);
        range.setEndAfter(box.children[excess - 1]);
        range.deleteContents();
      }
      box.insertAdjacentHTML("beforeend", html);
    }
    const scroller = $("timeline-box");
    scroller.scrollTop = scroller.scrollHeight;
  }

  function follow(after) {
    if (stream) stream.close();
    stream = new EventSource(base + "/events?after=" + after);
    const take = (m) => {
      try { pending.push(JSON.parse(m.data)); } catch (err) { return; }
      if (!timer) timer = setTimeout(flush, 250);
    };
    for (const kind of page.event_kinds) stream.addEventListener(kind, take);
  }

  async function flush() {
    timer = null;
    const batch = pending; pending = [];
    const fresh = batch.filter((e) => !events.length || e.seq > events[events.length - 1].seq);
    events.push(...fresh);
    appendEvents(fresh);
    await refresh();
  }

  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  let drawn = false;

  // Reads the migration and draws it; while a read is under way, calls only ask for one more.
  async function refresh() {
    if (reading) { readAgain = true; return; }
    reading = true;
    try {
      do {
        readAgain = false;
        const reply = await api("GET", base);
        if (!reply.ok) { say("Cannot load the migration: " + reply.detail, false); return; }
        await nextFrame();
        doc = reply.body;
        renderStrip(); renderGates(); drawDag();
        lifecycle.update(doc);
        if (selected) renderDetail();
        performance.clearMarks("sensei:drawn");
        performance.mark("sensei:drawn", { detail: { state: doc.state, done: doc.progress.done, total: doc.progress.total } });
        if (!drawn) { drawn = true; performance.mark("sensei:first-drawn"); }
        if ((doc.state === "certified" || doc.state === "cancelled") && stream) { stream.close(); stream = null; }
      } while (readAgain);
    } finally {
      reading = false;
    }
  }

  SenseiDag.listen($("dag"), (key, group) => {
    selected = key; selectedGroup = group;
    drawDag(); renderDetail();
  }, drawDag, $("dag-tools"));

  (async () => {
    if (page.plan_error) say("The plan cannot be shown: " + page.plan_error, false);
    const history = await api("GET", base + "/events");
    events = history.ok && Array.isArray(history.body) ? history.body : [];
    appendEvents(events);
    await refresh();
    const last = events.length ? events[events.length - 1].seq : 0;
    if (doc && doc.state !== "certified" && doc.state !== "cancelled") follow(last);
    document.body.setAttribute("data-ready", "1");
  })();
})();
