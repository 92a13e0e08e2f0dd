"""The reference engine: a plain Python loop over the cell, the truth every engine is tested
against. It runs any cell, and its only optimisation is the one every engine shares: the input
projection of all time steps is one product before the loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lstmkit._state import State, cat_states, state_rows
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines.loop import run_layers
from lstmkit.engines.registry import Engine, Layer
from lstmkit.engines.regularizers import Step, regularized


class ReferenceEngine(Engine):
    name = "reference"
    supports = "every cell"

    def unsupported(self, layer: Layer) -> str | None:
        return None

    def run(
        self, layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State
    ) -> tuple[Tensor, State]:
        sizes = None if batch_sizes is None else batch_sizes.tolist()
        reg = layer.regularizers

        def direction(
            cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
        ) -> tuple[Tensor, State]:
            step = None
            if reg.active:
                x, step = regularized(
                    cell, x, sizes, state, reg, training=layer.training, reverse=reverse
                )
            return run_direction(cell, x, sizes, state, reverse=reverse, step=step)

        return run_layers(layer, x, hx, direction)


def run_direction(
    cell: RecurrentCell[Any],
    x: Tensor,
    batch_sizes: list[int] | None,
    state: State,
    *,
    reverse: bool,
    step: Step | None = None,
) -> tuple[Tensor, State]:
    """Runs one cell over one sequence batch, forward in time or in reverse.

    ``x``: padded ``(T, B, F)`` with ``batch_sizes=None``, or packed data ``(N, F)`` whose step t
    holds the first ``batch_sizes[t]`` sequences. Returns outputs in the same layout and the state
    after each sequence's last step (its first, in reverse). ``step`` replaces ``cell.step``
    (the regularisers wrap it).
    """
    advance = cell.step if step is None else step
    xp = cell.project_input(x)  # (T, B, G) or (N, G): one product for every step
    outputs: list[Tensor] = []
    if batch_sizes is None:
        # unbind, not xp[t]: indexing makes autograd allocate a full-size gradient per step.
        steps = xp.unbind(0)
        for xp_t in reversed(steps) if reverse else steps:
            state = advance(xp_t, state)
            outputs.append(cell.output(state))
        if reverse:
            outputs.reverse()
        return torch.stack(outputs), state

    steps = torch.split(xp, batch_sizes)
    if not reverse:
        # Sequences are sorted by length, so the batch only shrinks: a sequence that has ended
        # keeps the state of its last step.
        ended: list[State] = []
        rows = batch_sizes[0]
        for xp_t, n in zip(steps, batch_sizes, strict=True):
            if n < rows:
                ended.append(state_rows(state, n, rows))
                state = state_rows(state, 0, n)
                rows = n
            state = advance(xp_t, state)
            outputs.append(cell.output(state))
        ended.append(state)
        return torch.cat(outputs), cat_states(ended[::-1])
    # In reverse the batch only grows: a sequence joins, from its initial state, at its last step.
    initial = state
    rows = batch_sizes[-1]
    state = state_rows(initial, 0, rows)
    for xp_t, n in zip(reversed(steps), reversed(batch_sizes), strict=True):
        if n > rows:
            state = cat_states([state, state_rows(initial, rows, n)])
            rows = n
        state = advance(xp_t, state)
        outputs.append(cell.output(state))
    outputs.reverse()
    return torch.cat(outputs), state
