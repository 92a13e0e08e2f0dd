"""int8 inference: onnxruntime's dynamic quantisation of an exported model
(``lstmkit.onnx.quantize``).

Dynamic quantisation stores weights in int8 and quantises the values they multiply per call,
from the range it observes; everything else stays float32. What it reaches in an lstmkit
export: ``LSTM`` nodes (as ``DynamicQuantizeLSTM``), the products outside the recurrence (a
layer's input projection where it is a product of its own, an embedding's table, a linear
head). Not reached: ONNX's ``GRU`` and ``RNN`` nodes (onnxruntime has no int8 kernel for them)
and the products inside a ``Scan`` (their weights come from outside the loop's body), which stay
float32; such a model shrinks little.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lstmkit._errors import LstmkitFileNotFoundError, LstmkitRuntimeError
from lstmkit._io import atomic_write

OPERATORS = ("LSTM", "MatMul", "Gemm", "Gather")
"""The operators whose weights are quantised (Gather: an embedding's table)."""


def quantize(path: str | Path, output: str | Path, *, per_channel: bool = False) -> Path:
    """Writes an int8 copy of the ONNX model at ``path`` to ``output`` (atomically) and returns
    its path. ``per_channel`` quantises each output row with its own scale (more accurate,
    slightly slower)."""
    source = Path(path)
    if not source.is_file():
        raise LstmkitFileNotFoundError(f"{source}: no such ONNX model")
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]
    except ImportError as error:
        raise LstmkitRuntimeError(
            "int8 quantisation needs onnxruntime: pip install 'lstmkit[onnx]'"
        ) from error
    target = Path(output)
    staging = target.with_name(f".{target.name}.int8-staging")
    root = logging.getLogger()  # (onnxruntime advises pre-processing through the root logger)
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            source,
            staging,
            op_types_to_quantize=list(OPERATORS),
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
        )
        data = staging.read_bytes()
    finally:
        root.setLevel(level)
        staging.unlink(missing_ok=True)
    return atomic_write(target, lambda f: f.write(data), binary=True)
