"""The fused engine: every LSTM variant, both GRU forms and the RNN, each direction of each layer
in one C++ call (forward and backward), so that no Python runs per time step.

The input projection of all steps stays in Python as one product (autograd differentiates it);
the recurrence, its pointwise update and its backward pass are in ``fused.cpp``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from lstmkit._state import State, cast_state, first
from lstmkit._warnings import EngineFallbackWarning
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import FullGateState, LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engines.fused import build as _build
from lstmkit.engines.fused import families, ops, products
from lstmkit.engines.loop import Directions
from lstmkit.engines.registry import Engine, Layer, Resets, select_engine
from lstmkit.engines.regularizers import Regularizers, sequence_masks, zoneout_keeps

_EMPTY = torch.empty(0)
_NATIVE = (torch.float32, torch.float64)  # what the kernels compute in
_WIDENED = (torch.bfloat16, torch.float16)  # computed in float32, results rounded back

NATIVE_INFERENCE_FROM = 384
"""Hidden size from which "auto" leaves a standard LSTM's inference to torch's kernel."""


class FusedEngine(Engine):
    name = "fused"
    supports = (
        "lstmkit's own LSTMCell (every variant), GRUCell (both forms), RNNCell, MUTCell, "
        "ClockworkCell, DepthGatedLSTMCell and GridLSTMCell on the CPU, in float32, float64, "
        "bfloat16 and float16 (the last two computed in float32), where its C++ kernels can be "
        "built"
    )

    def unsupported(self, layer: Layer) -> str | None:
        for cell in layer.iter_cells():
            if type(cell) in families.FAMILIES:
                reason = families.unsupported(cell, layer.regularizers)
                if reason is not None:
                    return reason
            elif type(cell) not in (LSTMCell, GRUCell, RNNCell):
                return f"its cell is a {type(cell).__name__}"
        weight = next(layer.parameters())
        if weight.device.type != "cpu":
            return f"its parameters are on {weight.device}; the fused engine runs on the CPU"
        if weight.dtype not in (*_NATIVE, *_WIDENED):
            return (
                f"its parameters are {weight.dtype}; the fused engine runs float32, float64, "
                "bfloat16 and float16"
            )
        reason = _build.failure()
        if reason is not None:
            return f"its C++ kernels could not be built ({reason})"
        return None

    def auto_priority(self, layer: Layer, *, training: bool, priority: int) -> float:
        # Measured (lstmkit bench, 2-core AVX-512 Xeon): for a standard LSTM without gradients,
        # torch's oneDNN kernel was 14% faster at hidden 512 (S5) and even at 256 (S4); the
        # fused engine won everywhere else, by up to 3x for training and for the GRU and RNN.
        cell = layer.cell(0)
        standard = type(cell) is LSTMCell and cell.config.is_standard and not cell.config.proj_size
        if standard and not training and cell.hidden_size >= NATIVE_INFERENCE_FROM:
            return -1.0  # below native, which stays at its registered priority
        return priority

    def run(
        self, layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State
    ) -> tuple[Tensor, State]:
        out, h_n, _ = self._run(layer, x, batch_sizes, hx, None, False)
        return out, h_n

    def run_stream(
        self,
        layer: Layer,
        x: Tensor,
        batch_sizes: Tensor | None,
        hx: State,
        *,
        resets: Resets | None = None,
        cell_states: bool = False,
    ) -> tuple[Tensor, State, Tensor | None]:
        """:meth:`run` with resets (each piece between them one kernel call per layer and
        direction) and the cell states, which the LSTM kernel keeps for its backward pass
        anyway (the zoned-out state, with zoneout on c, mixed from them elementwise)."""
        return self._run(layer, x, batch_sizes, hx, resets, cell_states)

    def _run(
        self,
        layer: Layer,
        x: Tensor,
        batch_sizes: Tensor | None,
        hx: State,
        resets: Resets | None,
        cells: bool,
    ) -> tuple[Tensor, State, Tensor | None]:
        try:
            # torch.compile traces the operators, whose bodies load the kernels when they run
            kernels = None if torch.compiler.is_compiling() else _build.load()
        except _build.KernelBuildError as error:
            if layer.engine != "auto":
                raise
            warnings.warn(
                f"the fused engine is unavailable ({error}); using a slower engine",
                EngineFallbackWarning,
                stacklevel=3,
            )
            fallback = select_engine("auto", layer)
            if resets is None and not cells:
                return (*fallback.run(layer, x, batch_sizes, hx), None)
            return fallback.run_stream(layer, x, batch_sizes, hx, resets=resets, cell_states=cells)

        # bfloat16 and float16 run in float32: every cast is differentiable, so gradients reach
        # the parameters in their own dtype
        dtype = x.dtype
        compute = torch.float32 if dtype in _WIDENED else dtype
        if compute != dtype:  # (hx has the dtype of x; a cast to its own dtype costs a µs)
            x, hx = x.to(compute), cast_state(hx, compute)
            if resets is not None:
                resets = Resets(resets.mask, cast_state(resets.state, compute))
        directions = _Directions(kernels, layer, batch_sizes, compute)
        if batch_sizes is None:
            x = x.contiguous()  # (T, B, F): each direction reads it as (N, F), steps in order
        out, h_n, C = directions.stack(layer, x, hx, resets, cells)
        if compute == dtype:
            return out, h_n, C
        return out.to(dtype), cast_state(h_n, dtype), None if C is None else C.to(dtype)


class _Directions(Directions):
    """The fused engine's direction of one layer, as :func:`run_layers` calls it: padded steps
    ``(T, B, F)`` (a piece of them, with resets) or packed data ``(N, F)``, the regularisers'
    masks drawn at each call, then the kernels over the steps in the packed layout."""

    def __init__(
        self, kernels: Any, layer: Layer, batch_sizes: Tensor | None, compute: torch.dtype
    ) -> None:
        self.kernels, self.compute = kernels, compute
        self.reg, self.training = layer.regularizers, layer.training
        # packed data: the batch sizes and the rows of each step as Python ints (padded steps
        # take them from the shape: a compiler or exporter tracing the call cannot read a
        # tensor's values)
        self.packed = None if batch_sizes is None else (batch_sizes, batch_sizes.tolist())

    def run(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool, cells: bool
    ) -> tuple[Tensor, State, Tensor | None]:
        padded = self.packed is None
        if self.packed is None:
            steps, batch = x.shape[0], x.shape[1]
            counts = [batch] * steps
            sizes = torch.full((steps,), batch, dtype=torch.int64)
            data = x.reshape(-1, x.shape[-1])  # (N, F): the steps one after another
        else:
            (sizes, counts), data = self.packed, x
        masks = NO_MASKS
        if self.reg.active:
            data, masks = _draw_masks(cell, data, counts, state, self.reg, self.training)
        how = (counts, reverse)
        out, final, C = _run_direction(
            self.kernels, cell, data, sizes, state, self.compute, masks, how, cells
        )
        if padded:
            out = out.view(steps, batch, out.shape[-1])
            C = None if C is None else C.view(steps, batch, C.shape[-1])
        return out, final, C


Masks = tuple[Tensor, Tensor, Tensor]
"""A direction's recurrent dropout mask ``(B, O)`` and zoneout keeps ``(N, O)`` and ``(N, H)``,
as the kernels take them: empty where off (see ``Reg`` in fused.cpp)."""

NO_MASKS: Masks = (_EMPTY, _EMPTY, _EMPTY)


def _draw_masks(
    cell: RecurrentCell[Any],
    data: Tensor,
    steps: list[int],
    state: State,
    reg: Regularizers,
    training: bool,
) -> tuple[Tensor, Masks]:
    """The regularisers' random draws for one direction, in the reference engine's order: the
    input with its dropout applied, and the masks the kernels apply."""
    data, h_mask = sequence_masks(data, steps, state, reg, training=training)
    h = first(state)
    widths = (h.shape[-1], None if isinstance(state, Tensor) else state[1].shape[-1])
    keep_h, keep_c = zoneout_keeps(steps, widths, h, reg, training=training)
    masks = (h_mask, keep_h, keep_c)
    return data, tuple(_EMPTY.to(h) if m is None else m.contiguous() for m in masks)  # type: ignore[return-value]


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


Param = Callable[[str], Tensor]

How = tuple[bool, int]
"""How a direction runs: in reverse or not, and which library multiplies (products.py)."""


def _run_direction(
    kernels: Any,
    cell: RecurrentCell[Any],
    x: Tensor,
    sizes: Tensor,
    state: State,
    compute: torch.dtype,
    masks: Masks,
    steps: tuple[list[int], bool],
    cells: bool = False,
) -> tuple[Tensor, State, Tensor | None]:
    """One direction of ``cell`` over the packed rows ``x`` ``(N, F)``: outputs, final state
    and, with ``cells`` (an LSTM-family cell), the cell state of every step ``(N, H)``."""
    if isinstance(cell, families.FAMILIES):
        run = families.Run(kernels, sizes, compute, masks, steps, cells=cells)
        return families.run(run, cell, x, state, _needs_grad)
    empty = _EMPTY.to(x)

    def p(name: str) -> Tensor:
        """A parameter as the kernels take it: contiguous, in the compute dtype, empty if the
        cell has none."""
        t: Tensor | None = getattr(cell, name)
        if t is None:
            return empty
        return (t if t.dtype == compute else t.to(compute)).contiguous()  # .to costs a µs

    # which library multiplies: the input projection of all steps, (N, F) by (F, G), and the
    # recurrent product of a step, (batch, h width) by (h width, G)
    (G, F_in), P = cell.weight_ih.shape, cell.weight_hh.shape[1]
    counts, reverse = steps
    batch = counts[0] if counts else 0
    lib = products.library(kernels, len(x), F_in, G, compute)
    if _normalises_input(cell):
        xp = _normalised_projection(x, p("weight_ih"), lib, p("ln_ih_weight"), p("ln_ih_bias"))
    else:
        xp = products.project(x, p("weight_ih"), lib)
    how = (reverse, products.library(kernels, batch, P, G, compute))
    if isinstance(cell, LSTMCell):
        return _lstm(cell, p, xp, sizes, state, masks, how, (counts, cells))
    assert not cells  # (the layer refuses cell states for a state without c)
    if isinstance(cell, GRUCell):
        return (*_gru(cell, p, xp, sizes, state, masks, how), None)
    assert isinstance(cell, RNNCell)
    return (*_rnn(cell, p, xp, sizes, state, masks, how), None)


def _normalises_input(cell: RecurrentCell[Any]) -> bool:
    if isinstance(cell, LSTMCell):
        return cell.config.layer_norm
    return isinstance(cell, GRUCell) and cell.layer_norm


def _normalised_projection(
    x: Tensor, weight: Tensor, lib: int, gain: Tensor, shift: Tensor
) -> Tensor:
    """LN(W_ih·x) of every step. Where gradients will be asked for, W_ih·x is computed again
    in the backward pass rather than kept for it: one product over all steps, for G values a
    row less at a training step's peak memory."""

    def normalised(x: Tensor, weight: Tensor, gain: Tensor, shift: Tensor) -> Tensor:
        return F.layer_norm(products.project(x, weight, lib), weight.shape[:1], gain, shift)

    if _needs_grad(x, weight, gain, shift) and not ops.traced(x):
        out: Tensor = checkpoint(normalised, x, weight, gain, shift, use_reentrant=False)
        return out
    return normalised(x, weight, gain, shift)


def _bias(p: Param) -> Tensor:
    # b_ih and b_hh add to the same pre-activation; the kernel adds them to W_ih·x in its
    # pointwise pass (cheaper than broadcasting them into the input projection)
    b_ih = p("bias_ih")
    return b_ih if b_ih.numel() == 0 else b_ih + p("bias_hh")


def _lstm(
    cell: LSTMCell,
    p: Param,
    xp: Tensor,
    sizes: Tensor,
    state: Any,
    masks: Masks,
    how: How,
    cells: tuple[list[int], bool],
) -> tuple[Tensor, State, Tensor | None]:
    # xp = W_ih·x (LN(W_ih·x) with layer norm), without bias; the kernel adds b_ih + b_hh and
    # normalises W_hh·h and C_t
    cfg = cell.config
    bias = _bias(p)
    norms = [p(f"ln_{part}") for part in ("hh_weight", "hh_bias", "c_weight", "c_bias")]
    h0, c0 = state.h.contiguous(), state.c.contiguous()
    a0 = state.a.contiguous() if cfg.full_gate_recurrence else _EMPTY.to(xp)
    names = ("weight_hh", "weight_ci", "weight_cf", "weight_co", "weight_gg", "weight_hr")
    params = [p(name) for name in names]
    flags = ops.lstm_flags(cfg)
    counts, keep_cells = cells
    # the kernel keeps every step's C_t (differentiable) where it saves for the backward pass
    save = keep_cells or _needs_grad(xp, bias, h0, c0, a0, *params, *norms)
    no_depth_gate = (_EMPTY.to(xp), _EMPTY.to(xp))
    out, hT, cT, aT, _, C, *_ = ops.lstm_forward(
        xp, bias, h0, c0, a0, *params, *masks, *norms, sizes, flags, how[0], save, how[1],
        *no_depth_gate,
    )  # fmt: skip
    if keep_cells and masks[2].numel():  # zoneout on c: the state mixes C_t with its past
        C = families.zoneout_sequence(C, masks[2], c0, counts, how[0])
    final = FullGateState(hT, cT, aT) if cfg.full_gate_recurrence else LSTMState(hT, cT)
    return out, final, C if keep_cells else None


def _gru(
    cell: GRUCell, p: Param, xp: Tensor, sizes: Tensor, state: Any, masks: Masks, how: How
) -> tuple[Tensor, State]:
    # xp = W_ih·x (LN(W_ih·x) with layer norm), (N, 3H), without bias; the kernel adds b_ih
    # and normalises W_hh·h
    b_ih, W_hh, b_hh = p("bias_ih"), p("weight_hh"), p("bias_hh")
    norm = p("ln_hh_weight"), p("ln_hh_bias")
    h0 = state.contiguous()
    save = _needs_grad(xp, b_ih, h0, W_hh, b_hh, *norm)
    form = ops.RESET_AFTER if cell.reset_after else 0
    out, hT, *_ = ops.gru_forward(
        xp, b_ih, h0, W_hh, b_hh, *norm, *masks[:2], sizes, form, how[0], save, how[1]
    )
    return out, hT


def _rnn(
    cell: RNNCell, p: Param, xp: Tensor, sizes: Tensor, state: Any, masks: Masks, how: How
) -> tuple[Tensor, State]:
    bias, W_hh = _bias(p), p("weight_hh")
    h0 = state.contiguous()
    relu = cell.nonlinearity == "relu"
    save = _needs_grad(xp, bias, h0, W_hh)
    out, hT, _ = ops.rnn_forward(
        xp, bias, h0, W_hh, *masks[:2], sizes, relu, *how, [], _EMPTY.to(xp), save=save
    )
    return out, hT
