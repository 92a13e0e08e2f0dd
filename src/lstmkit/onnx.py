"""ONNX in and out: :func:`export` writes a model that holds lstmkit layers (each as ONNX's own
LSTM, GRU or RNN node where that operator expresses it, else as a Scan of its cell's step),
:func:`load` turns a graph of ONNX LSTM, GRU and RNN nodes back into lstmkit layers, and
:func:`quantize` makes an int8 copy of an exported model with onnxruntime's dynamic
quantisation. onnx, onnxscript and onnxruntime come with ``pip install 'lstmkit[onnx]'``."""

from lstmkit.interop.onnx_export import ExportReport, export
from lstmkit.interop.onnx_int8 import quantize
from lstmkit.interop.onnx_load import OnnxRecurrent, load

__all__ = ["ExportReport", "OnnxRecurrent", "export", "load", "quantize"]
