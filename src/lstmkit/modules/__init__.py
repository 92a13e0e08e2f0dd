"""Models built from lstmkit's cells and layers that are not themselves a layer over time: the
attention decoder, the 2-D Grid LSTM over images, and the sequence model the trainer uses."""

from lstmkit.modules.attention import AttentionDecoder, AttentionOutput, doubly_stochastic_penalty
from lstmkit.modules.grid2d import Grid2dOutput, GridLSTM2d
from lstmkit.modules.sequence import SequenceModel
from lstmkit.modules.vrnn import STORN, VRNN, BoundOutput

__all__ = [
    "STORN",
    "VRNN",
    "AttentionDecoder",
    "AttentionOutput",
    "BoundOutput",
    "Grid2dOutput",
    "GridLSTM2d",
    "SequenceModel",
    "doubly_stochastic_penalty",
]
