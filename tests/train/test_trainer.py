"""The trainer: exact resume, atomic checkpoints, non-finite losses, configs, early stopping."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.train import (
    ModelConfig,
    NonFiniteLossError,
    OptimConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    Trainer,
    fit,
    load_checkpoint,
    save_checkpoint,
    step_seed,
)
from lstmkit.train.checkpoint import ENTRIES, FIELDS
from lstmkit.train.trainer import lr_factor


def small_config(**run: object) -> TrainConfig:
    return TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=16, num_layers=2, dropout=0.2),
        task=TaskConfig("gap", {"gap": 6}),
        optim=OptimConfig(schedule="cosine", warmup=3),
        run=RunConfig(
            **{
                "steps": 24,
                "batch_size": 16,
                "eval_every": 8,
                "eval_size": 64,
                "checkpoint_every": 5,
                "early_stop": False,
                **run,
            }
        ),
    )


def complete(**extra: object) -> dict[str, object]:
    """A checkpoint with every entry one has, of its type, and ``extra``."""
    state: dict[str, object] = {name: kind() for name, kind in ENTRIES.items()}
    state |= {name: dict.fromkeys(keys) for name, keys in FIELDS.items()}
    return state | {"format": 1} | extra


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    assert trainer.model is not None
    return trainer.model.state_dict()


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_after_a_stop_is_bitwise_identical(tmp_path: Path) -> None:
    config = small_config()
    whole = Trainer(config, out_dir=tmp_path / "whole", progress=False)
    whole.fit()
    parts = Trainer(config, out_dir=tmp_path / "parts", progress=False)
    parts.on_step = lambda step, loss: parts.request_stop() if step == 13 else None
    stopped = parts.fit()
    assert (stopped.stopped, stopped.steps) == ("interrupted", 13)
    assert not torch.equal(weights(parts)["head.weight"], weights(whole)["head.weight"])
    resumed = Trainer(config, out_dir=tmp_path / "parts", resume=True, progress=False)
    result = resumed.fit()
    assert (result.stopped, result.steps) == ("budget", 24)
    assert_same_weights(weights(resumed), weights(whole))
    # the log has each step once, as if the run had never stopped
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "parts/metrics.jsonl").read_text().splitlines()
    ]
    whole_steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "whole/metrics.jsonl").read_text().splitlines()
    ]
    assert steps == whole_steps


def test_resume_after_a_crash_drops_log_lines_past_the_checkpoint(tmp_path: Path) -> None:
    config = small_config(log_every=1)
    crashed = Trainer(config, out_dir=tmp_path / "run", progress=False)

    def crash(step: int, loss: float) -> None:
        if step == 12:  # after the checkpoint of step 10, before the next one
            raise RuntimeError("simulated crash")

    crashed.on_step = crash
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit()
    assert load_checkpoint(tmp_path / "run/checkpoint.pt")["step"] == 10
    resumed = Trainer(config, out_dir=tmp_path / "run", resume=True, progress=False)
    resumed.fit()
    whole = Trainer(config, out_dir=tmp_path / "again", progress=False)
    whole.fit()
    assert_same_weights(weights(resumed), weights(whole))
    lines = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    train_steps = [line["step"] for line in lines if "loss" in line and "eval" not in line]
    assert train_steps == list(range(1, 25))


def test_an_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    Trainer(small_config(steps=5), out_dir=tmp_path, progress=False).fit()
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(small_config(steps=5), out_dir=tmp_path, progress=False).fit()


def test_resume_refuses_a_different_configuration(tmp_path: Path) -> None:
    Trainer(small_config(steps=5), out_dir=tmp_path, progress=False).fit()
    changed = small_config(steps=10)
    changed.optim.lr = 0.1
    with pytest.raises(ValueError, match=r"optim\.lr: 0\.003 in the checkpoint, 0\.1 now"):
        Trainer(changed, out_dir=tmp_path, resume=True, progress=False).fit()
    # a larger budget restarts the cosine schedule of a finished run: refused, or asked for
    with pytest.raises(ValueError, match=r"at step 5 the learning rate goes from 0 to 0\.00244"):
        Trainer(small_config(steps=10), out_dir=tmp_path, resume=True, progress=False).fit()
    longer = Trainer(
        small_config(steps=10), out_dir=tmp_path, resume=True, reschedule=True, progress=False
    )
    assert longer.fit().steps == 10


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    config = small_config(steps=50, checkpoint_every=1)
    config.optim.lr = 1e30  # the first step makes the weights astronomically large
    config.optim.clip = 0.0
    config.optim.warmup = 0
    with pytest.raises(
        NonFiniteLossError,
        match=r"(at|after) step \d+; (stopped without saving it|not saving them)",
    ):
        Trainer(config, out_dir=tmp_path, progress=False).fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] >= 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_early_stop_when_solved(tmp_path: Path) -> None:
    config = TrainConfig(
        model=ModelConfig(cell="lstm:chrono=20", hidden_size=32),
        task=TaskConfig("gap", {"gap": 3}),
        run=RunConfig(steps=2000, eval_every=20),
    )
    result = Trainer(config, out_dir=tmp_path, progress=False).fit()
    assert result.stopped == "solved"
    assert result.solved_step == result.steps < 2000
    assert result.metrics["accuracy"] >= 0.95
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["solved_step"] == result.solved_step
    assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()


def test_batches_depend_on_seed_and_step_only() -> None:
    seeds = {step_seed(s, k) for s in range(20) for k in range(200)}
    assert len(seeds) == 20 * 200
    assert step_seed(3, 7) == step_seed(3, 7)


def test_learning_rate_schedules() -> None:
    warm = lr_factor(OptimConfig(schedule="cosine", warmup=4), steps=104)
    assert [warm(k) for k in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warm(4) == pytest.approx(1.0)
    assert warm(54) == pytest.approx(0.5)
    assert warm(104) == pytest.approx(0.0, abs=1e-12)
    linear = lr_factor(OptimConfig(schedule="linear"), steps=10)
    assert linear(5) == pytest.approx(0.5)
    assert lr_factor(OptimConfig(), steps=10)(7) == 1.0


def test_configs_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[model]\ncell = "gru"\nhidden_size = 8\n[task]\nname = "adding"\n'
        '[task.options]\nlength = 30\nform = "hochreiter"\n[run]\nsteps = 3\n',
        encoding="utf-8",
    )
    config = TrainConfig.load(path)
    assert config.model.cell == "gru"
    assert config.task.options == {"length": 30, "form": "hochreiter"}
    assert config.run.steps == 3
    assert config.optim.lr == 3e-3  # untouched defaults stay
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhiden_size = 8\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hiden_size'\] in \[model\]"):
        TrainConfig.load(bad)
    bad.write_text('[run]\nsteps = "ten"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"run\.steps must be int, got 'ten'"):
        TrainConfig.load(bad)
    bad.write_text("[run]\nsteps = 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"run\.steps must be positive, got 0"):
        TrainConfig.load(bad)


def test_atomic_save_leaves_the_old_checkpoint_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, complete(value=torch.arange(3)))
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):  # writes part of the file, then dies
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(lstmkit.LstmkitOSError, match=r"\(disk full\); the last one written is"):
        save_checkpoint(path, complete(value=torch.arange(5)))
    assert torch.equal(load_checkpoint(path)["value"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


KILL_WRITER = """
import sys, torch
from lstmkit.train.checkpoint import ENTRIES, FIELDS, save_checkpoint
complete = {name: kind() for name, kind in ENTRIES.items()} | {"format": 1}
complete |= {name: dict.fromkeys(keys) for name, keys in FIELDS.items()}
big = torch.randn(4_000_000)
i = 0
while True:
    i += 1
    save_checkpoint(sys.argv[1], {**complete, "i": i, "big": big})
    print(i, flush=True)
"""


def test_a_killed_write_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    with subprocess.Popen(
        [sys.executable, "-c", KILL_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    ) as writer:
        try:
            assert writer.stdout is not None
            for _ in range(3):  # let a few complete, then kill it in the middle of later writes
                writer.stdout.readline()
            time.sleep(0.05)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
    state = load_checkpoint(path)
    assert state["i"] >= 3
    assert state["big"].shape == (4_000_000,)


def test_loading_refuses_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    # loading never runs code: a pickle that would call a function is refused
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": os.getcwd}, evil)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(evil)


def test_training_lowers_the_loss_and_logs(tmp_path: Path) -> None:
    config = small_config(steps=40, log_every=5)
    result = Trainer(config, out_dir=tmp_path, progress=False).fit()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in lines if "eval" not in line]
    assert len(losses) == 8
    assert all(math.isfinite(v) for v in losses)
    evals = [line for line in lines if "eval" in line]
    assert [e["step"] for e in evals] == [8, 16, 24, 32, 40]
    assert result.metrics == evals[-1]["eval"]


def test_fit_is_the_trainer_in_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    losses: list[float] = []
    result = fit(
        "gru:reset_after=false",
        "gap:gap=4,classes=3",
        steps=30,
        hidden_size=12,
        lr=5e-3,
        seed=3,
        on_step=lambda _, loss: losses.append(loss),
    )
    config = TrainConfig(
        model=ModelConfig(cell="gru:reset_after=false", hidden_size=12),
        task=TaskConfig("gap", {"gap": 4, "classes": 3}),
        optim=OptimConfig(lr=5e-3),
        run=RunConfig(steps=30, eval_every=30, early_stop=False, seed=3),
    )
    same = Trainer(config, progress=False).fit()
    assert len(losses) == 30
    assert result.steps == same.steps == 30
    assert result.metrics == same.metrics  # bitwise: the same run
    assert list(tmp_path.iterdir()) == []  # nothing written
