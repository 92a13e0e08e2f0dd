"""The Gated Recurrent Unit (Cho et al. 2014), in torch.nn's form and in the post's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import describe
from lstmkit.cells.base import (
    TORCH_WEIGHTS,
    RecurrentCell,
    add_torch_weights,
    check_sizes,
    init_uniform_,
)


class GRUCell(RecurrentCell):
    r"""One GRU step, with the reset gate applied after the product (torch.nn) or before it
    (Cho et al. 2014 and the post).

    Equations (B a batch, I the input size, H the hidden size; every line ``(B, H)``)::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)              reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)              update gate
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))   reset_after=True (torch.nn)
        n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)   reset_after=False (Cho)
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    The post writes the last line as ``h_t = (1 - z'_t) * h_{t-1} + z'_t * h̃_t`` with
    ``h̃_t = n_t``: its update gate is ``z'_t = 1 - z_t``, the fraction of the new candidate that
    is let in, where torch's z_t is the fraction of the old state that is kept. Both forms here
    use torch's z_t and torch's weights, so a torch.nn.GRU state dict loads into either.

    Parameters (torch.nn's names; inside a layer with the suffix ``_l{k}[_reverse]``)::

        weight_ih  (3H, I)   blocks r, z, n
        weight_hh  (3H, H)   blocks r, z, n
        bias_ih, bias_hh  (3H,)   with bias=True

    All start U(-1/√H, 1/√H), as torch.nn. State: a tensor h of shape ``(B, H)``.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        reset_after: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        for name, value in (("bias", bias), ("reset_after", reset_after)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {describe(value)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.reset_after = reset_after
        H = hidden_size
        add_torch_weights(
            self,
            3 * H,
            input_size=input_size,
            recurrent_size=H,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_uniform_(self, TORCH_WEIGHTS)

    def project_input(self, x: Tensor) -> Tensor:
        """``W_ih·x + b_ih`` for the blocks r, z, n: ``(..., I)`` → ``(..., 3H)``."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step(self, xp_t: Tensor, state: Tensor) -> Tensor:  # type: ignore[override]
        h_prev, H = state, self.hidden_size
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)
        if self.reset_after:
            h_r, h_z, h_n = F.linear(h_prev, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
            r_t = torch.sigmoid(x_r + h_r)
            z_t = torch.sigmoid(x_z + h_z)
            n_t = torch.tanh(x_n + r_t * h_n)
        else:
            W_hrz, W_hn = self.weight_hh[: 2 * H], self.weight_hh[2 * H :]
            b_hh = self.bias_hh
            b_hrz, b_hn = (None, None) if b_hh is None else (b_hh[: 2 * H], b_hh[2 * H :])
            h_r, h_z = F.linear(h_prev, W_hrz, b_hrz).chunk(2, dim=-1)
            r_t = torch.sigmoid(x_r + h_r)
            z_t = torch.sigmoid(x_z + h_z)
            n_t = torch.tanh(x_n + F.linear(r_t * h_prev, W_hn, b_hn))  # reset before the product
        h_t = (1 - z_t) * n_t + z_t * h_prev
        return h_t

    def spawn(self, input_size: int) -> GRUCell:
        return GRUCell(
            input_size,
            self.hidden_size,
            bias=self.bias,
            reset_after=self.reset_after,
            device=self.weight_ih.device,
            dtype=self.weight_ih.dtype,
        )

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.reset_after else ", reset_after=False"
        return f"{self.input_size}, {self.hidden_size}{extra}"
