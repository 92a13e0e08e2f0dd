"""Interoperability with torch.nn (and, later, ONNX)."""

from lstmkit.interop.torch_nn import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
