"""A short training run on every task beats the task's chance-level or memoryless baseline."""

from __future__ import annotations

import pytest

from lstmkit.train import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, Trainer

# (task, options, cell, steps): small enough to run in seconds on two cores
RUNS = {
    "gap": ("gap", {"gap": 30}, "lstm:chrono=40", 400),
    "adding (Le et al.)": ("adding", {"length": 20, "form": "le"}, "lstm:chrono=20", 500),
    "adding (Hochreiter & Schmidhuber)": (
        "adding",
        {"length": 30, "form": "hochreiter"},
        "lstm:chrono=30",
        800,
    ),
    "copy": ("copy", {"blanks": 5}, "lstm:chrono=30", 600),
    "temporal order 6a": ("temporal_order", {}, "lstm:chrono=100", 400),
    "reber": ("reber", {}, "lstm:chrono=20", 400),
    "charlm": ("charlm", {"length": 50, "max_chars": 200_000}, "lstm", 150),
}


@pytest.mark.parametrize("name", RUNS)
def test_a_short_run_beats_the_baseline(name: str) -> None:
    task, options, cell, steps = RUNS[name]
    config = TrainConfig(
        model=ModelConfig(cell=cell, hidden_size=32),
        task=TaskConfig(task, options),
        optim=OptimConfig(lr=1e-2),
        run=RunConfig(steps=steps, batch_size=32, eval_every=50, eval_size=256),
    )
    result = Trainer(config, progress=False).fit()
    value = result.metrics[result.metric]
    if result.metric == "accuracy":
        assert value > result.baseline + 0.2, result
    else:
        assert value < 0.8 * result.baseline, result
