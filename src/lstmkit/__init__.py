"""lstmkit: the LSTM of "Understanding LSTM Networks" and every variant it names, as
torch.nn-compatible PyTorch layers."""

from lstmkit.attention import AttentionDecoder, AttentionOutput, doubly_stochastic_penalty
from lstmkit.cells import (
    VARIANT_DESCRIPTIONS,
    VARIANTS,
    ClockworkCell,
    ClockworkState,
    FullGateState,
    GRUCell,
    LSTMCell,
    LSTMConfig,
    LSTMState,
    LSTMStep,
    MUTCell,
    RecurrentCell,
    RNNCell,
    State,
    lstm_pointwise,
)
from lstmkit.depth_gated import DepthGatedLSTM, DepthGatedLSTMCell
from lstmkit.engines import Engine, engine_names, register_engine, unregister_engine
from lstmkit.explain import explain_checkpoint, explain_page, interpretable_units
from lstmkit.gradient_flow import GradientFlow, gradient_flow
from lstmkit.grid import (
    Grid2dOutput,
    GridLSTM,
    GridLSTM2d,
    GridLSTMCell,
    GridLSTMState,
    LSTMTransform,
    lstm_transform,
)
from lstmkit.interop import from_torch, to_torch
from lstmkit.layers import GRU, LSTM, MUT, RNN, ClockworkRNN, Recurrent
from lstmkit.tracing import Trace, trace

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "MUT",
    "RNN",
    "VARIANTS",
    "VARIANT_DESCRIPTIONS",
    "AttentionDecoder",
    "AttentionOutput",
    "ClockworkCell",
    "ClockworkRNN",
    "ClockworkState",
    "DepthGatedLSTM",
    "DepthGatedLSTMCell",
    "Engine",
    "FullGateState",
    "GRUCell",
    "GradientFlow",
    "Grid2dOutput",
    "GridLSTM",
    "GridLSTM2d",
    "GridLSTMCell",
    "GridLSTMState",
    "LSTMCell",
    "LSTMConfig",
    "LSTMState",
    "LSTMStep",
    "LSTMTransform",
    "MUTCell",
    "RNNCell",
    "Recurrent",
    "RecurrentCell",
    "State",
    "Trace",
    "__version__",
    "doubly_stochastic_penalty",
    "engine_names",
    "explain_checkpoint",
    "explain_page",
    "from_torch",
    "gradient_flow",
    "interpretable_units",
    "lstm_pointwise",
    "lstm_transform",
    "register_engine",
    "to_torch",
    "trace",
    "unregister_engine",
]
