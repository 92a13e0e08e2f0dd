"""Forecast accuracy and the forecasts a model must beat: MASE and sMAPE, the naive and seasonal
naive forecasts, and an ARIMA chosen by pmdarima's ``auto_arima``.

Every function works on windows: a window's origin ``t`` is the first step it forecasts, so its
history is ``y[:t]`` and its truth ``y[t : t + H]``.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit.tasks._data import cached, package_version, require

MAX_SEASONAL_ARIMA = 24
"""Longer seasons (half-hourly data's 48, weekly data's 52) make a seasonal ARIMA take minutes
to fit; the ARIMA baseline of such a series is non-seasonal, and says so."""

ARIMA_ITERATIONS = 20
"""Optimiser iterations per candidate model: a seasonal search then takes seconds, not minutes
(wineind: about 10 s instead of 90 s on 2 cores)."""

ARIMA_FIT_POINTS = 600
"""The ARIMA is fitted on at most this many of the last training points, to stay in seconds."""


def mase(truth: Tensor, forecast: Tensor, scale: float) -> Tensor:
    """``(W,)``: each window's mean absolute error over its ``H`` steps divided by ``scale``, the
    in-sample mean absolute error of the seasonal naive forecast (Hyndman & Koehler 2006).
    ``truth`` and ``forecast`` are ``(W, H)``."""
    return (truth - forecast).abs().mean(-1) / scale


def smape(truth: Tensor, forecast: Tensor) -> Tensor:
    """``(W,)``: each window's symmetric MAPE as the M4 competition defines it, in percent:
    ``200 / H * sum_h |y - y_hat| / (|y| + |y_hat|)``; a step where both are 0 counts 0."""
    denominator = truth.abs() + forecast.abs()
    ratio = (truth - forecast).abs() / torch.where(denominator > 0, denominator, 1.0)
    return 200.0 * ratio.mean(-1)


def mase_scale(train: Tensor, season: int) -> float:
    """The mean absolute error of the seasonal naive forecast one step ahead over the training
    part: ``mean_t |y_t - y_{t-m}|`` for ``t = m .. n-1``."""
    return float((train[season:] - train[:-season]).abs().mean())


def windows(values: Tensor, origins: Tensor, horizon: int) -> Tensor:
    """``(W, H)``: ``values[t : t + H]`` for each origin ``t``."""
    return values[origins[:, None] + torch.arange(horizon)]


def naive(values: Tensor, origins: Tensor, horizon: int) -> Tensor:
    """``(W, H)``: the last value seen, ``y[t - 1]``, at every step."""
    return values[origins - 1][:, None].expand(-1, horizon)


def seasonal_naive(values: Tensor, origins: Tensor, horizon: int, season: int) -> Tensor:
    """``(W, H)``: step ``h`` (0-based) forecast by the value of the same season in the last
    season seen, ``y[t + h - m * (h // m + 1)]`` (Hyndman & Athanasopoulos, FPP 5.2)."""
    h = torch.arange(horizon)
    return values[origins[:, None] + h - season * (h // season + 1)]


def arima_forecasts(
    values: Tensor, split: int, origins: Tensor, horizon: int, season: int
) -> dict[str, Tensor]:
    """An ARIMA's ``H``-step forecasts from each origin, and from the end of the series.

    ``pmdarima.auto_arima`` chooses and fits the model once, on the training part ``y[:split]``
    (at most its last :data:`ARIMA_FIT_POINTS` points; seasonal with period ``season`` when
    ``1 < season <= 24``). Its parameters are then kept and its state is run through the later
    observations (statsmodels' ``apply(refit=False)``: pmdarima's ``update`` without more
    iterations), so each forecast sees the values before its origin and nothing after. Kept in the
    cache under a hash of the values, so the same series is fitted once.

    Returns ``forecasts`` ``(W, H)``, ``future`` ``(H,)`` (after the last value) and ``order``
    ``(7,)`` int64, ``(p, d, q, P, D, Q, m)``.
    """
    digest = hashlib.sha256(values.numpy().tobytes()).hexdigest()
    key = {
        "values": digest,
        "split": split,
        "origins": [int(origins[0]), len(origins)],
        "horizon": horizon,
        "season": season,
        "pmdarima": package_version("pmdarima", "series"),
        "statsmodels": package_version("statsmodels", "series"),
    }

    def build() -> dict[str, Tensor]:
        return arima_from(values[:split], values, origins, horizon, season)

    return cached("series-arima", key, build)


def fit_arima(train: Tensor, season: int) -> Any:
    """``pmdarima.auto_arima`` on (the end of) ``train``: stepwise search over orders up to
    ``(2, d, 2)(1, D, 1)``, seasonal when ``1 < season <= 24``, at most
    :data:`ARIMA_ITERATIONS` optimiser iterations per candidate; deterministic. Its warnings
    (convergence, ...) are not lstmkit's."""
    pm = require("pmdarima", "series")
    seasonal = 1 < season <= MAX_SEASONAL_ARIMA
    y = train[-ARIMA_FIT_POINTS:].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm.auto_arima(
            y,
            seasonal=seasonal,
            m=season if seasonal else 1,
            max_p=2,
            max_q=2,
            max_P=1,
            max_Q=1,
            maxiter=ARIMA_ITERATIONS,
            stepwise=True,
            suppress_warnings=True,
            error_action="ignore",
        )


def arima_from(
    train: Tensor, history: Tensor, origins: Tensor, horizon: int, season: int
) -> dict[str, Tensor]:
    """An ARIMA fitted on ``train`` (as :func:`arima_forecasts` fits it) and run through
    ``history`` without refitting: its ``forecasts`` ``(W, H)`` from each origin and its
    ``future`` ``(H,)`` after the end of ``history``, and its ``order`` ``(7,)`` int64,
    ``(p, d, q, P, D, Q, m)``. Not cached."""
    model = fit_arima(train, season)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.arima_res_.apply(history.numpy(), refit=False)
        rows = [
            result.get_prediction(start=t, end=t + horizon - 1, dynamic=True).predicted_mean
            for t in origins.tolist()
        ]
        future = result.forecast(horizon)
    return {
        "forecasts": torch.from_numpy(np.asarray(rows, dtype=np.float64).reshape(-1, horizon)),
        "future": torch.from_numpy(np.asarray(future, dtype=np.float64)),
        "order": torch.tensor([*model.order, *model.seasonal_order], dtype=torch.int64),
    }


def order_text(order: Tensor) -> str:
    """``ARIMA(p,d,q)`` or ``ARIMA(p,d,q)(P,D,Q)[m]``."""
    p, d, q, P, D, Q, m = order.tolist()
    seasonal = f"({P},{D},{Q})[{m}]" if m > 1 else ""
    return f"ARIMA({p},{d},{q}){seasonal}"
