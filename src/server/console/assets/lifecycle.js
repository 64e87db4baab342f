// The migration page's lifecycle buttons, for operators and admins: the operations the
// migration's state allows, as the server lists them (`/console/migrations/{id}/controls`),
// each with the question that names what it will do. Every button asks first; the API
// judges the call, and when it refuses, its reason is shown as it is.
"use strict";

const SenseiLifecycle = (() => {
  const { esc, api } = Sensei;

  // `say(text, ok)` shows the outcome; `refresh()` reads the migration again.
  function create(page, say, refresh) {
    const box = document.getElementById("actions");
    const base = "/v1/migrations/" + encodeURIComponent(page.id);
    let controls = [], seen = null, busy = false;

    function render(state) {
      const focused = document.activeElement && box.contains(document.activeElement)
        ? document.activeElement.getAttribute("data-op") : null;
      box.innerHTML = controls.length
        ? controls.map((c) => '<button type="button" data-op="' + esc(c.key) + '"' +
            (c.danger ? ' class="danger"' : "") + ">" + esc(c.label) + "</button>").join("")
        : '<p class="hint">No lifecycle operation is possible while the migration is ' + esc(state) + ".</p>";
      const again = focused && box.querySelector('[data-op="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }

    // Asks for the buttons again when the state or the steps' states changed.
    async function update(doc) {
      if (!page.may.operate) return;
      const key = doc.state + " " + JSON.stringify(doc.progress.by_state);
      if (key === seen) return;
      seen = key;
      const reply = await api("GET", "/console/migrations/" + encodeURIComponent(page.id) + "/controls");
      if (!reply.ok || !Array.isArray(reply.body)) {
        seen = null;
        say("Cannot list the lifecycle operations: " + reply.detail, false);
        return;
      }
      controls = reply.body;
      render(doc.state);
    }

    box.addEventListener("click", async (e) => {
      const key = e.target.getAttribute && e.target.getAttribute("data-op");
      const c = controls.find((x) => x.key === key);
      if (!c || busy) return;
      if (!window.confirm(c.confirm)) return;
      busy = true;
      say(c.label + ": asked…", true);
      const reply = await api(c.method, base + c.path, c.body);
      busy = false;
      if (reply.ok) {
        const state = reply.body && reply.body.state;
        say(c.label + (reply.status === 202 ? ": under way" : ": done") + "; the migration is " + state + ".", true);
      } else {
        say(c.label + " refused: " + reply.detail, false);
      }
      seen = null;
      refresh();
    });

    return { update };
  }

  return { create };
})();
