"""Models built from lstmkit's cells and layers that are not themselves a layer over time: the
attention decoder and the image captioner built on it, the 2-D Grid LSTM over images, the
generative models of the post's last section (DRAW, VRNN, STORN), and the sequence model the
trainer uses."""

from lstmkit.modules.attention import AttentionDecoder, AttentionOutput, doubly_stochastic_penalty
from lstmkit.modules.captioner import Captioner, CaptionOutput
from lstmkit.modules.draw import DRAW, DRAWOutput, DRAWSample, WindowRectangles
from lstmkit.modules.grid2d import Grid2dOutput, GridLSTM2d
from lstmkit.modules.sequence import SequenceModel
from lstmkit.modules.vrnn import STORN, VRNN, BoundOutput

__all__ = [
    "DRAW",
    "STORN",
    "VRNN",
    "AttentionDecoder",
    "AttentionOutput",
    "BoundOutput",
    "CaptionOutput",
    "Captioner",
    "DRAWOutput",
    "DRAWSample",
    "Grid2dOutput",
    "GridLSTM2d",
    "SequenceModel",
    "WindowRectangles",
    "doubly_stochastic_penalty",
]
