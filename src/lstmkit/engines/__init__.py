"""Engines execute a layer's recurrence; the registry picks one by name or, for "auto", by speed."""

from lstmkit.engines.fused import FusedEngine
from lstmkit.engines.loop import Directions, RunDirection, run_layers, run_layers_with_cells
from lstmkit.engines.native import NativeEngine
from lstmkit.engines.reference import ReferenceEngine
from lstmkit.engines.registry import (
    Engine,
    Layer,
    Resets,
    engine_names,
    get_engine,
    register_engine,
    select_engine,
    unregister_engine,
)

# "auto" ranks the engines by what lstmkit bench measured (README, "Speed"): the fused engine
# ran every configuration faster than torch's own kernels, training and inference, but for the
# standard LSTM's inference at large sizes (FusedEngine.auto_priority); the reference engine
# is the fallback that always works.
register_engine(FusedEngine(), priority=100)
register_engine(NativeEngine(), priority=50)
register_engine(ReferenceEngine(), priority=0)

__all__ = [
    "Directions",
    "Engine",
    "Layer",
    "Resets",
    "RunDirection",
    "engine_names",
    "get_engine",
    "register_engine",
    "run_layers",
    "run_layers_with_cells",
    "select_engine",
    "unregister_engine",
]
