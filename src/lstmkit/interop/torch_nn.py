"""Conversions between lstmkit modules and their torch.nn counterparts, both ways."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engines.native import torch_nn_cell_unsupported, torch_nn_unsupported
from lstmkit.layers import GRU, LSTM, RNN, Recurrent


def from_torch(module: nn.Module, *, engine: str = "auto") -> nn.Module:
    """The lstmkit equivalent of a torch.nn LSTM, GRU, RNN or one of their cells, with the same
    weights, device and dtype. ``engine`` applies to the sequence layers."""
    p = next(module.parameters())
    new: dict[str, Any] = {"device": p.device, "dtype": p.dtype}
    converted: nn.Module
    if isinstance(module, nn.LSTM):
        converted = LSTM(
            module.input_size,
            module.hidden_size,
            proj_size=module.proj_size,
            engine=engine,
            **_layer_options(module),
            **new,
        )
    elif isinstance(module, nn.GRU):
        converted = GRU(
            module.input_size, module.hidden_size, engine=engine, **_layer_options(module), **new
        )
    elif isinstance(module, nn.RNN):
        converted = RNN(
            module.input_size,
            module.hidden_size,
            nonlinearity=module.nonlinearity,
            engine=engine,
            **_layer_options(module),
            **new,
        )
    elif isinstance(module, nn.LSTMCell):
        converted = LSTMCell(module.input_size, module.hidden_size, bias=module.bias, **new)
    elif isinstance(module, nn.GRUCell):
        converted = GRUCell(module.input_size, module.hidden_size, bias=module.bias, **new)
    elif isinstance(module, nn.RNNCell):
        converted = RNNCell(
            module.input_size,
            module.hidden_size,
            bias=module.bias,
            nonlinearity=module.nonlinearity,
            **new,
        )
    else:
        raise LstmkitTypeError(
            "from_torch converts torch.nn.LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell; "
            f"got {describe(module)}"
        )
    converted.load_state_dict(module.state_dict())
    converted.train(module.training)
    return converted


def to_torch(module: nn.Module) -> nn.Module:
    """The torch.nn equivalent of an lstmkit LSTM, GRU, RNN or cell, with the same weights.

    Raises ValueError for configurations torch.nn cannot express (peepholes, coupled gates,
    Greff's switches, the GRU with the reset before the product, a user's own cell)."""
    if isinstance(module, Recurrent):
        reason = torch_nn_unsupported(module)
        if reason is not None:
            raise LstmkitValueError(f"torch.nn cannot express this layer: {reason}")
        cell = module.cell(0)
        options: dict[str, Any] = {
            "num_layers": module.num_layers,
            "bias": cell.bias_ih is not None,
            "batch_first": module.batch_first,
            "dropout": module.dropout,
            "bidirectional": module.bidirectional,
        }
        p = cell.weight_ih
        if isinstance(cell, LSTMCell):
            converted: nn.Module = nn.LSTM(
                module.input_size, module.hidden_size, proj_size=cell.config.proj_size, **options
            )
        elif isinstance(cell, GRUCell):
            converted = nn.GRU(module.input_size, module.hidden_size, **options)
        else:
            assert isinstance(cell, RNNCell)
            converted = nn.RNN(
                module.input_size, module.hidden_size, nonlinearity=cell.nonlinearity, **options
            )
    elif isinstance(module, (LSTMCell, GRUCell, RNNCell)):
        reason = torch_nn_cell_unsupported(module)
        if reason is not None or (isinstance(module, LSTMCell) and module.config.proj_size):
            raise LstmkitValueError(
                f"torch.nn cannot express this cell: {reason or 'it has proj_size'}"
            )
        p = module.weight_ih
        bias = module.bias_ih is not None
        if isinstance(module, LSTMCell):
            converted = nn.LSTMCell(module.input_size, module.hidden_size, bias=bias)
        elif isinstance(module, GRUCell):
            converted = nn.GRUCell(module.input_size, module.hidden_size, bias=bias)
        else:
            converted = nn.RNNCell(
                module.input_size, module.hidden_size, bias=bias, nonlinearity=module.nonlinearity
            )
    else:
        raise LstmkitTypeError(
            f"to_torch converts lstmkit layers and cells; got {describe(module)}"
        )
    converted.to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        converted.load_state_dict(module.state_dict())
    converted.train(module.training)
    return converted


def _layer_options(module: nn.RNNBase) -> dict[str, Any]:
    return {
        "num_layers": module.num_layers,
        "bias": module.bias,
        "batch_first": module.batch_first,
        "dropout": float(module.dropout),
        "bidirectional": module.bidirectional,
    }
