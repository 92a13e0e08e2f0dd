"""MUT1, MUT2 and MUT3: the three architectures that Jozefowicz, Zaremba & Sutskever 2015 found
by searching ten thousand mutations of the GRU and LSTM."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import describe
from lstmkit._errors import LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.functional import check_recurrent_init, check_sizes, init_uniform_, orthogonal_

_recording.declare(
    z_t=Quantity("update gate", r"$z_t$", "gate"),
    r_t=Quantity("reset gate", r"$r_t$", "gate"),
    h_t=Quantity("hidden state", r"$h_t$", "value"),
)

# The weight matrices of each architecture, by the paper's names: W_x· act on x_t, W_h· on h_t
# (W_hz on tanh(h_t) in MUT3), W_hh on r ⊙ h_t.
_MATRICES = {
    1: ("weight_xz", "weight_xr", "weight_hr", "weight_hh"),
    2: ("weight_xz", "weight_hz", "weight_hr", "weight_hh", "weight_xh"),
    3: ("weight_xz", "weight_hz", "weight_xr", "weight_hr", "weight_hh", "weight_xh"),
}
_BIASES = ("bias_z", "bias_r", "bias_h")


class MUTCell(RecurrentCell[Tensor]):
    r"""One step of MUT1, MUT2 or MUT3 (Jozefowicz, Zaremba & Sutskever 2015, "An Empirical
    Exploration of Recurrent Network Architectures", the three architectures listed with the
    results; the paper does not number these equations). In the paper's notation a step maps
    h_t to h_{t+1} (B a batch, H the hidden size, σ the logistic sigmoid)::

        MUT1:
        z = σ(W_xz x_t + b_z)
        r = σ(W_xr x_t + W_hr h_t + b_r)
        h_{t+1} = tanh(W_hh (r ⊙ h_t) + tanh(x_t) + b_h) ⊙ z + h_t ⊙ (1 - z)

        MUT2:
        z = σ(W_xz x_t + W_hz h_t + b_z)
        r = σ(x_t + W_hr h_t + b_r)
        h_{t+1} = tanh(W_hh (r ⊙ h_t) + W_xh x_t + b_h) ⊙ z + h_t ⊙ (1 - z)

        MUT3:
        z = σ(W_xz x_t + W_hz tanh(h_t) + b_z)
        r = σ(W_xr x_t + W_hr h_t + b_r)
        h_{t+1} = tanh(W_hh (r ⊙ h_t) + W_xh x_t + b_h) ⊙ z + h_t ⊙ (1 - z)

    Note what differs from the GRU: MUT1's update gate z sees only x_t; MUT1 adds tanh(x_t) and
    MUT2 adds x_t to a vector of size H with no matrix, so both need ``input_size ==
    hidden_size``; MUT3's z sees tanh(h_t); and
    z weights the candidate, not h_t. Published reimplementations differ here (one puts a
    matrix on MUT1's tanh(x_t), an older version of it multiplies h_t by z instead of r inside
    W_hh); the forms above are the paper's. Choices the paper leaves open: h_0 = 0 by default,
    one bias per equation, weights drawn as torch.nn draws a GRU's.

    Parameters (inside a layer with the suffix ``_l{k}[_reverse]``): the matrices named above,
    ``weight_xz`` (H, I), ``weight_hz`` (H, H), ..., and ``bias_z``, ``bias_r``, ``bias_h``
    (H,), all U(-1/√H, 1/√H); with ``recurrent_init="orthogonal"`` each matrix that reads h_t
    (``weight_hz``, ``weight_hr``, ``weight_hh``) is a random orthogonal (H, H) matrix of its
    own instead (Saxe, McClelland & Ganguli 2014). State: a tensor h of shape ``(B, H)``.
    """

    supports_recurrent_dropout = True
    weight_hz: Tensor
    weight_hr: Tensor
    weight_hh: Tensor
    bias_z: Tensor
    bias_r: Tensor
    bias_h: Tensor

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        kind: int = 1,
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_recurrent_init(recurrent_init)
        if isinstance(kind, bool) or kind not in _MATRICES:
            raise LstmkitValueError(
                f"kind must be 1, 2 or 3 (MUT1, MUT2, MUT3), got {describe(kind)}"
            )
        if kind in (1, 2) and input_size != hidden_size:
            term = "tanh(x_t)" if kind == 1 else "x_t"
            raise LstmkitValueError(
                f"MUT{kind} adds {term} to a vector of the hidden size with no matrix, so it needs "
                f"input_size == hidden_size; got input_size={input_size}, hidden_size={hidden_size}"
            )
        self.input_size, self.hidden_size, self.kind = input_size, hidden_size, kind
        self.recurrent_init = recurrent_init
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        for name in _MATRICES[kind]:
            columns = input_size if name.startswith("weight_x") else hidden_size
            setattr(self, name, nn.Parameter(torch.empty(hidden_size, columns, **new)))
        for name in _BIASES:
            setattr(self, name, nn.Parameter(torch.empty(hidden_size, **new)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_uniform_(self, (*_MATRICES[self.kind], *_BIASES))
        if self.recurrent_init == "orthogonal":
            for name in _MATRICES[self.kind]:
                if name.startswith("weight_h"):  # W_hz, W_hr, W_hh: the products with h_t
                    orthogonal_(getattr(self, name))

    def _x_terms(self) -> tuple[str, ...]:
        return tuple(n for n in _MATRICES[self.kind] if n.startswith("weight_x"))

    def project_input(self, x: Tensor) -> Tensor:
        """Everything that depends on x_t alone, side by side: the W_x· x_t of the architecture
        (with their biases) and, for MUT1 and MUT2, the matrix-free term: ``(..., I)`` →
        ``(..., k·H)``."""
        names = self._x_terms()
        W = torch.cat([getattr(self, n) for n in names])
        bias = {"weight_xz": self.bias_z, "weight_xr": self.bias_r, "weight_xh": self.bias_h}
        projected = F.linear(x, W, torch.cat([bias[n] for n in names]))
        if self.kind == 1:
            return torch.cat([projected, torch.tanh(x) + self.bias_h], dim=-1)  # tanh(x_t) + b_h
        if self.kind == 2:
            return torch.cat([projected, x + self.bias_r], dim=-1)  # x_t + b_r
        return projected

    def step(self, xp_t: Tensor, state: Tensor, *, h_mask: Tensor | None = None) -> Tensor:
        h = state
        h_in = h if h_mask is None else h * h_mask  # recurrent dropout: the products only
        if self.kind == 1:
            x_z, x_r, x_h = xp_t.chunk(3, dim=-1)  # W_xz x + b_z, W_xr x + b_r, tanh(x) + b_h
            z = torch.sigmoid(x_z)
            r = torch.sigmoid(x_r + F.linear(h_in, self.weight_hr))
        elif self.kind == 2:
            x_z, x_h, x_r = xp_t.chunk(3, dim=-1)  # W_xz x + b_z, W_xh x + b_h, x + b_r
            z = torch.sigmoid(x_z + F.linear(h_in, self.weight_hz))
            r = torch.sigmoid(x_r + F.linear(h_in, self.weight_hr))
        else:
            x_z, x_r, x_h = xp_t.chunk(3, dim=-1)  # W_xz x + b_z, W_xr x + b_r, W_xh x + b_h
            z = torch.sigmoid(x_z + F.linear(torch.tanh(h_in), self.weight_hz))
            r = torch.sigmoid(x_r + F.linear(h_in, self.weight_hr))
        candidate = torch.tanh(F.linear(r * h_in, self.weight_hh) + x_h)
        h_next = candidate * z + h * (1 - z)
        if _recording.RECORDING is not None:
            _recording.record(self, z_t=z, r_t=r, h_t=h_next)
        return h_next

    def spawn(self, input_size: int) -> MUTCell:
        return MUTCell(
            input_size,
            self.hidden_size,
            kind=self.kind,
            recurrent_init=self.recurrent_init,
            device=self.bias_z.device,
            dtype=self.bias_z.dtype,
        )

    def extra_repr(self) -> str:
        extra = (
            "" if self.recurrent_init == "uniform" else f", recurrent_init={self.recurrent_init!r}"
        )
        return f"{self.input_size}, {self.hidden_size}, kind={self.kind}{extra}"
