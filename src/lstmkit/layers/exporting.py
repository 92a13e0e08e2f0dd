"""A layer's forward while torch.onnx.export traces it: padded input with its lengths goes to
:func:`lstmkit.engines.export.run_for_export` as it is (no packing: ONNX's operators and the
Scan take the lengths themselves), in the layer's calling convention."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from lstmkit._errors import LstmkitValueError
from lstmkit._state import State, map_state
from lstmkit.engines.export import run_for_export
from lstmkit.engines.registry import Layer


class Exportable(Layer, Protocol):
    """What this module needs of :class:`lstmkit.Recurrent` (which imports it)."""

    batch_first: bool

    def _initial_or_given(
        self, hx: Any, *, batch_size: int, like: Tensor, unbatched: bool
    ) -> State: ...


def forward_for_export(
    layer: Exportable, input: Any, hx: Any, lengths: Tensor | list[int] | None
) -> tuple[Tensor, State]:
    """``layer(input, hx, lengths=lengths)`` as ONNX operators; the same results."""
    if isinstance(input, PackedSequence):
        raise LstmkitValueError(
            "ONNX export takes padded input with lengths=..., not a PackedSequence (a packed "
            "batch's layout is fixed when it is built)"
        )
    x: Tensor = input
    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(1)
    elif layer.batch_first:
        x = x.transpose(0, 1)
    lens = None
    if lengths is not None:
        lens = lengths if isinstance(lengths, Tensor) else torch.tensor(lengths)
        lens = lens.to(device=x.device, dtype=torch.int64)
    state = layer._initial_or_given(hx, batch_size=x.shape[1], like=x, unbatched=unbatched)
    out, h_n = run_for_export(layer, x, lens, state)
    if unbatched:
        return out.squeeze(1), map_state(lambda s: s.squeeze(1), h_n)
    return (out.transpose(0, 1) if layer.batch_first else out), h_n
