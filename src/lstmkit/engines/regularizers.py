"""Dropout and zoneout inside the recurrence: the settings a layer carries, and the step that
applies them around a cell's own step (the reference engine runs it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypedDict

import torch
from torch import Tensor

from lstmkit._state import State, first
from lstmkit.cells.base import RecurrentCell


@dataclass(frozen=True)
class Regularizers:
    """Dropout and zoneout inside the recurrence; all off by default. Active in training mode;
    zoneout also shapes evaluation (as its expectation)."""

    input_dropout: float = 0.0  # variational: one mask per sequence on every layer's input
    recurrent_dropout: float = 0.0  # variational: one mask per sequence on h_{t-1} (Gal 2016)
    zoneout_hidden: float = 0.0  # each unit of h keeps its previous value w.p. z (Krueger 2017)
    zoneout_cell: float = 0.0  # the same for the cell state c of LSTM-family cells

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))


class RegularizerOptions(TypedDict, total=False):
    """The keyword options of :class:`Regularizers`, taken by every sequence layer."""

    input_dropout: float
    recurrent_dropout: float
    zoneout_hidden: float
    zoneout_cell: float


Step = Callable[[Tensor, State], State]


def regularized(
    cell: RecurrentCell[Any],
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
    batch = first(initial).shape[0]
    if training and reg.input_dropout > 0:
        mask = _dropout_mask(x.new_empty(batch, x.shape[-1]), reg.input_dropout)  # (B, F)
        if batch_sizes is None:
            x = x * mask  # (T, B, F): the same mask at every step
        else:
            rows = torch.cat([torch.arange(n, device=x.device) for n in batch_sizes])
            x = x * mask[rows]  # packed rows: step t holds sequences 0 .. n_t - 1
    h_mask = None
    if training and reg.recurrent_dropout > 0:
        h_mask = _dropout_mask(torch.empty_like(first(initial)), reg.recurrent_dropout)  # (B, O)

    def step(xp_t: Tensor, state: State) -> State:
        n = xp_t.shape[0]
        if h_mask is None:
            new = cell.step(xp_t, state)
        else:
            new = cell.step(xp_t, state, h_mask=h_mask[:n])
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
