"""What every figure of :mod:`lstmkit.analysis.plots` shares: the names of quantities, the checks
of arguments (each error says what was expected) and small helpers of layout and saving."""

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
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.analysis import quantities as catalog
from lstmkit.analysis.trace import Trace

FloatArray = npt.NDArray[np.float64]

MAX_TICK_LABELS = 120
"""Up to this many characters or labels are written one per tick; longer runs get numbers."""

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "⏎"}


def quantity_label(name: str) -> str:
    """How a traced quantity is named in titles and legends: ``"forget gate $f_t$"``, from what
    the cells declared it to be (:mod:`lstmkit.analysis.quantities`); a name nobody declared is
    shown as it is."""
    quantity = catalog.declared(name)
    if quantity is not None:
        return f"{quantity.what} {quantity.symbol}".strip()
    return _plain(name)


def _check_trace(trace: object) -> None:
    if not isinstance(trace, Trace):
        raise LstmkitTypeError(
            f"trace must be an lstmkit Trace (from lstmkit.trace), got {describe(trace)}"
        )


def _check_path(path: str | Path | None) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, Path)):
        raise LstmkitTypeError(f"path must be a str or Path, got {describe(path)}")
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise LstmkitValueError(f"a plot is saved as .png or .svg, got {target.name!r}")
    return target


def _check_cell(trace: Trace, cell: object) -> None:
    if not isinstance(cell, str):
        raise LstmkitTypeError(f"cell must be a str, got {describe(cell)}")
    if cell not in trace.cells:
        raise LstmkitValueError(f"unknown cell {cell!r}; this trace has {', '.join(trace.cells)}")


def _cell_names(trace: Trace, cell: str) -> list[str]:
    _check_cell(trace, cell)
    return trace.names(cell)


def _check_name(trace: Trace, cell: str, name: object) -> None:
    names = _cell_names(trace, cell)
    if not isinstance(name, str):
        raise LstmkitTypeError(f"name must be a str, got {describe(name)}")
    if name not in names:
        raise LstmkitValueError(
            f"unknown quantity {name!r} of cell {cell!r}; it has {', '.join(names)}"
        )


def _quantity(trace: Trace, cell: str, name: str) -> Tensor:
    _check_name(trace, cell, name)
    values = trace[f"{cell}.{name}"]
    if values.dim() != 3:
        raise LstmkitValueError(f"{cell}.{name} must be (T, B, H), got shape {tuple(values.shape)}")
    return values


def _check_index(what: str, value: object, size: int, of: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise LstmkitTypeError(f"{what} must be an int, got {describe(value)}")
    if not 0 <= value < size:
        raise LstmkitValueError(f"{what} must be in [0, {size}) ({size} {of}), got {value}")


def _check_units(units: object, size: int) -> list[int]:
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence) or not units:
        raise LstmkitTypeError(f"units must be a non-empty sequence of ints, got {describe(units)}")
    picked = []
    for u in units:
        if isinstance(u, bool) or not isinstance(u, (int, np.integer)):
            raise LstmkitTypeError(f"units must hold ints, got {describe(u)}")
        if not 0 <= u < size:
            raise LstmkitValueError(f"units must be in [0, {size}) (the cell has {size}), got {u}")
        picked.append(int(u))
    return picked


def _check_text(text: object, steps: int) -> list[str] | None:
    """The tick labels of a text, one per step, or None when there is no text or too much."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise LstmkitTypeError(f"text must be a str, got {describe(text)}")
    if len(text) != steps:
        raise LstmkitValueError(
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
        raise LstmkitTypeError(f"{what} must be a str or a sequence of str, got {describe(labels)}")
    if len(items) != size:
        raise LstmkitValueError(
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


def _finish(fig: Figure, target: Path | None) -> Figure:
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, format=target.suffix.lower()[1:])
    return fig
