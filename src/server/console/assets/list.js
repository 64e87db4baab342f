// The migrations page: the list with times and progress, filtered by state and runbook,
// refreshed every two seconds.
"use strict";

(() => {
  const { esc, api, time, duration, badge, progress, sizeBars } = Sensei;
  const body = document.querySelector("#migrations tbody");
  const status = document.getElementById("status");
  const byState = document.getElementById("f-state");
  const byRunbook = document.getElementById("f-runbook");
  let rows = [];

  function render() {
    const state = byState.value;
    const runbook = byRunbook.value;
    const shown = rows.filter((m) => (!state || m.state === state) && (!runbook || m.runbook === runbook));
    body.innerHTML = shown.map((m) =>
      "<tr data-id=\"" + esc(m.id) + "\">" +
      "<td><a href=\"/migrations/" + encodeURIComponent(m.id) + "\">" + esc(m.id) + "</a></td>" +
      "<td>" + badge(m.state) + "</td>" +
      "<td>" + esc(m.runbook) + "</td>" +
      "<td>" + esc(m.starter) + "</td>" +
      "<td>" + esc(time(m.started_at)) + "</td>" +
      "<td>" + esc(time(m.ended_at)) + "</td>" +
      "<td>" + esc(duration(m.started_at, m.ended_at)) + "</td>" +
      "<td>" + progress(m.progress.done, m.progress.total) + "</td></tr>").join("");
    sizeBars(body);
    status.textContent = shown.length + " of " + rows.length + " migration(s), updated " +
      new Date().toLocaleTimeString();
  }

  async function refresh() {
    const reply = await api("GET", "/console/migrations");
    if (reply.ok && Array.isArray(reply.body)) {
      rows = reply.body;
      render();
    } else {
      status.textContent = "Cannot load the migrations: " + reply.detail;
    }
  }

  byState.addEventListener("change", render);
  byRunbook.addEventListener("change", render);
  refresh();
  setInterval(refresh, 2000);
})();
