"""A Grid LSTM block with priority "time" as a torch operator, ``torch.ops.lstmkit.
grid_time_forward``, with its fake implementation and registered backward (as :mod:`ops` does
for the LSTM, GRU and RNN kernels). Each step runs the block's depth transform, then its time
transform on the depth vector just made (fused.cpp's ``grid_time_forward_impl``), so no part of
it runs as one product over all steps but the depth transform's input from below.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lstmkit.engines.fused import build as _build
from lstmkit.engines.fused.ops import (
    _backward_of,
    _eager,
    _filled,
    _grad,
    _grad_or_empty,
    _none_if_empty,
    call,
)

GRID_LSTM, GRID_TANH, GRID_RELU = 0, 1, 2  # the depth transform (fused.cpp)

GridOut = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
GridGrads = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def _forward_body(
    xd: Tensor,
    md: Tensor,
    h0: Tensor,
    m0: Tensor,
    W_rec: Tensor,
    W_tx: Tensor,
    b_t: Tensor,
    sizes: Tensor,
    depth: int,
    inside: bool,
    reverse: bool,
    save: bool,
    library: int,
) -> GridOut:
    """One direction of a priority-"time" block over the packed rows: the depth vectors h^d_k
    ``(N, H)`` and (LSTM depth) memories m^d_k, the final time vector and memory; and when
    ``save``, the activations and the time transform's h and m of every step. ``xd`` ``(N, G)``:
    W_dx h^d_{k-1} + b_d; ``md``: the memory from below (LSTM depth, else empty); ``W_rec``:
    the depth and the time transform's columns for h^t stacked, ``(G + 4H, H)``; ``W_tx``: the
    time transform's columns for h^d ``(4H, H)``; ``b_t``: its bias or empty."""
    outs = _build.load().grid_time_forward(
        xd, md, h0, m0, W_rec, W_tx, b_t, sizes, depth, inside, reverse, save, library
    )
    return _filled(xd, *outs)  # type: ignore[return-value]


forward_op = torch.library.custom_op("lstmkit::grid_time_forward", _forward_body, mutates_args=())


@forward_op.register_fake
def _(xd: Tensor, md: Tensor, h0: Tensor, m0: Tensor, W_rec: Tensor, *rest: Any) -> GridOut:
    depth, save = rest[3], rest[6]
    N, B, H = xd.shape[0], h0.shape[0], h0.shape[1]
    new = xd.new_empty
    Md = new(N, H) if depth == GRID_LSTM else new(0)
    saved = (new(N, W_rec.shape[0]), new(N, H), new(N, H)) if save else (new(0),) * 3
    return new(N, H), Md, new(B, H), new(B, H), *saved


def _backward_body(
    dHd: Tensor,
    dMd: Tensor,
    dhT: Tensor,
    dmT: Tensor,
    acts: Tensor,
    Hd: Tensor,
    Md: Tensor,
    md: Tensor,
    Ht: Tensor,
    Mt: Tensor,
    h0: Tensor,
    m0: Tensor,
    W_rec: Tensor,
    W_tx: Tensor,
    sizes: Tensor,
    depth: int,
    inside: bool,
    reverse: bool,
    library: int,
) -> GridGrads:
    """The gradients of xd, md, h0, m0, W_rec, W_tx and b_t."""
    grads = _build.load().grid_time_backward(
        dHd, dMd, dhT, dmT, acts, Hd, Md, md, Ht, Mt, h0, m0, W_rec, W_tx, sizes, depth, inside,
        reverse, library,
    )  # fmt: skip
    return _filled(Hd, *grads)  # type: ignore[return-value]


backward_op = torch.library.custom_op(
    "lstmkit::grid_time_backward", _backward_body, mutates_args=()
)


@backward_op.register_fake
def _(dHd: Tensor, dMd: Tensor, dhT: Tensor, dmT: Tensor, acts: Tensor, *rest: Any) -> GridGrads:
    md, W_rec, W_tx, depth = rest[2], rest[7], rest[8], rest[10]
    new = dHd.new_empty
    G = W_rec.shape[0] - W_tx.shape[0]
    dmd = new(md.shape) if depth == GRID_LSTM else new(0)
    dW = (new(W_rec.shape), new(W_tx.shape), new(W_tx.shape[0]))
    return new(acts.shape[0], G), dmd, new(dhT.shape), new(dmT.shape), *dW


def _setup(ctx: Any, inputs: tuple[Any, ...], output: GridOut) -> None:
    _, md, h0, m0, W_rec, W_tx, b_t, sizes, depth, inside, reverse, _, lib = inputs
    Hd, Md, _, _, acts, Ht, Mt = output
    ctx.save_for_backward(acts, Hd, Md, md, Ht, Mt, h0, m0, W_rec, W_tx, sizes)
    ctx.depth, ctx.inside, ctx.reverse, ctx.library = depth, inside, reverse, lib
    ctx.has_bias = b_t.numel() > 0


def _backward(
    ctx: Any, dHd: Tensor | None, dMd: Tensor | None, dhT: Tensor | None, dmT: Tensor | None,
    *_: Any,
) -> Any:  # fmt: skip
    acts, Hd, Md, md, Ht, Mt, h0, m0, W_rec, W_tx, sizes = ctx.saved_tensors
    backward = _backward_of(ctx, _backward_body, "grid_time_backward")
    dMd_in = _grad(dMd, Md) if ctx.depth == GRID_LSTM else _grad_or_empty(None, Md)
    dxd, dmd, dh0, dm0, dWrec, dWtx, db = backward(
        _grad(dHd, Hd), dMd_in, _grad(dhT, h0), _grad(dmT, m0), acts, Hd, Md, md, Ht, Mt, h0,
        m0, W_rec, W_tx, sizes, ctx.depth, ctx.inside, ctx.reverse, ctx.library,
    )  # fmt: skip
    return (
        dxd, _none_if_empty(dmd), dh0, dm0, dWrec, dWtx, db if ctx.has_bias else None,
        *[None] * 6,
    )  # fmt: skip


forward_op.register_autograd(_backward, setup_context=_setup)

_Eager = _eager(_forward_body, _setup, _backward)


def grid_time_forward(*args: Any) -> GridOut:
    """``torch.ops.lstmkit.grid_time_forward``, or its body, as :func:`ops.traced` asks."""
    out: GridOut = call(forward_op, _forward_body, _Eager, args[11], *args)
    return out
