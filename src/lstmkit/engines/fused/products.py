"""Which library multiplies inside the fused kernels: the BLAS torch ships (MKL on x86) or
oneDNN (inside torch, reached through its own operators).

On AMD processors MKL takes slow code paths where oneDNN does not, and the per-step products
are most of a recurrent layer's time; on Intel CPUs MKL is often the faster, above all for the
small products of small layers. No fixed choice is right everywhere, so the choice is measured:
the first time a shape of product runs (its rows rounded up to a power of two, its inner and
outer sizes, the number of threads), both libraries multiply it as the kernels do, interleaved,
and the faster wins (by more than the tuner's margin, else BLAS). The choice is kept with the
engine choices (:mod:`lstmkit.engines.tuning`), so a fixed cache gives a fixed choice and the
same rounding.

``LSTMKIT_PRODUCTS=blas`` or ``onednn`` forces a library; with ``LSTMKIT_AUTOTUNE=0`` nothing is
measured and BLAS multiplies. float64 is always BLAS (oneDNN has no double-precision path).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit._errors import LstmkitValueError
from lstmkit.engines.tuning import TUNER, Tuner, autotune_enabled, bucket

BLAS, ONEDNN = 0, 1  # must match the enum in fused.cpp
LIBRARIES = {"blas": BLAS, "onednn": ONEDNN}
_LAST: dict[tuple[int, int, int], int] = {}
"""The library last chosen for each shape (rows bucketed), which a traced call reuses."""

PRODUCT_WORK = 2e8
"""Multiply-adds per timed measurement (at least one product): about a millisecond, so that the
timer's resolution does not matter and a large layer's first call is not held up long."""


def forced() -> str | None:
    """The library ``LSTMKIT_PRODUCTS`` names (``blas`` or ``onednn``), or ``None`` to measure."""
    value = os.environ.get("LSTMKIT_PRODUCTS", "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in LIBRARIES:
        raise LstmkitValueError(
            f"LSTMKIT_PRODUCTS must be one of auto, {', '.join(LIBRARIES)}; got {value!r}"
        )
    return value


def library(
    kernels: Any, rows: int, inner: int, outer: int, dtype: torch.dtype, *, tuner: Tuner = TUNER
) -> int:
    """The library for a step's product of ``(rows, inner)`` by ``(inner, outer)``."""
    if dtype != torch.float32:
        return BLAS
    if torch._C._get_tracing_state():  # torch.jit.trace: sizes are tensors; nothing is measured
        return _LAST.get((bucket(int(rows)), int(inner), int(outer)), BLAS)
    shape = (bucket(rows), inner, outer)
    if torch.compiler.is_compiling():  # traced: what eager runs chose, without asking the kernels
        return _LAST.get(shape, BLAS)
    if not kernels.has_onednn():
        return BLAS
    chosen = forced()
    if chosen is not None:
        return LIBRARIES[chosen]
    if not autotune_enabled() or min(rows, inner, outer) == 0:
        return BLAS
    key = _key(*shape, torch.get_num_threads())
    name = tuner.known(key, LIBRARIES.keys())  # asked on every call: no timers built for it
    if name is None:
        name = tuner.choose_among(key, _timers(kernels, *shape))
    _LAST[shape] = LIBRARIES[name]
    return _LAST[shape]


@functools.lru_cache(maxsize=1024)
def _key(rows: int, inner: int, outer: int, threads: int) -> str:
    """The tuner's key for a shape of product (built once per shape, not on every call)."""
    return f"products float32 rows={rows} inner={inner} outer={outer} threads={threads}"


def _timers(kernels: Any, rows: int, inner: int, outer: int) -> dict[str, Callable[[], float]]:
    """For each library, a timer of the product as the kernels multiply it: seconds a call."""
    reps = max(1, min(20, int(PRODUCT_WORK // (rows * inner * outer))))

    def timer(lib: int) -> Callable[[], float]:
        return lambda: float(kernels.product_seconds(rows, inner, outer, lib, reps))

    return {name: timer(lib) for name, lib in LIBRARIES.items()}


def project(x: Tensor, weight: Tensor, lib: int) -> Tensor:
    """``x @ weight.T``, the input projection of every step at once, differentiable, multiplied
    by the library ``lib`` (see :func:`library`, asked for this product's shape)."""
    if lib == BLAS:
        return F.linear(x, weight)
    out: Tensor = _OneDNNLinear.apply(x, weight)  # type: ignore[no-untyped-call]
    return out


def _onednn(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b.T`` by oneDNN (torch's own operator, the one its compiler calls on the CPU)."""
    out: Tensor = torch.ops.mkldnn._linear_pointwise(
        a.contiguous(), b.contiguous(), None, "none", [], ""
    )
    return out


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return _onednn(x, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        dx = _onednn(dy, weight.t()) if ctx.needs_input_grad[0] else None  # dY W
        dw = _onednn(dy.t(), x.t()) if ctx.needs_input_grad[1] else None  # dY^T X
        return dx, dw
