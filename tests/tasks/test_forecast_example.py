"""The fast form of examples/forecast_airpassengers.py: a short LSTM run beats the naive forecast
of the airline passengers, the baselines printed beside it are the task's, and the plot is
written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers import load_example


def baselines_by_numpy() -> dict[str, float]:
    """Held-out MASE of the naive and seasonal naive forecasts, from pmdarima's own array: 115
    training months, windows of 12 from origins 115 to 132."""
    from pmdarima.datasets import load_airpassengers

    y = np.asarray(load_airpassengers(), dtype=np.float64)
    scale = np.abs(y[12:115] - y[:103]).mean()
    origins = np.arange(115, 133)
    truth = np.stack([y[t : t + 12] for t in origins])
    naive = y[origins - 1][:, None]
    seasonal = np.stack([y[t - 12 : t] for t in origins])  # H = 12 = one season
    return {
        "naive": np.abs(truth - naive).mean() / scale,
        "seasonal naive": np.abs(truth - seasonal).mean() / scale,
    }


def test_a_short_run_beats_the_naive_forecast_and_draws_the_plot(tmp_path: Path) -> None:
    example = load_example("forecast_airpassengers")
    plot = tmp_path / "forecast.png"
    scores = example.main(example.FAST, plot)
    assert set(scores) == {"LSTM", "naive", "seasonal naive"}  # the fast form skips the ARIMA
    for name, mase in baselines_by_numpy().items():
        assert abs(scores[name]["mase"] - mase) < 1e-9
    assert scores["LSTM"]["mase"] < scores["naive"]["mase"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
