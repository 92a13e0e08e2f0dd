"""A figure of a forecast: the series, a model's forecast after its end beside the baselines',
and the same forecasters on the last window whose truth is known."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.analysis.plots._common import _check_path, _finish, _numpy, _plain


def _check_forecasts(what: str, forecasts: object, horizon: int | None) -> dict[str, Tensor]:
    """``forecasts`` as a dict of ``(H,)`` tensors, all of one length."""
    if not isinstance(forecasts, Mapping) or not forecasts:
        raise LstmkitTypeError(
            f"{what} must be a non-empty mapping of names to (H,) tensors, got "
            f"{describe(forecasts)}"
        )
    checked: dict[str, Tensor] = {}
    for name, values in forecasts.items():
        if not isinstance(values, Tensor) or values.dim() != 1:
            raise LstmkitTypeError(
                f"{what}[{name!r}] must be a (H,) tensor, got {describe(values)}"
            )
        horizon = len(values) if horizon is None else horizon
        if len(values) != horizon:
            raise LstmkitValueError(
                f"{what}[{name!r}] must have {horizon} steps like the others, got {len(values)}"
            )
        checked[str(name)] = values
    return checked


def forecast(
    history: Tensor,
    future: Mapping[str, Tensor],
    *,
    backtest: Mapping[str, Tensor] | None = None,
    split: int | None = None,
    title: str = "Forecast",
    path: str | Path | None = None,
) -> Figure:
    """The series ``history`` ``(N,)`` in black; each forecast of ``future`` (name -> ``(H,)``,
    the first one the model's, drawn solid, the others dashed) over the ``H`` steps after it;
    with ``backtest`` (name -> ``(H,)``), the same forecasters from origin ``N - H``, drawn over
    the last ``H`` values of the series, which are their truth. ``split`` shades the part of the
    series held out from training."""
    target = _check_path(path)
    if not isinstance(history, Tensor) or history.dim() != 1 or len(history) < 2:
        raise LstmkitTypeError(f"history must be a (N,) tensor, N >= 2, got {describe(history)}")
    ahead = _check_forecasts("future", future, None)
    horizon = len(next(iter(ahead.values())))
    past = None if backtest is None else _check_forecasts("backtest", backtest, horizon)
    if past is not None and horizon > len(history):
        raise LstmkitValueError(f"backtest needs a history of at least {horizon} values")
    n = len(history)
    fig = Figure(figsize=(9.0, 4.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    if split is not None and 0 < split < n:
        ax.axvspan(split - 0.5, n - 0.5, color="0.92", label="held out from training")
    ax.plot(range(n), _numpy(history), color="black", linewidth=1.2, label="series")
    for k, (name, values) in enumerate(ahead.items()):
        style = "-" if k == 0 else "--"
        steps = torch.arange(n, n + horizon)
        ax.plot(steps, _numpy(values), style, color=f"C{k}", label=f"{_plain(name)}: forecast")
        if past is not None and name in past:
            back = torch.arange(n - horizon, n)
            ax.plot(back, _numpy(past[name]), style, color=f"C{k}", alpha=0.6, marker=".")
    if past is not None:
        ax.axvline(n - horizon - 0.5, color="0.5", linewidth=0.8, linestyle=":")
        ax.annotate(
            "last window with known truth: dotted ",
            xy=(n - horizon - 0.5, 0.02),
            xycoords=("data", "axes fraction"),
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.4",
        )
    ax.axvline(n - 0.5, color="0.3", linewidth=0.8)
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.set_title(_plain(title))
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _finish(fig, target)
