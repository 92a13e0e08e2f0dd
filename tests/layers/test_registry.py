"""Layers by name: what the trainer, the command line and the cell table build."""

from __future__ import annotations

import pytest
import torch

import lstmkit
from lstmkit.experiments.cell_table import DemoConfig, demo_cells
from lstmkit.layers import EXAMPLES, LAYERS, Example, build_layer, register_layer
from lstmkit.layers import registry as layer_registry


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
