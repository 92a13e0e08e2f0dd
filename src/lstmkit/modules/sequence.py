"""A model around any recurrent layer: input embedding, the layer, and a linear head."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from lstmkit._checks import check_choice, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.layers.recurrent import Recurrent


class SequenceModel(nn.Module):
    """Embedding (for token inputs) → a recurrent layer → a linear head.

    Args:
        layer: any lstmkit sequence layer, built with ``batch_first=True``.
        vocab_size: token inputs of this many symbols, embedded in ``layer.input_size``
            dimensions; None for float features of size ``layer.input_size``.
        output_size: outputs per answer.
        readout: "last" answers once per sequence, from the final state of the top layer (both
            directions); "all" answers at every step.

    Shapes: inputs ``(B, T)`` tokens or ``(B, T, F)`` features, lengths ``(B,)`` or None;
    outputs ``(B, output_size)`` for "last", ``(B, T, output_size)`` for "all".
    """

    def __init__(
        self,
        layer: Recurrent,
        *,
        vocab_size: int | None,
        output_size: int,
        readout: Literal["last", "all"],
    ) -> None:
        super().__init__()
        if not isinstance(layer, Recurrent):
            raise LstmkitTypeError(f"layer must be an lstmkit.Recurrent, got {describe(layer)}")
        if not layer.batch_first:
            raise LstmkitValueError("SequenceModel needs a layer built with batch_first=True")
        check_positive_int("output_size", output_size)
        check_choice("readout", readout, ["last", "all"])
        self.embedding = None if vocab_size is None else nn.Embedding(vocab_size, layer.input_size)
        self.rnn = layer
        self.readout = readout
        self.head = nn.Linear(layer.output_size * layer.num_directions, output_size)

    def features(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """What the head reads: ``(B, D·O)`` for "last", ``(B, T, D·O)`` for "all"."""
        x = inputs if self.embedding is None else self.embedding(inputs)  # (B, T, F)
        output, state = self.rnn(x, lengths=lengths)
        if self.readout == "all":
            assert isinstance(output, Tensor)
            return output
        h_n = state if isinstance(state, Tensor) else state[0]  # (L·D, B, O)
        top = h_n[-self.rnn.num_directions :]  # (D, B, O): the last layer, both directions
        return top.transpose(0, 1).reshape(x.shape[0], -1)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.features(inputs, lengths))  # type: ignore[no-any-return]
