// The migration's DAG as SVG: one column per wave, phases left to right (phases are
// barriers, waves run together), each node coloured AND labelled with its state. A fan-out
// step is one node with its parts counted by state; a wave of more than COLLAPSE nodes shows
// the first ones and a node that expands the rest, so a 1,000-step migration stays usable.
"use strict";

const SenseiDag = (() => {
  const { esc } = Sensei;
  const W = 190, H = 46, GAP_X = 50, GAP_Y = 12, TOP = 34, LEFT = 12, COLLAPSE = 40;
  const expanded = new Set();

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
                g = { key: s.step, group: true, members: [], needs: [] };
                groups.set(s.step, g);
                col.nodes.push(g);
              }
              g.needs.push(...s.needs);
              nodeOf.set(id, g);
            } else {
              const node = { key: id, group: false, row: rowById.get(id), needs: s.needs };
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

  function nodeSvg(n, x, y, selected) {
    const label = n.group ? n.key + " ×" + n.members.length : n.key;
    const sub = n.group ? countsText(n) : n.state + Sensei.percentOf(n.row);
    const full = "step " + label + ": " + sub;
    const cut = (t, k) => (t.length > k ? t.slice(0, k - 1) + "…" : t);
    return '<g class="node' + (selected ? " selected" : "") + '" tabindex="0" role="button" data-key="' +
      esc(n.key) + '" data-group="' + (n.group ? 1 : 0) + '" aria-label="' + esc(full) + '">' +
      "<title>" + esc(full) + "</title>" +
      '<rect class="n-' + esc(n.state) + '" x="' + x + '" y="' + y + '" width="' + W + '" height="' + H + '" rx="5"/>' +
      '<text x="' + (x + 8) + '" y="' + (y + 18) + '">' + esc(cut(label, 26)) + "</text>" +
      '<text x="' + (x + 8) + '" y="' + (y + 36) + '" data-state="' + esc(n.state) + '">' + esc(cut(sub, 28)) + "</text></g>";
  }

  // Draws the graph into `box`; `selected` is the key of the chosen node.
  function draw(box, plan, rows, selected) {
    const { columns, nodeOf } = layout(plan, rows);
    const at = new Map();
    let body = "", edges = "", labels = "", maxRows = 0, lastPhase = null;
    columns.forEach((col, c) => {
      const x = LEFT + c * (W + GAP_X);
      if (col.phase !== lastPhase) {
        labels += '<text class="phase-label" x="' + x + '" y="18">' + esc(col.phase) + "</text>";
        lastPhase = col.phase;
      }
      const colKey = col.phase + ":" + col.wave;
      const open = expanded.has(colKey) || col.nodes.length <= COLLAPSE;
      const shown = open ? col.nodes : col.nodes.slice(0, COLLAPSE);
      shown.forEach((n, i) => {
        const y = TOP + i * (H + GAP_Y);
        at.set(n, [x, y]);
        body += nodeSvg(n, x, y, n.key === selected);
      });
      let count = shown.length;
      if (!open) {
        const y = TOP + count * (H + GAP_Y);
        const more = col.nodes.length - COLLAPSE;
        body += '<g class="node more" tabindex="0" role="button" data-expand="' + esc(colKey) +
          '" aria-label="show ' + more + ' more steps of this wave"><rect class="n-pending" x="' + x + '" y="' + y +
          '" width="' + W + '" height="' + H + '" rx="5"/><text x="' + (x + 8) + '" y="' + (y + 27) + '">+' + more +
          " more: show all</text></g>";
        count += 1;
      }
      maxRows = Math.max(maxRows, count);
    });
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
    box.innerHTML = '<svg xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + height +
      '" role="group" aria-label="Steps by phase and wave">' + labels + edges + body + "</svg>";
    return layout;
  }

  // Calls `choose(key, isGroup)` when a node is clicked or activated with the keyboard.
  function listen(box, choose, redraw) {
    const act = (target) => {
      const g = target.closest("g.node");
      if (!g) return;
      const col = g.getAttribute("data-expand");
      if (col) { expanded.add(col); redraw(); return; }
      choose(g.getAttribute("data-key"), g.getAttribute("data-group") === "1");
    };
    box.addEventListener("click", (e) => act(e.target));
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); act(e.target); }
    });
  }

  return { draw, listen, layout };
})();
