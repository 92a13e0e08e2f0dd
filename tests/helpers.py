"""Checks shared by the cell tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor
from torch.func import functional_call

from lstmkit import RecurrentCell, State


def assert_step_gradients(cell: RecurrentCell, x: Tensor, state: State) -> None:
    """gradcheck and gradgradcheck of a few steps of ``cell`` over ``x (T, B, I)``, with respect
    to the input, the initial state (but a clock, which counts steps) and every parameter
    (float64)."""
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in cell.named_parameters()]
    fields = [state] if isinstance(state, Tensor) else list(state)

    def steps(x: Tensor, *args: Tensor) -> tuple[Tensor, ...]:
        values = dict(zip(names, args[: len(names)], strict=True))
        rest = args[len(names) :]
        s = rest[0] if isinstance(state, Tensor) else type(state)(*rest)
        for x_t in x:
            s = functional_call(cell, values, (x_t, s))
        return (s,) if isinstance(s, Tensor) else tuple(s)

    names_of = getattr(state, "_fields", [""] * len(fields))
    fields = [
        f if n == "t" else f.detach().requires_grad_()  # (a clock, "t", counts steps)
        for n, f in zip(names_of, fields, strict=True)
    ]
    inputs = (x.detach().requires_grad_(), *params, *fields)
    assert torch.autograd.gradcheck(steps, inputs)
    assert torch.autograd.gradgradcheck(steps, inputs)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """An example script of examples/ as a module, so a test can call its functions."""
    spec = importlib.util.spec_from_file_location(f"examples.{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
