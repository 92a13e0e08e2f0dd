"""lstmkit tune: measures, keeps the choices, prints what it chose from (fake timer here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.cli import main
from lstmkit.engines import Engine, tuning
from lstmkit.engines.tuning import Tuner
from lstmkit.experiments.tune import TuneConfig, format_tune_table, run_tune

SECONDS = {"fused": 2.0, "native": 1.0}


def fake(engine: Engine, run: Callable[[], None]) -> float:
    run()
    return SECONDS[engine.name]


def test_rows_name_the_fastest_and_every_time(tmp_path: Path) -> None:
    tuner = Tuner(time_engine=fake, path=tmp_path / "cache.json")
    config = TuneConfig(
        sizes=("6,2,3,4",), variants=("lstm", "peepholes"), modes=("inference",), repeats=2
    )
    rows = run_tune(config, tuner=tuner)
    assert [(r.variant, r.chosen) for r in rows] == [("lstm", "native"), ("peepholes", "fused")]
    assert rows[0].milliseconds == {"fused": 2000.0, "native": 1000.0}
    assert rows[1].milliseconds == {}  # torch.nn has no peepholes: one fast engine, unmeasured
    assert tuner.repeats == 5  # put back
    table = format_tune_table(rows, tuner)
    assert "6,2,3,4  lstm       inference  2000.00   1000.00    native" in table
    assert "6,2,3,4  peepholes  inference  -         -          fused" in table
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        run_tune(TuneConfig(variants=("nope",)), tuner=tuner)


def test_the_command_fills_the_cache_that_auto_then_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "TUNER", Tuner())
    argv = ["tune", "--sizes", "6,2,3,4", "--variants", "lstm", "rnn", "--modes", "training"]
    assert main([*argv, "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "auto runs" in printed
    assert str(tmp_path) in printed
    (cache,) = tmp_path.glob("engines-*.json")
    choices = json.loads(cache.read_text(encoding="utf-8"))["choices"]
    assert len(choices) == 2
    chosen = {key.split("(")[0]: c["engine"] for key, c in choices.items()}
    assert set(chosen) == {"LSTMCell", "RNNCell"}

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again although the cache has the choice")

    later = Tuner()  # a new process: the same file
    monkeypatch.setattr(later, "measure", refuse)
    monkeypatch.setattr(tuning, "TUNER", later)
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    layer = lstmkit.LSTM(3, 4)
    layer(torch.randn(6, 2, 3))
    assert layer.last_engine == chosen["LSTMCell"]
