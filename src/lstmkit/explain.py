"""The explain page: one self-contained HTML file that shows what the units of a character model do.

``explain_page(trace, text)`` turns a trace of a model over ``text`` (see :mod:`lstmkit.tracing`)
into a page with

- the text, coloured character by character by one unit of one recorded quantity (a cell state,
  a gate), as in Karpathy's char-rnn visualisations, with controls for the layer, the quantity
  and the unit;
- the units whose cell state or output best follows a feature of the text (the column in the
  line, being inside quotes, brackets or a comment), each a link that selects it;
- a step-through of the position clicked last, in the order of the LSTM walk-through of
  "Understanding LSTM Networks": forget gate, input gate and candidate, the new cell state, the
  output gate and h_t, with the step's values for every unit and the units that changed most;
- for attention models, the attention map.

Everything is inline (no request leaves the page). The recorded values are stored as 16-bit
integers, one scale per quantity (``max|x| / 32767``), so a value on the page is within
``max|x| / 65534`` of the traced float32 value; the page shows three decimals. The data is
compressed with zlib and decoded in the browser by its built-in ``DecompressionStream``.
``explain_checkpoint`` does all of it for a ``charlm`` checkpoint and writes the file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit._checks import describe
from lstmkit.tracing import Trace, trace

GATES = frozenset({"f_t", "i_t", "o_t", "z_t", "r_t", "d_t", "active"})
"""Quantities in [0, 1]: coloured from blue (0) through white (0.5) to red (1)."""

ORDER = ("C_t", "h_t", "f_t", "i_t", "o_t", "C_tilde", "z_t", "r_t", "n_t", "m_t", "d_t")
"""The order of the quantity menu; quantities not named here follow in name order."""

FEATURES = {
    "column": "characters since the last newline",
    "in_quotes": "inside a '...' or \"...\" string",
    "in_brackets": "inside (), [] or {}",
    "in_comment": "after a # on the same line",
}
"""The text features that :func:`interpretable_units` correlates units with."""

MAX_ATTENTION_CELLS = 60_000
"""The largest attention map drawn (output steps × annotations): each cell is an SVG element."""

_LEVELS = 32767  # int16 quantisation: x ≈ q · scale with |q| ≤ _LEVELS


def text_features(text: str) -> dict[str, np.ndarray]:
    """The features of every character of ``text``, as seen right after reading it, ``(T,)`` each.

    ``column`` counts the characters since the last newline (0 on a newline); ``in_quotes`` is 1
    from an opening quote (' or ") up to, not including, the matching closing one, a backslash
    escaping the next character; ``in_brackets`` is 1 while more brackets of ``([{`` are open
    than closed; ``in_comment`` is 1 from a ``#`` to the end of its line. Quotes and brackets
    inside a comment, and brackets and ``#`` inside quotes, do not count.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    column = np.zeros(len(text))
    quotes, brackets, comment = (np.zeros(len(text)) for _ in range(3))
    col, depth, quote, escaped, in_comment = 0, 0, "", False, False
    for t, c in enumerate(text):
        if c == "\n":
            col, in_comment = 0, False
        else:
            col += 1
        if in_comment:
            pass
        elif quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            in_comment = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        column[t], quotes[t] = col, float(bool(quote))
        brackets[t], comment[t] = float(depth > 0), float(in_comment)
    return {"column": column, "in_quotes": quotes, "in_brackets": brackets, "in_comment": comment}


def quantity_kind(name: str, values: np.ndarray | Tensor) -> str:
    """How a quantity is mapped to colours: ``"gate"`` (a value in [0, 1], 0.5 is white),
    ``"bounded"`` (within [-1, 1], 0 is white) or ``"state"`` (unbounded, coloured by tanh)."""
    if name in GATES:
        return "gate"
    top = float(np.abs(np.asarray(values)).max()) if np.asarray(values).size else 0.0
    return "bounded" if top <= 1.0 else "state"


def colour_for(value: float, kind: str) -> tuple[int, int, int]:
    """The background colour of a character whose unit has ``value``: white at the neutral
    point, towards red for high values and towards blue for low ones, as (r, g, b).

    The page's JavaScript computes the same map (its ``colour`` function)."""
    if kind == "gate":
        s = 2.0 * value - 1.0
    elif kind == "state":
        s = math.tanh(value)
    elif kind == "bounded":
        s = value
    else:
        raise ValueError(f"kind must be 'gate', 'bounded' or 'state', got {kind!r}")
    s = min(1.0, max(-1.0, s))
    light = math.floor(255.0 - 180.0 * abs(s) + 0.5)  # as JavaScript's Math.round
    return (255, light, light) if s >= 0 else (light, light, 255)


def interpretable_units(trace: Trace, text: str, *, top: int = 5) -> list[dict[str, Any]]:
    """The units that best follow each feature of :func:`text_features`.

    For every layer of ``trace`` (a trace of one sequence over ``text``), every unit of its
    ``C_t`` and ``h_t`` (those it has) and every feature, the Pearson correlation r over the
    positions of the text; for each feature the ``top`` units by ``|r|``. A feature that is
    constant over the text (no quotes at all) is left out; a constant unit has r = 0.

    Returns dicts with keys ``feature``, ``cell`` (``"rnn.l0"``), ``quantity``, ``unit`` and ``r``,
    grouped by feature in the order of :data:`FEATURES`, strongest first.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {describe(top)}")
    layers = _layers(trace, text)
    found: list[dict[str, Any]] = []
    for feature, y in text_features(text).items():
        dy = y - y.mean()
        if not np.any(dy):
            continue
        rows: list[dict[str, Any]] = []
        for cell, _, quantities in layers:
            for quantity in ("C_t", "h_t"):
                if quantity not in quantities:
                    continue
                x = quantities[quantity].astype(np.float64)  # (T, N)
                dx = x - x.mean(axis=0)
                spread = np.sqrt((dx**2).sum(axis=0) * (dy**2).sum())
                r = np.divide(dy @ dx, spread, out=np.zeros(x.shape[1]), where=spread > 0)
                rows += [
                    {
                        "feature": feature,
                        "cell": cell,
                        "quantity": quantity,
                        "unit": u,
                        "r": float(v),
                    }
                    for u, v in enumerate(r)
                ]
        rows.sort(key=lambda row: -abs(row["r"]))
        found += rows[:top]
    return found


def explain_page(
    trace: Trace,
    text: str,
    *,
    title: str = "lstmkit explain",
    attention: np.ndarray | Tensor | None = None,
    attention_labels: Sequence[str] | None = None,
) -> str:
    """The explain page (one HTML document) for a trace of one sequence over ``text``.

    Args:
        trace: :func:`lstmkit.trace` of a model over ``text``, one sequence (batch of 1), one
            step per character. Every traced cell with ``len(text)`` steps is a layer of the
            page (an LSTM shows i_t, f_t, C̃_t, C_t, o_t, h_t; a GRU r_t, z_t, n_t, h_t; ...).
        text: the characters the model read; shown escaped.
        title: the page's heading.
        attention: weights ``(T_out, L)`` of an attention model (rows: output steps, columns:
            the annotations looked at), drawn as a heat map. Without it, a traced
            ``AttentionDecoder``'s ``alpha_t`` is drawn when the trace has one.
        attention_labels: names of the L annotations for the map's columns.

    The values are stored to 16-bit precision (see the module's docstring).
    """
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {describe(title)}")
    layers = _layers(trace, text)
    weights = _attention(trace, attention, attention_labels)
    units = interpretable_units(trace, text)
    arrays: list[np.ndarray] = []
    meta_layers = []
    offset = 0
    for cell, kind_of_cell, quantities in layers:
        entries = {}
        for name, values in quantities.items():
            scale, q = _quantise(values, f"{cell}.{name}")
            arrays.append(q)
            entries[name] = {
                "offset": offset,
                "width": values.shape[1],
                "scale": scale,
                "kind": quantity_kind(name, values),
            }
            offset += q.size
        reverse = bool(trace.meta.get("cells", {}).get(cell, {}).get("reverse", False))
        meta_layers.append(
            {"cell": cell, "class": kind_of_cell, "reverse": reverse, "quantities": entries}
        )
    first = units[0] if units else None
    start = {
        "layer": next(i for i, layer in enumerate(layers) if layer[0] == first["cell"])
        if first
        else 0,
        "quantity": first["quantity"] if first else next(iter(layers[0][2])),
        "unit": first["unit"] if first else 0,
    }
    meta = {"steps": len(text), "layers": meta_layers, "start": start}
    data = _pack(arrays)
    return _render(title, text, layers, units, meta, data, weights)


def explain_checkpoint(
    checkpoint: str | Path, text: str, out: str | Path, *, title: str | None = None
) -> Path:
    """Writes the explain page of a ``charlm`` checkpoint reading ``text`` to ``out``.

    The model reads ``text`` as one sequence from its initial (zero) state; characters outside
    its vocabulary are read as its unknown token. The file is written to a temporary file beside
    ``out`` and renamed over it, so ``out`` is never half-written. Returns ``out``.
    """
    from lstmkit.sample import load_charlm

    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    if not text:
        raise ValueError("text must have at least one character, got an empty string")
    model, vocabulary = load_charlm(checkpoint)
    index = {c: i for i, c in enumerate(vocabulary)}
    codes = torch.tensor([[index.get(c, len(vocabulary)) for c in text]])  # (1, T)
    model.eval()
    recorded = trace(model, codes)
    source = Path(checkpoint)
    page = explain_page(
        recorded,
        text,
        title=title if title is not None else f"{source.parent.name}/{source.name}",
    )
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _layers(trace: Trace, text: str) -> list[tuple[str, str, dict[str, np.ndarray]]]:
    """The cells of ``trace`` with one step per character of ``text``: (key, class, quantities
    ``(T, N)`` in menu order)."""
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be an lstmkit Trace, got {describe(trace)}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    if not text:
        raise ValueError("text must have at least one character, got an empty string")
    classes = {key: info.get("class", "?") for key, info in trace.meta.get("cells", {}).items()}
    layers = []
    steps = set()
    for cell in trace.cells:
        if classes.get(cell) == "AttentionDecoder":
            continue
        found = {}
        for name in trace.names(cell):
            values = trace[f"{cell}.{name}"]
            if values.dim() != 3:
                continue
            steps.add(values.shape[0])
            if values.shape[0] != len(text):
                continue
            if values.shape[1] != 1:
                raise ValueError(
                    f"{cell}.{name}: expected a trace of one sequence (batch of 1), got a batch "
                    f"of {values.shape[1]}"
                )
            found[name] = values[:, 0].detach().float().cpu().numpy()
        if found:
            rank = {name: i for i, name in enumerate(ORDER)}
            ordered = sorted(found, key=lambda n: (rank.get(n, len(ORDER)), n))
            layers.append((cell, classes.get(cell, "?"), {n: found[n] for n in ordered}))
    if not layers:
        raise ValueError(
            f"expected a traced cell with one step per character ({len(text)} steps), got cells "
            f"with {sorted(steps) or 'no'} steps"
        )
    return layers


def _attention(
    trace: Trace, attention: np.ndarray | Tensor | None, labels: Sequence[str] | None
) -> tuple[np.ndarray, list[str]] | None:
    if attention is None:
        for cell, info in trace.meta.get("cells", {}).items():
            key = f"{cell}.alpha_t"
            if info.get("class") == "AttentionDecoder" and key in trace:
                alpha = trace[key]
                if alpha.dim() != 3 or alpha.shape[1] != 1:
                    raise ValueError(
                        f"{key}: expected (T, 1, L) weights of one sequence, got "
                        f"{tuple(alpha.shape)}"
                    )
                attention = alpha[:, 0]
                break
    if attention is None:
        if labels is not None:
            raise ValueError("attention_labels given without attention weights")
        return None
    if isinstance(attention, Tensor):
        attention = attention.detach().float().cpu().numpy()
    if not isinstance(attention, np.ndarray):
        raise TypeError(f"attention must be an array or a Tensor, got {describe(attention)}")
    if attention.ndim != 2 or 0 in attention.shape:
        raise ValueError(f"attention must be (T_out, L), got shape {attention.shape}")
    if attention.size > MAX_ATTENTION_CELLS:
        raise ValueError(
            f"attention map of {attention.shape} has {attention.size} cells; expected at most "
            f"{MAX_ATTENTION_CELLS} (slice it)"
        )
    if not np.all(np.isfinite(attention)):
        raise ValueError("attention has non-finite values")
    columns = attention.shape[1]
    if labels is None:
        names = [str(i) for i in range(columns)]
    else:
        names = [str(label) for label in labels]
        if len(names) != columns:
            raise ValueError(
                f"expected {columns} attention_labels (one per column), got {len(names)}"
            )
    return attention.astype(np.float64), names


def _quantise(values: np.ndarray, what: str) -> tuple[float, np.ndarray]:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} has non-finite values; expected finite ones")
    top = float(np.abs(values).max())
    scale = top / _LEVELS if top > 0 else 1.0
    return scale, np.rint(values / scale).astype(np.int16)


def _pack(arrays: list[np.ndarray]) -> str:
    """The int16 arrays, concatenated, as base64 of zlib: all low bytes first, then all high
    bytes (the high bytes of neighbouring values are alike, so they compress well)."""
    flat = np.concatenate([a.ravel() for a in arrays]).astype("<i2")
    planes = flat.view(np.uint8).reshape(-1, 2).T  # (2, n): low bytes, high bytes
    return base64.b64encode(zlib.compress(planes.tobytes(), 6)).decode("ascii")


def _json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(
    title: str,
    text: str,
    layers: list[tuple[str, str, dict[str, np.ndarray]]],
    units: list[dict[str, Any]],
    meta: dict[str, Any],
    data: str,
    weights: tuple[np.ndarray, list[str]] | None,
) -> str:
    e = html.escape
    spans = "".join(
        '<span class="nl">\n</span>' if c == "\n" else f"<span>{e(c)}</span>" for c in text
    )
    layer_names = {cell: i for i, (cell, _, _) in enumerate(layers)}
    items = []
    for feature, about in FEATURES.items():
        rows = [u for u in units if u["feature"] == feature]
        if not rows:
            continue
        links = "".join(
            f'<li><button type="button" class="lk-pick" data-layer="{layer_names[u["cell"]]}" '
            f'data-quantity="{e(u["quantity"])}" data-unit="{u["unit"]}">{e(u["cell"])} '
            f"{e(u['quantity'])} unit {u['unit']}: r = {u['r']:+.2f}</button></li>"
            for u in rows
        )
        items.append(f"<li><strong>{e(feature)}</strong> ({e(about)})<ol>{links}</ol></li>")
    unit_list = (
        f'<ul id="lk-units">{"".join(items)}</ul>'
        if items
        else "<p>No feature varies over this text.</p>"
    )
    summary = ", ".join(f"{e(cell)} ({e(kind)})" for cell, kind, _ in layers)
    attention = "" if weights is None else _attention_svg(*weights, text)
    parts = {
        "TITLE": e(title),
        "STYLE": _STYLE,
        "SUMMARY": f"{len(text)} characters; layers: {summary}",
        "UNITS": unit_list,
        "ATTENTION": attention,
        "META": _json(meta),
        "DATA": data,
        "SCRIPT": _SCRIPT,
        "TEXT": spans,
    }
    # one pass, so that a marker inside the text or the title is never replaced
    return re.sub(r"%([A-Z]+)%", lambda m: parts[m.group(1)], _PAGE)


def _attention_svg(weights: np.ndarray, labels: list[str], text: str) -> str:
    rows, columns = weights.shape
    cell, left, top = 14, 48, 60
    parts = []
    for j, label in enumerate(labels):
        x = left + j * cell + cell // 2
        parts.append(
            f'<text x="{x}" y="{top - 4}" transform="rotate(-60 {x} {top - 4})" '
            f'class="lk-att-label">{html.escape(label[:12])}</text>'
        )
    for t in range(rows):
        y = top + t * cell
        name = f"{t}" if rows != len(text) else f"{t} {text[t]!r}"
        parts.append(
            f'<text x="{left - 4}" y="{y + cell - 3}" text-anchor="end" '
            f'class="lk-att-label">{html.escape(name[:8])}</text>'
        )
        for j in range(columns):
            a = min(1.0, max(0.0, float(weights[t, j])))
            light = math.floor(255.0 - 215.0 * a + 0.5)
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="rgb({light},{light},255)"><title>step {t}, '
                f"{html.escape(labels[j])}: {weights[t, j]:.3f}</title></rect>"
            )
    width, height = left + columns * cell + 10, top + rows * cell + 10
    return (
        '<section id="lk-attention"><h2>Attention</h2><p>Row t: how much output step t looked '
        "at each annotation (white 0, blue 1).</p>"
        f'<svg width="{width}" height="{height}" role="img">{"".join(parts)}</svg></section>'
    )


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 1.5em 2em; color: #222; }
h1 { font-size: 1.3em; margin: 0.6em 0 0.2em; } h2 { font-size: 1.1em; margin: 1em 0 0.3em; }
#lk-controls { position: sticky; top: 0; background: #fafafa; border-bottom: 1px solid #ddd;
  padding: 0.4em 0; display: flex; flex-wrap: wrap; gap: 0.8em; align-items: center; z-index: 1; }
#lk-controls input[type=number] { width: 5em; }
#lk-legend { display: inline-block; width: 160px; height: 12px; border: 1px solid #bbb;
  vertical-align: middle; }
#lk-status { font-family: ui-monospace, monospace; color: #555; min-width: 20em; }
#lk-layout { display: flex; gap: 1.5em; align-items: flex-start; }
#lk-text { flex: 3; font: 13px/1.5 ui-monospace, monospace; white-space: pre-wrap;
  word-break: break-all; max-height: 70vh; overflow-y: auto; border: 1px solid #ddd;
  padding: 0.5em; cursor: pointer; }
#lk-text span.nl::before { content: "\\21B5"; color: #999; }
#lk-text span.lk-here { outline: 2px solid #000; }
#lk-side { flex: 2; max-height: 70vh; overflow-y: auto; }
#lk-side ol { padding-left: 1.2em; margin: 0.2em 0; }
#lk-units { padding-left: 1em; }
button.lk-pick { border: none; background: none; color: #0645ad; cursor: pointer; padding: 0;
  font: inherit; text-align: left; }
button.lk-pick:hover { text-decoration: underline; }
#lk-step table { border-collapse: collapse; font: 12px ui-monospace, monospace; }
#lk-step td, #lk-step th { border: 1px solid #ddd; padding: 1px 6px; text-align: right; }
#lk-step tr.lk-chosen td { outline: 2px solid #000; }
#lk-step .lk-say { margin: 0.3em 0; } #lk-step .lk-num { font-family: ui-monospace, monospace; }
.lk-att-label { font: 10px ui-monospace, monospace; fill: #333; }
footer { margin-top: 2em; color: #666; font-size: 0.9em; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%TITLE%</title>
<style>%STYLE%</style>
</head>
<body data-ready="0">
<h1>%TITLE%</h1>
<p>%SUMMARY%. Click a character to step through that position.</p>
<div id="lk-controls">
<label>Layer <select id="lk-layer"></select></label>
<label>Quantity <select id="lk-quantity"></select></label>
<label>Unit <button type="button" id="lk-prev">&#9664;</button>
<input type="number" id="lk-unit" min="0" value="0">
<button type="button" id="lk-next">&#9654;</button> of <span id="lk-width"></span></label>
<span><span id="lk-low"></span> <span id="lk-legend"></span> <span id="lk-high"></span></span>
<span id="lk-status">loading&#8230;</span>
</div>
<div id="lk-layout">
<div id="lk-text">%TEXT%</div>
<div id="lk-side">
<h2>Most interpretable units</h2>
<p>Units whose value follows a feature of this text (Pearson r over all positions). Click one
to show it.</p>
%UNITS%
</div>
</div>
<section id="lk-step"><h2 id="lk-step-title">One step</h2><div id="lk-step-body"></div></section>
%ATTENTION%
<footer>Values are stored as 16-bit integers with one scale per quantity (within max|x|/65534 of
the recorded value) and shown to three decimals. Colours: gates from blue (0) through white
(0.5) to red (1); tanh-range values from blue (&#8722;1) to red (+1); cell states by tanh(C).
At the first position the previous state is taken as zero (the default initial state); a
reverse layer's previous step is the next position.
Made by lstmkit.</footer>
<script type="application/json" id="lk-meta">%META%</script>
<script type="text/plain" id="lk-data">%DATA%</script>
<script>%SCRIPT%</script>
</body>
</html>
"""

_SCRIPT = r"""
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
  let q = null;  // every recorded value, int16
  let layer = 0, quantity = "", unit = 0, position = 0;

  function colour(v, kind) {
    let s = kind === "gate" ? 2 * v - 1 : kind === "state" ? Math.tanh(v) : v;
    s = Math.max(-1, Math.min(1, s));
    const light = Math.round(255 - 180 * Math.abs(s));
    return s >= 0 ? `rgb(255, ${light}, ${light})` : `rgb(${light}, ${light}, 255)`;
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
      o.textContent = HEAD[name] || name;
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
    const ends = { gate: ["0", "1"], state: ["tanh \u2212", "tanh +"], bounded: ["\u22121", "1"] };
    el("lk-low").textContent = ends[d.kind][0];
    el("lk-high").textContent = ends[d.kind][1];
    const lo = d.kind === "gate" ? 0 : -1, stops = [];
    for (let k = 0; k <= 4; k++) {
      const v = lo + (1 - lo) * k / 4;
      stops.push(colour(d.kind === "state" ? Math.atanh(Math.max(-0.999, Math.min(0.999, v))) : v,
        d.kind));
    }
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
    body.appendChild(walk);

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
      body.append(h, list);
    }

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
    body.append(h, table);
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
"""
