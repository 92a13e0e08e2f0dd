"""The one loop over layers and directions that every engine shares."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

import lstmkit
from lstmkit._state import State
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines import Engine, Layer, register_engine, run_layers, unregister_engine
from lstmkit.engines.reference import run_direction


def test_layers_read_both_directions_of_the_layer_below_in_order() -> None:
    torch.manual_seed(0)
    layer = lstmkit.GRU(3, 4, num_layers=3, bidirectional=True, engine="reference")
    calls: list[tuple[str, int, bool]] = []
    cells = {id(c): key for key, c in layer.cells.items()}

    def direction(
        cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State]:
        calls.append((cells[id(cell)], x.shape[-1], reverse))
        return run_direction(cell, x, None, state, reverse=reverse)

    x = torch.randn(5, 2, 3)
    out, h_n = run_layers(
        layer, x, layer.initial_state(2, dtype=x.dtype, device=x.device), direction
    )
    assert calls == [
        ("l0", 3, False),
        ("l0_reverse", 3, True),
        ("l1", 8, False),  # both directions of layer 0, concatenated
        ("l1_reverse", 8, True),
        ("l2", 8, False),
        ("l2_reverse", 8, True),
    ]
    expected, expected_h = layer(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(h_n, expected_h, rtol=0, atol=0)


@pytest.mark.parametrize("training", [True, False])
def test_dropout_acts_between_layers_only_in_training(training: bool) -> None:
    layer = lstmkit.RNN(2, 3, num_layers=3, dropout=1.0, engine="reference").train(training)
    seen: list[Tensor] = []

    def direction(
        cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State]:
        seen.append(x)
        return torch.ones(x.shape[0], x.shape[1], 3), state

    x = torch.randn(4, 2, 2)
    out, _ = run_layers(layer, x, layer.initial_state(2, dtype=x.dtype, device=x.device), direction)
    assert seen[0] is x  # the input itself never sees the layers' dropout
    dropped = [bool((s == 0).all()) for s in seen[1:]]  # p = 1 zeroes everything it touches
    assert dropped == [training, training]
    assert bool((out == 1).all())  # nor does the top layer's output


def test_an_engine_of_ones_own_runs_through_the_layer_protocol() -> None:
    class Counting(Engine):
        name = "counting-loop-test"
        supports = "every cell"
        directions = 0

        def unsupported(self, layer: Layer) -> str | None:
            return None

        def run(
            self, layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State
        ) -> tuple[Tensor, State]:
            def direction(
                cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
            ) -> tuple[Tensor, State]:
                Counting.directions += 1
                return run_direction(cell, x, None, state, reverse=reverse)

            return run_layers(layer, x, hx, direction)

    register_engine(Counting(), priority=-1)
    try:
        layer = lstmkit.LSTM(3, 4, num_layers=2, bidirectional=True, variant="CIFG")
        x = torch.randn(6, 2, 3)
        expected, _ = layer(x)
        layer.engine = "counting-loop-test"
        out, _ = layer(x)
        assert Counting.directions == 4
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    finally:
        unregister_engine("counting-loop-test")
