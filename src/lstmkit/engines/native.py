"""The native engine: torch's own fused kernels (oneDNN on CPU, cuDNN on GPU), the ones
torch.nn.LSTM, GRU and RNN call, for the configurations those modules can express.

With resets (:meth:`NativeEngine.run_stream`) each layer and direction runs through
:func:`run_layers` as a one-layer call of the same kernel per piece between the steps where a
sequence starts over: one kernel call per distinct reset step, layer and direction, instead of
one for the whole stack. torch's whole-sequence kernels return no cell state per step, so with
``cell_states`` every step is a call of torch's one-step LSTM cell (``torch.lstm_cell``;
``torch.lstm`` over one step with a projection): a Python loop over the steps, several times
slower than the whole-sequence kernel at small sizes (the fused engine returns them from its
kernel)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from lstmkit._state import State, cell_state, first
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engines.loop import run_layers, run_layers_with_cells
from lstmkit.engines.reference import run_steps
from lstmkit.engines.registry import Engine, Layer, Resets

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
        if cell_states:
            stepped = _Stepped(layer, batch_sizes)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", ONEDNN_PROJECTION_WARNING, UserWarning)
                return run_layers_with_cells(layer, x, hx, stepped.direction, resets=resets)
        if resets is None:
            return (*self.run(layer, x, batch_sizes, hx), None)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ONEDNN_PROJECTION_WARNING, UserWarning)
            out, h_n = run_layers(layer, x, hx, _OneLayer(layer).direction, resets=resets)
        return out, h_n, None


class _OneLayer:
    """One layer and direction of a stack as one call of torch's kernel over padded steps
    ``(T, B, F)``; the reverse direction runs the steps flipped in time."""

    def __init__(self, layer: Layer) -> None:
        self.training = layer.training
        self.has_bias = layer.cell(0).bias_ih is not None

    def direction(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State]:
        weights = _torch_weights(cell, self.has_bias)
        args = (self.has_bias, 1, 0.0, self.training, False, False)
        x = x.flip(0) if reverse else x
        if isinstance(cell, LSTMCell):
            assert isinstance(state, tuple)
            out, h, c = torch.lstm(x, (state[0][None], state[1][None]), weights, *args)
            final: State = LSTMState(h[0], c[0])
        else:
            assert isinstance(state, Tensor)
            if isinstance(cell, GRUCell):
                fn = torch.gru
            else:
                fn = torch.rnn_tanh if cell.nonlinearity == "tanh" else torch.rnn_relu
            out, h = fn(x, state[None], weights, *args)
            final = h[0]
        return (out.flip(0) if reverse else out), final


class _Stepped:
    """One layer and direction of an LSTM a step at a time through torch's one-step cell, for
    the cell state of every step (padded or packed steps, as the reference engine loops)."""

    def __init__(self, layer: Layer, batch_sizes: Tensor | None) -> None:
        self.training = layer.training
        self.has_bias = layer.cell(0).bias_ih is not None
        self.sizes = None if batch_sizes is None else batch_sizes.tolist()

    def direction(
        self, cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State, Tensor]:
        assert isinstance(cell, LSTMCell)
        weights = _torch_weights(cell, self.has_bias)
        projected = bool(cell.config.proj_size)
        args = (self.has_bias, 1, 0.0, self.training, False, False)

        def step(x_t: Tensor, state: State) -> State:
            assert isinstance(state, tuple)
            if not projected:
                h, c = torch.lstm_cell(x_t, (state[0], state[1]), *weights)
                return LSTMState(h, c)
            _, h, c = torch.lstm(x_t[None], (state[0][None], state[1][None]), weights, *args)
            return LSTMState(h[0], c[0])

        out, final, cells = run_steps(x, self.sizes, state, step, first, cell_state, reverse)
        assert cells is not None
        return out, final, cells


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
