"""Layers by name: what the trainer, the command line and the cell table build."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit._spec import Spec
from lstmkit.experiments.cell_table import DemoConfig, demo_cells
from lstmkit.layers import EXAMPLES, LAYERS, Example, build_layer, register_layer
from lstmkit.layers import registry as layer_registry
from lstmkit.train import (
    ModelConfig,
    OptimConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    Trainer,
    fit,
    load_run,
)


def test_every_family_is_registered_with_its_table_rows() -> None:
    assert list(LAYERS) == ["rnn", "gru", "lstm", "mut", "clockwork", "dglstm", "grid"]
    assert LAYERS["lstm"] is lstmkit.LSTM
    assert LAYERS["grid"] is lstmkit.GridLSTM
    assert all(EXAMPLES[name] for name in LAYERS)


def test_a_spec_builds_its_layer_with_its_options() -> None:
    layer = build_layer("gru:reset_after=false", 3, 5, num_layers=2)
    assert isinstance(layer, lstmkit.GRU)
    assert (layer.reset_after, layer.num_layers, layer.hidden_size) == (False, 2, 5)
    with pytest.raises(ValueError, match="given both in the cell spec and separately"):
        build_layer("gru:num_layers=2", 3, 5, num_layers=2)
    with pytest.raises(ValueError, match="unknown cell 'nope'; expected one of 'rnn'"):
        build_layer("nope", 3, 5)


def test_examples_that_depend_on_the_table_sizes_follow_them() -> None:
    (projection,) = [e for e in EXAMPLES["lstm"] if e.what == "LSTM with projection"]
    assert projection.options_for(64, 50) == {"proj_size": 32}
    assert projection.options_for(10, 50) == {"proj_size": 5}
    config = DemoConfig(hidden_size=10, steps=7)
    codes = [cell.code(config) for cell in demo_cells(config)]
    assert "LSTM(32, 10, proj_size=5)" in codes
    assert "LSTM(32, 10, chrono=7)" in codes
    assert "MUT(10, 10, kind=1)" in codes  # MUT1 needs input_size == hidden_size


def test_a_registered_layer_reaches_the_trainer_and_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(layer_registry, "LAYERS", dict(LAYERS))
    monkeypatch.setattr(layer_registry, "EXAMPLES", dict(EXAMPLES))
    monkeypatch.setattr("lstmkit.experiments.cell_table.LAYERS", layer_registry.LAYERS)
    monkeypatch.setattr("lstmkit.experiments.cell_table.EXAMPLES", layer_registry.EXAMPLES)
    register_layer(
        "relu-rnn", lstmkit.RNN, examples=[Example("a ReLU RNN", "test", {"nonlinearity": "relu"})]
    )
    layer = layer_registry.build_layer("relu-rnn:nonlinearity=relu", 2, 3)
    assert layer.nonlinearity == "relu"
    rows = [c for c in demo_cells(DemoConfig()) if c.name == "relu-rnn"]
    assert [r.code(DemoConfig()) for r in rows] == ["RNN(32, 64, nonlinearity='relu')"]
    out, _ = layer(torch.randn(4, 1, 2))
    assert bool((out >= 0).all())


@pytest.mark.parametrize("name", ["", "a:b", "a,b"])
def test_a_layer_name_must_be_writable_in_a_spec(name: str) -> None:
    with pytest.raises(ValueError, match="a layer name must be non-empty without"):
        register_layer(name, lstmkit.RNN)


F64 = torch.float64

# Initialisation options written in a spec: each must reach every cell of the layer it builds,
# leave torch.nn's parameter names alone, and come back when a checkpoint is loaded.
INIT_SPECS = {
    "gru:chrono=200,recurrent_init=orthogonal": {"num_layers": 2, "bidirectional": True},
    "gru:update_bias=2,reset_after=false": {"num_layers": 2},
    "rnn:nonlinearity=relu,recurrent_init=identity": {"num_layers": 2},
    "lstm:recurrent_init=orthogonal,proj_size=3": {"num_layers": 2},
    "lstm:variant=CIFG,chrono=30,recurrent_init=orthogonal": {"bidirectional": True},
    "mut:kind=3,recurrent_init=orthogonal": {"num_layers": 2},
    "clockwork:nonlinearity=relu,recurrent_init=identity": {"num_layers": 2},
    "dglstm:num_layers=2,recurrent_init=orthogonal": {},
    "grid:recurrent_init=orthogonal": {"num_layers": 2},
}


def _option(cell: torch.nn.Module, key: str) -> object:
    config = getattr(cell, "config", None)  # the LSTM keeps its options in its LSTMConfig
    if config is not None and hasattr(config, key):
        return getattr(config, key)
    return getattr(cell, key)


@pytest.mark.parametrize("spec", list(INIT_SPECS))
def test_an_initialisation_option_survives_spec_layer_state_dict_and_rebuild(spec: str) -> None:
    layer = build_layer(spec, 4, 6, **INIT_SPECS[spec])
    options = Spec.parse(spec).options
    for cell in layer.iter_cells():  # every layer and direction
        for key, value in options.items():
            if key != "variant":
                assert _option(cell, key) == value, (key, cell)
    rebuilt = build_layer(spec, 4, 6, **INIT_SPECS[spec])
    assert repr(rebuilt) == repr(layer)
    x = torch.randn(5, 2, 4)
    assert not torch.equal(rebuilt(x)[0], layer(x)[0])  # a fresh draw...
    rebuilt.load_state_dict(layer.state_dict())  # ...until the weights are loaded, strictly
    torch.testing.assert_close(rebuilt(x)[0], layer(x)[0], rtol=0, atol=0)


def test_the_initialisation_reaches_every_layer_and_direction() -> None:
    layer = lstmkit.GRU(
        4, 6, num_layers=2, bidirectional=True, chrono=40, recurrent_init="orthogonal", dtype=F64
    )
    H, eye = 6, torch.eye(6, dtype=F64)
    for suffix in ("l0", "l0_reverse", "l1", "l1_reverse"):
        for block in getattr(layer, f"weight_hh_{suffix}").detach().split(H):
            torch.testing.assert_close(block.T @ block, eye, rtol=0, atol=1e-12)
        b_z = getattr(layer, f"bias_ih_{suffix}")[H : 2 * H].detach().exp()
        assert bool(((b_z >= 1) & (b_z <= 39)).all())
        assert not bool(getattr(layer, f"bias_hh_{suffix}")[H : 2 * H].any())


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: lstmkit.GRU(4, 6, num_layers=2, chrono=50, recurrent_init="orthogonal"),
            lambda: torch.nn.GRU(4, 6, num_layers=2),
        ),
        (
            lambda: lstmkit.LSTM(4, 6, num_layers=2, recurrent_init="orthogonal", chrono=20),
            lambda: torch.nn.LSTM(4, 6, num_layers=2),
        ),
        (
            lambda: lstmkit.RNN(4, 6, nonlinearity="relu", recurrent_init="identity"),
            lambda: torch.nn.RNN(4, 6, nonlinearity="relu"),
        ),
    ],
    ids=["gru", "lstm", "rnn"],
)
def test_torch_nn_state_dicts_load_both_ways_whatever_the_start(
    ours: Callable[[], torch.nn.Module], theirs: Callable[[], torch.nn.Module]
) -> None:
    x = torch.randn(5, 2, 4)
    layer, ref = ours(), theirs()
    ref.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x)[0], ref(x)[0], rtol=0, atol=1e-6)
    ref = theirs()
    layer.load_state_dict(ref.state_dict())
    torch.testing.assert_close(layer(x)[0], ref(x)[0], rtol=0, atol=1e-6)


def test_an_initialisation_option_survives_training_and_its_checkpoint(tmp_path: Path) -> None:
    config = TrainConfig(
        model=ModelConfig(cell="gru:chrono=50,recurrent_init=orthogonal", hidden_size=8),
        task=TaskConfig("gap", {"gap": 3}),
        optim=OptimConfig(lr=1e-7),  # two steps that barely move the weights
        run=RunConfig(steps=2, batch_size=8, eval_every=2, eval_size=16, early_stop=False),
    )
    trainer = Trainer(config, out_dir=tmp_path, progress=False)
    trainer.fit()
    assert trainer.model is not None
    model, _ = load_run(tmp_path / "checkpoint.pt")
    for cell in model.rnn.iter_cells():
        assert (cell.chrono, cell.recurrent_init) == (50, "orthogonal")
    trained = trainer.model.state_dict()
    loaded = model.state_dict()
    assert list(loaded) == list(trained)
    for name, value in trained.items():
        assert torch.equal(loaded[name], value), name
    # what the options set is still there after two steps at a tiny rate
    H = 8
    W = loaded["rnn.weight_hh_l0"].double()
    for block in W.split(H):
        torch.testing.assert_close(block.T @ block, torch.eye(H).double(), rtol=0, atol=1e-4)
    b_z = loaded["rnn.bias_ih_l0"][H : 2 * H] + loaded["rnn.bias_hh_l0"][H : 2 * H]
    assert bool(((b_z > -1e-3) & (b_z < math.log(49) + 1e-3)).all())


def test_fit_trains_a_layer_whose_spec_sets_its_start() -> None:
    losses: list[float] = []
    result = fit(
        "rnn:nonlinearity=relu,recurrent_init=identity",
        "gap:gap=3",
        steps=3,
        hidden_size=8,
        batch_size=8,
        on_step=lambda step, loss: losses.append(loss),
    )
    assert result.steps == 3
    assert len(losses) == 3
    assert all(math.isfinite(v) for v in [*losses, *result.metrics.values()])
