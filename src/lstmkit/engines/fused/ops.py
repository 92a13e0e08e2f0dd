"""The fused kernels as torch operators: ``torch.ops.lstmkit.*``, each with a fake (meta)
implementation that gives its outputs' shapes and a registered backward, so that
``torch.compile(fullgraph=True)`` and ``torch.export`` see one operator per direction of a layer
where they would otherwise stop at a call into C++.

Every operator takes and returns plain tensors; a part a layer does not have (a peephole, a
projection, the full gate recurrence's state, a regulariser's mask) is an empty tensor, as the
kernels take it. The forward operators save what their backward needs only when ``save`` is set
(the engine sets it where gradients will be asked for).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import is_fake
from torch.autograd.function import once_differentiable

from lstmkit.cells.lstm import LSTMConfig
from lstmkit.engines.fused import build as _build

# fused.cpp's LSTM flags (the enum there)
_INPUT_GATE, _FORGET_GATE, _OUTPUT_GATE, _COUPLED = 1, 2, 4, 8
_INPUT_ACT, _OUTPUT_ACT, _PEEP_I, _PEEP_F, _PEEP_O = 16, 32, 64, 128, 256
FGR, LAYER_NORM = 512, 1024  # the two that the operators' fakes read
PRE_ZONEOUT = 4096  # with zoneout on h, also return h~_t before it (differentiable)


def lstm_flags(config: LSTMConfig) -> int:
    """The kernel's flags for an LSTM of this configuration."""
    bits = [
        (config.input_gate, _INPUT_GATE),
        (config.forget_gate, _FORGET_GATE),
        (config.output_gate, _OUTPUT_GATE),
        (config.coupled, _COUPLED),
        (config.input_activation, _INPUT_ACT),
        (config.output_activation, _OUTPUT_ACT),
        ("i" in config.peepholes, _PEEP_I),
        ("f" in config.peepholes, _PEEP_F),
        ("o" in config.peepholes, _PEEP_O),
        (config.full_gate_recurrence, FGR),
        (config.layer_norm, LAYER_NORM),
    ]
    return sum(bit for on, bit in bits if on)


RESET_AFTER, TANH_Z, NO_Z = 1, 2, 4  # the GRU kernel's forms (fused.cpp)

LSTMOut = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
LSTMGrads = tuple[
    Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
    Tensor, Tensor, Tensor, Tensor, Tensor,
]  # fmt: skip


def _filled(like: Tensor, *tensors: Tensor | None) -> tuple[Tensor, ...]:
    """The kernels return undefined tensors (None) for parts that do not exist; an operator
    returns empty ones."""
    return tuple(like.new_empty(0) if t is None else t for t in tensors)


def _none_if_empty(t: Tensor) -> Tensor | None:
    return None if t.numel() == 0 else t


def _backward_of(ctx: Any, body: Any, name: str) -> Any:
    """The backward's body where the forward ran eagerly, else its operator (for tracing)."""
    return body if getattr(ctx, "eager", False) else getattr(torch.ops.lstmkit, name)


def _grad_or_empty(g: Tensor | None, like: Tensor) -> Tensor:
    """An optional gradient as the kernels take it: contiguous, or empty where none came."""
    return like.new_empty(0) if g is None else g.contiguous()


def _grad(g: Tensor | None, like: Tensor) -> Tensor:
    """An output's gradient as the kernels take it: contiguous, zeros where none came."""
    return torch.zeros_like(like) if g is None else g.contiguous()


# ---------------------------------------------------------------------------------------------
# LSTM


def _lstm_forward_body(
    xp: Tensor,
    bias: Tensor,
    h0: Tensor,
    c0: Tensor,
    a0: Tensor,
    W_hh: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    W_gg: Tensor,
    W_hr: Tensor,
    mask: Tensor,
    keep_h: Tensor,
    keep_c: Tensor,
    ln_hh_weight: Tensor,
    ln_hh_bias: Tensor,
    ln_c_weight: Tensor,
    ln_c_bias: Tensor,
    sizes: Tensor,
    flags: int,
    reverse: bool,
    save: bool,
    library: int,
    depth: Tensor,
    w_cd: Tensor,
) -> LSTMOut:
    """One direction of an LSTM layer: outputs ``(N, P)``, final h, c and (full gate
    recurrence) a; and when ``save``, the gate activations, the cells' C_t, the states that
    zoneout kept, (layer norm) each row's normalised values and 1 / std, and (depth gate) d_t,
    for the backward pass; last, with zoneout on h and the ``PRE_ZONEOUT`` flag, the outputs
    h~_t before zoneout. ``depth`` ``(N, 2H)`` and ``w_cd`` give a Depth-Gated layer's gate
    (fused.cpp's ``Depth``). The cells' C_t and h~_t are differentiable: a layer above may read
    them."""
    outs = _build.load().lstm_forward(
        xp, bias, h0, c0, a0, W_hh, w_ci, w_cf, w_co, W_gg, W_hr, mask, keep_h, keep_c,
        ln_hh_weight, ln_hh_bias, ln_c_weight, ln_c_bias, sizes, flags, reverse, save, library,
        depth, w_cd,
    )  # fmt: skip
    return _filled(xp, *outs)  # type: ignore[return-value]


lstm_forward_op = torch.library.custom_op(
    "lstmkit::lstm_forward", _lstm_forward_body, mutates_args=()
)


@lstm_forward_op.register_fake
def _(
    xp: Tensor, bias: Tensor, h0: Tensor, c0: Tensor, a0: Tensor, W_hh: Tensor, *rest: Any
) -> LSTMOut:
    W_gg, keep_h, keep_c = rest[3], rest[6], rest[7]
    flags, save, depth = rest[13], rest[15], rest[17]
    N, B, H, P, GH = xp.shape[0], h0.shape[0], c0.shape[1], h0.shape[1], W_hh.shape[0]
    new = xp.new_empty
    a = new(B, W_gg.shape[0]) if flags & FGR else new(0)
    acts = new(N, GH) if save else new(0)
    C = new(N, H) if save else new(0)
    S = new(N, H) if save and keep_c.numel() else new(0)
    norms = new(N, GH + H + 2) if save and flags & LAYER_NORM else new(0)
    D = new(N, H) if save and depth.numel() else new(0)
    pre = new(N, P) if flags & PRE_ZONEOUT and keep_h.numel() else new(0)
    return new(N, P), new(B, P), new(B, H), a, acts, C, S, norms, D, pre


def _lstm_backward_body(
    dout: Tensor,
    dhT: Tensor,
    dcT: Tensor,
    daT: Tensor,
    out: Tensor,
    acts: Tensor,
    C: Tensor,
    h0: Tensor,
    c0: Tensor,
    a0: Tensor,
    W_hh: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    W_gg: Tensor,
    W_hr: Tensor,
    S: Tensor,
    mask: Tensor,
    keep_h: Tensor,
    keep_c: Tensor,
    norms: Tensor,
    ln_hh_weight: Tensor,
    ln_hh_bias: Tensor,
    ln_c_weight: Tensor,
    ln_c_bias: Tensor,
    sizes: Tensor,
    flags: int,
    reverse: bool,
    has_bias: bool,
    library: int,
    depth: Tensor,
    w_cd: Tensor,
    D: Tensor,
    dC: Tensor,
    dH: Tensor,
) -> LSTMGrads:
    """The gradients of :func:`lstm_forward`'s inputs: xp, h0, c0, a0, W_hh, the three
    peepholes, W_gg, W_hr, the four layer-norm gains and biases, depth and w_cd, and the bias
    (empty for the parts the layer does not have). ``dC`` and ``dH``: the gradients that reached
    the cells' C_t and the outputs before zoneout from outside, or empty."""
    grads = _build.load().lstm_backward(
        dout, dhT, dcT, daT, out, acts, C, h0, c0, a0, W_hh, w_ci, w_cf, w_co, W_gg, W_hr,
        S, mask, keep_h, keep_c, norms, ln_hh_weight, ln_hh_bias, ln_c_weight, ln_c_bias,
        sizes, flags, reverse, has_bias, library, depth, w_cd, D, dC, dH,
    )  # fmt: skip
    return _filled(out, *grads)  # type: ignore[return-value]


lstm_backward_op = torch.library.custom_op(
    "lstmkit::lstm_backward", _lstm_backward_body, mutates_args=()
)


@lstm_backward_op.register_fake
def _(dout: Tensor, dhT: Tensor, dcT: Tensor, daT: Tensor, out: Tensor, acts: Tensor, C: Tensor,
      h0: Tensor, c0: Tensor, a0: Tensor, W_hh: Tensor, w_ci: Tensor, w_cf: Tensor, w_co: Tensor,
      W_gg: Tensor, W_hr: Tensor, *rest: Any) -> LSTMGrads:  # fmt: skip
    flags, has_bias = rest[10], rest[12]
    new = dout.new_empty
    like = [w_ci, w_cf, w_co, W_gg, W_hr, *rest[5:9], *rest[14:16]]  # ..., depth, w_cd
    parts = [new(t.shape) if t.numel() else new(0) for t in like]
    fgr = new(a0.shape) if flags & FGR else new(0)
    dbias = new(W_hh.shape[0]) if has_bias else new(0)
    grads = (new(acts.shape), new(dhT.shape), new(dcT.shape), fgr, new(W_hh.shape), *parts, dbias)
    return grads  # type: ignore[return-value]


def _lstm_setup(ctx: Any, inputs: tuple[Any, ...], output: LSTMOut) -> None:
    _, bias, h0, c0, a0, *weights = inputs[:11]
    masks, norm_params, (sizes, flags, reverse, _, lib, depth, w_cd) = (
        inputs[11:14],
        inputs[14:18],
        inputs[18:],
    )
    out, _, _, _, acts, C, S, norms, D, _ = output
    ctx.save_for_backward(
        out, acts, C, S, h0, c0, a0, *weights, *masks, norms, *norm_params, sizes, depth, w_cd, D
    )
    ctx.flags, ctx.reverse, ctx.library, ctx.has_bias = flags, reverse, lib, bias.numel() > 0


def _lstm_backward(
    ctx: Any, dout: Tensor, dhT: Tensor, dcT: Tensor, daT: Tensor, _: Any, dC: Tensor | None,
    __: Any, ___: Any, ____: Any, dH: Tensor | None,
) -> Any:  # fmt: skip
    out, acts, C, S, h0, c0, a0, *rest = ctx.saved_tensors
    weights, masks, norms, norm_params = rest[:6], rest[6:9], rest[9], rest[10:14]
    sizes, depth, w_cd, D = rest[14:]
    backward = _backward_of(ctx, _lstm_backward_body, "lstm_backward")
    dxp, dh0, dc0, da0, dW, dpi, dpf, dpo, dWg, dWr, *dnorms, ddepth, dw_cd, dbias = backward(
        _grad(dout, out), _grad(dhT, h0), _grad(dcT, c0), _grad(daT, a0), out, acts, C,
        h0, c0, a0, *weights, S, *masks, norms, *norm_params, sizes, ctx.flags, ctx.reverse,
        ctx.has_bias, ctx.library, depth, w_cd, D, _grad_or_empty(dC, out),
        _grad_or_empty(dH, out),
    )  # fmt: skip
    grads = [dxp, dbias, dh0, dc0, da0, dW, dpi, dpf, dpo, dWg, dWr, None, None, None, *dnorms]
    return (
        *(None if g is None else _none_if_empty(g) for g in grads),
        *[None] * 5,
        _none_if_empty(ddepth),
        _none_if_empty(dw_cd),
    )


lstm_forward_op.register_autograd(_lstm_backward, setup_context=_lstm_setup)


# ---------------------------------------------------------------------------------------------
# GRU


def _gru_forward_body(
    xp: Tensor,
    b_ih: Tensor,
    h0: Tensor,
    W_hh: Tensor,
    b_hh: Tensor,
    ln_weight: Tensor,
    ln_bias: Tensor,
    mask: Tensor,
    keep_h: Tensor,
    sizes: Tensor,
    form: int,
    reverse: bool,
    save: bool,
    library: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One direction of a GRU layer: outputs ``(N, H)``, final h; and when ``save``, the gate
    activations, (reset after) W_hn·h + b_hn of every step and (layer norm) each row's
    normalised recurrent products and 1 / std. ``form``: ``RESET_AFTER`` (torch.nn's GRU), 0
    (the reset before the product), ``TANH_Z`` (before, with z's product on tanh(h)) or ``NO_Z``
    (before, with no product for z; W_hh's z rows are not read)."""
    outs = _build.load().gru_forward(
        xp, b_ih, h0, W_hh, b_hh, ln_weight, ln_bias, mask, keep_h, sizes, form, reverse,
        save, library,
    )  # fmt: skip
    return _filled(xp, *outs)  # type: ignore[return-value]


gru_forward_op = torch.library.custom_op("lstmkit::gru_forward", _gru_forward_body, mutates_args=())


@gru_forward_op.register_fake
def _(
    xp: Tensor, b_ih: Tensor, h0: Tensor, W_hh: Tensor, b_hh: Tensor, ln_weight: Tensor, *rest: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    form, save = rest[4], rest[6]
    N, B, H = xp.shape[0], h0.shape[0], h0.shape[1]
    new = xp.new_empty
    acts = new(N, 3 * H) if save else new(0)
    hn = new(N, H) if save and form & RESET_AFTER else new(0)
    norms = new(N, 3 * H + 2) if save and ln_weight.numel() else new(0)
    return new(N, H), new(B, H), acts, hn, norms


def _gru_backward_body(
    dout: Tensor,
    dhT: Tensor,
    out: Tensor,
    acts: Tensor,
    hn: Tensor,
    h0: Tensor,
    W_hh: Tensor,
    b_hh: Tensor,
    norms: Tensor,
    ln_weight: Tensor,
    mask: Tensor,
    keep_h: Tensor,
    sizes: Tensor,
    form: int,
    reverse: bool,
    has_bias: bool,
    library: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The gradients of xp, h0, W_hh, b_hh, the layer norm's gain and bias, and b_ih."""
    grads = _build.load().gru_backward(
        dout, dhT, out, acts, hn, h0, W_hh, b_hh, norms, ln_weight, mask, keep_h, sizes,
        form, reverse, has_bias, library,
    )  # fmt: skip
    return _filled(out, *grads)  # type: ignore[return-value]


gru_backward_op = torch.library.custom_op(
    "lstmkit::gru_backward", _gru_backward_body, mutates_args=()
)


@gru_backward_op.register_fake
def _(dout: Tensor, dhT: Tensor, out: Tensor, acts: Tensor, hn: Tensor, h0: Tensor, W_hh: Tensor,
      b_hh: Tensor, norms: Tensor, ln_weight: Tensor, *rest: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    has_bias = rest[5]
    new = dout.new_empty
    db = new(b_hh.shape) if b_hh.numel() else new(0)
    dln = new(ln_weight.shape) if ln_weight.numel() else new(0)
    db_ih = new(W_hh.shape[0]) if has_bias else new(0)
    return new(acts.shape), new(dhT.shape), new(W_hh.shape), db, dln, new(dln.shape), db_ih


def _gru_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    _, b_ih, h0, W_hh, b_hh, ln_weight, _, mask, keep_h, sizes, form, reverse, _, lib = inputs
    out, _, acts, hn, norms = output
    ctx.save_for_backward(out, acts, hn, h0, W_hh, b_hh, norms, ln_weight, mask, keep_h, sizes)
    ctx.form, ctx.reverse, ctx.library = form, reverse, lib
    ctx.has_bias = b_ih.numel() > 0


def _gru_backward(ctx: Any, dout: Tensor, dhT: Tensor, *_: Any) -> Any:
    out, acts, hn, h0, W_hh, b_hh, norms, ln_weight, mask, keep_h, sizes = ctx.saved_tensors
    dX, dh0, dW, db, dln_w, dln_b, db_ih = _backward_of(ctx, _gru_backward_body, "gru_backward")(
        _grad(dout, out), _grad(dhT, h0), out, acts, hn, h0, W_hh, b_hh, norms, ln_weight, mask,
        keep_h, sizes, ctx.form, ctx.reverse, ctx.has_bias, ctx.library,
    )  # fmt: skip
    grads = [dX, db_ih, dh0, dW, db, dln_w, dln_b]
    return (*(_none_if_empty(g) for g in grads), *[None] * 7)


gru_forward_op.register_autograd(_gru_backward, setup_context=_gru_setup)


# ---------------------------------------------------------------------------------------------
# RNN


def _rnn_forward_body(
    xp: Tensor,
    bias: Tensor,
    h0: Tensor,
    W_hh: Tensor,
    mask: Tensor,
    keep_h: Tensor,
    sizes: Tensor,
    relu: bool,
    reverse: bool,
    library: int,
    bounds: list[int],
    active: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """One direction of a vanilla RNN layer: outputs ``(N, H)``, the final h, and (zoneout) the
    activations before zoneout mixed in the previous state. With ``bounds`` (the modules'
    column bounds) and ``active`` ``(N, g)``, a Clockwork RNN's (fused.cpp's ``Clock``)."""
    outs = _build.load().rnn_forward(
        xp, bias, h0, W_hh, mask, keep_h, sizes, relu, reverse, library, bounds, active
    )
    return _filled(xp, *outs)  # type: ignore[return-value]


rnn_forward_op = torch.library.custom_op("lstmkit::rnn_forward", _rnn_forward_body, mutates_args=())


@rnn_forward_op.register_fake
def _(
    xp: Tensor, bias: Tensor, h0: Tensor, W_hh: Tensor, mask: Tensor, keep_h: Tensor, *rest: Any
) -> tuple[Tensor, Tensor, Tensor]:
    out = xp.new_empty(xp.shape[0], h0.shape[1])
    return out, xp.new_empty(h0.shape), xp.new_empty(out.shape if keep_h.numel() else (0,))


def _rnn_backward_body(
    dout: Tensor,
    dhT: Tensor,
    out: Tensor,
    h0: Tensor,
    W_hh: Tensor,
    h_new: Tensor,
    mask: Tensor,
    keep_h: Tensor,
    sizes: Tensor,
    relu: bool,
    reverse: bool,
    has_bias: bool,
    library: int,
    bounds: list[int],
    active: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The gradients of xp, h0, W_hh and the bias."""
    grads = _build.load().rnn_backward(
        dout, dhT, out, h0, W_hh, h_new, mask, keep_h, sizes, relu, reverse, has_bias, library,
        bounds, active,
    )  # fmt: skip
    return _filled(out, *grads)  # type: ignore[return-value]


rnn_backward_op = torch.library.custom_op(
    "lstmkit::rnn_backward", _rnn_backward_body, mutates_args=()
)


@rnn_backward_op.register_fake
def _(
    dout: Tensor, dhT: Tensor, out: Tensor, h0: Tensor, W_hh: Tensor, *rest: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    has_bias = rest[6]
    new = dout.new_empty
    return (
        new(out.shape),
        new(dhT.shape),
        new(W_hh.shape),
        new(W_hh.shape[0]) if has_bias else new(0),
    )


def _rnn_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    _, bias, h0, W_hh, mask, keep_h, sizes, relu, reverse, lib, bounds, active = inputs
    ctx.save_for_backward(output[0], h0, W_hh, output[2], mask, keep_h, sizes, active)
    ctx.relu, ctx.reverse, ctx.library, ctx.has_bias = relu, reverse, lib, bias.numel() > 0
    ctx.bounds = bounds


def _rnn_backward(ctx: Any, dout: Tensor, dhT: Tensor, *_: Any) -> Any:
    out, h0, W_hh, h_new, mask, keep_h, sizes, active = ctx.saved_tensors
    dX, dh0, dW, db = _backward_of(ctx, _rnn_backward_body, "rnn_backward")(
        _grad(dout, out), _grad(dhT, h0), out, h0, W_hh, h_new, mask, keep_h, sizes, ctx.relu,
        ctx.reverse, ctx.has_bias, ctx.library, ctx.bounds, active,
    )  # fmt: skip
    return dX, _none_if_empty(db), dh0, dW, *[None] * 8


rnn_forward_op.register_autograd(_rnn_backward, setup_context=_rnn_setup)


# ---------------------------------------------------------------------------------------------
# Calling them: through the operators where torch.compile or torch.export traces; otherwise the
# same bodies and backward directly, since a Python operator's dispatch costs more than a step of
# a small layer (about 0.1 ms a call, 0.6 ms with its backward, measured).


def _eager(body: Any, setup: Any, backward: Any) -> type[torch.autograd.Function]:
    """The autograd Function that runs ``body`` and the operator's own backward eagerly."""

    class Eager(torch.autograd.Function):
        @staticmethod
        def forward(*args: Any) -> Any:
            return body(*args)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            setup(ctx, inputs, output)
            ctx.eager = True

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, *grads: Any) -> Any:
            return backward(ctx, *grads)

    return Eager


def traced(x: Tensor) -> bool:
    """Whether a compiler or exporter is tracing the call (it must see the operators)."""
    return torch.compiler.is_compiling() or is_fake(x)


def call(op: Any, body: Any, eager: type[torch.autograd.Function], save: bool, *args: Any) -> Any:
    """The operator where a trace must see it; else its body, differentiable when ``save``."""
    if traced(args[0]):
        return op(*args)
    if save:
        return eager.apply(*args)  # type: ignore[no-untyped-call]
    return body(*args)


_LSTMEager = _eager(_lstm_forward_body, _lstm_setup, _lstm_backward)
_GRUEager = _eager(_gru_forward_body, _gru_setup, _gru_backward)
_RNNEager = _eager(_rnn_forward_body, _rnn_setup, _rnn_backward)


def lstm_forward(*args: Any) -> LSTMOut:
    """``torch.ops.lstmkit.lstm_forward``, or its body, as :func:`traced` asks."""
    out: LSTMOut = call(lstm_forward_op, _lstm_forward_body, _LSTMEager, args[21], *args)
    return out


def gru_forward(*args: Any) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``torch.ops.lstmkit.gru_forward``, or its body, as :func:`traced` asks."""
    out: tuple[Tensor, Tensor, Tensor, Tensor, Tensor] = call(
        gru_forward_op, _gru_forward_body, _GRUEager, args[12], *args
    )
    return out


def rnn_forward(*args: Any, save: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``torch.ops.lstmkit.rnn_forward``, or its body, as :func:`traced` asks."""
    out: tuple[Tensor, Tensor, Tensor] = call(
        rnn_forward_op, _rnn_forward_body, _RNNEager, save, *args
    )
    return out
