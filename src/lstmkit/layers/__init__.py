"""Sequence layers: :class:`Recurrent` runs any cell over time, layers and directions; the
torch.nn-like LSTM, GRU and RNN and the other families' layers are Recurrent over their cells,
and each is registered by name (:func:`register_layer`)."""

from lstmkit.engines.regularizers import RegularizerOptions, Regularizers
from lstmkit.layers.recurrent import Recurrent
from lstmkit.layers.registry import EXAMPLES, LAYERS, Example, build_layer, register_layer
from lstmkit.layers.torch_like import GRU, LSTM, RNN
from lstmkit.layers.variants import MUT, ClockworkRNN, DepthGatedLSTM, GridLSTM

__all__ = [
    "EXAMPLES",
    "GRU",
    "LAYERS",
    "LSTM",
    "MUT",
    "RNN",
    "ClockworkRNN",
    "DepthGatedLSTM",
    "Example",
    "GridLSTM",
    "Recurrent",
    "RegularizerOptions",
    "Regularizers",
    "build_layer",
    "register_layer",
]


_MOVED = {"stack_states": "lstmkit._state", "unstack_states": "lstmkit._state"}


def __getattr__(name: str) -> object:
    # names lstmkit.layers had when it was one module; they live elsewhere now
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(
            f"lstmkit.layers.{name} has moved to {_MOVED[name]}.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
