"""The Depth-Gated LSTM (Yao, Cohn, Vylomova, Duh & Dyer 2015, arXiv 1508.03790): a stack of
LSTMs in which each layer's memory cell also receives the memory cell of the layer below,
through a gate of its own, the depth gate."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import check_positive_int, check_probability, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit._state import State
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.functional import (
    check_number,
    check_recurrent_init,
    check_sizes,
    forget_bias_,
    init_uniform_,
    orthogonal_,
)
from lstmkit.cells.lstm import LSTMConfig, lstm_pointwise

_recording.declare(
    d_t=Quantity("depth gate", r"$d_t$", "gate"),
)


class DepthGatedLSTMCell(RecurrentCell[LSTMState]):
    r"""One time step of a whole depth-gated stack: layers 0, 1, …, L-1, bottom-up.

    Layer k is an LSTM (lstmkit's standard cell, h_t = o_t * tanh(C_t)) whose input is the
    output of the layer below, ``x_t^k = h_t^{k-1}`` (``x_t^0 = x_t``). From layer 1 up, the
    cell also takes in the lower layer's cell of the same step through the depth gate d_t^k.
    Per layer (B a batch, H the hidden size, I_k = I for k = 0 and H above; every line
    ``(B, H)``)::

        i_t^k = σ(W_ii^k x_t^k + b_ii^k + W_hi^k h_{t-1}^k + b_hi^k + w_ci^k * C_{t-1}^k)
        f_t^k = σ(W_if^k x_t^k + b_if^k + W_hf^k h_{t-1}^k + b_hf^k + w_cf^k * C_{t-1}^k)
        C̃_t^k = tanh(W_ig^k x_t^k + b_ig^k + W_hg^k h_{t-1}^k + b_hg^k)
        d_t^k = σ(b_d^k + W_xd^k x_t^k + w_cd^k * C_{t-1}^k + w_ld^k * C_t^{k-1})   (6), k >= 1
        C_t^k = d_t^k * C_t^{k-1} + f_t^k * C_{t-1}^k + i_t^k * C̃_t^k               (7), k >= 1
        C_t^0 = f_t^0 * C_{t-1}^0 + i_t^0 * C̃_t^0
        o_t^k = σ(W_io^k x_t^k + b_io^k + W_ho^k h_{t-1}^k + b_ho^k + w_co^k * C_t^k)
        h_t^k = o_t^k * tanh(C_t^k)

    (6) and (7) are the depth gate and the cell update of arXiv 1508.03790 as we read them,
    written with the paper's symbols for the step from layer L = k - 1 to L + 1 = k; the
    authors' workshop code (dglstm.cc of the JSALT 2015 team) computes the same forms.
    ``W_xd`` is a full ``(H, H)`` matrix; ``w_cd`` and ``w_ld`` are diagonal, stored as
    ``(H,)`` vectors and applied elementwise.

    Choices where the paper leaves them open or where we depart from that code:

    * layer 0 has no cell below it, so it is a plain LSTM with no depth gate (the code gates a
      projection of the input into layer 1's cell; that term is not in the paper);
    * the gates i, f, o are those of lstmkit's LSTMCell, each with its own weights (the code
      couples f = 1 - i); the peephole terms ``w_c· * C`` of the paper's base LSTM
      (its eqs. (1)-(5)) are there only with ``peepholes=True``, diagonal, i and f looking at
      C_{t-1}, o at the new C_t of (7), the depth term included;
    * dropout between layers (the ``dropout`` option) acts on x_t^k = h_t^{k-1} where it
      enters layer k, for its gates and its depth gate alike; the lower cell C_t^{k-1} goes up
      untouched.

    Args:
        input_size: I, the features of x_t.
        hidden_size: H, the same in every layer.
        num_layers: L, the depth of the stack (keyword, required). With L = 1 the cell is a
            plain LSTM.
        bias: whether b_ih, b_hh and b_d exist.
        peepholes: peephole weights w_ci, w_cf, w_co in every layer.
        forget_bias: b_f at initialisation; None gives 1.0, as lstmkit.LSTMCell (after
            Jozefowicz et al. 2015). Needs ``bias=True``.
        dropout: dropout on h_t^{k-1} where it enters layer k, in training mode.
        recurrent_init: "uniform" (default) or "orthogonal": each gate's block of every
            ``weight_hh_l{k}`` a random orthogonal (H, H) matrix of its own (Saxe, McClelland &
            Ganguli 2014), as :class:`lstmkit.LSTMCell` does. W_xd reads the layer below, not
            h_{t-1}, and stays uniform.

    Parameters of layer k (torch.nn.LSTM's names for the LSTM part, so its state dict loads;
    inside :class:`DepthGatedLSTM` the reverse stack adds ``_reverse``)::

        weight_ih_l{k}  (4H, I_k)   blocks i, f, g, o
        weight_hh_l{k}  (4H, H)     blocks i, f, g, o
        bias_ih_l{k}, bias_hh_l{k}  (4H,)        with bias=True
        weight_ci_l{k}, weight_cf_l{k}, weight_co_l{k}  (H,)   with peepholes=True
        weight_xd_l{k}  (H, H)      W_xd, k >= 1
        weight_cd_l{k}, weight_ld_l{k}  (H,)    w_cd, w_ld, k >= 1
        bias_d_l{k}     (H,)        b_d, k >= 1, with bias=True

    All start U(-1/√H, 1/√H), as torch.nn, except the forget bias (b_if = forget_bias,
    b_hf = 0) and what recurrent_init changes.

    State: :class:`LSTMState` ``(h, c)``, each ``(B, L·H)``, the layers side by side (layer k in
    columns ``k·H … (k+1)·H - 1``). ``output(state)`` is the top layer's h_t^{L-1}, ``(B, H)``.
    """

    supports_recurrent_dropout = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int,
        bias: bool = True,
        peepholes: bool = False,
        forget_bias: float | None = None,
        dropout: float = 0.0,
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_positive_int("num_layers", num_layers)
        check_recurrent_init(recurrent_init)
        for name, flag in (("bias", bias), ("peepholes", peepholes)):
            if not isinstance(flag, bool):
                raise LstmkitTypeError(f"{name} must be a bool, got {describe(flag)}")
        if forget_bias is not None:
            check_number("forget_bias", forget_bias)
            if not bias:
                raise LstmkitValueError("forget_bias sets the forget gate's bias, but bias=False")
        check_probability("dropout", dropout)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.peepholes = bias, peepholes
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        self.dropout = float(dropout)
        self.recurrent_init = recurrent_init
        self._config = LSTMConfig(peepholes="ifo" if peepholes else "")  # each layer's LSTM
        H = hidden_size
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        self._names: list[str] = []
        for k in range(num_layers):
            self._add(f"weight_ih_l{k}", (4 * H, input_size if k == 0 else H), new)
            self._add(f"weight_hh_l{k}", (4 * H, H), new)
            self._add(f"bias_ih_l{k}", (4 * H,), new, present=bias)
            self._add(f"bias_hh_l{k}", (4 * H,), new, present=bias)
            for gate in "ifo":
                self._add(f"weight_c{gate}_l{k}", (H,), new, present=peepholes)
            if k > 0:
                self._add(f"weight_xd_l{k}", (H, H), new)
                self._add(f"weight_cd_l{k}", (H,), new)
                self._add(f"weight_ld_l{k}", (H,), new)
                self._add(f"bias_d_l{k}", (H,), new, present=bias)
        self.reset_parameters()

    def _add(
        self, name: str, shape: tuple[int, ...], new: dict[str, Any], *, present: bool = True
    ) -> None:
        self.register_parameter(name, nn.Parameter(torch.empty(shape, **new)) if present else None)
        self._names.append(name)

    def _get(self, name: str, k: int) -> Tensor | None:
        value: Tensor | None = getattr(self, f"{name}_l{k}")
        return value

    def _weight(self, name: str, k: int) -> Tensor:
        value = self._get(name, k)
        assert value is not None
        return value

    def reset_parameters(self) -> None:
        """torch.nn's U(-1/√H, 1/√H) for everything, then recurrent_init, b_if = forget_bias and
        b_hf = 0."""
        init_uniform_(self, tuple(self._names))
        if self.recurrent_init == "orthogonal":
            for k in range(self.num_layers):
                orthogonal_(self._weight("weight_hh", k), rows=self.hidden_size)
        if not self.bias:
            return
        b_f = 1.0 if self.forget_bias is None else self.forget_bias
        for k in range(self.num_layers):
            b_ih, b_hh = self._weight("bias_ih", k), self._weight("bias_hh", k)
            forget_bias_(b_ih, b_hh, hidden_size=self.hidden_size, forget_bias=b_f)

    def project_input(self, x: Tensor) -> Tensor:
        """Layer 0's ``W_ih^0·x + b_ih^0`` (blocks i, f, g, o): ``(..., I)`` → ``(..., 4H)``.
        The layers above read h_t of the layer below, known only inside the step."""
        return F.linear(x, self._weight("weight_ih", 0), self._get("bias_ih", 0))

    def step(self, xp_t: Tensor, state: LSTMState, *, h_mask: Tensor | None = None) -> LSTMState:
        L = self.num_layers
        h_prev = state.h.chunk(L, dim=-1)  # L × (B, H)
        C_prev = state.c.chunk(L, dim=-1)
        h_rec = h_prev if h_mask is None else (state.h * h_mask).chunk(L, dim=-1)  # products only
        hs: list[Tensor] = []
        Cs: list[Tensor] = []
        seen: dict[str, list[Tensor]] | None = None
        if _recording.RECORDING is not None:
            seen = {"i_t": [], "f_t": [], "C_tilde": [], "o_t": [], "d_t": []}
        for k in range(self.num_layers):
            recurrent = F.linear(h_rec[k], self._weight("weight_hh", k), self._get("bias_hh", k))
            if k == 0:
                gates = xp_t + recurrent  # (B, 4H); layer 0's input projection came hoisted
                h_t, C_t = self._pointwise(k, gates, C_prev[k], None, seen)
            else:
                x_k = hs[-1]  # x_t^k = h_t^{k-1}
                if self.dropout > 0:
                    x_k = F.dropout(x_k, self.dropout, self.training)
                gates = F.linear(x_k, self._weight("weight_ih", k), self._get("bias_ih", k))
                gates = gates + recurrent  # (B, 4H)
                C_lower = Cs[-1]  # C_t^{k-1}
                d_t = torch.sigmoid(
                    F.linear(x_k, self._weight("weight_xd", k), self._get("bias_d", k))
                    + self._weight("weight_cd", k) * C_prev[k]
                    + self._weight("weight_ld", k) * C_lower
                )  # (6)
                if seen is not None:
                    seen["d_t"].append(d_t)
                h_t, C_t = self._pointwise(k, gates, C_prev[k], d_t * C_lower, seen)
            hs.append(h_t)
            Cs.append(C_t)
        new = LSTMState(torch.cat(hs, dim=-1), torch.cat(Cs, dim=-1))  # (B, L·H) each
        if seen is not None:  # every layer side by side, as in the state
            joined = {name: torch.cat(v, dim=-1) for name, v in seen.items() if v}
            _recording.record(self, **joined, C_t=new.c, h_t=new.h)
        return new

    def _pointwise(
        self,
        k: int,
        gates: Tensor,
        C_prev: Tensor,
        depth: Tensor | None,
        seen: dict[str, list[Tensor]] | None,
    ) -> tuple[Tensor, Tensor]:
        """Layer k's LSTM update from its pre-activations ``(B, 4H)``; ``depth`` is the term
        ``d_t^k * C_t^{k-1}`` of (7), None in layer 0. Returns ``(h_t, C_t)`` and appends the
        gates to ``seen`` when a trace is recording."""
        w_ci, w_cf, w_co = (self._get(f"weight_c{g}", k) for g in "ifo")
        s = lstm_pointwise(
            gates, C_prev, self._config, w_ci=w_ci, w_cf=w_cf, w_co=w_co, depth=depth
        )
        if seen is not None:
            for name in ("i_t", "f_t", "C_tilde", "o_t"):
                seen[name].append(getattr(s, name))
        return s.h_t, s.C_t

    def output(self, state: State) -> Tensor:
        """The top layer's h_t, ``(B, H)``."""
        assert isinstance(state, tuple)
        return state[0][..., -self.hidden_size :]

    def initial_state(
        self, batch_size: int, *, dtype: torch.dtype, device: torch.device
    ) -> LSTMState:
        width = self.num_layers * self.hidden_size
        zeros = torch.zeros(batch_size, width, dtype=dtype, device=device)
        return LSTMState(zeros, zeros.clone())

    def spawn(self, input_size: int) -> DepthGatedLSTMCell:
        like = self._weight("weight_hh", 0)
        return DepthGatedLSTMCell(
            input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            bias=self.bias,
            peepholes=self.peepholes,
            forget_bias=self.forget_bias,
            dropout=self.dropout,
            recurrent_init=self.recurrent_init,
            device=like.device,
            dtype=like.dtype,
        )

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}", f"num_layers={self.num_layers}"]
        parts += [] if self.bias else ["bias=False"]
        parts += ["peepholes=True"] if self.peepholes else []
        parts += [] if self.forget_bias is None else [f"forget_bias={self.forget_bias}"]
        parts += [f"dropout={self.dropout}"] if self.dropout else []
        parts += (
            [] if self.recurrent_init == "uniform" else [f"recurrent_init={self.recurrent_init!r}"]
        )
        return ", ".join(parts)
