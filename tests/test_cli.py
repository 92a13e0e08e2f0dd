"""The lstmkit command, end to end with tiny sizes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lstmkit.cli import main
from lstmkit.demo import DemoConfig, run_demo

TINY = ["--steps", "4", "--batch", "2", "--input-size", "3", "--hidden-size", "4", "--repeats", "1"]


def test_demo_prints_one_row_per_cell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *TINY]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("RNN(", "GRU(", "LSTM("))]
    assert len(rows) == 18
    assert "LSTM(3, 4, variant='FGR')" in out
    assert "GRU(3, 4, reset_after=False)" in out


def test_demo_rows_agree_with_the_reference_and_torch() -> None:
    rows = run_demo(DemoConfig(steps=4, batch=2, input_size=3, hidden_size=4, repeats=1))
    engines = {r.code: r.engine for r in rows}
    assert engines["LSTM(3, 4)"] == "native"
    assert engines["LSTM(3, 4, variant='vanilla')"] == "reference"
    for r in rows:
        assert r.vs_reference < 1e-5
        assert (r.vs_torch is None) == (r.engine == "reference")
        if r.vs_torch is not None:
            assert r.vs_torch < 1e-5
    # the parameter counts follow from the gate layout: 4 blocks of H rows for the standard LSTM
    params = {r.code: r.parameters for r in rows}
    assert params["LSTM(3, 4)"] == 4 * 4 * (3 + 4) + 2 * 4 * 4
    assert params["LSTM(3, 4, variant='NIG')"] == 3 * 4 * (3 + 4) + 2 * 3 * 4 + 2 * 4


def test_module_entry_point_and_bad_flags() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lstmkit", "demo", "--steps", "0"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "expected a positive integer, got 0" in done.stderr
    assert main(["demo", "--hidden-size", "1"]) == 2
