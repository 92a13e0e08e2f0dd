"""Figures of what a recurrent network computes: gate and state heatmaps over time, single-unit
traces, gate saturation (Karpathy et al. 2015), gradient flow, and attention weights.

Every function returns a :class:`matplotlib.figure.Figure` and, given ``path=``, also writes it
as PNG or SVG (chosen by the suffix). Figures are made with ``Figure`` directly, never through
pyplot, so no global figure state builds up and no display backend is needed.

The quantities are named as in "Understanding LSTM Networks" and as :func:`lstmkit.trace` keys
them (``f_t``, ``C_t``, ...); titles spell out what each one is ("forget gate f_t"). Gates are
drawn on a fixed 0-1 scale, states on a diverging scale centred on 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from lstmkit._checks import describe
from lstmkit.gradient_flow import GradientFlow
from lstmkit.tracing import Trace

FloatArray = npt.NDArray[np.float64]

LEFT_SATURATED = 0.1
"""A gate value below this is left-saturated (nearly closed), as in Karpathy et al. 2015."""
RIGHT_SATURATED = 0.9
"""A gate value above this is right-saturated (nearly open)."""

MAX_TICK_LABELS = 120
"""Up to this many characters or labels are written one per tick; longer runs get numbers."""

# name -> (what it is, the post's symbol in mathtext, whether it lies in [0, 1])
QUANTITIES: dict[str, tuple[str, str, bool]] = {
    "f_t": ("forget gate", r"$f_t$", True),
    "i_t": ("input gate", r"$i_t$", True),
    "o_t": ("output gate", r"$o_t$", True),
    "C_tilde": ("candidate values", r"$\tilde{C}_t$", False),
    "C_t": ("cell state", r"$C_t$", False),
    "h_t": ("hidden state", r"$h_t$", False),
    "m_t": ("hidden state before the projection", r"$m_t$", False),
    "r_t": ("reset gate", r"$r_t$", True),
    "z_t": ("update gate", r"$z_t$", True),
    "n_t": ("candidate state", r"$n_t$", False),
    "d_t": ("depth gate", r"$d_t$", True),
    "active": ("clockwork module active (1) or held (0)", "", True),
    "alpha_t": ("attention weights", r"$\alpha_t$", True),
    "beta_t": ("context gate", r"$\beta_t$", True),
    "h_time": ("time hidden vectors", r"$h^{\mathrm{time}}$", False),
    "m_time": ("time memory vectors", r"$m^{\mathrm{time}}$", False),
}

GATES = ("f_t", "i_t", "o_t", "r_t", "z_t", "d_t")
"""The gates :func:`saturation` knows, in the order its panels take."""

DEFAULT_UNIT_NAMES = ("f_t", "i_t", "o_t", "C_t", "r_t", "z_t", "n_t", "h_t")
"""What :func:`unit_traces` draws when no names are given (those the cell has)."""

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "⏎"}


def quantity_label(name: str) -> str:
    """How a traced quantity is named in titles and legends: ``"forget gate $f_t$"``."""
    if name in QUANTITIES:
        what, symbol, _ = QUANTITIES[name]
        return f"{what} {symbol}".strip()
    return _plain(name)


def heatmap(
    trace: Trace,
    cell: str,
    name: str,
    *,
    sample: int = 0,
    units: Sequence[int] | None = None,
    text: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """One quantity of one cell as an image of units × time steps, for one sequence.

    Args:
        trace: what :func:`lstmkit.trace` recorded.
        cell: a key of ``trace.cells``, e.g. ``"rnn.l0"``.
        name: a quantity of that cell, e.g. ``"C_t"`` or ``"f_t"`` (``trace.names(cell)``).
        sample: which sequence of the batch (B) to show.
        units: the units (rows) to show, in this order; all of them by default.
        text: the characters the sequence was made of, one per step; written under the
            steps when there are at most :data:`MAX_TICK_LABELS` of them.
        path: also save the figure here, ``.png`` or ``.svg``.

    The image is ``values[:, sample, units].T``: shape ``(len(units), T)``. Gates use a 0-1
    colour scale, states a diverging one centred on 0.
    """
    _check_trace(trace)
    target = _check_path(path)
    values = _quantity(trace, cell, name)  # (T, B, H)
    T, B, H = values.shape
    _check_index("sample", sample, B, "sequences")
    rows = list(range(H)) if units is None else _check_units(units, H)
    labels = _check_text(text, T)
    data = _numpy(values[:, sample, rows]).T  # (U, T)

    fig = Figure(
        figsize=(
            _clamp(2.5 + (0.11 if labels else 0.05) * T, 7, 24),
            _clamp(2 + 0.16 * len(rows), 3, 12),
        ),
        dpi=120,
        layout="constrained",
    )
    ax = fig.add_subplot()
    gate = QUANTITIES.get(name, ("", "", False))[2]
    if gate:
        image = ax.imshow(
            data, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1
        )
    else:
        limit = float(np.abs(data).max()) or 1.0
        image = ax.imshow(
            data, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit
        )
    fig.colorbar(image, ax=ax, label=quantity_label(name))
    _time_axis(ax, T, labels)
    ax.set_ylabel("annotation (input position)" if name == "alpha_t" else "unit")
    _unit_ticks(ax, rows)
    ax.set_title(
        f"{_cell_title(trace, cell)}: {quantity_label(name)} over time{_of_batch(sample, B)}",
        fontsize=10,
    )
    return _finish(fig, target)


def unit_traces(
    trace: Trace,
    cell: str,
    *,
    units: Sequence[int] | int,
    names: Sequence[str] | None = None,
    sample: int = 0,
    text: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Single units over time: one panel per unit, one line per quantity.

    Args:
        trace, cell, sample, text, path: as for :func:`heatmap`.
        units: the units to follow, one panel each (an int for one unit).
        names: the quantities to draw; by default those of ``f_t, i_t, o_t, C_t, r_t, z_t,
            n_t, h_t`` that the cell records (so an LSTM shows its gates, C_t and h_t, a GRU
            r_t, z_t, n_t and h_t).

    Panel k's line for ``name`` is ``trace[f"{cell}.{name}"][:, sample, units[k]]``.
    """
    _check_trace(trace)
    target = _check_path(path)
    available = _cell_names(trace, cell)
    if names is None:
        chosen = [n for n in DEFAULT_UNIT_NAMES if n in available] or available
    else:
        if isinstance(names, str) or not isinstance(names, Sequence) or not names:
            raise TypeError(
                f"names must be a non-empty sequence of quantity names, got {describe(names)}"
            )
        chosen = list(names)
        for n in chosen:
            _check_name(trace, cell, n)
    series = {n: trace[f"{cell}.{n}"] for n in chosen}
    T, B, H = next(iter(series.values())).shape
    for n, values in series.items():
        if values.shape[0] != T or values.shape[2] != H:
            raise ValueError(
                f"{cell}.{n} has shape {tuple(values.shape)}, which does not line up unit for unit "
                f"with {chosen[0]}'s {(T, B, H)}; draw it separately"
            )
    _check_index("sample", sample, B, "sequences")
    picked = _check_units([units] if isinstance(units, (int, np.integer)) else units, H)
    labels = _check_text(text, T)

    fig = Figure(
        figsize=(
            _clamp(3.5 + (0.11 if labels else 0.05) * T, 7, 24),
            _clamp(0.6 + 1.9 * len(picked), 3, 20),
        ),
        dpi=120,
        layout="constrained",
    )
    axes = fig.subplots(len(picked), 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(T)
    for ax, unit in zip(axes, picked, strict=True):
        for n, values in series.items():
            ax.plot(steps, _numpy(values[:, sample, unit]), label=quantity_label(n), linewidth=1.2)
        ax.axhline(0.0, color="grey", linewidth=0.6)
        ax.set_title(f"unit {unit}", fontsize=9, loc="left")
        ax.set_ylabel("value")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    _time_axis(axes[-1], T, labels)
    fig.suptitle(f"{_cell_title(trace, cell)}: single units over time{_of_batch(sample, B)}")
    return _finish(fig, target)


def saturation_fractions(trace: Trace, cell: str, gate: str) -> tuple[FloatArray, FloatArray]:
    """For each unit of ``cell``'s ``gate``, the fraction of its values (over every step and every
    sequence of the trace) below :data:`LEFT_SATURATED` and above :data:`RIGHT_SATURATED`.

    Returns ``(left, right)``, each ``(H,)`` float64; ``left + right <= 1``.
    """
    _check_trace(trace)
    _check_name(trace, cell, gate)
    if gate not in GATES:
        gates = [g for g in GATES if g in trace.names(cell)]
        raise ValueError(
            f"{gate!r} is not a gate; the gates of {cell!r} are {', '.join(gates) or 'none'}"
        )
    values = trace[f"{cell}.{gate}"]
    flat = values.reshape(-1, values.shape[-1])  # (T·B, H)
    left = (flat < LEFT_SATURATED).to(torch.float64).mean(0)
    right = (flat > RIGHT_SATURATED).to(torch.float64).mean(0)
    return left.cpu().numpy(), right.cpu().numpy()


def saturation(
    trace: Trace, *, cells: Sequence[str] | None = None, path: str | Path | None = None
) -> Figure:
    """Gate saturation per unit, as in Karpathy et al. 2015 ("Visualizing and understanding
    recurrent networks", fig. 3): one panel per gate, one dot per unit of every cell, at
    x = fraction of steps the gate is left-saturated (< 0.1) and y = fraction right-saturated
    (> 0.9); a colour per cell.

    ``cells`` picks the cells (default: every cell with a gate). A unit on the diagonal is
    saturated as often either way; no unit can lie above the line x + y = 1.
    """
    _check_trace(trace)
    target = _check_path(path)
    gated = [c for c in trace.cells if any(g in _cell_names(trace, c) for g in GATES)]
    if cells is None:
        chosen = gated
        if not chosen:
            raise ValueError(
                f"no cell of this trace has a gate; its cells are {', '.join(trace.cells)}"
            )
    else:
        if isinstance(cells, str) or not isinstance(cells, Sequence) or not cells:
            raise TypeError(
                f"cells must be a non-empty sequence of cell keys, got {describe(cells)}"
            )
        chosen = list(cells)
        for c in chosen:
            _check_cell(trace, c)
            if c not in gated:
                raise ValueError(
                    f"cell {c!r} has no gate to plot; the cells with gates are "
                    f"{', '.join(gated) or 'none'}"
                )
    gates = [g for g in GATES if any(g in _cell_names(trace, c) for c in chosen)]

    fig = Figure(figsize=(3.6 * len(gates) + 1.5, 4.1), dpi=120, layout="constrained")
    axes = fig.subplots(1, len(gates), squeeze=False)[0]
    colours = [f"C{k % 10}" for k in range(len(chosen))]
    for ax, gate in zip(axes, gates, strict=True):
        ax.plot(
            [0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="as often either way"
        )
        ax.plot(
            [0, 1],
            [1, 0],
            color="grey",
            linestyle=":",
            linewidth=0.8,
            label="saturated at every step",
        )
        for c, colour in zip(chosen, colours, strict=True):
            if gate in _cell_names(trace, c):
                left, right = saturation_fractions(trace, c, gate)
                ax.scatter(left, right, s=14, alpha=0.7, color=colour, label=_plain(c))
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel(f"fraction of steps left-saturated (< {LEFT_SATURATED})")
        ax.set_ylabel(f"fraction right-saturated (> {RIGHT_SATURATED})")
        ax.set_title(quantity_label(gate))
        ax.grid(alpha=0.3)
    axes[-1].legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title="one dot per unit"
    )
    first = next(g for g in GATES if g in _cell_names(trace, chosen[0]))
    T, B = trace[f"{chosen[0]}.{first}"].shape[:2]
    fig.suptitle(
        f"Gate saturation per unit (Karpathy et al. 2015) over {T} steps × {B} sequence(s)"
    )
    return _finish(fig, target)


def gradient_flow(
    flows: Sequence[GradientFlow] | GradientFlow, *, path: str | Path | None = None
) -> Figure:
    """‖∂L/∂h_t‖ (solid) and ‖∂L/∂C_t‖ (dashed, where the cell has C_t) against the number of steps
    between step t and the loss, on a log scale: one colour per :class:`GradientFlow`, named in
    the legend by its label. A straight falling line is an exponentially vanishing gradient.
    """
    target = _check_path(path)
    items = [flows] if isinstance(flows, GradientFlow) else flows
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        raise TypeError(
            f"flows must be a non-empty sequence of GradientFlow, got {describe(flows)}"
        )
    for k, flow in enumerate(items):
        if not isinstance(flow, GradientFlow):
            raise TypeError(f"flows[{k}] must be a GradientFlow, got {describe(flow)}")
        steps = len(flow.distance)
        for field_name, values in (("h_norm", flow.h_norm), ("c_norm", flow.c_norm)):
            if values is not None and np.shape(values) != (steps,):
                raise ValueError(
                    f"flows[{k}].{field_name} must have one value per distance, expected shape "
                    f"({steps},), got {np.shape(values)}"
                )

    fig = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for k, flow in enumerate(items):
        colour = f"C{k % 10}"
        label = _plain(flow.label)
        ax.plot(
            flow.distance,
            flow.h_norm,
            color=colour,
            label=f"{label}: " + r"$\Vert\partial L/\partial h_t\Vert$",
        )
        if flow.c_norm is not None:
            ax.plot(
                flow.distance,
                flow.c_norm,
                color=colour,
                linestyle="--",
                label=f"{label}: " + r"$\Vert\partial L/\partial C_t\Vert$",
            )
    ax.set_yscale("log")
    ax.set_xlabel(r"steps between $h_t$ and the loss")
    ax.set_ylabel("gradient norm, mean over the batch (log scale)")
    tasks = list(dict.fromkeys(flow.task for flow in items))
    ax.set_title(f"Gradient flow back through time on {_plain(', '.join(tasks))}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, target)


def attention(
    alphas: Tensor | FloatArray | Trace,
    *,
    inputs: Sequence[str] | str | None = None,
    outputs: Sequence[str] | str | None = None,
    sample: int = 0,
    path: str | Path | None = None,
) -> Figure:
    """Attention weights α as an image: one row per output step, one column per annotation.

    Args:
        alphas: ``(T_out, L)`` weights of one sequence; or ``(T, B, L)``, time-major as a trace
            records ``alpha_t`` (for :class:`lstmkit.AttentionDecoder`'s batch-first
            ``output.alphas (B, T, L)`` pass ``output.alphas[b]``); or a trace with one
            attention cell.
        inputs: a label per annotation (a string gives one character each).
        outputs: a label per output step.
        sample: the sequence to show of ``(T, B, L)`` weights.
        path: also save the figure here, ``.png`` or ``.svg``.
    """
    target = _check_path(path)
    if isinstance(alphas, Trace):
        keys = [k for k in sorted(alphas.values) if k.endswith(".alpha_t")]
        if len(keys) != 1:
            found = ", ".join(keys) if keys else f"none (its cells are {', '.join(alphas.cells)})"
            raise ValueError(
                f"expected a trace with exactly one attention cell's alpha_t, found {found}; "
                "pass trace['<cell>.alpha_t'] to choose"
            )
        weights = alphas[keys[0]]
    elif isinstance(alphas, (Tensor, np.ndarray)):
        weights = alphas if isinstance(alphas, Tensor) else torch.as_tensor(alphas)
    else:
        raise TypeError(
            f"alphas must be a Tensor, a NumPy array or a Trace, got {describe(alphas)}"
        )
    if weights.dim() == 3:
        _check_index("sample", sample, weights.shape[1], "sequences")
        B = weights.shape[1]
        weights = weights[:, sample]
    elif weights.dim() == 2:
        if sample != 0:
            raise ValueError(
                f"sample applies to (T, B, L) weights; these are 2-D {tuple(weights.shape)}"
            )
        B = 1
    else:
        raise ValueError(
            f"alphas must be (T_out, L) or (T, B, L), got {weights.dim()}-D with shape "
            f"{tuple(weights.shape)}"
        )
    data = _numpy(weights)  # (T_out, L)
    T_out, L = data.shape
    column_labels = _check_labels("inputs", inputs, L, "annotations")
    row_labels = _check_labels("outputs", outputs, T_out, "output steps")

    fig = Figure(
        figsize=(
            _clamp(2.5 + (0.16 if column_labels else 0.06) * L, 7, 24),
            _clamp(1.8 + (0.18 if row_labels else 0.06) * T_out, 3, 16),
        ),
        dpi=120,
        layout="constrained",
    )
    ax = fig.add_subplot()
    top = float(data.max()) if data.size and float(data.max()) > 0 else 1.0
    image = ax.imshow(
        data, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=top
    )
    fig.colorbar(image, ax=ax, label="attention weight α")
    ax.set_xlabel("annotation (input position)")
    ax.set_ylabel("output step")
    if column_labels:
        ax.set_xticks(range(L), labels=column_labels, fontsize=8, parse_math=False)
    if row_labels:
        ax.set_yticks(range(T_out), labels=row_labels, fontsize=8, parse_math=False)
    ax.set_title(f"Attention weights α over the annotations{_of_batch(sample, B)}", fontsize=10)
    return _finish(fig, target)


def plot_trace(
    trace: Trace,
    out: str | Path,
    *,
    text: str | None = None,
    units: Sequence[int] | None = None,
    sample: int = 0,
    suffix: str = ".png",
) -> list[Path]:
    """Writes the standard set of figures of a trace into the folder ``out`` and returns their
    paths: a heatmap of every quantity of every cell (``<cell>.<name><suffix>``), single-unit
    traces of every cell (``<cell>.units<suffix>``; the given units, or the four whose h_t
    varies most over the sequence), the saturation plot if a cell has gates
    (``saturation<suffix>``) and the attention weights if a cell has them
    (``<cell>.attention<suffix>``). ``text`` labels the steps as in :func:`heatmap`, in the
    figures of every cell that ran one step per character of it.
    """
    _check_trace(trace)
    if suffix not in (".png", ".svg"):
        raise ValueError(f"suffix must be '.png' or '.svg', got {suffix!r}")
    folder = Path(out)
    written: list[Path] = []
    for cell in trace.cells:
        slug = _slug(cell)
        for name in trace.names(cell):
            if name == "alpha_t":
                target = folder / f"{slug}.attention{suffix}"
                attention(trace[f"{cell}.alpha_t"], sample=sample, path=target)
            else:
                steps = trace[f"{cell}.{name}"].shape[0]
                target = folder / f"{slug}.{name}{suffix}"
                heatmap(
                    trace,
                    cell,
                    name,
                    sample=sample,
                    text=text if text is not None and len(text) == steps else None,
                    path=target,
                )
            written.append(target)
        if "h_t" in trace.names(cell):
            h_t = trace[f"{cell}.h_t"]
            _check_index("sample", sample, h_t.shape[1], "sequences")
            chosen = (
                sorted(_numpy(h_t[:, sample]).std(axis=0).argsort()[::-1][:4].tolist())
                if units is None
                else list(units)
            )
            target = folder / f"{slug}.units{suffix}"
            unit_traces(
                trace,
                cell,
                units=chosen,
                sample=sample,
                text=text if text is not None and len(text) == h_t.shape[0] else None,
                path=target,
            )
            written.append(target)
    if any(g in trace.names(c) for c in trace.cells for g in GATES):
        target = folder / f"saturation{suffix}"
        saturation(trace, path=target)
        written.append(target)
    return written


# -- checks and helpers ---------------------------------------------------------------------


def _check_trace(trace: object) -> None:
    if not isinstance(trace, Trace):
        raise TypeError(
            f"trace must be an lstmkit Trace (from lstmkit.trace), got {describe(trace)}"
        )


def _check_path(path: str | Path | None) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or Path, got {describe(path)}")
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"a plot is saved as .png or .svg, got {target.name!r}")
    return target


def _check_cell(trace: Trace, cell: object) -> None:
    if not isinstance(cell, str):
        raise TypeError(f"cell must be a str, got {describe(cell)}")
    if cell not in trace.cells:
        raise ValueError(f"unknown cell {cell!r}; this trace has {', '.join(trace.cells)}")


def _cell_names(trace: Trace, cell: str) -> list[str]:
    _check_cell(trace, cell)
    return trace.names(cell)


def _check_name(trace: Trace, cell: str, name: object) -> None:
    names = _cell_names(trace, cell)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {describe(name)}")
    if name not in names:
        raise ValueError(f"unknown quantity {name!r} of cell {cell!r}; it has {', '.join(names)}")


def _quantity(trace: Trace, cell: str, name: str) -> Tensor:
    _check_name(trace, cell, name)
    values = trace[f"{cell}.{name}"]
    if values.dim() != 3:
        raise ValueError(f"{cell}.{name} must be (T, B, H), got shape {tuple(values.shape)}")
    return values


def _check_index(what: str, value: object, size: int, of: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {describe(value)}")
    if not 0 <= value < size:
        raise ValueError(f"{what} must be in [0, {size}) ({size} {of}), got {value}")


def _check_units(units: object, size: int) -> list[int]:
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence) or not units:
        raise TypeError(f"units must be a non-empty sequence of ints, got {describe(units)}")
    picked = []
    for u in units:
        if isinstance(u, bool) or not isinstance(u, (int, np.integer)):
            raise TypeError(f"units must hold ints, got {describe(u)}")
        if not 0 <= u < size:
            raise ValueError(f"units must be in [0, {size}) (the cell has {size}), got {u}")
        picked.append(int(u))
    return picked


def _check_text(text: object, steps: int) -> list[str] | None:
    """The tick labels of a text, one per step, or None when there is no text or too much."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    if len(text) != steps:
        raise ValueError(
            f"text must have one character per step: expected {steps}, got {len(text)}"
        )
    return [_visible(c) for c in text] if steps <= MAX_TICK_LABELS else None


def _check_labels(what: str, labels: object, size: int, of: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        items = [_visible(c) for c in labels]
    elif isinstance(labels, Sequence) and all(isinstance(x, str) for x in labels):
        items = list(labels)
    else:
        raise TypeError(f"{what} must be a str or a sequence of str, got {describe(labels)}")
    if len(items) != size:
        raise ValueError(
            f"{what} must have one label per {of[:-1]}: expected {size}, got {len(items)}"
        )
    return items if size <= MAX_TICK_LABELS else None


def _visible(c: str) -> str:
    if c in _VISIBLE:
        return _VISIBLE[c]
    return f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c


def _plain(text: str) -> str:
    """Text a user gave, shown as is: a '$' must not start matplotlib's math mode."""
    return text.replace("$", r"\$")


def _time_axis(ax: Axes, steps: int, labels: list[str] | None) -> None:
    if labels is None:
        ax.set_xlabel("time step")
    else:
        ax.set_xticks(
            range(steps), labels=labels, fontsize=8, fontfamily="monospace", parse_math=False
        )
        ax.set_xlabel("time step (the input character read at each step)")


def _unit_ticks(ax: Axes, units: list[int]) -> None:
    """Numbers the rows by the units they show; past 40 rows, every k-th so they stay legible."""
    every = max(1, math.ceil(len(units) / 40))
    positions = list(range(0, len(units), every))
    ax.set_yticks(positions, labels=[str(units[p]) for p in positions], fontsize=7)


def _cell_title(trace: Trace, cell: str) -> str:
    kind = trace.meta.get("cells", {}).get(cell, {}).get("class")
    return f"{_plain(cell)} ({kind})" if kind else _plain(cell)


def _of_batch(sample: int, batch: int) -> str:
    return f", sequence {sample} of {batch}" if batch > 1 else ""


def _numpy(values: Tensor) -> FloatArray:
    return values.detach().to("cpu", torch.float64).numpy()


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _finish(fig: Figure, target: Path | None) -> Figure:
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, format=target.suffix.lower()[1:])
    return fig
