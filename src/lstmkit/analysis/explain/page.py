"""The explain page: one self-contained HTML file that shows what the units of a character model do.

``explain_page(trace, text)`` turns a trace of a model over ``text`` (see
:mod:`lstmkit.analysis.trace`) into a page with

- the text, coloured character by character by one unit of one recorded quantity (a cell state,
  a gate), as in Karpathy's char-rnn visualisations, with controls for the layer, the quantity
  and the unit;
- the units whose cell state or output best follows a feature of the text (the column in the
  line, being inside quotes, brackets or a comment), each a link that selects it;
- a step-through of the position clicked last, in the order of the LSTM walk-through of
  "Understanding LSTM Networks": forget gate, input gate and candidate, the new cell state, the
  output gate and h_t, with the step's values for every unit and the units that changed most;
- for attention models, the attention map.

The page is the template ``page.html`` beside this module with ``explain.css``, ``explain.js``
and the data filled in: everything is inline (no request leaves the page). The colour map of
:mod:`lstmkit.analysis.explain.colours` goes in as data, which the script colours by. The
recorded values are stored as 16-bit integers, one scale per quantity (``max|x| / 32767``), so a
value on the page is within ``max|x| / 65534`` of the traced float32 value; the page shows three
decimals. The data is compressed with zlib and decoded in the browser by its built-in
``DecompressionStream``.
``explain_checkpoint`` does all of it for a ``charlm`` checkpoint and writes the file.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import re
import zlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from lstmkit._checks import describe
from lstmkit._errors import LstmkitRuntimeError, LstmkitTypeError, LstmkitValueError
from lstmkit._io import write_text
from lstmkit.analysis import quantities as catalog
from lstmkit.analysis.explain.colours import colour_map, quantity_kind
from lstmkit.analysis.trace import Trace, trace

ORDER = ("C_t", "h_t", "f_t", "i_t", "o_t", "C_tilde", "z_t", "r_t", "n_t", "m_t", "d_t")
"""The order of the quantity menu (the walk-through's); quantities not named here follow in name
order. What a quantity is, and whether it is coloured as a gate, comes from the cells'
declarations (:mod:`lstmkit.analysis.quantities`)."""

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
        raise LstmkitTypeError(f"text must be a str, got {describe(text)}")
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
        raise LstmkitValueError(f"top must be a positive int, got {describe(top)}")
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
        raise LstmkitTypeError(f"title must be a str, got {describe(title)}")
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
            declared = catalog.declared(name)
            entries[name] = {
                "offset": offset,
                "width": values.shape[1],
                "scale": scale,
                "kind": quantity_kind(name, values),
                "what": declared.what if declared is not None else "",
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
    meta = {"steps": len(text), "layers": meta_layers, "start": start, "colours": colour_map()}
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
    from lstmkit.tasks.charlm import CharCodec
    from lstmkit.train.sample import load_charlm

    if not isinstance(text, str):
        raise LstmkitTypeError(f"text must be a str, got {describe(text)}")
    if not text:
        raise LstmkitValueError("text must have at least one character, got an empty string")
    model, vocabulary = load_charlm(checkpoint)
    codec = CharCodec(vocabulary)
    codes = codec.encode(text)[None]  # (1, T)
    model.eval()
    recorded = trace(model, codes)
    source = Path(checkpoint)
    page = explain_page(
        recorded,
        text,
        title=title if title is not None else f"{source.parent.name}/{source.name}",
    )
    return write_text(out, page)


def _layers(trace: Trace, text: str) -> list[tuple[str, str, dict[str, np.ndarray]]]:
    """The cells of ``trace`` with one step per character of ``text``: (key, class, quantities
    ``(T, N)`` in menu order)."""
    if not isinstance(trace, Trace):
        raise LstmkitTypeError(f"trace must be an lstmkit Trace, got {describe(trace)}")
    if not isinstance(text, str):
        raise LstmkitTypeError(f"text must be a str, got {describe(text)}")
    if not text:
        raise LstmkitValueError("text must have at least one character, got an empty string")
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
                raise LstmkitValueError(
                    f"{cell}.{name}: expected a trace of one sequence (batch of 1), got a batch "
                    f"of {values.shape[1]}"
                )
            found[name] = values[:, 0].detach().float().cpu().numpy()
        if found:
            ordered = catalog.in_order(found, ORDER)
            layers.append((cell, classes.get(cell, "?"), {n: found[n] for n in ordered}))
    if not layers:
        raise LstmkitValueError(
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
                    raise LstmkitValueError(
                        f"{key}: expected (T, 1, L) weights of one sequence, got "
                        f"{tuple(alpha.shape)}"
                    )
                attention = alpha[:, 0]
                break
    if attention is None:
        if labels is not None:
            raise LstmkitValueError("attention_labels given without attention weights")
        return None
    if isinstance(attention, Tensor):
        attention = attention.detach().float().cpu().numpy()
    if not isinstance(attention, np.ndarray):
        raise LstmkitTypeError(f"attention must be an array or a Tensor, got {describe(attention)}")
    if attention.ndim != 2 or 0 in attention.shape:
        raise LstmkitValueError(f"attention must be (T_out, L), got shape {attention.shape}")
    if attention.size > MAX_ATTENTION_CELLS:
        raise LstmkitValueError(
            f"attention map of {attention.shape} has {attention.size} cells; expected at most "
            f"{MAX_ATTENTION_CELLS} (slice it)"
        )
    if not np.all(np.isfinite(attention)):
        raise LstmkitValueError("attention has non-finite values")
    columns = attention.shape[1]
    if labels is None:
        names = [str(i) for i in range(columns)]
    else:
        names = [str(label) for label in labels]
        if len(names) != columns:
            raise LstmkitValueError(
                f"expected {columns} attention_labels (one per column), got {len(names)}"
            )
    return attention.astype(np.float64), names


def _quantise(values: np.ndarray, what: str) -> tuple[float, np.ndarray]:
    if not np.all(np.isfinite(values)):
        raise LstmkitValueError(f"{what} has non-finite values; expected finite ones")
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
        "title": e(title),
        "style": _asset("explain.css"),
        "summary": f"{len(text)} characters; layers: {summary}",
        "units": unit_list,
        "attention": attention,
        "meta": _json(meta),
        "data": data,
        "script": _asset("explain.js"),
        "text": spans,
    }
    return _fill(_asset("page.html"), parts)


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


_PLACEHOLDER = re.compile(r"\{\{([a-z]+)\}\}")
"""A place in ``page.html`` that :func:`_render` fills: ``{{title}}``, ``{{script}}``, ..."""

_CLOSING = {"explain.css": "</style", "explain.js": "</script"}
"""The end tag that each inlined asset must never contain, lest the rest of it become HTML."""


@functools.cache
def _asset(name: str) -> str:
    """A file shipped beside this module: the template ``page.html``, or ``explain.css`` and
    ``explain.js``, which are inlined into every page (so nothing is fetched when it opens)."""
    text = resources.files("lstmkit.analysis.explain").joinpath(name).read_text(encoding="utf-8")
    closing = _CLOSING.get(name)
    if closing is not None and (closing in text.lower() or "<!--" in text):
        raise LstmkitRuntimeError(
            f"{name} contains {closing!r} or '<!--', which would end it early"
        )
    return text


def _fill(template: str, parts: dict[str, str]) -> str:
    """``template`` with each ``{{name}}`` replaced by ``parts[name]``, in one pass, so that a
    marker inside the text or the title is never replaced."""
    wanted = set(_PLACEHOLDER.findall(template))
    if wanted != set(parts):
        raise LstmkitRuntimeError(
            f"page.html has the placeholders {sorted(wanted)}; expected {sorted(parts)}"
        )
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], template)
