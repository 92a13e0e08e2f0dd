"""Figures of what a recurrent network computes: gate and state heatmaps over time, single-unit
traces, gate saturation (Karpathy et al. 2015), gradient flow, and attention weights; and of what
the generative models make: piano rolls, DRAW's canvases and windows (Gregor et al. 2015), and a
caption's attention over an image (Xu et al. 2015).

Every function returns a :class:`matplotlib.figure.Figure` and, given ``path=``, also writes it
as PNG or SVG (chosen by the suffix). Figures are made with ``Figure`` directly, never through
pyplot, so no global figure state builds up and no display backend is needed.

The quantities are named as in "Understanding LSTM Networks" and as :func:`lstmkit.trace` keys
them (``f_t``, ``C_t``, ...); titles spell out what each one is ("forget gate f_t"), as the cells
declared it (:mod:`lstmkit.analysis.quantities`). Gates and other values in [0, 1] are drawn on
a fixed 0-1 scale, other values on a diverging scale centred on 0.

The figures of a trace are in :mod:`~lstmkit.analysis.plots.states`, those of gradient flow and
attention in :mod:`~lstmkit.analysis.plots.flows`, that of a forecast in
:mod:`~lstmkit.analysis.plots.forecasts`, those of the generative models (:func:`piano_roll`,
:func:`canvases`, :func:`windows`, :func:`caption_attention`) in
:mod:`~lstmkit.analysis.plots.generative`; all of them are importable from here.
"""

from __future__ import annotations

from lstmkit import _recording
from lstmkit.analysis.plots._common import MAX_TICK_LABELS, FloatArray, quantity_label
from lstmkit.analysis.plots.flows import attention, gradient_flow
from lstmkit.analysis.plots.forecasts import forecast
from lstmkit.analysis.plots.generative import canvases, caption_attention, piano_roll, windows
from lstmkit.analysis.plots.states import (
    DEFAULT_UNIT_NAMES,
    GATE_ORDER,
    LEFT_SATURATED,
    RIGHT_SATURATED,
    heatmap,
    plot_trace,
    saturation,
    saturation_fractions,
    saturation_gates,
    unit_traces,
)

__all__ = [
    "DEFAULT_UNIT_NAMES",
    "GATES",
    "GATE_ORDER",
    "LEFT_SATURATED",
    "MAX_TICK_LABELS",
    "QUANTITIES",
    "RIGHT_SATURATED",
    "FloatArray",
    "attention",
    "canvases",
    "caption_attention",
    "forecast",
    "gradient_flow",
    "heatmap",
    "piano_roll",
    "plot_trace",
    "quantity_label",
    "saturation",
    "saturation_fractions",
    "saturation_gates",
    "unit_traces",
    "windows",
]


def __getattr__(name: str) -> object:
    """``QUANTITIES`` (name -> (what it is, its symbol in mathtext, whether it lies in [0, 1]))
    and ``GATES`` (what :func:`saturation` draws, in its order), derived from what the cells
    declare (:data:`lstmkit._recording.QUANTITIES`) each time they are read."""
    if name == "QUANTITIES":
        return {
            n: (q.what, q.symbol, q.kind in ("gate", "fraction"))
            for n, q in _recording.QUANTITIES.items()
        }
    if name == "GATES":
        return saturation_gates()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
