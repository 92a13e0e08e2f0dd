"""The explain page's colour map, defined here once.

A value ``v`` of a quantity is placed at ``s = scale · v + shift`` on [-1, 1] (through tanh for
unbounded states, clipped), and ``s`` is coloured from :data:`NEUTRAL` (white, at 0) towards
:data:`HIGH` (red, at +1) or :data:`LOW` (blue, at -1), channel by channel, rounded. The page
carries :func:`colour_map` as data (``meta.colours``) and its script computes every colour from
it; :func:`colour_for` is the same map in Python.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np
from torch import Tensor

from lstmkit._errors import LstmkitValueError
from lstmkit.analysis import quantities

Kind = Literal["gate", "bounded", "state"]


class Scale(NamedTuple):
    """How the values of one kind of quantity are placed on [-1, 1]."""

    scale: float
    shift: float
    squash: Literal["none", "tanh"]
    ends: tuple[str, str]  # what the legend's two ends stand for


NEUTRAL = (255, 255, 255)
"""The colour of s = 0 (and of a gate at 0.5): white."""
HIGH = (255, 75, 75)
"""The colour of s = +1: red."""
LOW = (75, 75, 255)
"""The colour of s = -1: blue."""

SCALES: dict[str, Scale] = {
    "gate": Scale(2.0, -1.0, "none", ("0", "1")),  # [0, 1], 0.5 white
    "bounded": Scale(1.0, 0.0, "none", ("\u22121", "1")),  # [-1, 1], 0 white
    "state": Scale(1.0, 0.0, "tanh", ("tanh \u2212", "tanh +")),  # any real, by tanh
}
"""The kinds of :func:`quantity_kind` and how each is placed on [-1, 1]."""


def quantity_kind(name: str, values: np.ndarray | Tensor) -> Kind:
    """How a quantity is mapped to colours: ``"gate"`` when the cells declared ``name`` a gate or
    another fraction in [0, 1] (:mod:`lstmkit.analysis.quantities`; 0.5 is white), else
    ``"bounded"`` when ``values`` lie within [-1, 1] (0 is white) and ``"state"`` when they do
    not (coloured by tanh)."""
    if quantities.in_unit_interval(name):
        return "gate"
    top = float(np.abs(np.asarray(values)).max()) if np.asarray(values).size else 0.0
    return "bounded" if top <= 1.0 else "state"


def colour_map() -> dict[str, Any]:
    """The colour map as the page's data: plain lists and numbers, for JSON."""
    return {
        "neutral": list(NEUTRAL),
        "high": list(HIGH),
        "low": list(LOW),
        "kinds": {
            kind: {"scale": s.scale, "shift": s.shift, "squash": s.squash, "ends": list(s.ends)}
            for kind, s in SCALES.items()
        },
    }


def colour_for(value: float, kind: str) -> tuple[int, int, int]:
    """The background colour of a character whose unit has ``value``, as (r, g, b): white at the
    neutral point, towards red for high values and towards blue for low ones."""
    if kind not in SCALES:
        raise LstmkitValueError(f"kind must be one of {', '.join(map(repr, SCALES))}, got {kind!r}")
    how = SCALES[kind]
    s = how.scale * value + how.shift
    return shade(math.tanh(s) if how.squash == "tanh" else s)


def shade(s: float) -> tuple[int, int, int]:
    """The colour of ``s`` (clipped to [-1, 1]): :data:`NEUTRAL` at 0, :data:`HIGH` at +1 and
    :data:`LOW` at -1, each channel rounded half up as JavaScript's ``Math.round``."""
    s = min(1.0, max(-1.0, s))
    end = HIGH if s >= 0 else LOW
    r, g, b = (math.floor(m + (e - m) * abs(s) + 0.5) for m, e in zip(NEUTRAL, end, strict=True))
    return (r, g, b)
