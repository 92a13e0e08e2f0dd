"""Validation at the public boundary: every error says what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._state import State


def describe(value: object) -> str:
    """A short description of a value for error messages."""
    if isinstance(value, Tensor):
        return f"a Tensor of shape {tuple(value.shape)}, {value.dtype} on {value.device}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"{type(value).__name__} {value!r}"


def check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LstmkitTypeError(f"{name} must be an int, got {describe(value)}")
    if value <= 0:
        raise LstmkitValueError(f"{name} must be positive, got {value}")


def check_probability(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LstmkitTypeError(f"{name} must be a number in [0, 1], got {describe(value)}")
    if not 0.0 <= value <= 1.0:
        raise LstmkitValueError(f"{name} must be in [0, 1], got {value}")


def check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise LstmkitValueError(f"unknown {name} {value!r}; expected one of {valid}")


def check_input_tensor(input: object, *, what: str, like: Tensor | None) -> Tensor:
    if not isinstance(input, Tensor):
        raise LstmkitTypeError(f"{what} must be a Tensor, got {describe(input)}")
    if not input.is_floating_point():
        raise LstmkitTypeError(f"{what} must be floating point, got dtype {input.dtype}")
    if like is not None:
        if input.dtype != like.dtype:
            raise LstmkitTypeError(
                f"{what} has dtype {input.dtype} but the parameters have {like.dtype}; "
                f"convert one of them (module.to({input.dtype}) or input.to({like.dtype}))"
            )
        if input.device != like.device:
            raise LstmkitValueError(
                f"{what} is on {input.device} but the parameters are on {like.device}; "
                "move one of them"
            )
    return input


def check_state(
    hx: object, expected: State, *, unbatched: bool, what: str, stacked: int | None = None
) -> State:
    """Checks a user's state against a cell's zero state ``expected`` and returns it in its type.

    ``expected`` has a cell's batched shapes ``(B, *)``; a layer's state stacks ``stacked`` of
    them, ``(stacked, B, *)``. With ``unbatched`` the user's tensors lack the batch dimension and
    get it back here.
    """
    batch_dim = 0 if stacked is None else 1

    def one(value: object, template: Tensor, name: str) -> Tensor:
        shape = list(template.shape) if stacked is None else [stacked, *template.shape]
        if unbatched:
            del shape[batch_dim]
        if not isinstance(value, Tensor):
            raise LstmkitTypeError(
                f"{name}: expected a Tensor of shape {tuple(shape)}, got {describe(value)}"
            )
        if list(value.shape) != shape:
            hint = ""
            if unbatched and value.dim() == len(shape) + 1:
                hint = " (the input is unbatched, so the state must be too)"
            elif not unbatched and value.dim() == len(shape) - 1:
                hint = " (the input is batched, so the state must be too)"
            raise LstmkitValueError(
                f"{name}: expected shape {tuple(shape)}, got {tuple(value.shape)}{hint}"
            )
        if value.dtype != template.dtype:
            raise LstmkitTypeError(
                f"{name}: expected dtype {template.dtype} (the input's), got {value.dtype}"
            )
        if value.device != template.device:
            raise LstmkitValueError(
                f"{name}: expected device {template.device} (the input's), got {value.device}"
            )
        return value.unsqueeze(batch_dim) if unbatched else value

    if isinstance(expected, Tensor):
        return one(hx, expected, what)
    fields: tuple[str, ...] = getattr(
        expected, "_fields", tuple(str(i) for i in range(len(expected)))
    )
    names = ", ".join(fields)
    if not isinstance(hx, (tuple, list)):
        raise LstmkitTypeError(f"{what}: expected a tuple ({names}) of Tensors, got {describe(hx)}")
    if len(hx) != len(expected):
        raise LstmkitValueError(
            f"{what}: expected a tuple ({names}) of {len(expected)} Tensors, got {describe(hx)}"
        )
    values: list[Any] = [
        one(v, t, f"{what}.{f}") for v, t, f in zip(hx, expected, fields, strict=True)
    ]
    return type(expected)(*values) if hasattr(expected, "_fields") else tuple(values)


def check_lengths(lengths: object, *, batch_size: int, steps: int) -> Tensor:
    """Validates per-sequence lengths for padded input; returns them as a CPU int64 tensor."""
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise LstmkitTypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        lens = lengths.detach().to("cpu", torch.int64)
    elif isinstance(lengths, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in lengths
    ):
        lens = torch.tensor(lengths, dtype=torch.int64)
    else:
        raise LstmkitTypeError(
            f"lengths must be a 1-D integer Tensor or a list of ints, got {describe(lengths)}"
        )
    if lens.dim() != 1 or lens.numel() != batch_size:
        raise LstmkitValueError(
            f"lengths must have one entry per sequence: expected shape ({batch_size},), "
            f"got {tuple(lens.shape)}"
        )
    if bool((lens <= 0).any()):
        raise LstmkitValueError(f"lengths must be positive, got {lens.tolist()}")
    if bool((lens > steps).any()):
        raise LstmkitValueError(
            f"lengths must not exceed the sequence length {steps}, got {lens.tolist()}"
        )
    return lens
