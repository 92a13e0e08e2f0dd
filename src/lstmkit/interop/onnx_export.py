"""ONNX export of models that hold lstmkit layers: ``lstmkit.onnx.export``.

torch.onnx (its default, ``torch.export``-based exporter) traces the model; each lstmkit layer
it meets writes itself as ONNX's own ``LSTM``, ``GRU`` or ``RNN`` node where that operator
expresses it and as a ``Scan`` of its cell's step otherwise (:mod:`lstmkit.engines.export`).
So plain ``torch.onnx.export(model, args, dynamo=True)`` works on such a model too; this
function adds free sequence lengths and batch sizes, evaluation mode during the trace, an
atomic write, and a check of the written file in onnxruntime.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstmkit._checks import describe
from lstmkit._errors import (
    LstmkitError,
    LstmkitRuntimeError,
    LstmkitTypeError,
    LstmkitValueError,
    one_line,
)
from lstmkit._io import atomic_write
from lstmkit.engines.export import OPSET, onnx_operator
from lstmkit.layers.recurrent import Recurrent
from lstmkit.modules.attention import AttentionDecoder

VERIFY_TOLERANCE = 1e-4
"""The largest difference between onnxruntime's outputs and PyTorch's that ``verify`` accepts
(float32; the operators sum in another order)."""


@dataclass
class ExportReport:
    """What :func:`export` wrote."""

    path: Path
    operators: dict[str, str] = field(default_factory=dict)
    """Each lstmkit layer of the model by its module name (``""`` for the model itself) and
    the ONNX operator it became: "LSTM", "GRU", "RNN" or "Scan"."""
    largest_difference: float | None = None
    """onnxruntime against PyTorch on the example input, with ``verify``."""


def export(
    model: nn.Module,
    example_input: Any,
    path: str | Path,
    *,
    opset: int | None = None,
    dynamic_axes: bool = True,
    verify: bool = True,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> ExportReport:
    """Writes ``model`` to ``path`` as an ONNX model.

    Args:
        model: any module; its lstmkit layers export as described in :mod:`lstmkit.engines.export`
            and torch.onnx handles the rest. It is traced in evaluation mode (and put back in
            the mode it was in).
        example_input: the input of one call, or a tuple of the arguments of one call (input,
            state, ...). Give at least 2 steps and 2 sequences: a dimension of size 1 may be
            fixed in the graph.
        opset: the ONNX opset, default :data:`lstmkit.engines.export.OPSET`.
        dynamic_axes: leave every dimension of the inputs free that the model does not fix
            (sequence length and batch); False fixes them to the example's.
        verify: run the written file in onnxruntime on the example and compare with PyTorch
            (skipped, with no error, where onnxruntime is not installed).
        input_names, output_names: the graph's names for the tensors of the call and of its
            result, in order (torch.onnx's own, after the forward's arguments, by default).
        metadata: text kept in the file's ``metadata_props`` (what a reader needs to use it).

    Returns an :class:`ExportReport`. The file is written whole or not at all.
    """
    if not isinstance(model, nn.Module):
        raise LstmkitTypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    opset = _check_opset(OPSET if opset is None else opset)
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    _check_tensors(args)
    operators = {
        name: (isinstance(m, Recurrent) and onnx_operator(m)) or "Scan"
        for name, m in model.named_modules()
        if _layer(m)
    }
    names = (input_names, output_names)
    with _evaluation(model), torch.no_grad():
        with _quiet():
            proto = _traced(model, args, opset, dynamic_axes, names)
        expected = model(*args) if verify else None
    if metadata:
        import onnx

        onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    written = atomic_write(path, lambda f: f.write(proto.SerializeToString()), binary=True)
    report = ExportReport(written, operators)
    if expected is not None:
        report.largest_difference = _verify(written, args, expected)
    return report


Names = tuple[Sequence[str] | None, Sequence[str] | None]


def _traced(
    model: nn.Module, args: tuple[Any, ...], opset: int, dynamic: bool, names: Names
) -> Any:
    """The model as an ``onnx.ModelProto``; torch.onnx's error as an lstmkit one (the lstmkit
    error that caused it, if one did)."""
    try:
        program = torch.onnx.export(
            model,
            args,
            input_names=None if names[0] is None else list(names[0]),
            output_names=None if names[1] is None else list(names[1]),
            dynamo=True,
            opset_version=opset,
            dynamic_shapes=_auto(model, args) if dynamic else None,
            verbose=False,
            optimize=False,  # (lstmkit's own pass below, which survives what torch's does not)
        )
    except Exception as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, LstmkitError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        raise LstmkitRuntimeError(
            f"torch.onnx could not export the model: {one_line(error)[:2000]}"
        ) from error
    assert program is not None  # (torch.onnx returns None only with dynamo=False)
    proto = _folded(program.model_proto)
    # An initializer carries its shape; a value_info that repeats it goes stale when a tool
    # rewrites the weight (onnxruntime's int8 quantiser transposes a Gemm's, then re-infers).
    weights = {w.name for w in proto.graph.initializer}
    kept = [v for v in proto.graph.value_info if v.name not in weights]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(kept)
    return proto


FOLD_LIMIT = 1 << 26
"""The most elements a weight may have for its re-ordering into ONNX's gate order to be done
once, at export, rather than at every run (torch.onnx's own limit is 8,192)."""


def _folded(proto: Any) -> Any:
    """``proto`` with every computation on weights alone done (ONNX's LSTM, GRU and RNN read
    their gates in another order than torch.nn's): the weights are stored as the operators
    read them, which onnxruntime's int8 quantisation needs."""
    from onnxscript import optimizer

    try:
        return optimizer.optimize(proto, input_size_limit=FOLD_LIMIT, output_size_limit=FOLD_LIMIT)
    except Exception:  # onnxscript's folding fails on a few patterns (SplitToSequence) ...
        # ... then the graph is exported as traced: correct, a few operators longer
        return proto


OLDEST_OPSET = 17
"""The oldest opset torch.onnx writes (it converts down from 18); ONNX's LSTM, GRU, RNN and Scan
are older than that."""


def _check_opset(opset: object) -> int:
    if not hasattr(torch.onnx, "ops"):
        raise LstmkitRuntimeError(
            f"ONNX export needs torch >= 2.8 (torch.onnx.ops); this is torch {torch.__version__}"
        )
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as error:
        raise LstmkitRuntimeError(
            f"ONNX export needs onnx and onnxscript ({error}): pip install 'lstmkit[onnx]'"
        ) from None

    newest = onnx.defs.onnx_opset_version()
    if type(opset) is not int or not OLDEST_OPSET <= opset <= newest:
        raise LstmkitValueError(
            f"opset must be a whole number from {OLDEST_OPSET} (the oldest torch.onnx writes) "
            f"to {newest} (the newest this onnx knows), got {opset!r}"
        )
    return opset


def _layer(module: nn.Module) -> bool:
    return isinstance(module, (Recurrent, AttentionDecoder))


def _check_tensors(args: tuple[Any, ...]) -> None:
    if any(isinstance(a, PackedSequence) for a in args):
        raise LstmkitValueError(
            "ONNX export takes padded input (and lengths=... where sequences differ in "
            "length), not a PackedSequence: a packed batch's layout is fixed when it is built"
        )
    if not any(isinstance(a, Tensor) for a in torch.utils._pytree.tree_leaves(args)):
        raise LstmkitTypeError(
            f"example_input must be a tensor or a tuple of the call's arguments, got "
            f"{describe(args[0] if len(args) == 1 else args)}"
        )


def _auto(model: nn.Module, args: tuple[Any, ...]) -> dict[str, Any]:
    """Every dimension of every tensor argument free unless the model fixes it, keyed by the
    forward's parameter names as torch.export reads them (``*args`` as one tuple)."""

    def free(value: Any) -> Any:
        if isinstance(value, Tensor):
            return dict.fromkeys(range(value.dim()), torch.export.Dim.AUTO)
        return None

    try:
        bound = inspect.signature(model.forward).bind(*args)
    except TypeError as error:
        raise LstmkitTypeError(
            f"example_input does not fit {type(model).__name__}.forward: {error}"
        ) from None
    return {name: torch.utils._pytree.tree_map(free, v) for name, v in bound.arguments.items()}


@contextlib.contextmanager
def _evaluation(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.train(training)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.onnx's progress lines and its notes on optional packages (torchvision) are not the
    user's concern; its warnings about its own dependencies neither."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", "# The axis name", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _verify(path: Path, args: tuple[Any, ...], expected: Any) -> float | None:
    """The largest difference between onnxruntime's outputs on ``args`` and ``expected``; an
    error beyond :data:`VERIFY_TOLERANCE`. None where onnxruntime is not installed."""
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    leaves = [a for a in torch.utils._pytree.tree_leaves(args) if isinstance(a, Tensor)]
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), leaves, strict=False)}
    got = session.run(None, feeds)
    want = [t for t in torch.utils._pytree.tree_leaves(expected) if isinstance(t, Tensor)]
    if len(got) != len(want):
        raise LstmkitRuntimeError(
            f"the exported model has {len(got)} outputs where the model returns {len(want)}"
        )
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if tuple(g.shape) != tuple(w.shape):
            raise LstmkitRuntimeError(
                f"onnxruntime returned shape {tuple(g.shape)} where PyTorch returns "
                f"{tuple(w.shape)}"
            )
        if w.numel():
            worst = max(worst, float((torch.from_numpy(g) - w.float()).abs().max()))
    if worst > VERIFY_TOLERANCE:
        raise LstmkitValueError(
            f"{path}: onnxruntime's outputs differ from PyTorch's by up to {worst:.2e} on the "
            f"example (tolerance {VERIFY_TOLERANCE:g}); please report this with the model"
        )
    return worst
