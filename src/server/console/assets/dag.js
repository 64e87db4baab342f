// The migration's DAG as SVG: one column per wave, phases left to right (phases are
// barriers, waves run together), each node coloured AND labelled with its state. A fan-out
// step is one node with its parts counted by state; a wave of more than COLLAPSE nodes shows
// the first ones and a node that expands the rest, and the view zooms, so a 1,000-step
// migration stays usable. The graph is one stop for Tab (the current node); the arrow keys
// move between nodes, Home and End to the first and last of a wave.
//
// Drawing again with the same nodes shown (what the steps' progress does) replaces only the
// nodes whose drawing changed, not the whole SVG: a burst of step events costs a few small
// DOM changes, not a new graph of a thousand nodes each time.
"use strict";

const SenseiDag = (() => {
  const { esc } = Sensei;
  const W = 190, H = 46, GAP_X = 50, GAP_Y = 12, TOP = 34, LEFT = 12, COLLAPSE = 40;
  const SVG = "http://www.w3.org/2000/svg";
  const expanded = new Set();
  let zoom = 1, current = null;

  // The state a group shows: what needs attention first.
  function dominant(counts) {
    for (const s of ["failed", "interrupted", "running", "retrying", "waiting", "rolled_back", "cancelled", "pending"]) {
      if (counts[s]) return s;
    }
    return counts.skipped && !counts.succeeded ? "skipped" : "succeeded";
  }

  // Nodes (steps, or fan-out groups) in columns, from the plan and the step rows.
  function layout(plan, rows) {
    const rowById = new Map(rows.map((r) => [r.id || r.step, r]));
    const columns = [];
    const nodeOf = new Map(); // plan step id -> node
    const used = new Set();
    if (plan) {
      const fanned = new Map();
      for (const s of plan.steps) fanned.set(s.step, (fanned.get(s.step) || 0) + 1);
      const planById = new Map(plan.steps.map((s) => [s.id, s]));
      const groups = new Map();
      for (const ph of plan.phases) {
        ph.waves.forEach((wave, w) => {
          const col = { phase: ph.phase, wave: w + 1, nodes: [] };
          for (const id of wave) {
            const s = planById.get(id);
            if (!s) continue;
            const group = fanned.get(s.step) > 1 || s.dynamic;
            if (group) {
              let g = groups.get(s.step);
              if (!g) {
                g = { key: s.step, group: true, members: [], needs: [], point: !!s.point_of_no_return };
                groups.set(s.step, g);
                col.nodes.push(g);
              }
              g.needs.push(...s.needs);
              nodeOf.set(id, g);
            } else {
              const node = { key: id, group: false, row: rowById.get(id), needs: s.needs, point: !!s.point_of_no_return };
              col.nodes.push(node);
              nodeOf.set(id, node);
              used.add(id);
            }
          }
          if (col.nodes.length) columns.push(col);
        });
      }
      for (const r of rows) {
        const id = r.id || r.step;
        if (used.has(id)) continue;
        const base = id.split("[")[0];
        const g = groups.get(base);
        if (g) { g.members.push(r); used.add(id); }
      }
    }
    const rest = rows.filter((r) => !used.has(r.id || r.step));
    if (rest.length) {
      columns.push({ phase: plan ? "other" : "steps", wave: 1,
        nodes: rest.map((r) => ({ key: r.id || r.step, group: false, row: r, needs: [] })) });
    }
    for (const col of columns) {
      for (const n of col.nodes) {
        if (n.group) {
          n.counts = {};
          for (const m of n.members) n.counts[m.state] = (n.counts[m.state] || 0) + 1;
          n.state = n.members.length ? dominant(n.counts) : "pending";
        } else {
          n.state = n.row ? n.row.state : "pending";
        }
      }
    }
    return { columns, nodeOf };
  }

  function countsText(n) {
    const parts = Object.keys(n.counts).sort().map((s) => n.counts[s] + " " + s);
    return n.members.length + " part(s)" + (parts.length ? ": " + parts.join(", ") : ", not expanded yet");
  }

  function nodeSvg(n, x, y, selected, nav, tabStop) {
    // A point of no return is marked in words as well as by its frame (never by colour alone).
    const label = (n.point ? "⛔ " : "") + (n.group ? n.key + " ×" + n.members.length : n.key);
    const sub = n.group ? countsText(n) : n.state + Sensei.percentOf(n.row);
    const full = label + ": " + sub + (n.point ? " (point of no return)" : "");
    const cut = (t, k) => (t.length > k ? t.slice(0, k - 1) + "…" : t);
    const [shownLabel, shownSub] = [cut(label, 26), cut(sub, 28)];
    // The accessible name starts with the visible text (WCAG 2.5.3), then says what was cut;
    // the space before the second line keeps the two lines apart in the text checkers read.
    // Only a cut node carries a tooltip (`title`): a thousand of them cost time to lay out.
    const wasCut = shownLabel !== label || shownSub !== sub;
    const name = shownLabel + ": " + shownSub + (wasCut ? " (in full: " + full + ")" : "");
    return '<g class="node' + (selected ? " selected" : "") + '" tabindex="' + (tabStop ? 0 : -1) +
      '" role="button" data-nav="' + nav + '" data-key="' + esc(n.key) + '" data-group="' + (n.group ? 1 : 0) +
      '" aria-label="' + esc(name) + '">' +
      (wasCut ? "<title>" + esc(full) + "</title>" : "") +
      '<rect class="n-' + esc(n.state) + (n.point ? " point" : "") + '" x="' + x + '" y="' + y + '" width="' + W + '" height="' + H + '" rx="5"/>' +
      '<text x="' + (x + 8) + '" y="' + (y + 18) + '">' + esc(shownLabel) + "</text>" +
      '<text x="' + (x + 8) + '" y="' + (y + 36) + '" data-state="' + esc(n.state) + '"> ' + esc(shownSub) + "</text></g>";
  }

  // The node that holds the graph's Tab stop: the current one if it is shown, else the first.
  function tabStopKey(columns) {
    let first = null;
    for (const col of columns) {
      for (const n of col.shown) {
        if (n.key === current) return current;
        if (first === null) first = n.key;
      }
    }
    return first;
  }

  // Draws the graph into `box`; `selected` is the key of the chosen node.
  function draw(box, plan, rows, selected) {
    const { columns, nodeOf } = layout(plan, rows);
    columns.forEach((col) => {
      col.key = col.phase + ":" + col.wave;
      col.open = expanded.has(col.key) || col.nodes.length <= COLLAPSE;
      col.shown = col.open ? col.nodes : col.nodes.slice(0, COLLAPSE);
    });
    const stop = tabStopKey(columns);
    // What the SVG holds apart from the nodes' own drawing: the same, and only nodes change.
    const shape = columns.map((col) => col.key + "=" + col.shown.map((n) => n.key).join(",") +
      (col.open ? "" : "+" + col.nodes.length)).join(";");
    const nodes = new Map();
    const at = new Map();
    let body = "", edges = "", labels = "", maxRows = 0, lastPhase = null;
    columns.forEach((col, c) => {
      const x = LEFT + c * (W + GAP_X);
      if (col.phase !== lastPhase) {
        labels += '<text class="phase-label" x="' + x + '" y="18">' + esc(col.phase) + "</text>";
        lastPhase = col.phase;
      }
      col.shown.forEach((n, i) => {
        const y = TOP + i * (H + GAP_Y);
        at.set(n, [x, y]);
        const svg = nodeSvg(n, x, y, n.key === selected, c + "," + i, n.key === stop);
        nodes.set(n.key, svg);
        body += svg;
      });
      let count = col.shown.length;
      if (!col.open) {
        const y = TOP + count * (H + GAP_Y);
        const more = col.nodes.length - COLLAPSE;
        body += '<g class="node more" tabindex="-1" role="button" data-nav="' + c + "," + count + '" data-expand="' +
          esc(col.key) + '" aria-label="+' + more + " more: show all " + col.nodes.length + ' steps of this wave"><rect class="n-pending" x="' + x +
          '" y="' + y + '" width="' + W + '" height="' + H + '" rx="5"/><text x="' + (x + 8) + '" y="' + (y + 27) +
          '">+' + more + " more: show all</text></g>";
        count += 1;
      }
      maxRows = Math.max(maxRows, count);
    });
    box.dataset.columns = columns.map((col) => col.shown.length + (col.open ? 0 : 1)).join(",");
    if (box.__shape === shape && box.__nodes && update(box, nodes, stop)) return;
    for (const [n, [x, y]] of at) {
      const seen = new Set();
      for (const need of n.needs || []) {
        const from = nodeOf.get(need);
        if (!from || seen.has(from) || !at.has(from)) continue;
        seen.add(from);
        const [fx, fy] = at.get(from);
        const x1 = fx + W, y1 = fy + H / 2, x2 = x, y2 = y + H / 2, mid = (x1 + x2) / 2;
        edges += '<path class="edge" d="M' + x1 + " " + y1 + " C" + mid + " " + y1 + " " + mid + " " + y2 + " " + x2 + " " + y2 + '"/>';
      }
    }
    const width = LEFT * 2 + columns.length * (W + GAP_X);
    const height = TOP + maxRows * (H + GAP_Y) + 10;
    box.innerHTML = '<svg xmlns="' + SVG + '" viewBox="0 0 ' + width + " " + height + '" data-width="' + width +
      '" data-height="' + height + '" role="group" aria-label="Steps by phase and wave" aria-describedby="dag-help">' + labels + edges + body + "</svg>";
    box.__shape = shape;
    box.__nodes = nodes;
    box.__els = null;
    applyZoom(box);
  }

  // Replaces the nodes whose drawing changed, in one parse; focus stays where it was, and
  // the graph keeps one Tab stop (`stop`, or the node that has the focus). False, changing
  // nothing, when most nodes changed: drawing anew is then cheaper.
  function update(box, nodes, stop) {
    const changed = [];
    for (const [key, svg] of nodes) {
      if (box.__nodes.get(key) !== svg) changed.push(key);
    }
    if (changed.length > nodes.size / 4) return false;
    box.__nodes = nodes;
    if (!changed.length) return true;
    if (!box.__els) {
      box.__els = new Map();
      box.querySelectorAll("g.node[data-key]").forEach((g) => box.__els.set(g.getAttribute("data-key"), g));
    }
    const scratch = document.createElementNS(SVG, "svg");
    scratch.innerHTML = changed.map((key) => nodes.get(key)).join("");
    const focused = document.activeElement && document.activeElement.getAttribute &&
      document.activeElement.getAttribute("data-key");
    for (const fresh of [...scratch.children]) {
      const key = fresh.getAttribute("data-key");
      const old = box.__els.get(key);
      if (old) old.replaceWith(fresh);
      box.__els.set(key, fresh);
      if (key === focused) fresh.focus();
    }
    const stops = box.querySelectorAll('g.node[tabindex="0"]');
    if (stops.length > 1) {
      const keep = box.contains(document.activeElement) ? document.activeElement : null;
      stops.forEach((g) => {
        if (g !== keep && (keep || g.getAttribute("data-key") !== stop)) g.setAttribute("tabindex", "-1");
      });
    }
    return true;
  }

  // Zoom: the SVG keeps its coordinates (viewBox) and is shown at `zoom` times its size.
  function applyZoom(box) {
    const svg = box.querySelector("svg");
    if (!svg) return;
    svg.setAttribute("width", Math.round(Number(svg.dataset.width) * zoom));
    svg.setAttribute("height", Math.round(Number(svg.dataset.height) * zoom));
    const shown = document.getElementById("dag-zoom");
    if (shown) shown.textContent = Math.round(zoom * 100) + "%";
  }

  // `how`: "in", "out", or "fit" (the whole width in view).
  function setZoom(box, how) {
    const svg = box.querySelector("svg");
    if (how === "in") zoom = Math.min(2, zoom * 1.25);
    else if (how === "out") zoom = Math.max(0.1, zoom / 1.25);
    else if (how === "fit" && svg) zoom = Math.min(1, Math.max(0.1, (box.clientWidth - 4) / Number(svg.dataset.width)));
    applyZoom(box);
  }

  // Moves the Tab stop to `g` and focuses it.
  function moveTo(box, g) {
    if (!g) return;
    box.querySelectorAll('g.node[tabindex="0"]').forEach((other) => other.setAttribute("tabindex", "-1"));
    g.setAttribute("tabindex", "0");
    g.focus();
  }

  // The node an arrow key (or Home, End) leads to from `g`, or null.
  function neighbour(box, g, key) {
    const [c, i] = (g.getAttribute("data-nav") || "0,0").split(",").map(Number);
    const lengths = (box.dataset.columns || "").split(",").map(Number);
    let [tc, ti] = [c, i];
    if (key === "ArrowDown") ti = i + 1;
    else if (key === "ArrowUp") ti = i - 1;
    else if (key === "ArrowRight") tc = c + 1;
    else if (key === "ArrowLeft") tc = c - 1;
    else if (key === "Home") ti = 0;
    else if (key === "End") ti = (lengths[c] || 1) - 1;
    else return null;
    if (tc < 0 || tc >= lengths.length || ti < 0) return null;
    ti = Math.min(ti, lengths[tc] - 1);
    return box.querySelector('g.node[data-nav="' + tc + "," + ti + '"]');
  }

  // Calls `choose(key, isGroup)` when a node is clicked or activated with the keyboard;
  // `tools` holds the zoom buttons (`data-zoom`).
  function listen(box, choose, redraw, tools) {
    const act = (target) => {
      const g = target.closest("g.node");
      if (!g) return;
      const col = g.getAttribute("data-expand");
      if (col) {
        expanded.add(col);
        redraw();
        moveTo(box, box.querySelector('g.node[data-nav="' + g.getAttribute("data-nav") + '"]'));
        return;
      }
      choose(g.getAttribute("data-key"), g.getAttribute("data-group") === "1");
    };
    box.addEventListener("click", (e) => act(e.target));
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); act(e.target); return; }
      const g = e.target.closest && e.target.closest("g.node");
      const next = g && neighbour(box, g, e.key);
      if (next) { e.preventDefault(); moveTo(box, next); }
    });
    box.addEventListener("focusin", (e) => {
      const g = e.target.closest && e.target.closest("g.node");
      if (!g) return;
      if (g.getAttribute("data-key")) current = g.getAttribute("data-key");
      if (g.getAttribute("tabindex") !== "0") moveTo(box, g);
    });
    if (tools) {
      tools.addEventListener("click", (e) => {
        const how = e.target.getAttribute && e.target.getAttribute("data-zoom");
        if (how) setZoom(box, how);
      });
    }
  }

  return { draw, listen, layout };
})();
