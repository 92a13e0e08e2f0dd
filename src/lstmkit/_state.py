"""Recurrent states and the helpers every part that carries them shares.

A state is a tensor ``h`` or a named tuple of tensors whose first field is ``h``
(``LSTMState(h, c)``). Cells make and return them; layers stack them over layers and
directions, ``(L·D, B, *)``; engines split them again and take the rows of a packed batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeAlias

import torch
from torch import Tensor

State: TypeAlias = Tensor | tuple[Tensor, ...]
"""A cell's state: one tensor, or a named tuple of tensors whose first field is ``h``."""


def is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def like(template: tuple[Tensor, ...], fields: Iterable[Tensor]) -> tuple[Tensor, ...]:
    """``fields`` in the tuple type of ``template``: a named tuple, or a plain one."""
    if is_namedtuple(template):
        return type(template)(*fields)
    return tuple(fields)


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    """Applies ``fn`` to every tensor of ``state``, keeping its structure."""
    if isinstance(state, Tensor):
        return fn(state)
    return like(state, (fn(s) for s in state))


def first(state: State) -> Tensor:
    """The state's ``h``: the tensor itself, or the first field."""
    return state if isinstance(state, Tensor) else state[0]


def stack_states(states: list[State]) -> State:
    """Per-cell states → one state with every tensor stacked on a new dim 0: ``(L·D, B, *)``."""
    head = states[0]
    if isinstance(head, Tensor):
        return torch.stack(states)  # type: ignore[arg-type]
    return like(head, (torch.stack([s[j] for s in states]) for j in range(len(head))))


def unstack_states(state: State, count: int) -> list[State]:
    """The inverse of :func:`stack_states`: ``count`` per-cell states."""
    if isinstance(state, Tensor):
        return list(state.unbind(0))
    parts = [t.unbind(0) for t in state]
    return [like(state, (p[j] for p in parts)) for j in range(count)]


def state_rows(state: State, start: int, stop: int) -> State:
    """Rows ``start:stop`` of every tensor: some of the batch's sequences."""
    return map_state(lambda s: s[start:stop], state)


def cat_states(states: list[State]) -> State:
    """States of disjoint rows → one state, concatenated along the batch."""
    head = states[0]
    if isinstance(head, Tensor):
        return torch.cat(states)  # type: ignore[arg-type]
    return like(head, (torch.cat([s[j] for s in states]) for j in range(len(head))))


def cast_state(state: State, dtype: torch.dtype) -> State:
    return map_state(lambda t: t.to(dtype), state)


def select_rows(mask: Tensor, chosen: State, other: State) -> State:
    """Per sequence, ``chosen``'s row where ``mask`` ``(B,)`` is true and ``other``'s elsewhere;
    every tensor ``(B, *)`` or stacked ``(S, B, W)`` (differentiable in both)."""
    rows = mask[:, None]  # (B, 1): broadcasts over the features and any stacked dim before B
    if isinstance(other, Tensor):
        assert isinstance(chosen, Tensor)
        return torch.where(rows, chosen, other)
    return like(other, (torch.where(rows, a, b) for a, b in zip(chosen, other, strict=True)))


def has_cell_state(state: State) -> bool:
    """Whether the state carries a cell state: a named tuple with a field ``c`` (the LSTM
    family's ``(h, c)``)."""
    return "c" in getattr(state, "_fields", ())


def cell_state(state: State) -> Tensor:
    """The state's field ``c`` (see :func:`has_cell_state`)."""
    c: Tensor = getattr(state, "c")  # noqa: B009 (State is a union; only named tuples have c)
    return c
