"""The native engine: torch's own fused kernels (oneDNN on CPU, cuDNN on GPU), the ones
torch.nn.LSTM, GRU and RNN call, for the configurations those modules can express."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from lstmkit._state import State
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engines.registry import Engine, Layer

ONEDNN_PROJECTION_WARNING = "LSTM with projections is not supported with oneDNN"
"""The start of torch's warning when torch.nn.LSTM with proj_size leaves oneDNN for its generic
kernel; lstmkit filters it where the user asked for an LSTM, not for oneDNN."""


class NativeEngine(Engine):
    name = "native"
    supports = (
        "what torch.nn can express: the standard LSTM (any bias, proj_size), the GRU with "
        "reset_after=True, and the RNN with tanh or relu, the same cell in every layer"
    )

    def unsupported(self, layer: Layer) -> str | None:
        return torch_nn_unsupported(layer)

    def run(
        self, layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State
    ) -> tuple[Tensor, State]:
        cells = list(layer.iter_cells())
        first = cells[0]
        has_bias = first.bias_ih is not None
        weights = [w for cell in cells for w in _torch_weights(cell, has_bias)]
        bidirectional = layer.num_directions == 2
        args = (has_bias, layer.num_layers, layer.dropout, layer.training, bidirectional)
        if isinstance(first, LSTMCell):
            assert isinstance(hx, tuple)
            h0c0 = (hx[0], hx[1])
            if not first.config.proj_size:  # (torch.compile traces no warnings filter)
                out, h, c = _lstm(x, batch_sizes, h0c0, weights, args)
                return out, LSTMState(h, c)
            with warnings.catch_warnings():
                # torch falls back from oneDNN to its generic kernel and says so; the user
                # asked for an LSTM, not for oneDNN.
                warnings.filterwarnings("ignore", ONEDNN_PROJECTION_WARNING, UserWarning)
                out, h, c = _lstm(x, batch_sizes, h0c0, weights, args)
            return out, LSTMState(h, c)
        if isinstance(first, GRUCell):
            fn = torch.gru
        else:
            fn = torch.rnn_tanh if first.nonlinearity == "tanh" else torch.rnn_relu
        assert isinstance(hx, Tensor)
        if batch_sizes is None:
            out, h = fn(x, hx, weights, *args, False)
        else:
            out, h = fn(x, batch_sizes, hx, weights, *args)
        return out, h


def _lstm(
    x: Tensor,
    batch_sizes: Tensor | None,
    h0c0: tuple[Tensor, Tensor],
    weights: list[Tensor],
    args: tuple[bool, int, float, bool, bool],
) -> tuple[Tensor, Tensor, Tensor]:
    if batch_sizes is None:
        return torch.lstm(x, h0c0, weights, *args, False)
    return torch.lstm(x, batch_sizes, h0c0, weights, *args)


def _torch_weights(cell: RecurrentCell[Any], has_bias: bool) -> list[Tensor]:
    """One layer and direction's parameters in torch.nn's order: W_ih, W_hh, then b_ih, b_hh
    with a bias and W_hr with a projection."""
    weights = [cell.weight_ih, cell.weight_hh]
    if has_bias:
        weights += [cell.bias_ih, cell.bias_hh]
    if isinstance(cell, LSTMCell) and cell.config.proj_size:
        weights.append(cell.weight_hr)
    return weights


def torch_nn_unsupported(layer: Layer) -> str | None:
    """None if torch.nn's LSTM, GRU or RNN computes exactly what ``layer`` does (and so torch's
    kernels can run it, and :func:`lstmkit.to_torch` convert it), else the reason it cannot."""
    if layer.regularizers.active:
        return "it has recurrent regularisers (input/recurrent dropout, zoneout)"
    cells = list(layer.iter_cells())
    first = cells[0]
    reason = torch_nn_cell_unsupported(first)
    if reason is not None:
        return reason
    if any(type(c) is not type(first) or _signature(c) != _signature(first) for c in cells):
        return "its cells differ between layers or directions"
    return None


def torch_nn_cell_unsupported(cell: RecurrentCell[Any]) -> str | None:
    """None if ``cell`` computes what a torch.nn cell of its kind does, else the reason."""
    if type(cell) is LSTMCell:
        if not cell.config.is_standard:
            return f"its LSTM cell is a variant ({cell.extra_repr()})"
        return None
    if type(cell) is GRUCell:
        if cell.layer_norm:
            return "its GRU is layer-normalised"
        return (
            None
            if cell.reset_after
            else "its GRU applies the reset before the product (reset_after=False)"
        )
    if type(cell) is RNNCell:
        return None
    return f"its cell is a {type(cell).__name__}"


def _signature(cell: RecurrentCell[Any]) -> object:
    if isinstance(cell, LSTMCell):
        return (cell.hidden_size, cell.config)
    if isinstance(cell, GRUCell):
        return (cell.hidden_size, cell.bias, cell.reset_after, cell.layer_norm)
    assert isinstance(cell, RNNCell)
    return (cell.hidden_size, cell.bias, cell.nonlinearity)
