"""The fused engine: lstmkit's own C++ kernels (``fused.cpp``), built on first use."""

from lstmkit.engines.fused.engine import NATIVE_INFERENCE_FROM, FusedEngine
from lstmkit.engines.fused.ops import lstm_flags

__all__ = ["NATIVE_INFERENCE_FROM", "FusedEngine", "lstm_flags"]
