"""``lstmkit forecast``: a trained series model's forecast of the steps after the end of a series,
beside the naive, seasonal naive and ARIMA forecasts, as a CSV file and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lstmkit._errors import LstmkitValueError
from lstmkit.cli._args import common, file_path

if TYPE_CHECKING:
    from torch import Tensor, nn

    from lstmkit.cli._args import Commands
    from lstmkit.tasks.series import SeriesTask

Forecasts = dict[str, "Tensor"]
"""Forecasts by forecaster, each ``(H,)`` float64 on the series' own scale."""


def add_forecast(commands: Commands) -> None:
    forecast = commands.add_parser(
        "forecast",
        help="forecast the steps after a series with a trained series model",
        description="Loads a checkpoint of the series task (read without running code from it) "
        "and forecasts the horizon's steps after the end of a series: the CSV given by --csv, "
        "with the columns the model was trained on, or else the run's own series. Writes each "
        "step's forecast beside the naive, seasonal naive and (when the run had arima=true) "
        "ARIMA forecasts, with the scaling and the ARIMA of the run's training part. With "
        "--plot, also draws the series, the forecasts, and the same forecasters from the last "
        "window whose truth the series holds.",
    )
    forecast.set_defaults(handler=forecast_command)
    forecast.add_argument("checkpoint", type=Path, help="checkpoint.pt of a series run")
    forecast.add_argument(
        "--csv",
        type=Path,
        default=None,
        help="the series to forecast after, a CSV with the run's columns (default: the run's own)",
    )
    forecast.add_argument(
        "-o",
        "--out",
        type=file_path,
        default=Path("forecast.csv"),
        help="the forecasts: step, forecast and one column per baseline (default: %(default)s)",
    )
    forecast.add_argument(
        "--plot", type=file_path, default=None, help="also draw them, .png or .svg"
    )
    common(forecast)


def forecasts_from(model: nn.Module, task: SeriesTask, history: Tensor, origin: int) -> Forecasts:
    """The model's and each baseline's forecast of the ``H`` steps from ``origin`` of
    ``history`` ``(N, C)``, ``lookback <= origin <= N``, seeing only the rows before it."""
    import torch

    from lstmkit.tasks import _forecast

    y, H, at = history[:, 0], task.horizon, torch.tensor([origin])
    with torch.no_grad():
        scaled = model(task.window_inputs(history, at), None)  # (1, H)
    found = {
        "forecast": task.unscale(scaled, task.window_levels(history, at))[0],
        "naive": _forecast.naive(y, at, H)[0],
        "seasonal_naive": _forecast.seasonal_naive(y, at, H, task.season)[0],
    }
    if task.arima:
        fitted = _forecast.arima_from(task.target[: task.split], y[:origin], at[:0], H, task.season)
        found["arima"] = fitted["future"]
    return found


def forecast_command(args: argparse.Namespace) -> int:
    from lstmkit._io import write_text
    from lstmkit.tasks.series import SeriesTask
    from lstmkit.train.trainer import load_run

    model, task = load_run(args.checkpoint)
    if not isinstance(task, SeriesTask):
        raise LstmkitValueError(
            f"lstmkit forecast needs a checkpoint of the series task; {args.checkpoint} is a "
            f"{task.name} run"
        )
    history = task.history(None if args.csv is None else str(args.csv))
    n = len(history)
    future = forecasts_from(model, task, history, n)
    names = list(future)
    lines = [",".join(["step", *names])]
    for h in range(task.horizon):
        lines.append(",".join([str(h + 1), *(f"{float(future[k][h]):.6g}" for k in names)]))
    write_text(args.out, "\n".join(lines) + "\n")
    print(f"{task.horizon} steps after row {n} of {args.csv or task.source}")
    for k in names:
        print(f"  {k:15s} " + " ".join(f"{float(v):.4g}" for v in future[k]))
    print(f"forecasts in {args.out}")
    if args.plot is not None:
        _plot(model, task, history, future, args.plot, args.csv is None)
        print(f"plot in {args.plot}")
    return 0


def _plot(
    model: nn.Module,
    task: SeriesTask,
    history: Tensor,
    future: Forecasts,
    path: Path,
    own_series: bool,
) -> None:
    """Draws the forecasts after the series and, where the series is long enough, the same
    forecasters from the last window whose truth it holds."""
    from lstmkit.analysis.plots import forecast as plot_forecast

    n, H = len(history), task.horizon
    backtest = None
    if n - H >= max(task.lookback, task.season):
        backtest = forecasts_from(model, task, history, n - H)
    labels = {"forecast": "model", "seasonal_naive": "seasonal naive"}
    plot_forecast(
        history[:, 0],
        {labels.get(k, k): v for k, v in future.items()},
        backtest=None if backtest is None else {labels.get(k, k): v for k, v in backtest.items()},
        split=task.split if own_series else None,
        title=f"{task.target_name}: {H} steps ahead",
        path=path,
    )
