"""Dropout and zoneout inside the recurrence: the settings a layer carries, and the step that
applies them around a cell's own step (the reference engine runs it)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypedDict

import torch
from torch import Tensor

from lstmkit._state import State, first, like
from lstmkit.cells.base import RecurrentCell


@dataclass(frozen=True)
class Regularizers:
    """Dropout and zoneout inside the recurrence; all off by default. Active in training mode;
    zoneout also shapes evaluation (as its expectation)."""

    input_dropout: float = 0.0  # variational: one mask per sequence on every layer's input
    recurrent_dropout: float = 0.0  # variational: one mask per sequence on h_{t-1} (Gal 2016)
    zoneout_hidden: float = 0.0  # each unit of h keeps its previous value w.p. z (Krueger 2017)
    zoneout_cell: float = 0.0  # the same for the cell state c of LSTM-family cells

    @functools.cached_property  # asked on every call; the fields are frozen
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
    reverse: bool = False,
) -> tuple[Tensor, Step]:
    """The layer input after variational input dropout, and a step with recurrent dropout and
    zoneout around ``cell.step``. Masks are drawn per sequence (dropout) or per step (zoneout),
    for every sequence of the batch, all before the first step; a step of a packed batch takes
    the rows it runs. ``reverse``: the steps will run from the last to the first."""
    x, h_mask = sequence_masks(x, batch_sizes, initial, reg, training=training)
    sizes = batch_sizes if batch_sizes is not None else [x.shape[1]] * x.shape[0]
    c_width = None if isinstance(initial, Tensor) else initial[1].shape[-1]
    keep_h, keep_c = zoneout_keeps(
        sizes, (first(initial).shape[-1], c_width), first(initial), reg, training=training
    )
    offsets = [0, *itertools.accumulate(sizes)]
    order = iter(range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes)))

    def step(xp_t: Tensor, state: State) -> State:
        n = xp_t.shape[0]
        new = (
            cell.step(xp_t, state) if h_mask is None else cell.step(xp_t, state, h_mask=h_mask[:n])
        )
        at = offsets[next(order)]  # step t's rows in the packed layout
        kh = None if keep_h is None else keep_h[at : at + n]
        kc = None if keep_c is None else keep_c[at : at + n]
        return _zoneout(state, new, kh, kc)

    return x, step


def evaluation_step(cell: RecurrentCell[Any], reg: Regularizers) -> Step:
    """The step in evaluation mode without per-step draws: dropout is off and zoneout is its
    expectation, ``z * old + (1 - z) * new``; a traced loop (ONNX's Scan) can run it."""
    keep_h, keep_c = reg.zoneout_hidden or None, reg.zoneout_cell or None

    def step(xp_t: Tensor, state: State) -> State:
        return _zoneout(state, cell.step(xp_t, state), keep_h, keep_c)

    return step


def sequence_masks(
    x: Tensor, batch_sizes: list[int] | None, initial: State, reg: Regularizers, *, training: bool
) -> tuple[Tensor, Tensor | None]:
    """The input after variational input dropout, and the recurrent dropout mask ``(B, O)`` (or
    ``None``): the masks drawn once per sequence, input's first."""
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
    return x, h_mask


def zoneout_keeps(
    batch_sizes: list[int],
    widths: tuple[int, int | None],
    like: Tensor,
    reg: Regularizers,
    *,
    training: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """Zoneout for every step, drawn at once: for h and for c (``widths`` ``(O, H)``, H ``None``
    for a cell without c), how much of its previous value each unit keeps, ``(N, width)`` with
    step t's rows at its offset in the packed layout (``N = sum(batch_sizes)``). In training each
    unit keeps all of it with probability z (1) or none (0); in evaluation it keeps z, the
    expectation. ``None`` where zoneout is off."""
    rows = sum(batch_sizes)
    keeps: list[Tensor | None] = []
    for z, width in zip((reg.zoneout_hidden, reg.zoneout_cell), widths, strict=True):
        if z == 0 or width is None:
            keeps.append(None)
            continue
        shape = (rows, width)
        if training:
            keeps.append(
                (torch.rand(shape, dtype=like.dtype, device=like.device) < z).to(like.dtype)
            )
        else:
            keeps.append(torch.full(shape, z, dtype=like.dtype, device=like.device))
    return keeps[0], keeps[1]


def _dropout_mask(like: Tensor, p: float) -> Tensor:
    return torch.bernoulli(torch.full_like(like, 1.0 - p)) / (1.0 - p)


Keep = Tensor | float | None


def _zoneout(old: State, new: State, keep_h: Keep, keep_c: Keep) -> State:
    """Zoneout (Krueger et al. 2017): h_t = d ⊙ h_{t-1} + (1 - d) ⊙ h~_t with the keeps d of
    this step, and the same for the cell state c."""

    def mix(before: Tensor, after: Tensor, keep: Keep) -> Tensor:
        return after if keep is None else keep * before + (1 - keep) * after

    if isinstance(new, Tensor):
        assert isinstance(old, Tensor)
        return mix(old, new, keep_h)
    values = list(new)
    values[0] = mix(old[0], new[0], keep_h)  # h
    values[1] = mix(old[1], new[1], keep_c)  # c
    return like(new, values)
