"""The reference engine: a plain Python loop over the cell, the truth every engine is tested
against. It runs any cell, and its only optimisation is the one every engine shares: the input
projection of all time steps is one product before the loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cells.base import RecurrentCell, State, map_state
from lstmkit.engines.registry import Engine

if TYPE_CHECKING:
    from lstmkit.layers import Recurrent


class ReferenceEngine(Engine):
    name = "reference"
    supports = "every cell"

    def unsupported(self, layer: Recurrent) -> str | None:
        return None

    def run(
        self, layer: Recurrent, x: Tensor, batch_sizes: Tensor | None, hx: State
    ) -> tuple[Tensor, State]:
        from lstmkit.layers import stack_states, unstack_states

        sizes = None if batch_sizes is None else batch_sizes.tolist()
        cells = list(layer.iter_cells())
        states = unstack_states(hx, len(cells))
        D = layer.num_directions
        finals: list[State] = []
        for k in range(layer.num_layers):
            outputs = []
            for d in range(D):
                y, state = run_direction(
                    cells[k * D + d], x, sizes, states[k * D + d], reverse=d == 1
                )
                outputs.append(y)
                finals.append(state)
            x = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (T, B, D·O) or (N, D·O)
            if k < layer.num_layers - 1 and layer.dropout > 0 and layer.training:
                x = F.dropout(x, layer.dropout, training=True)
        return x, stack_states(finals)


def run_direction(
    cell: RecurrentCell, x: Tensor, batch_sizes: list[int] | None, state: State, *, reverse: bool
) -> tuple[Tensor, State]:
    """Runs one cell over one sequence batch, forward in time or in reverse.

    ``x``: padded ``(T, B, F)`` with ``batch_sizes=None``, or packed data ``(N, F)`` whose step t
    holds the first ``batch_sizes[t]`` sequences. Returns outputs in the same layout and the state
    after each sequence's last step (its first, in reverse).
    """
    xp = cell.project_input(x)  # (T, B, G) or (N, G): one product for every step
    outputs: list[Tensor] = []
    if batch_sizes is None:
        # unbind, not xp[t]: indexing makes autograd allocate a full-size gradient per step.
        steps = xp.unbind(0)
        for xp_t in reversed(steps) if reverse else steps:
            state = cell.step(xp_t, state)
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
                ended.append(_rows(state, n, rows))
                state = _rows(state, 0, n)
                rows = n
            state = cell.step(xp_t, state)
            outputs.append(cell.output(state))
        ended.append(state)
        return torch.cat(outputs), _cat_states(ended[::-1])
    # In reverse the batch only grows: a sequence joins, from its initial state, at its last step.
    initial = state
    rows = batch_sizes[-1]
    state = _rows(initial, 0, rows)
    for xp_t, n in zip(reversed(steps), reversed(batch_sizes), strict=True):
        if n > rows:
            state = _cat_states([state, _rows(initial, rows, n)])
            rows = n
        state = cell.step(xp_t, state)
        outputs.append(cell.output(state))
    outputs.reverse()
    return torch.cat(outputs), state


def _rows(state: State, start: int, stop: int) -> State:
    return map_state(lambda s: s[start:stop], state)


def _cat_states(states: list[State]) -> State:
    first = states[0]
    if isinstance(first, Tensor):
        return torch.cat(states)  # type: ignore[arg-type]
    return type(first)(*(torch.cat([s[j] for s in states]) for j in range(len(first))))
