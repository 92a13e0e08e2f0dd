"""How a layer runs while ``torch.onnx.export`` traces it: as ONNX's own ``LSTM``, ``GRU`` and
``RNN`` operators wherever those express the layer, and as a ``Scan`` over the cell's own step
everywhere else, so that every layer exports with the sequence length and the batch size left
free.

ONNX's operators (opset 14 and later) compute::

    LSTM   gates stacked i, o, f, c; peepholes P stacked i, o, f (i and f see C_{t-1}, o the new
           C_t); input_forget=1 gives f_t = 1 - i_t
    GRU    gates stacked z, r, h; linear_before_reset=1 is torch.nn's form (reset after the
           product), 0 the post's and Cho et al.'s (reset before it)
    RNN    tanh or relu

so an LSTM with any subset of peepholes (zeros for the gates without one), coupled gates,
either GRU and both RNNs become one node a layer (both directions in one node). Every other
layer (layer normalisation, the Greff switches ONNX lacks, full gate recurrence, projection,
zoneout's expectation, MUT, Clockwork, Depth-Gated, Grid) becomes one ``Scan`` a layer and
direction whose body is the cell's step as the reference engine runs it.

Only inference exports: a layer in training mode with dropout or zoneout is refused.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lstmkit._errors import LstmkitValueError
from lstmkit._state import State, like
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engines.loop import run_layers
from lstmkit.engines.registry import Layer
from lstmkit.engines.regularizers import evaluation_step

OPSET = 18
"""The opset lstmkit exports by default: torch.onnx's own default, and one that every
onnxruntime of the last years reads."""


def exporting() -> bool:
    """Whether ``torch.onnx.export`` is tracing the caller."""
    return bool(torch.onnx.is_in_onnx_export())


def onnx_operator(layer: Layer) -> str | None:
    """The ONNX operator that computes ``layer`` ("LSTM", "GRU" or "RNN"), or None where it
    exports as a ``Scan`` of its cell's step."""
    if layer.regularizers.zoneout_hidden or layer.regularizers.zoneout_cell:
        return None  # (zoneout's expectation mixes the old state into the new one)
    cells = list(layer.iter_cells())
    first = cells[0]
    if any(type(c) is not type(first) for c in cells):
        return None
    if type(first) is LSTMCell:
        cfg = first.config
        expressible = (
            cfg.input_gate
            and cfg.output_gate
            and (cfg.forget_gate or cfg.coupled)
            and cfg.input_activation
            and cfg.output_activation
            and not (cfg.full_gate_recurrence or cfg.layer_norm or cfg.proj_size)
        )
        return "LSTM" if expressible else None
    if type(first) is GRUCell:
        return None if first.layer_norm else "GRU"
    if type(first) is RNNCell:
        return "RNN"
    return None


def run_for_export(
    layer: Layer, x: Tensor, lengths: Tensor | None, hx: State
) -> tuple[Tensor, State]:
    """Runs ``layer`` on padded ``x`` ``(T, B, F)`` with per-sequence ``lengths`` ``(B,)`` (or
    None) from the stacked state ``hx``, in operators that torch.onnx turns into ONNX's; returns
    the output ``(T, B, D·O)``, zero past each length, and the state after each sequence's last
    step, as the other engines do."""
    if layer.training and (layer.dropout > 0 or layer.regularizers.active):
        raise LstmkitValueError(
            "this layer has dropout or zoneout and is in training mode; ONNX export is for "
            "inference: call model.eval() before exporting"
        )
    if onnx_operator(layer) is not None:
        return _as_operators(layer, x, lengths, hx)

    def direction(
        cell: RecurrentCell[Any], x: Tensor, state: State, reverse: bool
    ) -> tuple[Tensor, State]:
        return _scan(layer, cell, x, lengths, state, reverse)

    return run_layers(layer, x, hx, direction)


def _scan(
    layer: Layer,
    cell: RecurrentCell[Any],
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    reverse: bool,
) -> tuple[Tensor, State]:
    """One direction of one layer as a ``Scan`` over the steps; a step past a sequence's length
    keeps its state and outputs zeros."""
    from torch._higher_order_ops.scan import scan  # torch's scan operator, which torch.onnx maps

    advance = evaluation_step(cell, layer.regularizers)
    xp = cell.project_input(x)  # (T, B, G)
    steps = torch.arange(x.shape[0], device=x.device)

    rebuild = _rebuilder(state)

    def body(carry: list[Tensor], inputs: tuple[Tensor, Tensor]) -> tuple[list[Tensor], Tensor]:
        # the carry is a list of tensors: torch's scan takes no named tuples
        xp_t, t = inputs
        new = advance(xp_t, rebuild(carry))
        out = cell.output(new).clone()  # (torch's scan refuses outputs that alias the carry)
        if lengths is None:
            return _fields(new), out
        running = (t < lengths).unsqueeze(-1)  # (B, 1)
        pairs = zip(_fields(new), carry, strict=True)
        kept = [torch.where(running, n, old) for n, old in pairs]
        return kept, torch.where(running, out, torch.zeros_like(out))

    # (copies: torch's scan refuses a carry whose tensors share memory, as a zero state's may)
    initial = [t.clone() for t in _fields(state)]
    final, outputs = scan(body, initial, (xp, steps), reverse=reverse)
    return outputs, rebuild(final)


def _rebuilder(state: State) -> Any:
    """The inverse of :func:`_fields` for states shaped like ``state``."""
    if isinstance(state, Tensor):
        return lambda fields: fields[0]
    return lambda fields: like(state, fields)


def _fields(state: State) -> list[Tensor]:
    return [state] if isinstance(state, Tensor) else list(state)


def _as_operators(
    layer: Layer, x: Tensor, lengths: Tensor | None, hx: State
) -> tuple[Tensor, State]:
    """One ONNX ``LSTM``, ``GRU`` or ``RNN`` node a layer, both directions in one node."""
    D = layer.num_directions
    op = onnx_operator(layer)
    cells = list(layer.iter_cells())
    h0 = hx[0] if isinstance(hx, tuple) else hx  # (L·D, B, H)
    c0 = hx[1] if isinstance(hx, tuple) else None
    seq = None if lengths is None else lengths.to(torch.int32)
    finals_h: list[Tensor] = []
    finals_c: list[Tensor] = []
    for k in range(layer.num_layers):
        pair = cells[k * D : (k + 1) * D]
        rows = slice(k * D, (k + 1) * D)
        c_k = None if c0 is None else c0[rows]
        y, h_k, c_k = _node(op, pair, x, seq, h0[rows], c_k)  # y (T, D, B, H)
        x = y.permute(0, 2, 1, 3).flatten(2)  # (T, B, D·H)
        finals_h.append(h_k)
        if c_k is not None:
            finals_c.append(c_k)
    h_n = torch.cat(finals_h)
    if c0 is None:
        return x, h_n
    assert isinstance(hx, tuple)
    return x, like(hx, (h_n, torch.cat(finals_c)))


def _node(
    op: str | None,
    cells: list[RecurrentCell[Any]],
    x: Tensor,
    seq: Tensor | None,
    h0: Tensor,
    c0: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    D, H = len(cells), cells[0].hidden_size
    T, B = x.shape[0], x.shape[1]
    attrs: dict[str, Any] = {
        "hidden_size": H,
        "direction": "bidirectional" if D == 2 else "forward",
    }
    if op == "LSTM":
        W, R, bias, P = _lstm_weights(cells)
        attrs["input_forget"] = int(cells[0].config.coupled)
        inputs = [x, W, R, bias, seq, h0, c0, P]
    elif op == "GRU":
        W, R, bias = _gru_weights(cells)
        attrs["linear_before_reset"] = int(cells[0].reset_after)
        inputs = [x, W, R, bias, seq, h0]
    else:
        W, R = _stacked(cells, "ih", _same), _stacked(cells, "hh", _same)
        bias = _biases(cells, _same)
        activation = "Relu" if cells[0].nonlinearity == "relu" else "Tanh"
        attrs["activations"] = [activation] * D
        inputs = [x, W, R, bias, seq, h0]
    count = 3 if op == "LSTM" else 2
    shapes = [[T, D, B, H], [D, B, H], [D, B, H]][:count]
    outs = torch.onnx.ops.symbolic_multi_out(
        str(op), inputs, attrs, dtypes=[x.dtype] * count, shapes=shapes, version=OPSET
    )
    return outs[0], outs[1], (outs[2] if op == "LSTM" else None)


def _same(blocks: dict[str, Tensor], like: Tensor) -> list[Tensor]:
    return list(blocks.values())


def _lstm_order(blocks: dict[str, Tensor], like: Tensor) -> list[Tensor]:
    """torch.nn's blocks (i, f, g, o; f absent with coupled gates) in ONNX's order i, o, f, c,
    zeros for an f that ONNX's input_forget derives from i."""
    f = blocks["f"] if "f" in blocks else torch.zeros_like(blocks["i"])
    return [blocks["i"], blocks["o"], f, blocks["g"]]


def _gru_order(blocks: dict[str, Tensor], like: Tensor) -> list[Tensor]:
    """torch.nn's r, z, n in ONNX's z, r, h (the same z: the fraction of h_{t-1} kept)."""
    return [blocks["z"], blocks["r"], blocks["n"]]


def _blocks(cell: RecurrentCell[Any], t: Tensor) -> dict[str, Tensor]:
    if isinstance(cell, LSTMCell):
        names = cell.config.blocks
    elif isinstance(cell, GRUCell):
        names = "rzn"
    else:
        names = "h"
    rows = t.shape[0] // len(names)  # (narrow, not chunk: torch.onnx folds it into the weights)
    return {name: t.narrow(0, j * rows, rows) for j, name in enumerate(names)}


def _stacked(cells: list[RecurrentCell[Any]], which: str, order: Any) -> Tensor:
    """``weight_ih`` or ``weight_hh`` of each direction, rows in ONNX's order: ``(D, G·H, *)``."""
    weights = []
    for cell in cells:
        w = getattr(cell, f"weight_{which}")
        weights.append(torch.cat(order(_blocks(cell, w), w)))
    return torch.stack(weights)


def _biases(cells: list[RecurrentCell[Any]], order: Any) -> Tensor | None:
    """ONNX's ``B``: each direction's input biases then recurrent biases, ``(D, 2·G·H)``; None
    for cells without biases."""
    if cells[0].bias_ih is None:
        return None
    rows = []
    for cell in cells:
        parts = [cell.bias_ih, cell.bias_hh]
        rows.append(torch.cat([torch.cat(order(_blocks(cell, b), b)) for b in parts]))
    return torch.stack(rows)


def _lstm_weights(
    cells: list[RecurrentCell[Any]],
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    W = _stacked(cells, "ih", _lstm_order)
    R = _stacked(cells, "hh", _lstm_order)
    bias = _biases(cells, _lstm_order)
    first = cells[0]
    assert isinstance(first, LSTMCell)
    if not first.config.peepholes:
        return W, R, bias, None
    peeps = []
    for cell in cells:
        zero = torch.zeros_like(cell.weight_ih[: cell.hidden_size, 0])
        p = [getattr(cell, f"weight_c{g}") for g in "iof"]
        peeps.append(torch.cat([zero if w is None else w for w in p]))
    return W, R, bias, torch.stack(peeps)


def _gru_weights(cells: list[RecurrentCell[Any]]) -> tuple[Tensor, Tensor, Tensor | None]:
    return (
        _stacked(cells, "ih", _gru_order),
        _stacked(cells, "hh", _gru_order),
        _biases(cells, _gru_order),
    )
