"""The loop over layers and directions that every engine shares: each direction of each layer
is one call of the engine's own ``run_direction``, layer k reads the outputs of layer k - 1,
the directions' outputs are concatenated, and dropout acts between layers.

Resets (:class:`Resets`) split each direction's run at the steps where any sequence starts
over: the pieces ``[s_k, s_{k+1})`` run one call each, the state carried from one to the next,
and at each boundary the rows that start over take the reset state instead (``torch.where``,
differentiable). The reverse direction runs the pieces from the last to the first. A run is
then one call of ``run_direction`` per piece, so a reset costs one call per distinct step at
which some sequence starts over."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._errors import LstmkitValueError
from lstmkit._state import State, select_rows, stack_states, unstack_states
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines.registry import Layer, Resets

RunDirection = Callable[[RecurrentCell[Any], Tensor, State, bool], tuple[Tensor, State]]
"""``run_direction(cell, x, state, reverse) -> (outputs, final state)`` for one direction of
one layer, outputs in the layout of ``x``."""

RunDirectionWithCells = Callable[
    [RecurrentCell[Any], Tensor, State, bool], tuple[Tensor, State, Tensor]
]
"""``run_direction(cell, x, state, reverse) -> (outputs, final state, cell states)``: as
:data:`RunDirection`, and the cell state c of every step, in the layout of ``x``
(``(T, B, H)`` or packed ``(N, H)``)."""

_Run = Callable[[RecurrentCell[Any], Tensor, State, bool], tuple[Tensor, State, Tensor | None]]


class Directions(ABC):
    """An engine's direction of one layer, in the two forms :func:`run_layers` and
    :func:`run_layers_with_cells` call, and the whole stack run through them."""

    @abstractmethod
    def run(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool, cells: bool
    ) -> tuple[Tensor, State, Tensor | None]:
        """Outputs, final state and, with ``cells``, the cell state of every step."""

    def plain(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State]:
        out, final, _ = self.run(cell, x, state, reverse, False)
        return out, final

    def with_cells(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State, Tensor]:
        out, final, cells = self.run(cell, x, state, reverse, True)
        assert cells is not None
        return out, final, cells

    def stack(
        self, layer: Layer, x: Tensor, hx: State, resets: Resets | None, cells: bool
    ) -> tuple[Tensor, State, Tensor | None]:
        """Every layer and direction, as :meth:`Engine.run_stream` returns them."""
        if cells:
            return run_layers_with_cells(layer, x, hx, self.with_cells, resets=resets)
        out, h_n = run_layers(layer, x, hx, self.plain, resets=resets)
        return out, h_n, None


def run_layers(
    layer: Layer,
    x: Tensor,
    hx: State,
    run_direction: RunDirection,
    *,
    resets: Resets | None = None,
) -> tuple[Tensor, State]:
    """Runs every layer and direction of ``layer`` over ``x``, ``(T, B, F)`` or packed
    ``(N, F)``; ``hx`` stacks the cells' states, ``(L·D, B, *)``. Returns the top layer's
    outputs ``(..., D·O)`` and the final states stacked like ``hx``. ``resets`` (padded ``x``
    only): where sequences start over (see the module's docstring)."""

    def without_cells(
        cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State, Tensor | None]:
        y, final = run_direction(cell, x, state, reverse)
        return y, final, None

    out, h_n, _ = _run(layer, x, hx, without_cells, resets)
    return out, h_n


def run_layers_with_cells(
    layer: Layer,
    x: Tensor,
    hx: State,
    run_direction: RunDirectionWithCells,
    *,
    resets: Resets | None = None,
) -> tuple[Tensor, State, Tensor]:
    """:func:`run_layers`, and the cell states of every layer: ``(L, T, B, D·H)`` (packed:
    ``(L, N, D·H)``), each layer's directions side by side as its outputs are."""
    out, h_n, cells = _run(layer, x, hx, run_direction, resets)
    return out, h_n, torch.stack(cells)


def _run(
    layer: Layer, x: Tensor, hx: State, run: _Run, resets: Resets | None
) -> tuple[Tensor, State, list[Tensor]]:
    cells = list(layer.iter_cells())
    states = unstack_states(hx, len(cells))
    D = layer.num_directions
    finals: list[State] = []
    layer_cells: list[Tensor] = []
    starts: list[State] = []
    bounds: list[int] = []
    if resets is not None:
        if x.dim() != 3:
            raise LstmkitValueError(
                f"resets need padded input (T, B, F); got {x.dim()}-D input of shape "
                f"{tuple(x.shape)}"
            )
        starts = unstack_states(resets.state, len(cells))
        # the steps after the first at which any sequence starts over: one host sync per call
        bounds = (torch.nonzero(resets.mask[1:].any(dim=1)).flatten() + 1).tolist()
    for k in range(layer.num_layers):
        outputs, cs = [], []
        for d in range(D):
            i = k * D + d
            if resets is None:
                y, final, c = run(cells[i], x, states[i], d == 1)
            else:
                pieces = _Pieces(resets.mask, bounds, starts[i])
                y, final, c = pieces.run(run, cells[i], x, states[i], d == 1)
            outputs.append(y)
            finals.append(final)
            if c is not None:
                cs.append(c)
        x = outputs[0] if D == 1 else torch.cat(outputs, dim=-1)  # (..., D·O)
        if cs:
            layer_cells.append(cs[0] if D == 1 else torch.cat(cs, dim=-1))  # (..., D·H)
        if k < layer.num_layers - 1 and layer.dropout > 0 and layer.training:
            x = F.dropout(x, layer.dropout, training=True)
    return x, stack_states(finals), layer_cells


class _Pieces:
    """One direction of one layer run in pieces between the steps where sequences start over."""

    def __init__(self, mask: Tensor, bounds: list[int], start: State) -> None:
        self.mask, self.bounds, self.start = mask, bounds, start  # (T, B), steps, a cell's state

    def run(
        self, run: _Run, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State, Tensor | None]:
        T = x.shape[0]
        edges = [0, *self.bounds, T]
        spans = list(itertools.pairwise(edges))
        if not reverse:  # a sequence that starts over at step 0 starts from the reset state
            state = select_rows(self.mask[0], self.start, state)
        ys: list[Tensor] = []
        cs: list[Tensor | None] = []
        for a, b in reversed(spans) if reverse else spans:
            at = b if reverse else a  # the boundary this piece begins at, in the run's order
            if 0 < at < T:
                state = select_rows(self.mask[at], self.start, state)
            y, state, c = run(cell, x[a:b], state, reverse)
            ys.append(y)
            cs.append(c)
        if reverse:
            ys.reverse()
            cs.reverse()
        if len(ys) == 1:
            return ys[0], state, cs[0]
        cells = None if cs[0] is None else torch.cat(cs)  # type: ignore[arg-type]
        return torch.cat(ys), state, cells
