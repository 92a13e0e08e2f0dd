"""The Gated Recurrent Unit (Cho et al. 2014), in torch.nn's form and in the post's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.functional import (
    TORCH_WEIGHTS,
    add_torch_weights,
    check_chrono,
    check_number,
    check_recurrent_init,
    check_sizes,
    chrono_bias,
    gate_bias_,
    init_layer_norm_,
    init_uniform_,
    orthogonal_,
)

_recording.declare(
    r_t=Quantity("reset gate", r"$r_t$", "gate"),
    z_t=Quantity("update gate", r"$z_t$", "gate"),
    n_t=Quantity("candidate state", r"$n_t$", "value"),
    h_t=Quantity("hidden state", r"$h_t$", "value"),
)


class GRUCell(RecurrentCell[Tensor]):
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

    ``layer_norm=True`` normalises the input and the recurrent products as Ba, Kiros & Hinton
    2016 do for the LSTM (their paper gives no GRU equations; this is the same rule):
    ``W_i· x_t`` becomes ``LN(W_ih x_t)`` over all 3H rows and ``W_h· h_{t-1}`` becomes
    ``LN(W_hh h_{t-1})``, each with its own gain and bias. Before the reset (``reset_after=False``)
    the recurrent product comes in two parts, ``W_h{r,z} h_{t-1}`` and ``W_hn (r_t * h_{t-1})``,
    and each part is normalised on its own, with the matching slice of the gain and bias.

    Parameters (torch.nn's names; inside a layer with the suffix ``_l{k}[_reverse]``)::

        weight_ih  (3H, I)   blocks r, z, n
        weight_hh  (3H, H)   blocks r, z, n
        bias_ih, bias_hh  (3H,)   with bias=True
        ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias  (3H,)   with layer_norm=True

    All start U(-1/√H, 1/√H), as torch.nn (layer-norm gains 1, their biases 0), except where
    an initialisation option says otherwise:

    * ``update_bias``: the update gate's bias b_z (``b_iz``; ``b_hz`` set to 0) at the start,
      in torch's convention, where z_t is the fraction of h_{t-1} that is kept: a positive
      value makes the unit keep its state at first, as the LSTM's forget bias does
      (σ(2) ≈ 0.88 of h_{t-1} kept per step). The post's z'_t = 1 - z_t then has bias
      ``-update_bias``. None (default) leaves torch.nn's uniform draw.
    * ``chrono``: T_max of chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural
      networks warp time?", ICLR), which the paper gives for LSTMs and GRUs. Its gate comes from
      a time warping: dh/dt = g·(tanh(...) - h), stepped as h_{t+1} = g·tanh(...) +
      (1 - g)·h_t, so 1/g is a unit's time constant, to be spread over 1 … T_max; for the LSTM
      (its eq. 16) that is b_f ~ log U(1, T_max - 1) and b_i = -b_f. The GRU's update gate is
      that gate with forget and input coupled: torch's z_t keeps h_{t-1} (the f) and
      1 - z_t = σ(-a_z) lets n_t in (the i, and the paper's g; the post's z'_t). One bias
      therefore carries both halves, ``b_z ~ log U(1, T_max - 1)`` per unit in torch's
      convention (``-b_z`` for the post's z'_t, b_i = -b_f by construction): at the start
      z_t ≈ 1 - 1/τ with τ = 1 + U(1, T_max - 1), between 2 and T_max steps. Give
      update_bias or chrono, not both.
    * ``recurrent_init="orthogonal"``: each of the r, z, n blocks of ``weight_hh`` a random
      orthogonal ``(H, H)`` matrix of its own (Saxe, McClelland & Ganguli 2014; why per block:
      :func:`lstmkit.cells.functional.orthogonal_`). ``"uniform"`` (default) is torch.nn's.

    Both reset forms hold z in rows H … 2H - 1, so the options set the same rows in both.
    State: a tensor h of shape ``(B, H)``.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    ln_ih_weight: Tensor | None
    ln_ih_bias: Tensor | None
    ln_hh_weight: Tensor | None
    ln_hh_bias: Tensor | None
    supports_recurrent_dropout = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        reset_after: bool = True,
        layer_norm: bool = False,
        update_bias: float | None = None,
        chrono: int | None = None,
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        for name, value in (
            ("bias", bias),
            ("reset_after", reset_after),
            ("layer_norm", layer_norm),
        ):
            if not isinstance(value, bool):
                raise LstmkitTypeError(f"{name} must be a bool, got {describe(value)}")
        _check_gate_init(update_bias, chrono, bias=bias)
        check_recurrent_init(recurrent_init)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.reset_after = reset_after
        self.layer_norm = layer_norm
        self.update_bias = None if update_bias is None else float(update_bias)
        self.chrono = chrono
        self.recurrent_init = recurrent_init
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
        for name in ("ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias"):
            new = (
                nn.Parameter(torch.empty(3 * H, device=device, dtype=dtype)) if layer_norm else None
            )
            self.register_parameter(name, new)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's uniform draw, then what ``recurrent_init``, ``update_bias`` and ``chrono``
        say (see the class); layer-norm gains start at 1 and their biases at 0."""
        H = self.hidden_size
        init_uniform_(self, TORCH_WEIGHTS)
        if self.recurrent_init == "orthogonal":
            orthogonal_(self.weight_hh, rows=H)
        init_layer_norm_(self, ("ln_ih", "ln_hh"))
        b_ih, b_z = self.bias_ih, None
        if b_ih is not None and self.chrono is not None:
            b_z = chrono_bias(H, self.chrono, like=b_ih)
        elif b_ih is not None and self.update_bias is not None:
            b_z = torch.full((H,), self.update_bias).to(b_ih)
        if b_ih is not None and b_z is not None:
            gate_bias_(b_ih, self.bias_hh, slice(H, 2 * H), b_z)  # the z block

    def project_input(self, x: Tensor) -> Tensor:
        """``W_ih·x + b_ih`` (``LN(W_ih·x) + b_ih`` with layer normalisation) for the blocks
        r, z, n: ``(..., I)`` → ``(..., 3H)``."""
        if not self.layer_norm:
            return F.linear(x, self.weight_ih, self.bias_ih)
        wx = _ln(F.linear(x, self.weight_ih), self.ln_ih_weight, self.ln_ih_bias)
        return wx if self.bias_ih is None else wx + self.bias_ih

    def _recurrent(self, h: Tensor, rows: slice) -> Tensor:
        """``W_hh[rows]·h + b_hh[rows]``, layer-normalised over those rows if asked."""
        W, b = self.weight_hh[rows], None if self.bias_hh is None else self.bias_hh[rows]
        if not self.layer_norm:
            return F.linear(h, W, b)
        assert self.ln_hh_weight is not None
        assert self.ln_hh_bias is not None
        wh = _ln(F.linear(h, W), self.ln_hh_weight[rows], self.ln_hh_bias[rows])
        return wh if b is None else wh + b

    def step(self, xp_t: Tensor, state: Tensor, *, h_mask: Tensor | None = None) -> Tensor:
        h_prev, H = state, self.hidden_size
        h_in = h_prev if h_mask is None else h_prev * h_mask  # recurrent dropout: products only
        x_r, x_z, x_n = xp_t.chunk(3, dim=-1)
        if self.reset_after:
            h_r, h_z, h_n = self._recurrent(h_in, slice(0, 3 * H)).chunk(3, dim=-1)
            r_t = torch.sigmoid(x_r + h_r)
            z_t = torch.sigmoid(x_z + h_z)
            n_t = torch.tanh(x_n + r_t * h_n)
        else:
            h_r, h_z = self._recurrent(h_in, slice(0, 2 * H)).chunk(2, dim=-1)
            r_t = torch.sigmoid(x_r + h_r)
            z_t = torch.sigmoid(x_z + h_z)
            n_t = torch.tanh(x_n + self._recurrent(r_t * h_in, slice(2 * H, 3 * H)))  # reset before
        h_t = (1 - z_t) * n_t + z_t * h_prev
        if _recording.RECORDING is not None:
            _recording.record(self, r_t=r_t, z_t=z_t, n_t=n_t, h_t=h_t)
        return h_t

    def torch_step(self, x: Tensor, state: Tensor) -> Tensor | None:
        if not self.reset_after or self.layer_norm:
            return None
        return torch.gru_cell(x, state, *self._params(*TORCH_WEIGHTS))

    def spawn(self, input_size: int) -> GRUCell:
        return GRUCell(
            input_size,
            self.hidden_size,
            bias=self.bias,
            reset_after=self.reset_after,
            layer_norm=self.layer_norm,
            update_bias=self.update_bias,
            chrono=self.chrono,
            recurrent_init=self.recurrent_init,
            device=self.weight_ih.device,
            dtype=self.weight_ih.dtype,
        )

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.reset_after else ", reset_after=False"
        extra += ", layer_norm=True" if self.layer_norm else ""
        extra += "" if self.update_bias is None else f", update_bias={self.update_bias}"
        extra += "" if self.chrono is None else f", chrono={self.chrono}"
        extra += (
            "" if self.recurrent_init == "uniform" else f", recurrent_init={self.recurrent_init!r}"
        )
        return f"{self.input_size}, {self.hidden_size}{extra}"


def _check_gate_init(update_bias: object, chrono: object, *, bias: bool) -> None:
    """update_bias and chrono both set b_z: one of them, a number and a T_max, and biases."""
    if update_bias is not None:
        check_number("update_bias", update_bias)
    if chrono is not None:
        check_chrono(chrono)
    if update_bias is not None and chrono is not None:
        raise LstmkitValueError(
            "give update_bias or chrono, not both: both set the update gate's bias; got "
            f"update_bias={update_bias!r}, chrono={chrono!r}"
        )
    given = "update_bias" if update_bias is not None else "chrono" if chrono is not None else ""
    if given and not bias:
        raise LstmkitValueError(
            f"{given} sets the update gate's bias, but this cell has bias=False; drop {given} "
            "or build it with bias=True"
        )


def _ln(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], weight, bias)
