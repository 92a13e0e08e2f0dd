"""Checkpoints and traces as files a user may have damaged or been sent: the previous checkpoint
kept and fallen back to, every refusal in one clear line, stale temporary files removed, and
(Hypothesis) truncated, bit-flipped and empty files that load or raise an lstmkit error, never
anything else."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lstmkit
from lstmkit.train import Trainer
from lstmkit.train.checkpoint import (
    ENTRIES,
    FIELDS,
    load_checkpoint,
    load_latest,
    previous_of,
    save_checkpoint,
)
from lstmkit.train.trainer import load_run, model_from_checkpoint
from tests.train.test_trainer import complete, small_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished run: checkpoint.pt and checkpoint.prev.pt."""
    out = tmp_path_factory.mktemp("run")
    Trainer(small_config(steps=10), out_dir=out, progress=False).fit()
    return out


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("trace")
    recorded = lstmkit.trace(lstmkit.LSTM(3, 4), torch.randn(5, 2, 3))
    return {s: recorded.save(out / f"t{s}").read_bytes() for s in (".npz", ".safetensors")}


def test_the_previous_checkpoint_is_kept_beside_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    for step in (1, 2, 3):
        save_checkpoint(path, complete(step=step))
    assert load_checkpoint(path)["step"] == 3
    assert load_checkpoint(previous_of(path))["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"\x80\x02junk", r"is not a readable checkpoint: \w+: unpack requires"),
        ({"format": 1}, r"not a complete lstmkit checkpoint: it lacks step, config"),
        ([1, 2], r"expected a dict, got list"),
        (complete(model=[1]), r"entry 'model' should be a dict, got list"),
        (complete(step=True), r"entry 'step' should be a int, got bool"),
        (complete(format=7), r"format 7; this lstmkit reads format 1"),
    ],
)
def test_a_file_that_is_no_checkpoint_says_why(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "checkpoint.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(lstmkit.LstmkitValueError, match=message):
        load_checkpoint(path)


def test_a_pickled_object_is_refused_without_advice_to_unpickle_it(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save(complete(payload=os.getcwd), path)
    with pytest.raises(lstmkit.LstmkitValueError) as raised:
        load_checkpoint(path)
    assert "unpickling can run code" in str(raised.value)
    assert "weights_only=False" not in str(raised.value)


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, complete(step=1))
    save_checkpoint(path, complete(step=2))
    path.write_bytes(path.read_bytes()[:40])  # torn by something outside lstmkit
    with pytest.warns(lstmkit.LstmkitWarning, match=r"using the previous checkpoint.*\(step 1\)"):
        state, read = load_latest(path)
    assert (state["step"], read) == (1, previous_of(path))
    path.unlink()
    with pytest.warns(lstmkit.LstmkitWarning, match="no checkpoint at"):
        assert load_latest(path)[0]["step"] == 1
    previous_of(path).unlink()
    with pytest.raises(lstmkit.LstmkitFileNotFoundError):
        load_latest(path)


def _with(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**state, **changes}


def test_weights_that_do_not_fit_the_configuration_are_refused(run_dir: Path) -> None:
    state = load_checkpoint(run_dir / "checkpoint.pt")
    model = dict(state["model"])
    name = next(iter(model))
    cases = {
        f"missing {name}": {k: v for k, v in model.items() if k != name},
        "unexpected extra.weight": {**model, "extra.weight": torch.zeros(1)},
        f"{name} has shape (1,), the model's has": {**model, name: torch.zeros(1)},
    }
    for message, weights in cases.items():
        with pytest.raises(lstmkit.LstmkitValueError, match=re.escape(message)):
            model_from_checkpoint(_with(state, model=weights))
    # a configuration of absurd size is refused before anything is allocated
    config = {**state["config"], "model": {**state["config"]["model"], "hidden_size": 10**9}}
    with pytest.raises(lstmkit.LstmkitValueError, match="describes a model that cannot be built"):
        model_from_checkpoint(_with(state, config=config))
    with pytest.raises(lstmkit.LstmkitValueError, match="'model_info' lacks input_size, output_s"):
        model_from_checkpoint(_with(state, model_info={"vocab_size": None}))
    with pytest.raises(lstmkit.LstmkitValueError, match="'progress' lacks solved_step, last_eval"):
        model_from_checkpoint(_with(state, progress={"seconds": 1.0}))


def test_resuming_removes_what_a_killed_save_left(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (out / name).write_bytes((run_dir / name).read_bytes())
    stale = [out / ".checkpoint.pt.abc123.tmp", out / ".checkpoint.prev.pt.77.tmp"]
    for file in stale:
        file.write_bytes(b"half a checkpoint")
    Trainer(small_config(steps=12), out_dir=out, resume=True, reschedule=True, progress=False).fit()
    assert not any(file.exists() for file in stale)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 12


def _damaged(data: bytes, draw: Any) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "empty", "zero a block"]))
    if how == "empty" or not data:
        return b""
    at = draw(st.integers(0, len(data) - 1))
    if how == "truncate":
        return data[:at]
    if how == "flip":
        return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
    return data[:at] + bytes(min(64, len(data) - at)) + data[at + 64 :]


@given(data=st.data())
def test_a_damaged_checkpoint_loads_or_says_why(run_dir: Path, data: Any) -> None:
    original = (run_dir / "checkpoint.pt").read_bytes()
    folder = run_dir / "damaged"
    folder.mkdir(exist_ok=True)
    path = folder / "checkpoint.pt"  # no previous beside it: nothing to fall back to
    path.write_bytes(_damaged(original, data.draw))
    try:
        model, _ = load_run(path)
    except lstmkit.LstmkitError:
        return
    assert isinstance(model, torch.nn.Module)  # a flip inside a tensor's values still loads


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@given(data=st.data())
def test_a_damaged_trace_loads_or_says_why(
    trace_files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory, suffix: str, data: Any
) -> None:
    path = tmp_path_factory.mktemp("damaged") / f"trace{suffix}"
    path.write_bytes(_damaged(trace_files[suffix], data.draw))
    try:
        recorded = lstmkit.Trace.load(path)
    except lstmkit.LstmkitError:
        return
    assert all(isinstance(v, torch.Tensor) for v in recorded.values.values())
    for cell in recorded.cells:
        recorded.names(cell)


def test_every_checkpoint_entry_is_checked(run_dir: Path) -> None:
    written = load_checkpoint(run_dir / "checkpoint.pt")
    assert set(written) == set(ENTRIES)  # what a run writes is what is checked
    for name, keys in FIELDS.items():
        assert set(keys) <= set(written[name])


def test_a_run_whose_newest_checkpoint_is_gone_resumes_from_the_previous(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.prev.pt").write_bytes((run_dir / "checkpoint.prev.pt").read_bytes())
    with pytest.raises(lstmkit.LstmkitFileExistsError, match="already holds a run"):
        Trainer(small_config(steps=10), out_dir=out, progress=False).fit()
    with pytest.warns(lstmkit.LstmkitWarning, match=r"no checkpoint at .*; using the previous"):
        result = Trainer(small_config(steps=10), out_dir=out, resume=True, progress=False).fit()
    assert result.steps == 10
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 10


@pytest.mark.parametrize("cell", ["clockwork", "grid:depth=2", "dglstm"])
def test_every_family_rebuilds_from_its_checkpoint(tmp_path: Path, cell: str) -> None:
    """The model is first built on torch's meta device, where a size computed from a tensor's
    values (a Clockwork RNN's units per module) cannot be counted."""
    config = small_config(steps=2)
    config = replace(config, model=replace(config.model, cell=cell, num_layers=1, dropout=0.0))
    Trainer(config, out_dir=tmp_path, progress=False).fit()
    model, _ = load_run(tmp_path / "checkpoint.pt")
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    rebuilt = model.state_dict()
    assert rebuilt.keys() == saved.keys()
    for name, value in saved.items():
        torch.testing.assert_close(rebuilt[name], value, rtol=0, atol=0)
