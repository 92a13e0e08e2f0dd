"""onnxruntime's LSTM operator, one of the benchmark's baselines: built from a torch.nn.LSTM's
weights, and timed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lstmkit.experiments.timing import measure


def onnxruntime_lstm(
    lstm: nn.LSTM, shape: tuple[int, int, int]
) -> Callable[[torch.Tensor], Any] | None:
    """onnxruntime's LSTM operator with the weights of a one-layer ``lstm`` (ONNX stacks the
    gates i, o, f, c where torch.nn stacks i, f, g, o), as a function of the input; None when
    onnx or onnxruntime is not installed."""
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort  # type: ignore[import-untyped]
        from onnx import TensorProto, helper
    except ImportError:
        return None

    def onnx_order(w: torch.Tensor) -> Any:
        i, f, g, o = w.detach().chunk(4, dim=0)
        return torch.cat([i, o, f, g], dim=0).numpy()[None]

    W = onnx_order(lstm.weight_ih_l0)  # type: ignore[arg-type]
    R = onnx_order(lstm.weight_hh_l0)  # type: ignore[arg-type]
    biases = [onnx_order(lstm.bias_ih_l0), onnx_order(lstm.bias_hh_l0)]  # type: ignore[arg-type]
    Bias = np.concatenate(biases, axis=1)
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=lstm.hidden_size)],
        "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(shape))],
        [
            helper.make_tensor_value_info(
                "Y", TensorProto.FLOAT, [shape[0], 1, shape[1], lstm.hidden_size]
            )
        ],
        [
            helper.make_tensor("W", TensorProto.FLOAT, W.shape, W.flatten()),
            helper.make_tensor("R", TensorProto.FLOAT, R.shape, R.flatten()),
            helper.make_tensor("B", TensorProto.FLOAT, Bias.shape, Bias.flatten()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=9)
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )

    def run(x: torch.Tensor) -> Any:
        return session.run(None, {"X": x.numpy()})[0]  # Y: (T, 1, B, H)

    return run


def onnxruntime_times(
    lstm: nn.LSTM, x: torch.Tensor, *, min_repeats: int, min_seconds: float
) -> list[float] | None:
    """The times in ms of onnxruntime's LSTM on ``x`` ``(T, B, I)``, with the weights of a
    one-layer ``lstm``; None when onnx or onnxruntime is not installed."""
    run = onnxruntime_lstm(lstm, (x.shape[0], x.shape[1], x.shape[2]))
    if run is None:
        return None
    return measure(lambda: run(x), min_repeats=min_repeats, min_seconds=min_seconds)
