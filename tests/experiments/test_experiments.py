"""The gap and compare experiments, end to end with tiny budgets."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from lstmkit.experiments import (
    CompareExperiment,
    GapExperiment,
    Interrupted,
    run_compare_experiment,
    run_gap_experiment,
)

TINY_GAP = GapExperiment(
    cells=("rnn", "lstm:chrono=10"),
    gaps=(2, 4),
    seeds=2,
    steps=30,
    hidden_size=8,
    batch_size=16,
    eval_every=10,
)
PNG = b"\x89PNG\r\n\x1a\n"


def test_gap_experiment_writes_table_json_and_plot(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_gap_experiment(TINY_GAP, tmp_path, progress=False, report=lines.append)
    assert len(lines) == 8  # 2 cells x 2 gaps x 2 seeds
    assert len(summary["runs"]) == 8
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["chance"] == 0.125
    rows = {(r["cell"], r["gap"]): r for r in saved["table"]}
    assert set(rows) == {(c, g) for c in TINY_GAP.cells for g in TINY_GAP.gaps}
    for (cell, gap), row in rows.items():
        runs = [r for r in saved["runs"] if r["cell"] == cell and r["gap"] == gap]
        assert row["accuracy"] == pytest.approx(sum(r["metrics"]["accuracy"] for r in runs) / 2)
        assert row["solved"] == sum(r["solved"] for r in runs)
    table = (tmp_path / "results.md").read_text()
    assert "| lstm:chrono=10 | chrono, T_max=10 |" in table
    assert "| rnn | - |" in table
    assert (tmp_path / "gap.png").read_bytes().startswith(PNG)


def test_gap_experiment_resumes_instead_of_redoing(tmp_path: Path) -> None:
    first = run_gap_experiment(TINY_GAP, tmp_path, progress=False, report=lambda _: None)
    with pytest.raises(FileExistsError, match="pass --resume"):
        run_gap_experiment(TINY_GAP, tmp_path, progress=False, report=lambda _: None)
    lines: list[str] = []
    again = run_gap_experiment(TINY_GAP, tmp_path, resume=True, progress=False, report=lines.append)
    assert lines == []  # nothing was trained again
    assert again["table"] == first["table"]


def test_ctrl_c_keeps_finished_runs_and_resume_finishes(tmp_path: Path) -> None:
    long = GapExperiment(
        cells=("rnn",), gaps=(3, 30), seeds=1, steps=3000, hidden_size=8, batch_size=16
    )
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(Interrupted, match="rerun with --resume"):
            run_gap_experiment(long, tmp_path, progress=False, report=lambda _: None)
    finally:
        timer.cancel()
    folders = sorted((tmp_path / "runs").iterdir())
    unfinished = [f for f in folders if not (f / "result.json").exists()]
    assert len(unfinished) == 1
    assert (unfinished[0] / "checkpoint.pt").is_file()  # the stopped run kept its progress
    # a resumed grid may lower or raise the step budget; nothing else may change
    shorter = GapExperiment(
        cells=("rnn",), gaps=(3, 30), seeds=1, steps=400, hidden_size=8, batch_size=16
    )
    summary = run_gap_experiment(
        shorter, tmp_path, resume=True, progress=False, report=lambda _: None
    )
    assert len(summary["runs"]) == 2
    assert all((f / "result.json").exists() for f in folders)


def test_compare_experiment(tmp_path: Path) -> None:
    experiment = CompareExperiment(
        task="adding:length=12",
        variants=("vanilla", "NFG", "CIFG"),
        seeds=2,
        steps=15,
        hidden_size=8,
        batch_size=16,
    )
    summary = run_compare_experiment(experiment, tmp_path, progress=False, report=lambda _: None)
    assert [r["variant"] for r in summary["table"]] == ["vanilla", "NFG", "CIFG"]
    for row in summary["table"]:
        assert len(row["values"]) == 2
        assert row["min"] <= row["mean"] <= row["max"]
    assert summary["metric"] == "mse"
    assert summary["baseline"] == pytest.approx(1 / 6)
    assert "| NFG | no forget gate (f_t = 1) |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "compare.png").read_bytes().startswith(PNG)
