"""Forecasting a series: the built-in series load offline, the split is by time, the scaling is
fitted on the training part only, MASE, sMAPE and the naive and seasonal naive forecasts match a
hand calculation, the ARIMA never sees past a window's origin, every bad CSV is refused with its
reason, and a short run beats the naive forecast."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.tasks import SeriesTask, _forecast, make_task
from lstmkit.tasks._series_data import BUILT_IN
from lstmkit.train import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, Trainer

TINY = [2, 4, 3, 6, 5, 7, 6, 9, 8, 10]
"""Ten points; with season 2, horizon 2 and 20 % held out, the last two are the one held-out
window and the first eight the training part."""


def write_csv(path: Path, header: str, rows: list[str]) -> str:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def tiny(tmp_path: Path, values: list[float] = TINY, **options: object) -> SeriesTask:
    path = write_csv(tmp_path / "tiny.csv", "t,y", [f"{t},{v}" for t, v in enumerate(values)])
    settings = {"horizon": 2, "lookback": 2, "season": 2, "arima": False, **options}
    return SeriesTask(path=path, column="y", **settings)  # type: ignore[arg-type]


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the series task tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_every_built_in_series_loads_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))  # an empty cache: read the packages
    _no_network(monkeypatch)
    sizes = {}
    for name in BUILT_IN:
        fill = "interpolate" if name == "co2" else "none"  # co2 has gaps: filled only when asked
        task = SeriesTask(name=name, fill=fill, arima=False, horizon=4, lookback=8)
        sizes[name] = len(task.target)
        assert not torch.isnan(task.target).any()
        assert task.season == BUILT_IN[name].season
    assert sizes["airpassengers"] == 144
    assert sizes["taylor"] == 4032
    assert sizes["elnino"] == 61 * 12
    assert sizes["sunspots"] == 309
    # Box & Jenkins's series G starts 112, 118, 132 and ends 390, 432 (thousands of passengers)
    air = SeriesTask(name="airpassengers", arima=False)
    assert air.target[:3].tolist() == [112.0, 118.0, 132.0]
    assert air.target[-2:].tolist() == [390.0, 432.0]
    with pytest.raises(LstmkitError, match=r"59 missing values.*fill=ffill"):
        SeriesTask(name="co2", arima=False)


def test_the_split_is_by_time_and_held_out_targets_come_after_every_training_target() -> None:
    task = SeriesTask(name="airpassengers", horizon=12, lookback=24, arima=False)
    n = 144
    assert task.split == n - math.ceil(0.2 * n) == 115
    last_train_target = int(task.train_origins.max()) + task.horizon - 1
    first_held_target = int(task.held_out_origins.min())
    assert last_train_target < task.split <= first_held_target
    assert task.held_out_origins.tolist() == list(range(115, n - 12 + 1))
    assert task.train_origins.tolist() == list(range(24, 115 - 12 + 1))
    # every drawn window is a training window: its targets are the series' values there
    batch = task.batch(256, torch.Generator().manual_seed(5))
    y = task.truth(batch.targets)
    found = {
        t
        for row in y
        for t in task.train_origins.tolist()
        if torch.allclose(row, task.target[t : t + 12], atol=1e-3)
    }
    assert len(found) > 20  # many different windows drawn ...
    assert max(found) + 12 <= task.split  # ... and none reaches into the held-out part
    # evaluation reads the held-out windows in time order, the last one ending with the series
    batches = task.eval_batches(4, 100)
    truth = torch.cat([task.truth(b.targets) for b in batches])
    assert len(truth) == len(task.held_out_origins) == 18
    assert torch.allclose(truth[0], task.target[115:127], atol=1e-3)
    assert torch.allclose(truth[-1], task.target[-12:], atol=1e-3)
    inputs = torch.cat([b.inputs for b in batches])
    levels = torch.cat([b.targets[:, 0] for b in batches])
    assert torch.allclose(
        task.unscale(inputs[:1, :, 0], levels[:1])[0], task.target[91:115], atol=1e-3
    )
    # relative to the level: the last value read is the level itself, 0 relative to it
    assert inputs[:, -1, 0].abs().max() < 1e-6
    assert torch.allclose(task.unscale(levels[:, None]).flatten(), task.target[114:132], atol=1e-3)


def test_scaling_is_fitted_on_the_training_part_only(tmp_path: Path) -> None:
    task = tiny(tmp_path)
    assert task.split == 8
    # the first eight points 2 4 3 6 5 7 6 9: mean 42/8, squared deviations sum to 35.5
    assert task.mean.tolist() == [5.25]
    assert task.std.tolist() == pytest.approx([math.sqrt(35.5 / 8)])
    other = tiny(tmp_path, [*TINY[:8], 1000, -1000])  # other held-out values, same scaling
    assert other.mean.tolist() == task.mean.tolist()
    assert other.std.tolist() == task.std.tolist()
    assert task.scaled[8, 0].item() == pytest.approx((8 - 5.25) / math.sqrt(35.5 / 8), rel=1e-6)


def test_mase_smape_and_the_baselines_by_hand(tmp_path: Path) -> None:
    task = tiny(tmp_path)
    # MASE's scale: |y_t - y_{t-2}| over the training part: 1 2 2 1 1 2, mean 1.5
    assert task.mase_scale == 1.5
    assert task.held_out_origins.tolist() == [8]  # one window, truth 8 10
    # naive: 9 9, errors 1 1; seasonal naive (lag 2): y[6], y[7] = 6 9, errors 2 1
    assert task.baselines["naive"]["mase"] == pytest.approx(1.0 / 1.5)
    assert task.baselines["naive"]["smape"] == pytest.approx(100 * (1 / 17 + 1 / 19))
    assert task.baselines["seasonal naive"]["mase"] == pytest.approx(1.5 / 1.5)
    assert task.baselines["seasonal naive"]["smape"] == pytest.approx(100 * (2 / 14 + 1 / 19))
    assert task.baseline == task.baselines["seasonal naive"]["mase"]
    assert "seasonal naive" in task.baseline_note
    # a forecast of 7.5 11: errors 0.5 1, MAE 0.75; the model's outputs are relative to the
    # level, the last value before the window (9), in the scaled units
    batch = task.eval_batches(8, 1)[0]
    outputs = ((torch.tensor([[7.5, 11.0]], dtype=torch.float64) - 9.0) / task.std).float()
    metrics = task.metrics(outputs, batch)
    assert metrics["mase"] == pytest.approx(0.75 / 1.5, rel=1e-5)
    assert metrics["smape"] == pytest.approx(100 * (0.5 / 15.5 + 1 / 21), rel=1e-5)


def test_absolute_windows_score_the_same_forecast_the_same(tmp_path: Path) -> None:
    task = tiny(tmp_path, relative=False)
    batch = task.eval_batches(8, 1)[0]
    assert batch.targets[0, 0].item() == 0.0  # no level
    outputs = ((torch.tensor([[7.5, 11.0]], dtype=torch.float64) - 5.25) / task.std).float()
    assert task.metrics(outputs, batch)["mase"] == pytest.approx(0.75 / 1.5, rel=1e-5)
    scaled_history = (torch.tensor(TINY[:8], dtype=torch.float64) - 5.25) / task.std
    assert torch.allclose(batch.inputs[0, :, 0].double(), scaled_history[-2:], atol=1e-6)


def test_seasonal_naive_repeats_the_last_season_past_one_season() -> None:
    y = torch.tensor(TINY, dtype=torch.float64)
    origins = torch.tensor([6, 7])
    # from origin 6 the last season seen is y[4], y[5] = 5 7; from 7 it is y[5], y[6] = 7 6
    assert _forecast.seasonal_naive(y, origins, 5, 2).tolist() == [
        [5, 7, 5, 7, 5],
        [7, 6, 7, 6, 7],
    ]
    assert _forecast.naive(y, origins, 3).tolist() == [[7, 7, 7], [6, 6, 6]]
    truth = torch.tensor([[1.0, 0.0, -2.0]])
    forecast = torch.tensor([[3.0, 0.0, 2.0]])
    # |1-3|/(1+3) + 0 (both zero) + |-2-2|/(2+2), times 200/3
    assert _forecast.smape(truth, forecast).tolist() == pytest.approx([200 / 3 * (0.5 + 0 + 1)])


def test_arima_is_fitted_on_the_training_part_and_never_sees_past_an_origin() -> None:
    task = SeriesTask(name="lynx", horizon=4, lookback=10)  # season 1: non-seasonal, ~1 s
    assert task.arima_order.startswith("ARIMA(")
    arima = task.baselines["arima"]
    assert math.isfinite(arima["mase"])
    assert math.isfinite(arima["smape"])
    assert arima["mase"] < task.baselines["naive"]["mase"]  # lynx's cycle: ARIMA knows it
    assert "ARIMA(" in task.published
    # the same series with other values after the split: the first window's forecast is the
    # same (nothing after its origin is seen); later windows see the changed values
    y, origins = task.target, task.held_out_origins
    changed = y.clone()
    changed[task.split + 2 :] *= 3.0
    first = _forecast.arima_forecasts(y, task.split, origins, 4, 1)["forecasts"]
    second = _forecast.arima_forecasts(changed, task.split, origins, 4, 1)["forecasts"]
    assert torch.allclose(first[:3], second[:3])
    assert not torch.allclose(first[3:], second[3:])


def test_missing_values_are_refused_unless_fill_says_how(tmp_path: Path) -> None:
    values = [str(v) for v in TINY]
    values[3] = ""  # 6
    values[5] = "NA"  # 7
    path = write_csv(tmp_path / "gaps.csv", "y", values)
    with pytest.raises(LstmkitError, match=r"2 missing values.*row 4.*fill=ffill.*interpolate"):
        SeriesTask(path=path, column="y", horizon=2, lookback=2, arima=False)
    ffill = SeriesTask(path=path, column="y", horizon=2, lookback=2, fill="ffill", arima=False)
    assert ffill.target.tolist() == [2, 4, 3, 3, 5, 5, 6, 9, 8, 10]
    line = SeriesTask(path=path, column="y", horizon=2, lookback=2, fill="interpolate", arima=False)
    assert line.target.tolist() == [2, 4, 3, 4, 5, 5.5, 6, 9, 8, 10]
    first = write_csv(tmp_path / "first.csv", "y", ["", *values[1:]])
    with pytest.raises(LstmkitError, match=r"first value.*missing.*interpolate"):
        SeriesTask(path=first, column="y", horizon=2, lookback=2, fill="ffill", arima=False)


@pytest.mark.parametrize(
    ("header", "rows", "options", "message"),
    [
        ("t,y", ["1,2", "2,x", "3,4"], {"column": "y"}, "'y'.*not numeric: line 3 holds 'x'"),
        ("t,y", ["1,2", "2,3", "3,4"], {"column": "z"}, "no column 'z'.*'t', 'y'"),
        ("t,y", [f"{t},{t}" for t in range(5)], {"column": "y"}, "5 rows, too few.*at least"),
        ("t,y", [f"{t},{5 if t < 8 else t}" for t in range(10)], {"column": "y"}, "constant"),
        ("t,y", ["1,2", "2"], {"column": "y"}, "line 3.*1 fields.*header has 2"),
        ("t,y", ["1,2"], {}, "which column.*column=NAME"),
        ("t,y,w", [f"{t},{t},{t % 3}" for t in range(10)], {"column": "y", "columns": "y"},
         "other columns"),
    ],
)  # fmt: skip
def test_a_bad_csv_is_refused_with_its_reason(
    tmp_path: Path, header: str, rows: list[str], options: dict[str, object], message: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", header, rows)
    settings = {"horizon": 2, "lookback": 2, "season": 2, "arima": False, **options}
    with pytest.raises(LstmkitError, match=message):
        make_task("series", path=path, **settings)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "/nonexistent/series.csv", "column": "y"}, "no CSV file at /nonexistent"),
        ({"name": "nope"}, "unknown built-in series 'nope'.*airpassengers"),
        ({"name": "lynx", "column": "y"}, "give path="),
        ({"name": "lynx", "horizon": 0}, "horizon"),
        ({"name": "lynx", "fill": "mean"}, "fill"),
        ({"name": "lynx", "held_out": 1.5}, "held_out"),
        ({"name": "lynx", "lookback": 100}, "114 rows, too few"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(LstmkitError, match=message):
        make_task("series", arima=False, **options)


def test_covariates_are_inputs_scaled_on_their_own(tmp_path: Path) -> None:
    rows = [f"{t},{t * 2 % 7},{10 + t % 3}" for t in range(30)]
    path = write_csv(tmp_path / "two.csv", "t,y,w", rows)
    task = SeriesTask(path=path, column="y", columns="w", horizon=3, lookback=4, arima=False)
    assert task.input_size == 2
    train_w = torch.tensor([10 + t % 3 for t in range(task.split)], dtype=torch.float64)
    assert task.mean[1].item() == pytest.approx(train_w.mean().item())
    batch = task.eval_batches(8, 1)[0]
    t = int(task.held_out_origins[0])
    w = batch.inputs[0, :, 1].double() * task.std[1] + task.mean[1]
    assert w.tolist() == pytest.approx([10 + s % 3 for s in range(t - 4, t)], rel=1e-6)


def test_a_short_run_beats_the_naive_forecast(tmp_path: Path) -> None:
    steps = torch.arange(240, dtype=torch.float64)
    y = 20 + 5 * torch.sin(2 * math.pi * steps / 12) + 0.3 * torch.randn(240, dtype=torch.float64)
    path = write_csv(tmp_path / "seasonal.csv", "y", [f"{v:.4f}" for v in y.tolist()])
    options = {"path": path, "column": "y", "horizon": 6, "lookback": 12, "arima": False}
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=24),
        task=TaskConfig("series", options),
        optim=OptimConfig(lr=1e-2),
        run=RunConfig(steps=150, batch_size=32, eval_every=150, eval_size=1000),
    )
    result = Trainer(config, progress=False).fit()
    task = make_task("series", **options)
    assert isinstance(task, SeriesTask)
    assert result.baseline == task.baselines["naive"]["mase"]  # season 1 for a CSV by default
    assert result.metrics["mase"] < 0.5 * task.baselines["naive"]["mase"], result
