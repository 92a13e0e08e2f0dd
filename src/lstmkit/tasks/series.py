"""Forecasting a time series: from the last L values, the next H. Any column of a user's CSV
file, or a series that ships inside pmdarima or statsmodels; scored by MASE and sMAPE beside the
forecasts a practitioner compares with first: naive, seasonal naive and ARIMA."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_choice, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.tasks import _forecast
from lstmkit.tasks._series_data import (
    BUILT_IN,
    FILLS,
    built_in,
    filled,
    read_csv,
    table_column,
)
from lstmkit.tasks.base import Batch, Task

DEFAULT_SERIES = "airpassengers"


class SeriesTask(Task):
    """Forecast the next ``horizon`` values of a series from its last ``lookback`` values (and
    those of the covariate ``columns``), all ``H`` at once from the last step.

    Data: ``path=FILE.csv,column=NAME`` (a header row, one row per time step, in time order), or
    ``name=`` one of :data:`~lstmkit.tasks._series_data.BUILT_IN` (default ``airpassengers``).
    ``columns=A;B`` adds covariates as inputs: their past values, never their future ones.
    A missing value is an error unless ``fill=ffill`` or ``fill=interpolate`` says how to fill it.

    Split by time: the last ``held_out`` share of the time points (at least ``horizon``) is held
    out. A window's origin ``t`` is the first step it forecasts: inputs ``y[t-L : t]``, targets
    ``y[t : t+H]``. Training windows have every target before the split; held-out windows have
    every target after it (their inputs may reach back into the training part, which is
    observed), one per origin, in time order and never shuffled. Training batches draw training
    windows uniformly with replacement.

    A checkpoint keeps the series it was trained on (``values``, with ``scale``), so a run
    rebuilt from it reads neither the file nor the package again.

    Scaling: each column has the mean of its training part subtracted and is divided by its
    standard deviation there (population form), both kept in the checkpoint (``scale``), so a
    rebuilt task scales as the run did. A column constant over the training part is refused.
    With ``relative=true`` (the default) a window's target values, inputs and outputs alike, are
    then taken relative to its level, the last observed (scaled) value before its origin: the
    model reads how the series moved up to now and forecasts how it moves from here. A trending
    series (airline passengers) leaves the range of its training part after the split, where a
    model of absolute values has never been; relative to the level it has. ``relative=false``
    uses the scaled values as they are. The loss is the mean squared error of the scaled values.
    A batch's targets are ``(W, 1 + H)``: each window's level, then its ``H`` values relative to
    it (:meth:`truth` and :meth:`forecast` turn them back into the series' own units).

    Metrics, on the original scale over the held-out windows: ``mase``, the mean absolute error
    divided by the training part's in-sample mean absolute error of the one-step seasonal naive
    forecast with lag ``season`` (Hyndman & Koehler 2006), lower is better; ``smape`` as in the
    M4 competition, ``200/H * sum |y - y_hat| / (|y| + |y_hat|)``, in percent. The baseline is
    the seasonal naive forecast's MASE (the naive one's when ``season`` is 1); ``baselines``
    holds both metrics of the naive, seasonal naive and (``arima=true``, the default) ARIMA
    forecasts of the same windows (see :func:`~lstmkit.tasks._forecast.arima_forecasts`).
    """

    name = "series"
    citation = "Hyndman & Koehler 2006 (MASE); Makridakis et al. 2020 (M4, sMAPE)"
    readout = "last"
    metric = "mase"
    higher_is_better = False
    vocab_size = None
    source = (
        "a CSV file (path=FILE,column=NAME), or a series shipped inside pmdarima or statsmodels "
        f"(name=: {', '.join(BUILT_IN)})"
    )
    needs_data: ClassVar[bool] = True
    baseline_summary: ClassVar[str] = (
        "the seasonal naive forecast's MASE; naive, seasonal naive and ARIMA printed beside"
    )

    def __init__(
        self,
        *,
        path: str | None = None,
        column: str | None = None,
        name: str | None = None,
        columns: str | None = None,
        horizon: int = 12,
        lookback: int = 24,
        season: int | None = None,
        fill: str = "none",
        held_out: float = 0.2,
        arima: bool = True,
        relative: bool = True,
        solved_at: float | None = None,
        scale: list[list[float]] | None = None,
        values: list[list[float]] | None = None,
    ) -> None:
        check_positive_int("horizon", horizon)
        check_positive_int("lookback", lookback)
        if season is not None:
            check_positive_int("season", season)
        check_choice("fill", fill, FILLS)
        if isinstance(held_out, bool) or not isinstance(held_out, (int, float)):
            raise LstmkitTypeError(f"held_out must be a number, got {describe(held_out)}")
        if not 0.0 < held_out < 1.0:
            raise LstmkitValueError(f"held_out must be in (0, 1), got {held_out}")
        for option, flag in (("arima", arima), ("relative", relative)):
            if not isinstance(flag, bool):
                raise LstmkitTypeError(f"{option} must be true or false, got {describe(flag)}")
        self.relative = relative
        self.path, self.name_option, self.column = path, name, column
        self.columns_option, self.horizon, self.lookback = columns, horizon, lookback
        self.fill, self.held_out, self.arima, self.solved_at = fill, held_out, arima, solved_at
        self.target_name, self.covariates = self._names(path, name, column, columns)
        where = path if path is not None else f"the built-in series {self.target_name}"
        self.values, self.source = self._read(path, name, where, values)
        self.season = season if season is not None else self._default_season(name, path)
        self.input_size = self.values.shape[1]
        self.output_size = horizon
        self._split(where)
        self.mean, self.std = self._scaling(scale, where)
        self.scaled = ((self.values - self.mean) / self.std).float()  # (N, 1 + covariates)
        self.target = self.values[:, 0]  # (N,) float64, the original scale
        self.mase_scale = _forecast.mase_scale(self.target[: self.split], self.season)
        if self.mase_scale == 0:
            raise LstmkitValueError(
                f"series: {where} repeats itself exactly every {self.season} steps over its "
                "training part, so MASE has no scale; this series needs no forecaster"
            )
        self.baselines = self._baselines()
        self.published = self._baselines_text()

    @staticmethod
    def _names(
        path: str | None, name: str | None, column: str | None, columns: str | None
    ) -> tuple[str, list[str]]:
        """The target column's name and the covariates'."""
        for option, value in (("path", path), ("name", name), ("columns", columns)):
            if value is not None and not isinstance(value, str):
                raise LstmkitTypeError(f"{option} must be a str, got {describe(value)}")
        if path is not None and name is not None:
            raise LstmkitValueError("series: give path=FILE.csv or name=SERIES, not both")
        covariates = [c.strip() for c in columns.split(";")] if columns else []
        if path is None:
            if column is not None or covariates:
                raise LstmkitValueError(
                    "series: column= and columns= choose columns of a CSV file; give path=FILE.csv"
                )
            return name or DEFAULT_SERIES, []
        if column is None:
            raise LstmkitValueError(f"series: say which column of {path} to forecast: column=NAME")
        target = str(column)  # a numeric header is read back as a number
        if target in covariates or len(set(covariates)) != len(covariates):
            raise LstmkitValueError(
                f"series: columns= must name other columns than column= and each once, got "
                f"column={target!r}, columns={columns!r}"
            )
        return target, covariates

    def _read(
        self, path: str | None, name: str | None, where: str, kept: list[list[float]] | None
    ) -> tuple[Tensor, str]:
        """``(N, C)`` float64 values of the target and covariate columns, filled as ``fill``
        says, and where they came from; ``kept`` (a checkpoint's copy) is used as it is, so a
        run's series need not stay where it was read."""
        names = (self.target_name, *self.covariates)
        if kept is not None:
            try:
                values = torch.tensor(kept, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError) as error:
                raise LstmkitValueError(
                    f"series: the kept values must be rows of numbers ({error})"
                ) from None
            if values.ndim != 2 or values.shape[1] != len(names):
                raise LstmkitValueError(
                    f"series: the kept values must be one row per step with {len(names)} "
                    f"columns ({', '.join(names)}), got shape {tuple(values.shape)}"
                )
            return values, f"{where}, as the run's checkpoint kept it"
        table = read_csv(Path(path)) if path is not None else built_in(name or DEFAULT_SERIES)
        raw = [table_column(table, c, where) for c in names]
        columns = [
            filled(v, self.fill, where if path is None else f"column {c!r} of {where}")
            for v, c in zip(raw, names, strict=True)
        ]
        return torch.stack(columns, 1), table.source

    @staticmethod
    def _default_season(name: str | None, path: str | None) -> int:
        if path is not None:
            return 1
        return BUILT_IN[name or DEFAULT_SERIES].season

    def _split(self, where: str) -> None:
        """The time points before ``self.split`` train; the windows' origins on either side."""
        n, H, L, m = len(self.values), self.horizon, self.lookback, self.season
        held = max(H, math.ceil(self.held_out * n))
        self.split = n - held
        if self.split - H + 1 <= L or self.split <= m:  # no training window, or no MASE scale
            need = max(L + H, m + 1) + held
            raise LstmkitValueError(
                f"series: {where} has {n} rows, too few for lookback={L} and horizon={H} with "
                f"{held} held out (season {m}): it needs at least {need}; use a longer series or "
                "a smaller lookback, horizon or held_out"
            )
        self.train_origins = torch.arange(L, self.split - H + 1)  # every target before the split
        self.held_out_origins = torch.arange(self.split, n - H + 1)  # every target after it

    def _scaling(self, scale: list[list[float]] | None, where: str) -> tuple[Tensor, Tensor]:
        """``(C,)`` mean and standard deviation of each column's training part, or those a
        checkpoint kept."""
        names = (self.target_name, *self.covariates)
        if scale is not None:
            kept = torch.tensor(scale, dtype=torch.float64)
            if kept.shape != (2, len(names)):
                raise LstmkitValueError(
                    f"scale must be [means, stds] with one of each per column ({len(names)}), "
                    f"got shape {tuple(kept.shape)}"
                )
            return kept[0], kept[1]
        train = self.values[: self.split]
        mean, std = train.mean(0), train.std(0, correction=0)
        for k in (std == 0).nonzero().flatten().tolist():
            raise LstmkitValueError(
                f"series: column {names[k]!r} of {where} is constant ({float(mean[k]):g}) over "
                f"its first {self.split} rows (the training part), so it cannot be scaled or "
                "forecast"
            )
        return mean, std

    def _baselines(self) -> dict[str, dict[str, float]]:
        """Held-out MASE and sMAPE of each baseline forecast, by name."""
        y, origins, H = self.target, self.held_out_origins, self.horizon
        forecasts = {
            "naive": _forecast.naive(y, origins, H),
            "seasonal naive": _forecast.seasonal_naive(y, origins, H, self.season),
        }
        self.arima_order = ""
        if self.arima:
            fitted = _forecast.arima_forecasts(y, self.split, origins, H, self.season)
            forecasts["arima"] = fitted["forecasts"]
            self.arima_order = _forecast.order_text(fitted["order"])
        truth = _forecast.windows(y, origins, H)
        return {
            key: {
                "mase": float(_forecast.mase(truth, f, self.mase_scale).mean()),
                "smape": float(_forecast.smape(truth, f).mean()),
            }
            for key, f in forecasts.items()
        }

    def _baselines_text(self) -> str:
        names = {"arima": self.arima_order or "ARIMA"}
        parts = [
            f"{names.get(k, k)} {v['mase']:.3f} / {v['smape']:.2f} %"
            for k, v in self.baselines.items()
        ]
        count = len(self.held_out_origins)
        return f"held-out MASE / sMAPE over {count} windows: " + ", ".join(parts)

    @property
    def baseline(self) -> float:
        return self.baselines["seasonal naive" if self.season > 1 else "naive"]["mase"]

    @property
    def baseline_note(self) -> str:
        if self.season > 1:
            return f"seasonal naive forecast (the value {self.season} steps back), MASE"
        return "naive forecast (the last value), MASE"

    def describe(self) -> str:
        return f"{self.name} ({self.citation}); {self.published}"

    def inputs(self, origins: Tensor) -> Tensor:
        """``(W, L, C)`` float32: the scaled values of the ``L`` steps before each origin (the
        target's relative to the window's level)."""
        return self._relative_inputs(self.scaled, origins)

    def targets(self, origins: Tensor) -> Tensor:
        """``(W, 1 + H)`` float32: each window's scaled level, then its scaled target values
        from the origin on, relative to the level."""
        level = self._level(self.scaled, origins)
        ahead = _forecast.windows(self.scaled[:, 0], origins, self.horizon) - level[:, None]
        return torch.cat([level[:, None], ahead], 1)

    def _level(self, scaled: Tensor, origins: Tensor) -> Tensor:
        """``(W,)``: the scaled target value just before each origin, or 0 without ``relative``."""
        if not self.relative:
            return torch.zeros(len(origins), dtype=scaled.dtype)
        return scaled[origins - 1, 0]

    def _relative_inputs(self, scaled: Tensor, origins: Tensor) -> Tensor:
        x = scaled[origins[:, None] + torch.arange(-self.lookback, 0)].clone()  # (W, L, C)
        x[:, :, 0] -= self._level(scaled, origins)[:, None]
        return x

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        pick = torch.randint(0, len(self.train_origins), (batch_size,), generator=generator)
        origins = self.train_origins[pick]
        return Batch(self.inputs(origins), self.targets(origins))

    def eval_batches(self, batch_size: int, count: int) -> list[Batch]:
        """The held-out windows in time order: ``count`` batches at most."""
        origins = self.held_out_origins[: batch_size * count]
        return [
            Batch(self.inputs(part), self.targets(part))
            for part in torch.split(origins, batch_size)
        ]

    def history(self, path: str | None = None) -> Tensor:
        """``(N, C)`` float64: the task's own series, or the same columns of another CSV file
        (filled as the task fills), at least ``lookback`` rows and one season long."""
        if path is None:
            return self.values
        table = read_csv(Path(path))
        names = (self.target_name, *self.covariates)
        columns = []
        for c in names:
            columns.append(
                filled(table_column(table, c, path), self.fill, f"column {c!r} of {path}")
            )
        values = torch.stack(columns, 1)
        need = max(self.lookback, self.season)
        if len(values) < need:
            raise LstmkitValueError(
                f"series: {path} has {len(values)} rows; forecasting needs at least {need} "
                f"(lookback {self.lookback}, season {self.season})"
            )
        return values

    def window_inputs(self, values: Tensor, origins: Tensor) -> Tensor:
        """``(W, L, C)`` float32: the last ``L`` rows of ``values`` ``(N, C)`` before each
        origin, scaled as the training part was (relative to the level as in training)."""
        return self._relative_inputs(((values - self.mean) / self.std).float(), origins)

    def window_levels(self, values: Tensor, origins: Tensor) -> Tensor:
        """``(W,)`` float32: the level each window's forecast is relative to (0 without
        ``relative``), scaled."""
        return self._level(((values - self.mean) / self.std).float(), origins)

    def unscale(self, scaled: Tensor, level: Tensor | None = None) -> Tensor:
        """Target values on the original scale, float64, from scaled ones ``(W, H)`` relative to
        ``level`` ``(W,)`` (absolute when None)."""
        if level is not None:
            scaled = scaled + level[:, None]
        return scaled.detach().double().cpu() * self.std[0] + self.mean[0]

    def truth(self, targets: Tensor) -> Tensor:
        """``(W, H)`` float64: a batch's targets in the series' own units."""
        return self.unscale(targets[:, 1:], targets[:, 0])

    def forecast(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """``(W, H)`` float64: a model's outputs for a batch in the series' own units."""
        return self.unscale(outputs, targets[:, 0])

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.mse_loss(outputs, batch.targets[:, 1:])

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        truth, forecast = self.truth(batch.targets), self.forecast(outputs, batch.targets)
        return {
            "mase": float(_forecast.mase(truth, forecast, self.mase_scale).mean()),
            "smape": float(_forecast.smape(truth, forecast).mean()),
        }

    def solved(self, metrics: dict[str, float]) -> bool:
        return self.solved_at is not None and metrics["mase"] <= self.solved_at

    def options(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "column": self.column,
            "name": self.name_option,
            "columns": self.columns_option,
            "horizon": self.horizon,
            "lookback": self.lookback,
            "season": self.season,
            "fill": self.fill,
            "held_out": self.held_out,
            "arima": self.arima,
            "relative": self.relative,
            "solved_at": self.solved_at,
        }

    def state(self) -> dict[str, Any]:
        """The training part's scaling and the series itself (a few thousand numbers at most
        for the usual series), so a checkpoint forecasts without the file it was trained on."""
        return {"scale": [self.mean.tolist(), self.std.tolist()], "values": self.values.tolist()}
