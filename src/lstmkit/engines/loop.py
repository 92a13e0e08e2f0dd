"""The loop over layers and directions that every engine shares: each direction of each layer
is one call of the engine's own ``run_direction``, layer k reads the outputs of layer k - 1,
the directions' outputs are concatenated, and dropout acts between layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._state import State, stack_states, unstack_states
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines.registry import Layer

RunDirection = Callable[[RecurrentCell[Any], Tensor, State, bool], tuple[Tensor, State]]
"""``run_direction(cell, x, state, reverse) -> (outputs, final state)`` for one direction of
one layer, outputs in the layout of ``x``."""


def run_layers(
    layer: Layer, x: Tensor, hx: State, run_direction: RunDirection
) -> tuple[Tensor, State]:
    """Runs every layer and direction of ``layer`` over ``x``, ``(T, B, F)`` or packed
    ``(N, F)``; ``hx`` stacks the cells' states, ``(L·D, B, *)``. Returns the top layer's
    outputs ``(..., D·O)`` and the final states stacked like ``hx``."""
    cells = list(layer.iter_cells())
    states = unstack_states(hx, len(cells))
    D = layer.num_directions
    finals: list[State] = []
    for k in range(layer.num_layers):
        outputs = []
        for d in range(D):
            y, final = run_direction(cells[k * D + d], x, states[k * D + d], d == 1)
            outputs.append(y)
            finals.append(final)
        x = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (..., D·O)
        if k < layer.num_layers - 1 and layer.dropout > 0 and layer.training:
            x = F.dropout(x, layer.dropout, training=True)
    return x, stack_states(finals)
