"""Engines execute a layer's recurrence; the registry picks one by name or, for "auto", by speed."""

from lstmkit.engines.fused import FusedEngine
from lstmkit.engines.native import NativeEngine
from lstmkit.engines.reference import ReferenceEngine
from lstmkit.engines.registry import (
    Engine,
    engine_names,
    get_engine,
    register_engine,
    select_engine,
    unregister_engine,
)

# torch's fused kernels run the configurations they support 3-9x faster than a Python loop
# (REFERENCES.md; benchmarks/ measures it on your machine), so "auto" tries them first.
register_engine(NativeEngine(), priority=100)
register_engine(FusedEngine(), priority=50)
register_engine(ReferenceEngine(), priority=0)

__all__ = [
    "Engine",
    "engine_names",
    "get_engine",
    "register_engine",
    "select_engine",
    "unregister_engine",
]
