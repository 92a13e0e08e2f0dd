"""lstmkit: the LSTM of "Understanding LSTM Networks" and every variant it names, as
torch.nn-compatible PyTorch layers."""

from lstmkit import _moved
from lstmkit._errors import (
    LstmkitError,
    LstmkitFileExistsError,
    LstmkitFileNotFoundError,
    LstmkitIndexError,
    LstmkitKeyError,
    LstmkitRuntimeError,
    LstmkitTypeError,
    LstmkitValueError,
)
from lstmkit._version import __version__
from lstmkit._warnings import EngineFallbackWarning, LstmkitWarning
from lstmkit.analysis.explain import explain_checkpoint, explain_page, interpretable_units
from lstmkit.analysis.gradient_flow import GradientFlow, gradient_flow
from lstmkit.analysis.trace import Trace, trace
from lstmkit.cells import (
    VARIANT_DESCRIPTIONS,
    VARIANTS,
    ClockworkCell,
    ClockworkState,
    DepthGatedLSTMCell,
    FullGateState,
    GridLSTMCell,
    GridLSTMState,
    GRUCell,
    LSTMCell,
    LSTMConfig,
    LSTMState,
    LSTMStep,
    LSTMTransform,
    MUTCell,
    RecurrentCell,
    RNNCell,
    State,
    lstm_pointwise,
    lstm_transform,
)
from lstmkit.engines import Engine, engine_names, register_engine, unregister_engine
from lstmkit.interop import from_torch, to_torch
from lstmkit.layers import (
    GRU,
    LSTM,
    MUT,
    RNN,
    ClockworkRNN,
    DepthGatedLSTM,
    GridLSTM,
    Recurrent,
    register_layer,
)
from lstmkit.modules import (
    AttentionDecoder,
    AttentionOutput,
    Grid2dOutput,
    GridLSTM2d,
    doubly_stochastic_penalty,
)

_moved.install()  # the first layout's module paths, with a DeprecationWarning

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
    "EngineFallbackWarning",
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
    "LstmkitError",
    "LstmkitFileExistsError",
    "LstmkitFileNotFoundError",
    "LstmkitIndexError",
    "LstmkitKeyError",
    "LstmkitRuntimeError",
    "LstmkitTypeError",
    "LstmkitValueError",
    "LstmkitWarning",
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
    "register_layer",
    "to_torch",
    "trace",
    "unregister_engine",
]
