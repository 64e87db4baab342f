// The migration page's windows: rendered by the server on its own clock (windows.rs), with
// every relative time ("in 2h14m", "1h ago") in a `<time data-rel>`. This keeps them
// current each second, on the server's clock (the page says what time it was there; a
// `SENSEI_NOW` rehearsal shifts it), and asks for the section again once one of them
// passes: a window then opened, reached its cutoff or closed.
"use strict";

(() => {
  const box = document.getElementById("windows");
  if (!box) return;
  const id = JSON.parse(document.getElementById("page-data").textContent).id;
  let skew = 0; // the server's time minus this browser's
  let asking = false;

  function setNow(iso) {
    const t = Date.parse(iso);
    if (!isNaN(t)) skew = t - Date.now();
  }

  // As `calendar::humanize` writes it: the two largest units, truncated to whole seconds.
  function humanize(ms) {
    const s = Math.floor(ms / 1000);
    const parts = [[Math.floor(s / 86400), "d"], [Math.floor((s % 86400) / 3600), "h"],
      [Math.floor((s % 3600) / 60), "m"], [s % 60, "s"]];
    const first = parts.findIndex(([v]) => v > 0);
    if (first < 0) return "0s";
    return parts.slice(first, first + 2).filter(([v]) => v > 0).map(([v, u]) => v + u).join("");
  }

  async function reload() {
    if (asking) return;
    asking = true;
    const reply = await Sensei.api("GET", "/console/migrations/" + encodeURIComponent(id) + "/windows");
    asking = false;
    if (reply.ok && reply.body) {
      setNow(reply.body.now);
      box.innerHTML = reply.body.html;
      tick();
    }
  }

  function tick() {
    const now = Date.now() + skew;
    let passed = false;
    box.querySelectorAll("time[data-rel]").forEach((t) => {
      const at = Date.parse(t.getAttribute("datetime"));
      if (isNaN(at)) return;
      const future = at > now;
      if (!future && t.dataset.future === "1") passed = true;
      t.dataset.future = future ? "1" : "0";
      const text = future ? "in " + humanize(at - now) : humanize(now - at) + " ago";
      if (t.textContent !== text) t.textContent = text;
    });
    if (passed) reload();
  }

  setNow(box.getAttribute("data-now"));
  tick();
  setInterval(tick, 1000);
})();
