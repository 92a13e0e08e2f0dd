"""torch.nn.LSTM, GRU and RNN's drop-in replacements, each with its variants by keyword."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import VARIANT_DESCRIPTIONS, LSTMCell, LSTMConfig
from lstmkit.cells.rnn import RNNCell
from lstmkit.engines.regularizers import RegularizerOptions
from lstmkit.layers.recurrent import Recurrent
from lstmkit.layers.registry import Example, register_layer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from lstmkit.cells.lstm import LSTMOptions

    class LSTMLayerOptions(LSTMOptions, RegularizerOptions, total=False):
        """The LSTM cell's options and the regularisers, as LSTM takes them."""


class LSTM(Recurrent):
    r"""A multi-layer LSTM, torch.nn.LSTM's drop-in replacement with every variant by keyword.

    ``output, (h_n, c_n) = lstm(input, (h_0, c_0))``; shapes as :class:`Recurrent`, with
    h of size ``proj_size or hidden_size`` and c of size ``hidden_size``. The cell options
    (``peepholes``, ``coupled``, ``variant``, ``forget_bias``, ``chrono``, ``recurrent_init``, the
    Greff switches) are those of :class:`lstmkit.LSTMCell`; every layer and direction gets the
    same configuration.

    Parameters per layer k: ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}``, ``weight_hr_l{k}``, as torch.nn.LSTM, plus the variant-only
    ``weight_ci_l{k}``, ``weight_cf_l{k}``, ``weight_co_l{k}`` (peepholes) and ``weight_gg_l{k}``
    (full gate recurrence); ``_reverse`` for the reverse direction. With a variant's
    configuration a state is :class:`lstmkit.FullGateState` ``(h, c, a)`` under full gate
    recurrence, ``(h, c)`` otherwise.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **options: Unpack[LSTMLayerOptions],
    ) -> None:
        given: dict[str, Any] = dict(options)
        reg = {k: given.pop(k) for k in list(given) if k in RegularizerOptions.__annotations__}
        cell = LSTMCell(
            input_size,
            hidden_size,
            bias=bias,
            proj_size=proj_size,
            device=device,
            dtype=dtype,
            **given,
        )
        super().__init__(
            cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dropout=dropout,
            engine=engine,
            **reg,
        )

    @property
    def config(self) -> LSTMConfig:
        """The configuration every cell of this layer shares."""
        return self.first_cell(LSTMCell).config

    @property
    def bias(self) -> bool:
        return self.config.bias

    @property
    def proj_size(self) -> int:
        return self.config.proj_size


class GRU(Recurrent):
    r"""A multi-layer GRU, torch.nn.GRU's drop-in replacement; ``reset_after=False`` gives the
    form of Cho et al. 2014 and of the post (see :class:`lstmkit.GRUCell`).

    ``output, h_n = gru(input, h_0)``; shapes as :class:`Recurrent`. Parameters as torch.nn.GRU:
    ``weight_ih_l{k}`` ``(3H, ·)`` with blocks r, z, n, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}``, and ``_reverse``. The initialisation options ``update_bias`` (b_z in
    torch's convention: positive keeps the state), ``chrono`` (T_max of chrono initialisation)
    and ``recurrent_init`` are :class:`lstmkit.GRUCell`'s, for every layer and direction.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        reset_after: bool = True,
        layer_norm: bool = False,
        update_bias: float | None = None,
        chrono: int | None = None,
        recurrent_init: str = "uniform",
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **regularizers: Unpack[RegularizerOptions],
    ) -> None:
        cell = GRUCell(
            input_size,
            hidden_size,
            bias=bias,
            reset_after=reset_after,
            layer_norm=layer_norm,
            update_bias=update_bias,
            chrono=chrono,
            recurrent_init=recurrent_init,
            device=device,
            dtype=dtype,
        )
        super().__init__(
            cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dropout=dropout,
            engine=engine,
            **regularizers,
        )

    @property
    def bias(self) -> bool:
        return self.first_cell(GRUCell).bias

    @property
    def reset_after(self) -> bool:
        return self.first_cell(GRUCell).reset_after


class RNN(Recurrent):
    r"""A multi-layer vanilla RNN, torch.nn.RNN's drop-in replacement (see lstmkit.RNNCell).

    ``output, h_n = rnn(input, h_0)``; shapes as :class:`Recurrent`. Parameters as torch.nn.RNN:
    ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, and ``_reverse``.
    ``recurrent_init`` ("uniform", "orthogonal", or "identity", which with
    ``nonlinearity="relu"`` is Le et al. 2015's IRNN) is :class:`lstmkit.RNNCell`'s.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        recurrent_init: str = "uniform",
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **regularizers: Unpack[RegularizerOptions],
    ) -> None:
        cell = RNNCell(
            input_size,
            hidden_size,
            bias=bias,
            nonlinearity=nonlinearity,
            recurrent_init=recurrent_init,
            device=device,
            dtype=dtype,
        )
        super().__init__(
            cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dropout=dropout,
            engine=engine,
            **regularizers,
        )

    @property
    def bias(self) -> bool:
        return self.first_cell(RNNCell).bias

    @property
    def nonlinearity(self) -> str:
        return self.first_cell(RNNCell).nonlinearity


register_layer(
    "rnn",
    RNN,
    examples=[
        Example("vanilla RNN, tanh", "Elman 1990"),
        Example("vanilla RNN, ReLU", "Le et al. 2015", {"nonlinearity": "relu"}),
    ],
)
register_layer(
    "gru",
    GRU,
    examples=[
        Example("GRU, reset after the product", "Cho et al. 2014; torch.nn"),
        Example("GRU, the post's form", "Cho et al. 2014", {"reset_after": False}),
        Example("layer-normalised GRU", "Ba et al. 2016", {"layer_norm": True}),
    ],
)
register_layer(
    "lstm",
    LSTM,
    examples=[
        Example("the standard LSTM", "Hochreiter & Schmidhuber 1997"),
        Example(
            "LSTM with projection", "Sak et al. 2014", sized=lambda H, T: {"proj_size": H // 2}
        ),
        Example("peepholes on i and f", "Gers & Schmidhuber 2000", {"peepholes": "if"}),
        Example("f_t = 1 - i_t", "Greff et al. 2015", {"coupled": True}),
        Example(
            "chrono initialisation", "Tallec & Ollivier 2018", sized=lambda H, T: {"chrono": T}
        ),
        *(
            Example(what, "Greff et al. 2015", {"variant": variant})
            for variant, what in VARIANT_DESCRIPTIONS.items()
        ),
        Example("layer-normalised LSTM", "Ba et al. 2016", {"layer_norm": True}),
    ],
)
