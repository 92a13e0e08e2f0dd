"""Cells: one step of one cell family each."""

from lstmkit.cells.base import LSTMState, RecurrentCell, State
from lstmkit.cells.clockwork import ClockworkCell, ClockworkState
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
    "FullGateState",
    "GRUCell",
    "LSTMCell",
    "LSTMConfig",
    "LSTMState",
    "LSTMStep",
    "MUTCell",
    "RNNCell",
    "RecurrentCell",
    "State",
    "lstm_pointwise",
]
