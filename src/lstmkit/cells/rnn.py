"""The vanilla RNN, which fails to learn long gaps (Hochreiter 1991, Bengio et al. 1994)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit import _recording
from lstmkit._checks import check_choice, describe
from lstmkit._errors import LstmkitTypeError
from lstmkit._recording import Quantity
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.functional import (
    TORCH_WEIGHTS,
    add_torch_weights,
    check_recurrent_init,
    check_sizes,
    identity_,
    init_uniform_,
    orthogonal_,
)

_recording.declare(h_t=Quantity("hidden state", r"$h_t$", "value"))

NONLINEARITIES = ("tanh", "relu")


class RNNCell(RecurrentCell[Tensor]):
    r"""One step of the vanilla (Elman) RNN, the repeating module of the post's first figures.

    Equation (B a batch, I the input size, H the hidden size)::

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (B, H)

    which is the post's ``h_t = tanh(W·[h_{t-1}, x_t] + b)`` with ``W = [W_hh, W_ih]``;
    ``nonlinearity="relu"`` uses ReLU instead of tanh, which with ``recurrent_init="identity"``
    is Le, Jaitly & Hinton 2015's IRNN.

    Parameters (torch.nn's names; inside a layer with the suffix ``_l{k}[_reverse]``)::

        weight_ih  (H, I),  weight_hh  (H, H),  bias_ih, bias_hh  (H,) with bias=True

    ``recurrent_init`` says how they start:

    * ``"uniform"`` (default): all U(-1/√H, 1/√H), as torch.nn;
    * ``"orthogonal"``: ``weight_hh`` a random orthogonal matrix (Saxe, McClelland & Ganguli
      2014; Keras's default for recurrent weights), the rest uniform;
    * ``"identity"``: the IRNN's start (Le et al. 2015): ``weight_hh = I``, the biases 0 and
      ``weight_ih`` drawn from N(0, 0.001²). With ReLU a step then starts as
      ``h_t = relu(h_{t-1} + W_ih x_t)``: the state is carried on and the inputs add to it,
      so at first nothing decays or grows through the recurrence. Offered with tanh too.

    State: a tensor h of shape ``(B, H)``.
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
        nonlinearity: str = "tanh",
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        check_recurrent_init(recurrent_init, identity=True)
        if not isinstance(bias, bool):
            raise LstmkitTypeError(f"bias must be a bool, got {describe(bias)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.nonlinearity = nonlinearity
        self.recurrent_init = recurrent_init
        H = hidden_size
        add_torch_weights(
            self,
            H,
            input_size=input_size,
            recurrent_size=H,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's uniform draw, then the start ``recurrent_init`` names (see the class)."""
        init_uniform_(self, TORCH_WEIGHTS)
        if self.recurrent_init == "orthogonal":
            orthogonal_(self.weight_hh, rows=self.hidden_size)
        elif self.recurrent_init == "identity":
            identity_(self.weight_ih, self.weight_hh, (self.bias_ih, self.bias_hh))

    def project_input(self, x: Tensor) -> Tensor:
        """``W_ih·x + b_ih``: ``(..., I)`` → ``(..., H)``."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    supports_recurrent_dropout = True

    def step(self, xp_t: Tensor, state: Tensor, *, h_mask: Tensor | None = None) -> Tensor:
        h_prev = state if h_mask is None else state * h_mask  # recurrent dropout on h_{t-1}
        pre = xp_t + F.linear(h_prev, self.weight_hh, self.bias_hh)
        h_t = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
        if _recording.RECORDING is not None:
            _recording.record(self, h_t=h_t)
        return h_t

    def torch_step(self, x: Tensor, state: Tensor) -> Tensor | None:
        cell = torch.rnn_tanh_cell if self.nonlinearity == "tanh" else torch.rnn_relu_cell
        return cell(x, state, *self._params(*TORCH_WEIGHTS))

    def spawn(self, input_size: int) -> RNNCell:
        return RNNCell(
            input_size,
            self.hidden_size,
            bias=self.bias,
            nonlinearity=self.nonlinearity,
            recurrent_init=self.recurrent_init,
            device=self.weight_ih.device,
            dtype=self.weight_ih.dtype,
        )

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        extra += (
            "" if self.recurrent_init == "uniform" else f", recurrent_init={self.recurrent_init!r}"
        )
        return f"{self.input_size}, {self.hidden_size}{extra}"
