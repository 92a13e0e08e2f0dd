"""The fused engine's other families: cells that the LSTM, GRU and RNN kernels run with an option
of their own, or as a chain of kernel calls with products over all steps in between.

* MUT1, MUT2, MUT3 (Jozefowicz et al. 2015) are GRUs with the reset before the product, up to
  three differences: MUT's z weights the candidate where the GRU's weights h_{t-1}, so the GRU
  kernel gets -z's pre-activations (σ(-a) = 1 - σ(a)); MUT1's z has no recurrent product (the
  kernel's ``NO_Z`` form); MUT3's z multiplies tanh(h_{t-1}) (its ``TANH_Z`` form).
* The Clockwork RNN is the RNN kernel with a clock: each step multiplies only the block-rows of
  the modules that update in it. (The input projection of all steps stays one product.)
* A Depth-Gated stack runs its layers bottom-up, each through the LSTM kernel over the whole
  sequence; a layer above reads the cells C_t of the layer below (differentiable outputs of the
  kernel) through its depth gate, which the kernel computes.
* A time × depth Grid LSTM runs its blocks bottom-up: a block's time transform is an LSTM over
  the sequence whose input is the depth vector from below, and its depth transform, which reads
  only vectors of the same step (or the previous step's time vector, which is then known), is
  one step of the LSTM (or RNN) kernel over the rows of all steps at once. With priority
  "time" the time transform reads the depth vector of its own step, so a block is one call of
  a kernel of its own (``grid_ops``) that runs both transforms in each step.

Each equals the reference engine (tests/engines/test_fused_families.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._state import State
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.clockwork import ClockworkCell, ClockworkState
from lstmkit.cells.depth_gated import DepthGatedLSTMCell
from lstmkit.cells.grid import GridLSTMCell, GridLSTMState
from lstmkit.cells.mut import MUTCell
from lstmkit.engines.fused import grid_ops, ops, products
from lstmkit.engines.regularizers import Regularizers

FAMILIES = (MUTCell, ClockworkCell, DepthGatedLSTMCell, GridLSTMCell)

# fused.cpp's LSTM flags for the Grid LSTM's transform: every gate, tanh on the candidate, and
# h = tanh(o * m) (OUT_INSIDE) or h = o * tanh(m) (OUTPUT_ACT)
_GRID_GATES, _OUTPUT_ACT, _OUT_INSIDE = 1 | 2 | 4 | 16, 32, 2048

Masks = tuple[Tensor, Tensor, Tensor]
Steps = tuple[list[int], bool]
_NO_MASKS: Masks = (torch.empty(0), torch.empty(0), torch.empty(0))


def unsupported(cell: RecurrentCell[Any], reg: Regularizers) -> str | None:
    """Why the fused engine cannot run ``cell`` (one of :data:`FAMILIES`) with these
    regularisers, or None."""
    if reg.zoneout_cell > 0 and isinstance(cell, ClockworkCell):
        return "zoneout_cell would act on a Clockwork cell's clock"
    return None


class Run:
    """What every family's run gets: the kernels, the packed steps, the dtype the kernels
    compute in, the regularisers' masks, and the direction."""

    def __init__(
        self,
        kernels: Any,
        sizes: Tensor,
        compute: torch.dtype,
        masks: Masks,
        steps: Steps,
        *,
        cells: bool = False,
    ) -> None:
        self.kernels, self.sizes, self.compute, self.masks = kernels, sizes, compute, masks
        self.counts, self.reverse = steps
        self.batch = self.counts[0] if self.counts else 0
        self.cells = cells  # whether the run also returns the cell state of every step

    def param(self, t: Tensor | None) -> Tensor:
        """A parameter as the kernels take it: contiguous, in the compute dtype, empty if
        absent."""
        if t is None:
            return torch.empty(0, dtype=self.compute)
        return (t if t.dtype == self.compute else t.to(self.compute)).contiguous()

    def single(self, rows: int) -> Run:
        """A run of one step over ``rows`` rows, forward."""
        return Run(self.kernels, torch.tensor([rows]), self.compute, _NO_MASKS, ([rows], False))

    def positions(self, rows: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """For the packed layout of the steps (``rows`` in all): each row's step and sequence,
        each step's size and offset, and each sequence's length. From the step counts, which
        are Python ints, so that a compiler tracing the call sees constants."""
        sizes = torch.tensor(self.counts, dtype=torch.int64)
        step = torch.repeat_interleave(torch.arange(len(sizes)), sizes, output_size=rows)
        offsets = torch.cumsum(sizes, 0) - sizes
        sequence = torch.arange(rows) - offsets[step]
        lengths = (sizes[:, None] > torch.arange(self.batch)[None, :]).sum(0)
        return step, sequence, sizes, offsets, lengths

    def library(self, inner: int, outer: int) -> int:
        """Which library multiplies a step's ``(batch, inner)`` by ``(inner, outer)``."""
        return products.library(self.kernels, self.batch, inner, outer, self.compute)

    def project(self, x: Tensor, weight: Tensor) -> Tensor:
        """``x W^T`` for every step at once, by the faster library."""
        lib = products.library(self.kernels, len(x), weight.shape[1], weight.shape[0], self.compute)
        return products.project(x, self.param(weight), lib)


def run(
    run: Run, cell: RecurrentCell[Any], x: Tensor, state: State, save: Callable[..., bool]
) -> tuple[Tensor, State, Tensor | None]:
    """One direction of ``cell`` (one of :data:`FAMILIES`) over ``x`` ``(N, F)``: outputs, final
    state and, where ``run.cells`` asks (a Depth-Gated stack, the one family whose state has a
    cell state c), the state's c at every step ``(N, L·H)``."""
    if isinstance(cell, DepthGatedLSTMCell):
        return _depth_gated(run, cell, x, state, save)  # type: ignore[arg-type]
    assert not run.cells  # (the layer refuses cell states for a state without c)
    if isinstance(cell, MUTCell):
        return (*_mut(run, cell, x, state, save), None)
    if isinstance(cell, ClockworkCell):
        return (*_clockwork(run, cell, x, state, save), None)  # type: ignore[arg-type]
    assert isinstance(cell, GridLSTMCell)
    return (*_grid(run, cell, x, state, save), None)  # type: ignore[arg-type]


def _mut(
    run: Run, cell: MUTCell, x: Tensor, h0: Any, save: Callable[..., bool]
) -> tuple[Tensor, State]:
    H, p = cell.hidden_size, run.param
    xp = cell.project_input(x.to(cell.bias_z.dtype)).to(run.compute)
    parts = xp.chunk(3, dim=-1)
    x_z, x_r, x_h = (parts[0], parts[2], parts[1]) if cell.kind == 2 else parts
    xp = torch.cat([x_r, -x_z, x_h], dim=-1).contiguous()  # the GRU's r, z, n with z = 1 - z_MUT
    W_hz = (
        torch.zeros_like(p(cell.weight_hr)) if cell.kind == 1 else -p(cell.weight_hz)
    )  # (MUT1: unread)
    W_hh = torch.cat([p(cell.weight_hr), W_hz, p(cell.weight_hh)]).contiguous()
    form = {1: ops.NO_Z, 2: 0, 3: ops.TANH_Z}[cell.kind]
    empty, h0 = p(None), h0.contiguous()
    out, hT, *_ = ops.gru_forward(
        xp, empty, h0, W_hh, empty, empty, empty, *run.masks[:2], run.sizes, form, run.reverse,
        save(xp, h0, W_hh), run.library(H, 3 * H),
    )  # fmt: skip
    return out, hT


def _clockwork(
    run: Run, cell: ClockworkCell, x: Tensor, state: ClockworkState, save: Callable[..., bool]
) -> tuple[Tensor, State]:
    p, H = run.param, cell.hidden_size
    h0, t0 = state.h.contiguous(), state.t
    step, sequence, _, _, lengths = run.positions(len(x))
    # each row's clock: its sequence's steps counted from 0 in the direction of the run, from
    # the given clock rounded and brought into the cycle (exact in float64); a clock that is not
    # finite never ticks, as in the reference's remainder of it
    counted = lengths[sequence] - 1 - step if run.reverse else step
    start = torch.remainder(torch.round(t0[:, 0].double()), cell.cycle)
    ticks = torch.isfinite(start)
    clock = torch.where(ticks, start, 0).long()[sequence] + counted  # (N,)
    periods = torch.tensor(cell.periods)
    active = (torch.remainder(clock[:, None], periods) == 0) & ticks[sequence][:, None]
    active = active.to(run.compute).contiguous()
    bounds = [0, *torch.tensor(cell.module_sizes).cumsum(0).tolist()]
    xp, bias, W_hh = run.project(x, cell.weight_ih), p(cell.bias), p(cell.weight_hh)
    relu = cell.nonlinearity == "relu"
    out, hT, _ = ops.rnn_forward(
        xp, bias, h0, W_hh, *run.masks[:2], run.sizes, relu, run.reverse, run.library(H, H),
        bounds, active, save=save(xp, bias, h0, W_hh),
    )  # fmt: skip
    t_end = torch.remainder(start[:, None] + lengths[:, None], cell.cycle).to(t0.dtype)
    return out, ClockworkState(hT, torch.where(lengths[:, None] > 0, t_end, t0))


def _lstm(
    run: Run,
    xp: Tensor,
    bias: Tensor,
    state: tuple[Tensor, Tensor],
    W_hh: Tensor,
    flags: int,
    save: bool,
    before: bool = False,
    **extra: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One LSTM kernel call: outputs, final h and c, (when ``save``) the cells C_t, and (when
    ``before``) the outputs before zoneout (the outputs where zoneout is off). ``extra``: the
    peepholes ``w_ci``, ``w_cf``, ``w_co``, a recurrent dropout ``mask``, zoneout's ``keep_h``
    and ``keep_c``, and a depth gate's ``depth`` and ``w_cd``; empty where not given."""
    e = torch.empty(0, dtype=xp.dtype)
    h0, c0 = (s.contiguous() for s in state)
    peep = [extra.get(f"w_c{g}", e) for g in "ifo"]
    masks = [extra.get(name, e).contiguous() for name in ("mask", "keep_h", "keep_c")]
    H4 = W_hh.shape[0]
    flags |= ops.PRE_ZONEOUT if before else 0
    out, hT, cT, _, _, C, _, _, _, pre = ops.lstm_forward(
        xp, bias, h0, c0, e, W_hh, *peep, e, e, *masks, e, e, e, e,
        run.sizes, flags, run.reverse, save, run.library(W_hh.shape[1], H4),
        extra.get("depth", e), extra.get("w_cd", e),
    )  # fmt: skip
    return out, hT, cT, C, pre if pre.numel() else out


def _dropout_masks(run: Run, layers: int, width: int, p: float) -> list[Tensor]:
    """Dropout masks ``(N, width)`` for ``layers`` places inside a step, drawn as a reference
    run draws them, a step at a time in the order the steps run (``F.dropout``'s draw; at
    p = 1 it draws nothing and zeroes)."""
    T = len(run.counts)
    if p == 1:
        return [torch.zeros(sum(run.counts), width, dtype=run.compute)] * layers
    drawn: list[list[Tensor]] = [[] for _ in range(layers)]
    for t in range(T - 1, -1, -1) if run.reverse else range(T):
        for k in range(layers):
            mask = torch.empty(run.counts[t], width, dtype=run.compute).bernoulli_(1 - p)
            drawn[k].append(mask.div_(1 - p))
    return [torch.cat(m[::-1] if run.reverse else m) for m in drawn]


def _depth_gated(
    run: Run, cell: DepthGatedLSTMCell, x: Tensor, state: LSTMState, save: Callable[..., bool]
) -> tuple[Tensor, State, Tensor | None]:
    L, p = cell.num_layers, run.param
    hs, cs = state.h.chunk(L, dim=-1), state.c.chunk(L, dim=-1)
    # each layer's part of the recurrent dropout mask and of zoneout's keeps
    h_mask, keep_h, keep_c = (m.chunk(L, dim=-1) if m.numel() else [m] * L for m in run.masks)
    dropout = cell.dropout if cell.training and cell.dropout > 0 else 0.0
    drops = _dropout_masks(run, L - 1, cell.hidden_size, dropout) if dropout else []
    flags = ops.lstm_flags(cell._config)
    below, C_below, finals, cells = x, torch.empty(0), [], []
    for k in range(L):
        W_hh = p(cell._weight("weight_hh", k))
        b_ih, b_hh = cell._get("bias_ih", k), cell._get("bias_hh", k)
        bias = p(None) if b_ih is None or b_hh is None else p(b_ih) + p(b_hh)
        peep = {f"w_c{g}": p(cell._get(f"weight_c{g}", k)) for g in "ifo"}
        extra = {"mask": h_mask[k], "keep_h": keep_h[k], "keep_c": keep_c[k], **peep}
        x_k = below if not drops or k == 0 else below * drops[k - 1]
        xp = run.project(x_k, cell._weight("weight_ih", k))
        if k > 0:  # (6): x_d = W_xd x + b_d + w_ld * C_t^{k-1}, the kernel adds w_cd * C_{t-1}
            b_d = cell._get("bias_d", k)
            x_d = F.linear(x_k, p(cell._weight("weight_xd", k)), None if b_d is None else p(b_d))
            x_d = x_d + p(cell._weight("weight_ld", k)) * C_below
            extra["depth"] = torch.cat([x_d, C_below], dim=-1)
            extra["w_cd"] = p(cell._weight("weight_cd", k))
        needs = save(xp, bias, hs[k], cs[k], W_hh, *extra.values()) or k < L - 1 or run.cells
        # the layer above reads h_t and C_t before the step's zoneout, as the stack's step does
        out, hT, cT, C_below, below = _lstm(
            run, xp, bias, (hs[k], cs[k]), W_hh, flags, needs, k < L - 1, **extra
        )
        finals.append((hT, cT))
        if run.cells:  # the state's c: C_t, after zoneout where zoneout acts on c
            kept = keep_c[k]
            zoned = kept.numel() > 0
            cells.append(
                zoneout_sequence(C_below, kept, cs[k], run.counts, run.reverse)
                if zoned
                else C_below
            )
    h_n, c_n = (torch.cat(parts, dim=-1) for parts in zip(*finals, strict=True))
    return out, LSTMState(h_n, c_n), torch.cat(cells, dim=-1) if cells else None


def _previous(out: Tensor, h0: Tensor, run: Run) -> Tensor:
    """Each row's time vector of the step before it (in the direction of the run): the
    previous step's output, or the initial state where a sequence starts."""
    step, sequence, sizes, offsets, _ = run.positions(len(out))
    T = len(sizes)
    if run.reverse:  # the step after, where the sequence has one
        nxt = (step + 1).clamp(max=T - 1)
        has = (step + 1 < T) & (sequence < sizes[nxt])
        index = torch.where(has, offsets[nxt] + sequence, len(out) + sequence)
    else:
        before = (step - 1).clamp(min=0)
        index = torch.where(step > 0, offsets[before] + sequence, len(out) + sequence)
    return torch.cat([out, h0])[index]


def _last(values: Tensor, run: Run) -> Tensor:
    """Each sequence's value at its last step in the direction of the run ``(B, ·)``."""
    *_, offsets, lengths = run.positions(len(values))
    B = len(lengths)
    at = torch.arange(B) if run.reverse else offsets[lengths - 1] + torch.arange(B)
    return values[at]


def _depth_transform(
    run: Run,
    cell: GridLSTMCell,
    h_read: Tensor,
    h_d: Tensor,
    m_d: Tensor,
    W_d: Tensor,
    b_d: Tensor,
    save: Callable[..., bool],
) -> tuple[Tensor, Tensor]:
    """A block's depth transform as one step of the LSTM (or RNN) kernel over ``run``'s rows:
    the new depth vector and memory (unchanged for a non-LSTM depth)."""
    H = cell.hidden_size
    W_h = W_d[:, :H].contiguous()  # columns: h^t_k, then h^d_{k-1}
    x_d = run.project(h_d, W_d[:, H:])
    needs = save(x_d, b_d, h_read, m_d, W_h)
    if cell.depth_transform == "lstm":
        flags = _GRID_GATES | (_OUT_INSIDE if cell.output_inside else _OUTPUT_ACT)
        h_new, _, m_new, _, _ = _lstm(run, x_d, b_d, (h_read, m_d), W_h, flags, needs)
        return h_new, m_new
    relu, e = cell.depth_transform == "relu", torch.empty(0, dtype=x_d.dtype)
    lib = run.library(H, H)
    h_new, *_ = ops.rnn_forward(
        x_d, b_d, h_read.contiguous(), W_h, e, e, run.sizes, relu, False, lib, [], e, save=needs
    )
    return h_new, m_d


def _grid(
    run: Run, cell: GridLSTMCell, x: Tensor, state: GridLSTMState, save: Callable[..., bool]
) -> tuple[Tensor, State]:
    K, H, p = cell.depth, cell.hidden_size, run.param
    into = cell.project_input(x.to(cell.weight_in.dtype)).to(run.compute)  # h^d_0 (and m^d_0)
    h_d, m_d = into.chunk(2, dim=-1) if cell.project_memory else (into, torch.zeros_like(into))
    flags = _GRID_GATES | (_OUT_INSIDE if cell.output_inside else _OUTPUT_ACT)
    h_times, m_times = state.h_time.chunk(K, dim=-1), state.m_time.chunk(K, dim=-1)
    finals = []
    for k in range(K):
        W_t, b_t, W_d, b_d = (p(w) for w in cell._block(k))
        if cell.priority == "time":
            parts = (h_d, m_d), (h_times[k], m_times[k]), (W_t, b_t, W_d, b_d)
            h_d, m_d, hT, mT = _time_first(run, cell, *parts, save)
            finals.append((hT, mT))
            continue
        # columns: h^t_k, then h^d_{k-1}; the products run on the faster library, each half of
        # W_d on its own (rather than on a concatenated [h^t ; h^d])
        W_hh = W_t[:, :H].contiguous()
        xp = run.project(h_d, W_t[:, H:])
        needs = save(xp, b_t, h_times[k], m_times[k], W_hh)
        h_t, hT, mT, _, _ = _lstm(run, xp, b_t, (h_times[k], m_times[k]), W_hh, flags, needs)
        finals.append((hT, mT))
        # the depth transform of every step at once, which reads the new time vector (priority
        # "depth") or the previous one (None), both known now: one step of the same kernel over
        # all N rows, h_0 the time vector it reads and (LSTM) C_0 the memory from below
        h_read = h_t if cell.priority == "depth" else _previous(h_t, h_times[k], run)
        h_d, m_d = _depth_transform(run.single(len(x)), cell, h_read, h_d, m_d, W_d, b_d, save)
    h_time, m_time = (torch.cat(parts, dim=-1) for parts in zip(*finals, strict=True))
    if run.masks[1].numel():  # zoneout_hidden, on h: here the output, which no step reads
        h_d = zoneout_sequence(h_d, run.masks[1], state.h, run.counts, run.reverse)
    return h_d, GridLSTMState(_last(h_d, run), h_time, m_time)


def _time_first(
    run: Run,
    cell: GridLSTMCell,
    below: tuple[Tensor, Tensor],
    state: tuple[Tensor, Tensor],
    weights: tuple[Tensor, Tensor, Tensor, Tensor],
    save: Callable[..., bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A block with priority "time": its depth transform reads the previous time vector, and
    its time transform the depth vector just made, both inside each step of one kernel call.
    Returns the block's depth vectors and memories ``(N, H)`` and its final time state."""
    H = cell.hidden_size
    (h_d, m_d), (W_t, b_t, W_d, b_d) = below, weights
    lstm = cell.depth_transform == "lstm"
    kind = {"lstm": grid_ops.GRID_LSTM, "tanh": grid_ops.GRID_TANH, "relu": grid_ops.GRID_RELU}
    xd = run.project(h_d, W_d[:, H:])  # W_dx h^d_{k-1} (+ b_d): the input from below
    xd = (xd + b_d if b_d.numel() else xd).contiguous()
    W_rec = torch.cat([W_d[:, :H], W_t[:, :H]]).contiguous()  # both read h^t_{t-1}
    W_tx = W_t[:, H:].contiguous()
    md = m_d.contiguous() if lstm else torch.empty(0, dtype=xd.dtype)
    h0, m0 = (s.contiguous() for s in state)
    needs = save(xd, md, h0, m0, W_rec, W_tx, b_t)
    H_d, M_d, hT, mT, *_ = grid_ops.grid_time_forward(
        xd, md, h0, m0, W_rec, W_tx, b_t, run.sizes, kind[cell.depth_transform],
        cell.output_inside, run.reverse, needs, run.library(H, W_rec.shape[0]),
    )  # fmt: skip
    return H_d, M_d if lstm else m_d, hT, mT


def zoneout_sequence(
    new: Tensor, keep: Tensor, initial: Tensor, counts: list[int], reverse: bool
) -> Tensor:
    """Zoneout over packed rows ``(N, W)`` that no step reads back (a Grid's h; a kernel's C_t,
    whose zoned-out state it keeps without a gradient): y_t = k_t y_{t-1} + (1 - k_t) new_t
    from y_0 = ``initial``, a step at a time in the direction of the run. Elementwise only; the
    products all ran in the kernels."""
    offsets = [0, *itertools.accumulate(counts)]
    y, outs = initial, [new[:0]] * len(counts)
    for t in range(len(counts) - 1, -1, -1) if reverse else range(len(counts)):
        n, o = counts[t], offsets[t]
        k = keep[o : o + n]
        outs[t] = k * y[:n] + (1 - k) * new[o : o + n]
        y = torch.cat([outs[t], y[n:]]) if n < len(y) else outs[t]
    return torch.cat(outs)
