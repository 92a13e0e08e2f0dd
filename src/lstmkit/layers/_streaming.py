"""What a sequence layer's ``resets=`` and ``return_cell_states=True`` need at its public
boundary: their checks, the engine that runs them, and the cell states in the input's layout.
The runs themselves are the engines' (:meth:`lstmkit.engines.Engine.run_stream`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._state import State, has_cell_state, map_state, select_rows
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines.registry import Engine, Layer, Resets, supporting_engines

_CPU = torch.device("cpu")


class Request(NamedTuple):
    """What a call asked for beyond torch.nn's ``output, h_n``."""

    resets: Any  # as given: a (T, B) bool Tensor, or None
    reset_state: Any  # as given: a state stacked like hx, or None for zeros
    cell_states: bool


def request(
    cell: RecurrentCell[Any], resets: object, reset_state: object, cell_states: object
) -> Request | None:
    """The call's request, checked for what can be checked before the input is read; None
    where it asks for nothing."""
    if not isinstance(cell_states, bool):
        raise LstmkitTypeError(f"return_cell_states must be a bool, got {describe(cell_states)}")
    if reset_state is not None and resets is None:
        raise LstmkitValueError(
            "reset_state is the state that resets= makes sequences start from; pass resets= "
            "as well, or leave reset_state out"
        )
    if cell_states:
        refuse_cell_states(cell)
    if resets is None and not cell_states:
        return None
    return Request(resets, reset_state, cell_states)


def refuse_cell_states(cell: RecurrentCell[Any]) -> None:
    """Raises unless ``cell``'s state carries a cell state ``c`` (the LSTM family)."""
    state = cell.initial_state(1, dtype=torch.float32, device=_CPU)
    if has_cell_state(state):
        return
    got = (
        "a single tensor h"
        if isinstance(state, Tensor)
        else "the fields (" + ", ".join(getattr(state, "_fields", ())) + ")"
    )
    raise LstmkitValueError(
        "return_cell_states=True needs a cell whose state has a cell state c (expected a state "
        f"with a field 'c', as the LSTM family's (h, c)); {type(cell).__name__}'s state has "
        f"{got}. Its outputs are its h at every step"
    )


def reset_mask(
    resets: object, *, steps: int, batch: int, batch_first: bool, unbatched: bool, like: Tensor
) -> Tensor:
    """``resets`` checked against the input (``steps`` and ``batch`` of its time-major view) and
    returned time-major: ``(T, B)`` bool."""
    expected: tuple[int, ...]
    if unbatched:
        expected, name = (steps,), "(T,) for unbatched input"
    elif batch_first:
        expected, name = (batch, steps), "(B, T) with batch_first"
    else:
        expected, name = (steps, batch), "(T, B)"
    if not isinstance(resets, Tensor):
        raise LstmkitTypeError(
            f"resets must be a bool Tensor of shape {name} = {expected}, got {describe(resets)}"
        )
    if resets.dtype != torch.bool:
        raise LstmkitTypeError(
            f"resets must be a bool Tensor: expected dtype torch.bool, got {resets.dtype} "
            "(resets.bool() or done > 0 gives one)"
        )
    if tuple(resets.shape) != expected:
        raise LstmkitValueError(
            f"resets must have one flag per step and sequence, {name}: expected shape "
            f"{expected}, got {tuple(resets.shape)}"
        )
    if resets.device != like.device:
        raise LstmkitValueError(
            f"resets must be on the input's device: expected {like.device}, got {resets.device}"
        )
    if unbatched:
        return resets[:, None]  # (T, 1)
    return resets.transpose(0, 1) if batch_first else resets


def refuse_packed_resets(what: str) -> LstmkitValueError:
    """The error for resets with sequences of different lengths, saying what to do instead."""
    return LstmkitValueError(
        f"resets= runs padded input only, not {what}. Pass the padded batch without lengths=: "
        "a one-direction layer's outputs up to each sequence's length do not depend on the "
        "steps after it, so read each sequence's last h (and, with return_cell_states=True, its "
        "c) from the outputs at its last step"
    )


def streaming_engine(layer: Layer, chosen: Engine) -> Engine:
    """The engine that runs a call with resets or cell states: the one chosen, if it offers
    them, else (for "auto") the best that does."""
    if chosen.streams:
        return chosen
    if layer.engine == "auto":
        for engine in supporting_engines(layer):
            if engine.streams:
                return engine
    raise LstmkitValueError(
        f"engine {chosen.name!r} does not run resets= or return_cell_states=True; use an engine "
        "that does ('reference', 'native' or 'fused', or \"auto\")"
    )


def cells_layout(cells: Tensor, batch_first: bool, unbatched: bool) -> Tensor:
    """Time-major cell states ``(L, T, B, W)`` in the input's layout: ``(L, B, T, W)`` with
    batch_first, ``(L, T, W)`` for unbatched input."""
    if unbatched:
        return cells.squeeze(2)
    return cells.transpose(1, 2) if batch_first else cells


def padded_cells(
    cells: Tensor, packed: PackedSequence, total_length: int | None, batch_first: bool
) -> Tensor:
    """Cell states of packed data ``(L, N, W)`` → ``(L, T, B, W)`` (``(L, B, T, W)`` with
    batch_first) in the batch's own order, zero past each sequence's length."""
    L, N, W = cells.shape
    flat = PackedSequence(
        cells.movedim(0, 1).reshape(N, L * W),  # (N, L·W)
        packed.batch_sizes,
        packed.sorted_indices,
        packed.unsorted_indices,
    )
    padded, _ = pad_packed_sequence(flat, total_length=total_length)  # (T, B, L·W)
    by_layer = padded.reshape(*padded.shape[:2], L, W).movedim(2, 0)  # (L, T, B, W)
    return cells_layout(by_layer, batch_first, False)


def resets(ask: Request, start: State, x: Tensor, batch_first: bool, *, unbatched: bool) -> Resets:
    """The engines' :class:`Resets` for time-major padded input ``x`` ``(T, B, F)``, sequences
    starting over from ``start``."""
    layout = {"batch_first": batch_first, "unbatched": unbatched}
    mask = reset_mask(ask.resets, steps=x.shape[0], batch=x.shape[1], like=x, **layout)
    return Resets(mask, start)


def reset_one_step(
    ask: Request, stacked: State, start: State | None, step: Tensor, batch_first: bool
) -> State | None:
    """The given state of a one-step call ``step`` ``(B, F)`` with the rows that start over set
    to ``start`` (zeros where no reset_state was given); None where a reset_state was given but
    not as the layer takes it (``start`` None: the full path then checks it)."""
    mask = reset_mask(
        ask.resets,
        steps=1,
        batch=step.shape[0],
        batch_first=batch_first,
        unbatched=False,
        like=step,
    )
    if ask.reset_state is None:
        start = map_state(torch.zeros_like, stacked)
    return None if start is None else select_rows(mask[0], start, stacked)
