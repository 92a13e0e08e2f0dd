"""The reference engine: a plain Python loop over the cell, the truth every engine is tested
against. It runs any cell, and its only optimisation is the one every engine shares: the input
projection of all time steps is one product before the loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cells.base import RecurrentCell, State, map_state
from lstmkit.engines.registry import Engine

if TYPE_CHECKING:
    from lstmkit.layers import Recurrent, Regularizers


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
        reg = layer.regularizers
        finals: list[State] = []
        for k in range(layer.num_layers):
            outputs = []
            for d in range(D):
                cell, state = cells[k * D + d], states[k * D + d]
                x_in, step = x, None
                if reg.active:
                    x_in, step = _regularized(cell, x, sizes, state, reg, training=layer.training)
                y, state = run_direction(cell, x_in, sizes, state, reverse=d == 1, step=step)
                outputs.append(y)
                finals.append(state)
            x = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (T, B, D·O) or (N, D·O)
            if k < layer.num_layers - 1 and layer.dropout > 0 and layer.training:
                x = F.dropout(x, layer.dropout, training=True)
        return x, stack_states(finals)


Step = Callable[[Tensor, State], State]


def run_direction(
    cell: RecurrentCell,
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
                ended.append(_rows(state, n, rows))
                state = _rows(state, 0, n)
                rows = n
            state = advance(xp_t, state)
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
        state = advance(xp_t, state)
        outputs.append(cell.output(state))
    outputs.reverse()
    return torch.cat(outputs), state


def _regularized(
    cell: RecurrentCell,
    x: Tensor,
    batch_sizes: list[int] | None,
    initial: State,
    reg: Regularizers,
    *,
    training: bool,
) -> tuple[Tensor, Step]:
    """The layer input after variational input dropout, and a step with recurrent dropout and
    zoneout around ``cell.step``. Masks are drawn per sequence (dropout) or per step (zoneout),
    for every sequence of the batch; a step of a packed batch takes the rows it runs."""
    batch = initial.shape[0] if isinstance(initial, Tensor) else initial[0].shape[0]
    if training and reg.input_dropout > 0:
        mask = _dropout_mask(x.new_empty(batch, x.shape[-1]), reg.input_dropout)  # (B, F)
        if batch_sizes is None:
            x = x * mask  # (T, B, F): the same mask at every step
        else:
            rows = torch.cat([torch.arange(n, device=x.device) for n in batch_sizes])
            x = x * mask[rows]  # packed rows: step t holds sequences 0 .. n_t - 1
    h_mask = None
    if training and reg.recurrent_dropout > 0:
        h = initial if isinstance(initial, Tensor) else initial[0]
        h_mask = _dropout_mask(torch.empty_like(h), reg.recurrent_dropout)  # (B, O)

    def step(xp_t: Tensor, state: State) -> State:
        n = xp_t.shape[0]
        if h_mask is None:
            new = cell.step(xp_t, state)
        else:
            new = cell.step(xp_t, state, h_mask=h_mask[:n])  # type: ignore[call-arg]
        return _zoneout(state, new, reg.zoneout_hidden, reg.zoneout_cell, training=training)

    return x, step


def _dropout_mask(like: Tensor, p: float) -> Tensor:
    return torch.bernoulli(torch.full_like(like, 1.0 - p)) / (1.0 - p)


def _zoneout(old: State, new: State, z_h: float, z_c: float, *, training: bool) -> State:
    """Each unit keeps its old value with probability z (training), or mixes in expectation."""

    def mix(before: Tensor, after: Tensor, z: float) -> Tensor:
        if z == 0:
            return after
        if training:
            keep = torch.rand_like(after) < z
            return torch.where(keep, before, after)
        return z * before + (1.0 - z) * after

    if isinstance(new, Tensor):
        assert isinstance(old, Tensor)
        return mix(old, new, z_h)
    values = list(new)
    values[0] = mix(old[0], new[0], z_h)  # h
    if z_c > 0:
        values[1] = mix(old[1], new[1], z_c)  # c
    return type(new)(*values)


def _rows(state: State, start: int, stop: int) -> State:
    return map_state(lambda s: s[start:stop], state)


def _cat_states(states: list[State]) -> State:
    first = states[0]
    if isinstance(first, Tensor):
        return torch.cat(states)  # type: ignore[arg-type]
    return type(first)(*(torch.cat([s[j] for s in states]) for j in range(len(first))))
