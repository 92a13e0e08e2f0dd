// The explain page's code (lstmkit.analysis.explain): page.py inlines this file into every page,
// after the data it reads, the JSON of the element #lk-meta (the layers, their quantities and the
// colour map of explain/colours.py) and the int16 values of #lk-data. It fetches nothing.
"use strict";
(function () {
  const meta = JSON.parse(document.getElementById("lk-meta").textContent);
  const el = (id) => document.getElementById(id);
  const textEl = el("lk-text");
  const spans = Array.from(textEl.children);
  const layerSel = el("lk-layer"), quantitySel = el("lk-quantity"), unitIn = el("lk-unit");
  const SAY = {
    f_t: "Forget: the forget gate looks at h\u209c\u208b\u2081 and x\u209c and decides, unit by " +
      "unit, how much of the old cell state survives (1 keeps all of it, 0 wipes it).",
    i_t: "Input: the input gate chooses which units take in something new, and the candidate " +
      "C\u0303\u209c, from a tanh layer, proposes what.",
    C_t: "Update: the old cell state is scaled by the forget gate and the gated candidate is " +
      "added: C\u209c = f\u209c\u00b7C\u209c\u208b\u2081 + i\u209c\u00b7C\u0303\u209c.",
    o_t: "Output: the output gate picks which parts of the squashed state tanh(C\u209c) leave " +
      "the cell as h\u209c = o\u209c\u00b7tanh(C\u209c).",
    r_t: "Reset: r\u209c decides how much of h\u209c\u208b\u2081 shapes the candidate n\u209c.",
    z_t: "Update gate: z\u209c mixes the previous output and the candidate into h\u209c.",
    h_t: "The new output h\u209c of the layer.",
  };
  const COLUMNS = ["f_t", "i_t", "C_tilde", "C_prev", "C_t", "o_t", "r_t", "z_t", "n_t",
    "h_prev", "h_t"];
  const HEAD = { C_prev: "C_t\u22121", h_prev: "h_t\u22121", C_tilde: "C\u0303_t" };
  const COLOURS = meta.colours;  // the colour map, defined once in Python (explain/colours.py)
  let q = null;  // every recorded value, int16
  let layer = 0, quantity = "", unit = 0, position = 0;

  // the colour of s in [-1, 1]: COLOURS.neutral at 0, towards COLOURS.high at 1, COLOURS.low at -1
  function shade(s) {
    s = Math.max(-1, Math.min(1, s));
    const end = s >= 0 ? COLOURS.high : COLOURS.low, a = Math.abs(s);
    const [r, g, b] = COLOURS.neutral.map((m, c) => Math.round(m + (end[c] - m) * a));
    return `rgb(${r}, ${g}, ${b})`;
  }
  // a value of a quantity of this kind: s = scale * v + shift, squashed by tanh for states
  function colour(v, kind) {
    const how = COLOURS.kinds[kind], s = how.scale * v + how.shift;
    return shade(how.squash === "tanh" ? Math.tanh(s) : s);
  }
  function info(name) { return meta.layers[layer].quantities[name]; }
  function value(name, t, u) {
    const d = info(name);
    return q[d.offset + t * d.width + u] * d.scale;
  }
  function has(name) {
    if (name === "C_prev") return has("C_t");
    if (name === "h_prev") return has("h_t") && !has("C_t");
    return name in meta.layers[layer].quantities;
  }
  function at(name, t, u) {
    if (name === "C_prev" || name === "h_prev") {
      // a reverse layer reads right to left: its previous step is the next position
      const before = meta.layers[layer].reverse ? t + 1 : t - 1;
      if (before < 0 || before >= spans.length) return 0;
      return value(name === "C_prev" ? "C_t" : "h_t", before, u);
    }
    return u < info(name).width ? value(name, t, u) : NaN;
  }
  const fmt = (x) => Number.isNaN(x) ? "" : x.toFixed(3);

  function fillLayers() {
    meta.layers.forEach((l, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = `${l.cell} (${l.class})`;
      layerSel.appendChild(o);
    });
  }
  function fillQuantities() {
    quantitySel.textContent = "";
    for (const name of Object.keys(meta.layers[layer].quantities)) {
      const o = document.createElement("option");
      o.value = name;
      const what = meta.layers[layer].quantities[name].what;
      o.textContent = (HEAD[name] || name) + (what ? ` \u2014 ${what}` : "");
      quantitySel.appendChild(o);
    }
    if (!has(quantity)) quantity = quantitySel.options[0].value;
    quantitySel.value = quantity;
  }
  function recolour() {
    const d = info(quantity);
    const base = d.offset + unit, stride = d.width;
    for (let t = 0; t < spans.length; t++) {
      spans[t].style.backgroundColor = colour(q[base + t * stride] * d.scale, d.kind);
    }
    const ends = COLOURS.kinds[d.kind].ends;
    el("lk-low").textContent = ends[0];
    el("lk-high").textContent = ends[1];
    const stops = [];
    for (let k = 0; k <= 4; k++) stops.push(shade(-1 + k / 2));
    el("lk-legend").style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    el("lk-width").textContent = String(d.width);
  }

  function say(parent, sentence, numbers) {
    const p = document.createElement("p");
    p.className = "lk-say";
    p.textContent = sentence + " ";
    if (numbers) {
      const b = document.createElement("span");
      b.className = "lk-num";
      b.textContent = numbers;
      p.appendChild(b);
    }
    parent.appendChild(p);
  }
  function renderStep() {
    const body = el("lk-step-body");
    body.textContent = "";
    const t = position, u = unit, ch = JSON.stringify(spans[t].textContent);
    el("lk-step-title").textContent =
      `Step t = ${t}: reading ${ch} \u2014 ${meta.layers[layer].cell}, unit ${u}` +
      (meta.layers[layer].reverse ? " (this layer reads right to left: its previous step " +
        "is position t + 1)" : "");
    body.appendChild(walkThrough(t, u));
    const moved = movedUnits(t);
    if (moved) body.append(...moved);
    body.append(...stepTable(t, u));
  }

  // the walk-through of "Understanding LSTM Networks" for unit u at step t
  function walkThrough(t, u) {
    const v = (n) => fmt(at(n, t, u));
    const walk = document.createElement("div");
    walk.id = "lk-walk";
    if (has("f_t")) {
      say(walk, SAY.f_t, `unit ${u}: f = ${v("f_t")}` +
        (has("C_t") ? ` of C\u209c\u208b\u2081 = ${v("C_prev")} is kept: ` +
          fmt(at("f_t", t, u) * at("C_prev", t, u)) : ""));
    } else if (has("C_t")) {
      say(walk, "This layer has no forget gate: all of C\u209c\u208b\u2081 is kept.", "");
    }
    if (has("i_t") || has("C_tilde")) {
      const i = has("i_t") ? at("i_t", t, u) : 1, g = has("C_tilde") ? at("C_tilde", t, u) : 1;
      say(walk, SAY.i_t, `unit ${u}: i = ${has("i_t") ? fmt(i) : "1 (no input gate)"}, ` +
        `C\u0303 = ${has("C_tilde") ? fmt(g) : "1"}, so ${fmt(i * g)} is added.`);
    }
    if (has("C_t")) {
      let sum = "";
      if (has("f_t") && has("i_t") && has("C_tilde")) {
        const parts = ["f_t", "C_prev", "i_t", "C_tilde"].map((n) => at(n, t, u));
        sum = ` (f\u00b7C\u209c\u208b\u2081 + i\u00b7C\u0303 = ${fmt(parts[0])} \u00d7 ` +
          `${fmt(parts[1])} + ${fmt(parts[2])} \u00d7 ${fmt(parts[3])} = ` +
          `${fmt(parts[0] * parts[1] + parts[2] * parts[3])})`;
      }
      say(walk, SAY.C_t, `unit ${u}: C\u209c\u208b\u2081 = ${v("C_prev")} \u2192 ` +
        `C\u209c = ${v("C_t")}${sum}.`);
    }
    if (has("o_t")) {
      say(walk, SAY.o_t, `unit ${u}: o = ${v("o_t")}` + (has("C_t") ?
        `, tanh(C\u209c) = ${fmt(Math.tanh(at("C_t", t, u)))}` : "") +
        (has("h_t") ? `, h\u209c = ${v("h_t")}.` : "."));
    }
    for (const n of ["r_t", "z_t"]) if (has(n)) say(walk, SAY[n], `unit ${u}: ${n} = ${v(n)}.`);
    if (has("h_t") && !has("o_t")) say(walk, SAY.h_t, `unit ${u}: h\u209c = ${v("h_t")}.`);
    return walk;
  }

  // the heading and list of the units whose state changed most at step t (null: no state)
  function movedUnits(t) {
    const state = has("C_t") ? "C_t" : "h_t", prev = has("C_t") ? "C_prev" : "h_prev";
    if (has(state)) {
      const width = info(state).width, moved = [];
      for (let k = 0; k < width; k++) {
        moved.push([Math.abs(at(state, t, k) - at(prev, t, k)), k]);
      }
      moved.sort((a, b) => b[0] - a[0]);
      const h = document.createElement("h3");
      h.textContent = `Units whose ${state} changed most at this step`;
      const list = document.createElement("ol");
      list.id = "lk-moved";
      for (const [, k] of moved.slice(0, 8)) {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.className = "lk-pick";
        b.dataset.unit = String(k);
        const before = at(prev, t, k), after = at(state, t, k);
        b.textContent = `unit ${k}: ${fmt(before)} \u2192 ${fmt(after)} ` +
          `(${after - before >= 0 ? "+" : ""}${fmt(after - before)})`;
        li.appendChild(b);
        list.appendChild(li);
      }
      return [h, list];
    }
    return null;
  }

  // the heading and table of every unit's values at step t, unit u's row marked
  function stepTable(t, u) {
    const columns = COLUMNS.filter(has).concat(
      Object.keys(meta.layers[layer].quantities).filter((n) => !COLUMNS.includes(n)));
    const rows = Math.max(...columns.map((n) => info(n === "C_prev" ? "C_t" :
      n === "h_prev" ? "h_t" : n).width));
    const table = document.createElement("table");
    table.id = "lk-step-table";
    const head = table.createTHead().insertRow();
    for (const name of ["unit"].concat(columns)) {
      const th = document.createElement("th");
      th.textContent = HEAD[name] || name;
      const d = meta.layers[layer].quantities[name];
      if (d && d.what) th.title = d.what;
      head.appendChild(th);
    }
    const tbody = table.createTBody();
    for (let k = 0; k < rows; k++) {
      const row = tbody.insertRow();
      if (k === u) row.className = "lk-chosen";
      row.insertCell().textContent = String(k);
      for (const name of columns) {
        const cell = row.insertCell();
        const x = at(name, t, k);
        cell.dataset.q = name;
        cell.dataset.unit = String(k);
        cell.textContent = fmt(x);
        if (!Number.isNaN(x)) {
          const kind = name === "C_prev" ? info("C_t").kind :
            name === "h_prev" ? info("h_t").kind : info(name).kind;
          cell.style.backgroundColor = colour(x, kind);
        }
      }
    }
    const h = document.createElement("h3");
    h.textContent = `Every unit of ${meta.layers[layer].cell} at step ${t}`;
    return [h, table];
  }

  function update() {
    const start = performance.now();
    const width = info(quantity).width;
    unit = Math.max(0, Math.min(width - 1, unit | 0));
    unitIn.max = String(width - 1);
    unitIn.value = String(unit);
    layerSel.value = String(layer);
    quantitySel.value = quantity;
    recolour();
    renderStep();
    void textEl.offsetHeight;  // include the style and layout work in the measured time
    const ms = performance.now() - start;
    window.lkUpdateMs = ms;
    document.body.dataset.updateMs = ms.toFixed(2);
  }
  function select(t) {
    spans[position].classList.remove("lk-here");
    position = t;
    spans[position].classList.add("lk-here");
    document.body.dataset.position = String(t);
    update();
  }

  async function decode() {
    const raw = atob(el("lk-data").textContent.trim());
    const bytes = new Uint8Array(raw.length);
    for (let k = 0; k < raw.length; k++) bytes[k] = raw.charCodeAt(k);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    const planes = new Uint8Array(await new Response(stream).arrayBuffer());
    const n = planes.length / 2, out = new Int16Array(n);
    for (let k = 0; k < n; k++) out[k] = planes[k] | (planes[n + k] << 8);
    return out;
  }

  decode().then((values) => {
    q = values;
    spans.forEach((s, t) => { s.lkT = t; });
    fillLayers();
    layer = meta.start.layer;
    quantity = meta.start.quantity;
    unit = meta.start.unit;
    fillQuantities();
    layerSel.addEventListener("change", () => {
      layer = Number(layerSel.value);
      fillQuantities();
      update();
    });
    quantitySel.addEventListener("change", () => { quantity = quantitySel.value; update(); });
    unitIn.addEventListener("change", () => { unit = Number(unitIn.value); update(); });
    el("lk-prev").addEventListener("click", () => { unit -= 1; update(); });
    el("lk-next").addEventListener("click", () => { unit += 1; update(); });
    textEl.addEventListener("click", (event) => {
      if (event.target.lkT !== undefined) select(event.target.lkT);
    });
    textEl.addEventListener("mouseover", (event) => {
      const t = event.target.lkT;
      if (t === undefined) return;
      el("lk-status").textContent = `t = ${t} ${JSON.stringify(spans[t].textContent)}: ` +
        `${quantity}[${unit}] = ${fmt(at(quantity, t, unit))}`;
    });
    document.body.addEventListener("click", (event) => {
      const b = event.target.closest ? event.target.closest("button.lk-pick") : null;
      if (!b) return;
      if (b.dataset.layer !== undefined) {
        layer = Number(b.dataset.layer);
        quantity = b.dataset.quantity;
        fillQuantities();
      }
      unit = Number(b.dataset.unit);
      update();
    });
    select(0);
    el("lk-status").textContent = "hover over a character to read its value";
    document.body.dataset.ready = "1";
  }).catch((error) => {
    el("lk-status").textContent = `could not read the data: ${error}`;
    throw error;
  });
})();
