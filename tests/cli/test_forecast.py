"""``lstmkit forecast``: a trained series model forecasts the steps after its own series or another
CSV; the model's column is what running the checkpoint's model by hand gives, the baselines'
are the values one step and one season back, the scaling is the run's, the plot is written, and
a checkpoint of another task is refused in one line."""

from __future__ import annotations

import contextlib
import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.train.trainer import load_run

HORIZON, LOOKBACK, SEASON = 3, 6, 4


def run(*args: str) -> tuple[int, str, str]:
    """``lstmkit ARGS`` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def seasonal(n: int, level: float) -> list[float]:
    return [round(level + 3 * math.sin(2 * math.pi * t / SEASON) + 0.1 * t, 3) for t in range(n)]


def write_series(path: Path, values: list[float]) -> Path:
    path.write_text("y\n" + "\n".join(str(v) for v in values) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("forecast")


@pytest.fixture(scope="module")
def checkpoint(folder: Path) -> Path:
    data = write_series(folder / "train.csv", seasonal(80, 10.0))
    task = (
        f"series:path={data},column=y,horizon={HORIZON},lookback={LOOKBACK},season={SEASON},"
        "arima=false"
    )
    args = ["--task", task, "--hidden-size", "8", "--steps", "20", "--no-progress"]
    status, _, err = run("train", *args, "--out", str(folder / "run"))
    assert status == 0, err
    return folder / "run" / "checkpoint.pt"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def by_hand(checkpoint: Path, values: list[float]) -> np.ndarray:
    """The model's forecast after ``values``: its last LOOKBACK values scaled with the run's
    scale and taken relative to the last of them (the level), through the model, and back."""
    model, task = load_run(checkpoint)
    mean, std = task.state()["scale"][0][0], task.state()["scale"][1][0]
    window = (np.array(values[-LOOKBACK:]) - mean) / std
    level = window[-1]
    inputs = torch.tensor(window - level, dtype=torch.float32).view(1, LOOKBACK, 1)
    with torch.no_grad():
        scaled = model(inputs, None)[0].double().numpy()
    return (scaled + level) * std + mean


def test_forecasts_after_another_csv_with_the_runs_scaling(checkpoint: Path, folder: Path) -> None:
    values = seasonal(30, 14.0)  # another level: the run's scaling, not this file's, applies
    other = write_series(folder / "other.csv", values)
    out = folder / "other_forecast.csv"
    status, stdout, err = run("forecast", str(checkpoint), "--csv", str(other), "-o", str(out))
    assert status == 0, err
    assert "after row 30" in stdout
    rows = read_rows(out)
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"step", "forecast", "naive", "seasonal_naive"}  # the run had no ARIMA
    assert [float(r["naive"]) for r in rows] == [values[-1]] * HORIZON
    # the same season in the last season seen: y[30 + h - 4] for h = 0, 1, 2
    assert [float(r["seasonal_naive"]) for r in rows] == [values[26], values[27], values[28]]
    forecast = np.array([float(r["forecast"]) for r in rows])
    np.testing.assert_allclose(forecast, by_hand(checkpoint, values), rtol=1e-5)


def test_forecasts_after_the_runs_own_series_and_plots(checkpoint: Path, folder: Path) -> None:
    out, plot = folder / "own.csv", folder / "own.png"
    status, stdout, err = run("forecast", str(checkpoint), "-o", str(out), "--plot", str(plot))
    assert status == 0, err
    values = seasonal(80, 10.0)
    rows = read_rows(out)
    forecast = np.array([float(r["forecast"]) for r in rows])
    np.testing.assert_allclose(forecast, by_hand(checkpoint, values), rtol=1e-5)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot in {plot}" in stdout


def test_a_checkpoint_of_another_task_is_refused(folder: Path) -> None:
    args = ["--task", "gap:gap=3", "--hidden-size", "4", "--steps", "2", "--no-progress"]
    status, _, err = run("train", *args, "--out", str(folder / "gap"))
    assert status == 0, err
    status, _, err = run("forecast", str(folder / "gap" / "checkpoint.pt"), "-o", "x.csv")
    assert status == 2
    assert "needs a checkpoint of the series task" in err
    assert "gap run" in err


def test_a_csv_without_the_runs_column_is_refused(checkpoint: Path, folder: Path) -> None:
    other = folder / "wrong.csv"
    other.write_text("z\n1\n2\n3\n4\n5\n6\n7\n", encoding="utf-8")
    status, _, err = run("forecast", str(checkpoint), "--csv", str(other), "-o", "x.csv")
    assert status == 2
    assert "no column 'y'" in err
    short = write_series(folder / "short.csv", [1.0, 2.0, 3.0])
    status, _, err = run("forecast", str(checkpoint), "--csv", str(short), "-o", "x.csv")
    assert status == 2
    assert "3 rows; forecasting needs at least 6" in err


def test_the_checkpoint_keeps_its_series_so_the_file_may_go(tmp_path: Path) -> None:
    values = seasonal(40, 20.0)
    data = write_series(tmp_path / "gone.csv", values)
    task = f"series:path={data},column=y,horizon={HORIZON},lookback={LOOKBACK},arima=false"
    args = ["--task", task, "--hidden-size", "4", "--steps", "5", "--no-progress"]
    status, _, err = run("train", *args, "--out", str(tmp_path / "run"))
    assert status == 0, err
    data.unlink()
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    _, rebuilt = load_run(checkpoint)
    assert rebuilt.source == f"{data}, as the run's checkpoint kept it"
    out = tmp_path / "f.csv"
    status, stdout, err = run("forecast", str(checkpoint), "-o", str(out))
    assert status == 0, err
    assert "after row 40" in stdout
    forecast = np.array([float(r["forecast"]) for r in read_rows(out)])
    np.testing.assert_allclose(forecast, by_hand(checkpoint, values), rtol=1e-5)
    assert [float(r["naive"]) for r in read_rows(out)] == [values[-1]] * HORIZON
