"""The reference engine: a plain Python loop over the cell, the truth every engine is tested
against. It runs any cell, and its only optimisation is the one every engine shares: the input
projection of all time steps is one product before the loop. With resets it runs the pieces
between them (:func:`run_layers`); the cell states are the states' c, kept at every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lstmkit._state import State, cat_states, cell_state, state_rows
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines.loop import Directions, run_layers
from lstmkit.engines.registry import Engine, Layer, Resets
from lstmkit.engines.regularizers import Step, regularized


class ReferenceEngine(Engine):
    name = "reference"
    supports = "every cell"

    def unsupported(self, layer: Layer) -> str | None:
        return None

    def run(
        self, layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State
    ) -> tuple[Tensor, State]:
        return run_layers(layer, x, hx, _Directions(layer, batch_sizes).plain)

    def run_stream(
        self,
        layer: Layer,
        x: Tensor,
        batch_sizes: Tensor | None,
        hx: State,
        *,
        resets: Resets | None = None,
        cell_states: bool = False,
    ) -> tuple[Tensor, State, Tensor | None]:
        return _Directions(layer, batch_sizes).stack(layer, x, hx, resets, cell_states)


class _Directions(Directions):
    """The reference engine's direction of one layer, as :func:`run_layers` calls it: the
    regularisers drawn at each call (so, with resets, for each piece), then the loop over the
    steps."""

    def __init__(self, layer: Layer, batch_sizes: Tensor | None) -> None:
        self.layer = layer
        self.sizes = None if batch_sizes is None else batch_sizes.tolist()

    def run(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool, cells: bool
    ) -> tuple[Tensor, State, Tensor | None]:
        reg, step = self.layer.regularizers, None
        if reg.active:
            x, step = regularized(
                cell, x, self.sizes, state, reg, training=self.layer.training, reverse=reverse
            )
        xp = cell.project_input(x)  # (T, B, G) or (N, G): one product for every step
        advance = cell.step if step is None else step
        keep = cell_state if cells else None
        return run_steps(xp, self.sizes, state, advance, cell.output, keep, reverse)


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
    out, final, _ = run_steps(xp, batch_sizes, state, advance, cell.output, None, reverse)
    return out, final


def run_steps(
    xp: Tensor,
    batch_sizes: list[int] | None,
    state: State,
    advance: Step,
    emit: Callable[[State], Tensor],
    keep: Callable[[State], Tensor] | None,
    reverse: bool,
) -> tuple[Tensor, State, Tensor | None]:
    """The loop over the steps: ``state = advance(xp_t, state)`` for each step's slice of
    ``xp`` (padded ``(T, B, G)`` or packed ``(N, G)`` with ``batch_sizes``), in reverse if
    asked. Returns ``emit(state)`` of every step, the state after each sequence's last step (its
    first, in reverse) and, where ``keep`` is given, ``keep(state)`` of every step, all in the
    layout of ``xp``."""
    outputs: list[Tensor] = []
    kept: list[Tensor] = []

    def record(state: State) -> None:
        outputs.append(emit(state))
        if keep is not None:
            kept.append(keep(state))

    if batch_sizes is None:
        # unbind, not xp[t]: indexing makes autograd allocate a full-size gradient per step.
        steps = xp.unbind(0)
        for xp_t in reversed(steps) if reverse else steps:
            state = advance(xp_t, state)
            record(state)
        join = torch.stack
    else:
        state = _packed_steps(
            torch.split(xp, batch_sizes), batch_sizes, state, advance, record, reverse
        )
        join = torch.cat
    if reverse:
        outputs.reverse()
        kept.reverse()
    return join(outputs), state, join(kept) if keep is not None else None


def _packed_steps(
    steps: tuple[Tensor, ...],
    batch_sizes: list[int],
    state: State,
    advance: Step,
    record: Callable[[State], None],
    reverse: bool,
) -> State:
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
            record(state)
        ended.append(state)
        return cat_states(ended[::-1])
    # In reverse the batch only grows: a sequence joins, from its initial state, at its last step.
    initial = state
    rows = batch_sizes[-1]
    state = state_rows(initial, 0, rows)
    for xp_t, n in zip(reversed(steps), reversed(batch_sizes), strict=True):
        if n > rows:
            state = cat_states([state, state_rows(initial, rows, n)])
            rows = n
        state = advance(xp_t, state)
        record(state)
    return state
