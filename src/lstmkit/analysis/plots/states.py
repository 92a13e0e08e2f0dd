"""Figures of a trace: heatmaps of a quantity over time, single units over time, gate saturation,
and :func:`plot_trace`, which writes them all."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._io import slug
from lstmkit.analysis import quantities as catalog
from lstmkit.analysis.plots._common import (
    FloatArray,
    _cell_names,
    _cell_title,
    _check_cell,
    _check_index,
    _check_name,
    _check_path,
    _check_text,
    _check_trace,
    _check_units,
    _clamp,
    _finish,
    _numpy,
    _of_batch,
    _plain,
    _quantity,
    _time_axis,
    _unit_ticks,
    quantity_label,
)
from lstmkit.analysis.plots.flows import attention
from lstmkit.analysis.trace import Trace

LEFT_SATURATED = 0.1
"""A gate value below this is left-saturated (nearly closed), as in Karpathy et al. 2015."""
RIGHT_SATURATED = 0.9
"""A gate value above this is right-saturated (nearly open)."""

GATE_ORDER = ("f_t", "i_t", "o_t", "r_t", "z_t", "d_t")
"""The order of :func:`saturation`'s panels for the gates named here; any other gate a cell
declares follows them, in name order."""

DEFAULT_UNIT_NAMES = ("f_t", "i_t", "o_t", "C_t", "r_t", "z_t", "n_t", "h_t")
"""What :func:`unit_traces` draws when no names are given (those the cell has)."""


def saturation_gates() -> tuple[str, ...]:
    """Every gate the cells declare (:mod:`lstmkit.analysis.quantities`), in the order of
    :data:`GATE_ORDER`: what :func:`saturation` draws."""
    return tuple(catalog.in_order(catalog.gates(), GATE_ORDER))


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
    if catalog.in_unit_interval(name):
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
            raise LstmkitTypeError(
                f"names must be a non-empty sequence of quantity names, got {describe(names)}"
            )
        chosen = list(names)
        for n in chosen:
            _check_name(trace, cell, n)
    series = {n: trace[f"{cell}.{n}"] for n in chosen}
    T, B, H = next(iter(series.values())).shape
    for n, values in series.items():
        if values.shape[0] != T or values.shape[2] != H:
            raise LstmkitValueError(
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
    if not catalog.is_gate(gate):
        found = [g for g in saturation_gates() if g in trace.names(cell)]
        raise LstmkitValueError(
            f"{gate!r} is not a gate; the gates of {cell!r} are {', '.join(found) or 'none'}"
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
    known = saturation_gates()
    gated = [c for c in trace.cells if any(g in _cell_names(trace, c) for g in known)]
    if cells is None:
        chosen = gated
        if not chosen:
            raise LstmkitValueError(
                f"no cell of this trace has a gate; its cells are {', '.join(trace.cells)}"
            )
    else:
        if isinstance(cells, str) or not isinstance(cells, Sequence) or not cells:
            raise LstmkitTypeError(
                f"cells must be a non-empty sequence of cell keys, got {describe(cells)}"
            )
        chosen = list(cells)
        for c in chosen:
            _check_cell(trace, c)
            if c not in gated:
                raise LstmkitValueError(
                    f"cell {c!r} has no gate to plot; the cells with gates are "
                    f"{', '.join(gated) or 'none'}"
                )
    drawn = [g for g in known if any(g in _cell_names(trace, c) for c in chosen)]

    fig = Figure(figsize=(3.6 * len(drawn) + 1.5, 4.1), dpi=120, layout="constrained")
    axes = fig.subplots(1, len(drawn), squeeze=False)[0]
    colours = [f"C{k % 10}" for k in range(len(chosen))]
    for ax, gate in zip(axes, drawn, strict=True):
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
    first = next(g for g in drawn if g in _cell_names(trace, chosen[0]))
    T, B = trace[f"{chosen[0]}.{first}"].shape[:2]
    fig.suptitle(
        f"Gate saturation per unit (Karpathy et al. 2015) over {T} steps × {B} sequence(s)"
    )
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
        raise LstmkitValueError(f"suffix must be '.png' or '.svg', got {suffix!r}")
    folder = Path(out)
    written: list[Path] = []
    for cell in trace.cells:
        stem = slug(cell, keep="-_.")  # rnn.l0: the place keeps its dots
        for name in trace.names(cell):
            if name == "alpha_t":
                target = folder / f"{stem}.attention{suffix}"
                attention(trace[f"{cell}.alpha_t"], sample=sample, path=target)
            else:
                steps = trace[f"{cell}.{name}"].shape[0]
                target = folder / f"{stem}.{name}{suffix}"
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
            target = folder / f"{stem}.units{suffix}"
            unit_traces(
                trace,
                cell,
                units=chosen,
                sample=sample,
                text=text if text is not None and len(text) == h_t.shape[0] else None,
                path=target,
            )
            written.append(target)
    if any(g in trace.names(c) for c in trace.cells for g in saturation_gates()):
        target = folder / f"saturation{suffix}"
        saturation(trace, path=target)
        written.append(target)
    return written
