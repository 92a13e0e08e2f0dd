"""A user's mistakes on the command line end in one line and exit status 2, never a traceback:
a device the machine lacks, a file where a folder goes (and the reverse), a full disk, and a
resumed run whose changed budget would restart its learning-rate schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.cli import main


def fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Runs the command, expects exit status 2, returns its stderr, which must be one line
    after argparse's usage lines."""
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own errors
        status = stop.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def train(out: Path, *more: str) -> list[str]:
    return ["train", "--task", "adding:length=6", "--hidden-size", "4", "--out", str(out), *more]


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "expected a device such as cpu, cuda or cuda:1, got 'bogus'"),
        ("cuda:99", "cuda:99 was asked for"),
    ],
)
def test_a_device_the_machine_lacks(
    device: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = fails([*train(tmp_path / "run", "--steps", "1"), "--device", device], capsys)
    assert message in line


def test_a_plain_cuda_on_a_cpu_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        assert main(["tasks"]) == 0  # this machine has one: nothing to refuse
        return
    line = fails([*train(tmp_path / "run", "--steps", "1"), "--device", "cuda"], capsys)
    assert "cuda was asked for, but" in line


def test_a_file_where_a_folder_goes_and_the_reverse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine", encoding="utf-8")
    line = fails(train(file, "--steps", "1"), capsys)
    assert f"expected a folder, got the file {file}" in line
    assert file.read_text(encoding="utf-8") == "mine"
    for command in (["trace", "run/checkpoint.pt"], ["explain", "x.pt", "--text", "hi"]):
        line = fails([*command, "-o", str(tmp_path)], capsys)
        assert f"expected a file to write, got the folder {tmp_path}" in line


def test_a_full_disk_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main([*train(tmp_path / "run", "--steps", "2")]) == 0
    capsys.readouterr()

    def full(self: object, path: object) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(lstmkit.Trace, "save", full)
    out = tmp_path / "t.npz"
    line = fails(["trace", str(tmp_path / "run" / "checkpoint.pt"), "-o", str(out)], capsys)
    assert line == f"lstmkit trace: error: No space left on device: {out}"


def test_a_changed_budget_that_would_restart_the_schedule_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    cosine = ["--schedule", "cosine", "--warmup", "1", "--eval-every", "4"]
    assert main(train(out, "--steps", "4", *cosine)) == 0
    capsys.readouterr()
    line = fails([*train(out, "--steps", "8", *cosine), "--resume"], capsys)
    assert "run.steps changes from 4 to 8, and the cosine schedule" in line
    assert "--reschedule" in line
    assert lstmkit.train.load_checkpoint(out / "checkpoint.pt")["step"] == 4  # untouched
    assert main([*train(out, "--steps", "8", *cosine), "--resume", "--reschedule"]) == 0
    assert "as --reschedule allows" in capsys.readouterr().err
    assert lstmkit.train.load_checkpoint(out / "checkpoint.pt")["step"] == 8
    # a constant schedule has nothing to restart: a longer run just goes on
    constant = tmp_path / "constant"
    assert main(train(constant, "--steps", "4", "--eval-every", "4")) == 0
    assert main([*train(constant, "--steps", "6", "--eval-every", "4"), "--resume"]) == 0
