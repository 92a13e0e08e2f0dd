"""Cells: one step of one cell family each, and the contract every cell keeps."""

from lstmkit._state import State
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.clockwork import ClockworkCell, ClockworkState
from lstmkit.cells.depth_gated import DepthGatedLSTMCell
from lstmkit.cells.grid import GridLSTMCell, GridLSTMState, LSTMTransform, lstm_transform
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import (
    VARIANT_DESCRIPTIONS,
    VARIANTS,
    FullGateState,
    LSTMCell,
    LSTMConfig,
    LSTMStep,
    lstm_pointwise,
)
from lstmkit.cells.mut import MUTCell
from lstmkit.cells.rnn import RNNCell

__all__ = [
    "VARIANTS",
    "VARIANT_DESCRIPTIONS",
    "ClockworkCell",
    "ClockworkState",
    "DepthGatedLSTMCell",
    "FullGateState",
    "GRUCell",
    "GridLSTMCell",
    "GridLSTMState",
    "LSTMCell",
    "LSTMConfig",
    "LSTMState",
    "LSTMStep",
    "LSTMTransform",
    "MUTCell",
    "RNNCell",
    "RecurrentCell",
    "State",
    "lstm_pointwise",
    "lstm_transform",
]
