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


def test_compare_on_chorales_checks_greffs_ordering_against_the_run(tmp_path: Path) -> None:
    experiment = CompareExperiment(
        task="chorales:pieces=12",
        variants=("vanilla", "NFG"),
        seeds=1,
        steps=8,
        hidden_size=8,
        batch_size=4,
    )
    summary = run_compare_experiment(experiment, tmp_path, progress=False, report=lambda _: None)
    assert summary["metric"] == "nll"
    means = {r["variant"]: r["mean"] for r in summary["table"]}
    nfg_worse = means["NFG"] > means["vanilla"]  # lower NLL is better
    claims = {f["claim"]: f for f in summary["findings"]}
    assert set(claims) == {"NFG worse than vanilla", "no variant clearly better than vanilla"}
    assert claims["NFG worse than vanilla"]["agrees"] is nfg_worse
    assert claims["no variant clearly better than vanilla"]["agrees"] is nfg_worse
    table = (tmp_path / "results.md").read_text()
    verdict = "agrees" if nfg_worse else "DISAGREES"
    assert (
        f"- NFG worse than vanilla: {verdict}; seen {'worse' if nfg_worse else 'better'}" in table
    )
    assert "Greff et al. 2015 (LSTM: A Search Space Odyssey" in table


def test_findings_are_judged_by_means_and_their_spread() -> None:
    from lstmkit.experiments.compare import check_findings

    def row(variant: str, values: list[float]) -> dict[str, object]:
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        return {"variant": variant, "mean": mean, "std": std, "values": values}

    rows = [
        row("vanilla", [8.0, 8.2, 8.1]),  # mean 8.1, std 0.1
        row("NFG", [9.0, 9.2, 9.1]),  # clearly worse: +1.0 against noise 2*sqrt(2*0.01/3)=0.163
        row("CIFG", [8.0, 8.3, 8.1]),  # +0.033: close
        row("NP", [7.5, 7.6, 7.7]),  # -0.5: clearly better, so not close
    ]
    findings = [("NFG", "worse"), ("CIFG", "close"), ("NP", "close"), ("NOAF", "worse")]
    checked = check_findings(findings, rows, higher_is_better=False)  # NOAF did not run
    assert [(c["claim"], c["seen"], c["agrees"]) for c in checked] == [
        ("NFG worse than vanilla", "worse", True),
        ("CIFG close to vanilla", "close", True),
        ("NP close to vanilla", "better", False),
        ("no variant clearly better than vanilla", "NP better", False),
    ]
    assert "noise ±0.163" in checked[0]["numbers"]
    assert check_findings(findings, rows[1:], higher_is_better=False) == []  # no vanilla


def test_chung_experiment_matches_parameters_and_writes_its_table(tmp_path: Path) -> None:
    from lstmkit.experiments import ChungExperiment, run_chung_experiment
    from lstmkit.experiments.chung import CHUNG_TEST_NLL

    experiment = ChungExperiment(
        task="chorales:pieces=12,evaluate=test", parameters=3000, seeds=2, steps=6, batch_size=4
    )
    sizes = experiment.hidden_sizes()
    counts = {cell: experiment.count(cell, h) for cell, h in sizes.items()}
    # a tanh RNN has one weight set, a GRU three, an LSTM four: the smaller the cell, the wider
    assert sizes["rnn"] > sizes["gru"] > sizes["lstm"]
    for cell, h in sizes.items():  # the nearest size: one unit more or less is farther off
        nearest = abs(counts[cell] - 3000)
        assert nearest <= abs(experiment.count(cell, h + 1) - 3000)
        assert nearest <= abs(experiment.count(cell, h - 1) - 3000)
    h = sizes["lstm"]
    assert counts["lstm"] == 4 * h * (88 + h + 2) + 88 * h + 88  # W_ih, W_hh, 2 biases; head
    lines: list[str] = []
    summary = run_chung_experiment(experiment, tmp_path, progress=False, report=lines.append)
    assert len(summary["runs"]) == 6
    for row in summary["table"]:
        runs = [r["metrics"]["nll"] for r in summary["runs"] if r["cell"] == row["cell"]]
        assert row["mean"] == pytest.approx(sum(runs) / 2)
        assert row["published"] == CHUNG_TEST_NLL.get(row["cell"])
    table = (tmp_path / "results.md").read_text()
    assert f"| lstm | H = {h}, {counts['lstm']:,} parameters |" in table
    assert "| 8.67 |" in table
    assert "| not verified |" in table  # the tanh RNN's figure
    assert f"{summary['baseline']:.3f}" in table
    assert summary["evaluated_on"] == "test"
    assert (tmp_path / "chung.png").read_bytes().startswith(PNG)
