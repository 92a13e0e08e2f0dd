"""ONNX import: ``load(path)`` rebuilds the LSTM, GRU and RNN nodes of an ONNX graph as lstmkit
layers with their weights.

What ONNX stores and how it maps onto lstmkit (D = 2 for a bidirectional node, else 1)::

    LSTM  W (D, 4H, I), R (D, 4H, H)  gates i, o, f, c   → weight_ih, weight_hh  gates i, f, g, o
          B (D, 8H) = [Wb, Rb]                            → bias_ih, bias_hh (no B: bias=False)
          P (D, 3H)  peepholes i, o, f                    → weight_ci, weight_co, weight_cf
          input_forget=1: f = 1 - i                       → coupled=True, without f's rows
    GRU   W (D, 3H, I), R (D, 3H, H)  gates z, r, h       → gates r, z, n
          linear_before_reset=1 / 0                       → reset_after=True / False
    RNN   W (D, H, I), R (D, H, H); activations Tanh / Relu → nonlinearity "tanh" / "relu"

ONNX's z is torch's z (the share of h_{t-1} that is kept), and its GRU with
linear_before_reset=0 adds Rbh after the product with r * h, as ``reset_after=False`` adds b_hn.
With input_forget=1 onnxruntime ignores the f rows of W, R, B and P; lstmkit has none.
``direction="reverse"`` runs a forward layer on each sequence reversed within its own length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit._checks import check_lengths, describe
from lstmkit._errors import (
    LstmkitFileNotFoundError,
    LstmkitOSError,
    LstmkitRuntimeError,
    LstmkitTypeError,
    LstmkitValueError,
    one_line,
)
from lstmkit._state import State
from lstmkit.cells.base import LSTMState
from lstmkit.layers import GRU, LSTM, RNN, Recurrent

if TYPE_CHECKING:
    import onnx

RECURRENT_OPS = ("LSTM", "GRU", "RNN")
LAYOUT_OPS = frozenset({
    "Identity", "Constant", "ConstantOfShape", "Shape", "Size", "Gather", "Concat", "Slice",
    "Split", "Cast", "CastLike", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
    "Expand",
})  # fmt: skip
"""The ops that may stand between and around the recurrent nodes: they only move values."""

_COMMON = ("activation_alpha", "activation_beta", "activations", "clip", "direction")
_ATTRIBUTES = {
    "LSTM": (*_COMMON, "hidden_size", "input_forget", "layout"),
    "GRU": (*_COMMON, "hidden_size", "layout", "linear_before_reset"),
    "RNN": (*_COMMON, "hidden_size", "layout"),
}
# the activations of one direction, in lower case (onnxruntime ignores the case) → lstmkit's
_ACTIVATIONS: dict[str, dict[tuple[str, ...], str]] = {
    "LSTM": {("sigmoid", "tanh", "tanh"): "tanh"},
    "GRU": {("sigmoid", "tanh"): "tanh"},
    "RNN": {("tanh",): "tanh", ("relu",): "relu"},
}
_ONNX_GATES = {"LSTM": "iofg", "GRU": "zrn", "RNN": "n"}  # ONNX's c and h are lstmkit's g and n
_DIRECTIONS = ("forward", "reverse", "bidirectional")
_PROBE_STEPS, _PROBE_BATCH = 5, 3  # stand for symbolic sizes when the layout ops are checked


@dataclass(frozen=True)
class OnnxNode:
    """What one recurrent node of the graph was; its lstmkit layer holds the weights."""

    name: str  # the node's name, or "#k (LSTM)" for an unnamed node
    op_type: str  # "LSTM", "GRU" or "RNN"
    direction: str  # "forward", "reverse" or "bidirectional"
    layout: int  # 0: X (T, B, I), Y (T, D, B, H); 1: X (B, T, I), Y (B, T, D, H)
    input_size: int  # I
    hidden_size: int  # H
    outputs: tuple[str, ...] = ()  # the graph's names of Y, Y_h (, Y_c); "" where absent
    lengths: str = ""  # sequence_lens: "" none, "input" a graph input, "constant" the graph's
    initial: tuple[str, ...] = ()  # initial_h (, initial_c), each "", "input" or "constant"

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


class OnnxRecurrent(nn.Module):
    r"""The recurrent nodes of an ONNX graph as lstmkit layers, run one after the other.

    ``output, states = module(x, hx, lengths=...)``, in torch.nn's conventions (T steps,
    B sequences, I input features; node k of N has D_k = 2 directions if bidirectional, else 1,
    and hidden size H_k)::

        x        (T, B, I), or (B, T, I) when ``batch_first`` (as the graph input is laid out)
        hx       None, or a list of N entries, each None or node k's initial state as lstmkit
                 layers take it: (h_0, c_0) for an LSTM, h_0 for a GRU or RNN, each tensor
                 (D_k, B, H_k). None takes the graph's constant initial state, else zeros
                 (also where the graph's initial state is a graph input).
        lengths  (B,) lengths for the nodes whose sequence_lens is a graph input (None: all T
                 steps); a node with a constant sequence_lens uses the graph's.
        output   (T, B, D·H) of the last node, or (B, T, D·H) when ``batch_first``; zero past
                 each sequence's length
        states   a tuple of N final states, one per node, laid out as hx, each taken at its
                 sequence's last step

    :meth:`onnx_outputs` gives each node's results by their names in the graph, in ONNX's
    layout, to compare with onnxruntime: Y ``(T, D, B, H)``, Y_h and Y_c ``(D, B, H)``; with
    layout=1 ``(B, T, D, H)`` and ``(B, D, H)``. The layout ops between the nodes were checked
    at load to pass Y on as ``(T, B, D·H)``; those after the last node are not applied.

    Attributes: ``layers`` (an ``nn.ModuleList`` of lstmkit LSTM, GRU or RNN layers, one per
    node, in graph order), ``nodes`` (an :class:`OnnxNode` for each), ``batch_first``,
    ``input_name`` (the graph input that x stands for). The graph's constant initial states and
    lengths are buffers ``initial_{k}_{0 or 1}`` and ``lengths_{k}``.
    """

    def __init__(
        self,
        layers: list[Recurrent],
        nodes: list[OnnxNode],
        constants: dict[str, Tensor],
        *,
        batch_first: bool,
        input_name: str,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.nodes = tuple(nodes)
        self.batch_first = batch_first
        self.input_name = input_name
        for key, value in constants.items():
            self.register_buffer(key, value)

    def forward(
        self, x: Tensor, hx: Any = None, *, lengths: Tensor | list[int] | None = None
    ) -> tuple[Tensor, tuple[State, ...]]:
        results = self._run(x, hx, lengths)
        out = results[-1][0]  # (T, B, D·H)
        return (out.transpose(0, 1) if self.batch_first else out), tuple(s for _, s in results)

    def onnx_outputs(
        self, x: Tensor, hx: Any = None, *, lengths: Tensor | list[int] | None = None
    ) -> dict[str, Tensor]:
        """Y, Y_h (and Y_c) of every recurrent node, keyed by their names in the graph, in ONNX's
        layout (see the class); the arguments are :meth:`forward`'s."""
        found: dict[str, Tensor] = {}
        for node, (out, state) in zip(self.nodes, self._run(x, hx, lengths), strict=True):
            y = out.reshape(*out.shape[:2], node.num_directions, -1)  # (T, B, D, H)
            y = y.permute(0, 2, 1, 3) if node.layout == 0 else y.transpose(0, 1)
            fields = (state,) if isinstance(state, Tensor) else tuple(state)  # (D, B, H) each
            values = [y, *(s if node.layout == 0 else s.transpose(0, 1) for s in fields)]
            found.update((n, v) for n, v in zip(node.outputs, values, strict=True) if n)
        return found

    def _run(self, x: Tensor, hx: Any, lengths: Any) -> list[tuple[Tensor, State]]:
        if not isinstance(x, Tensor) or x.dim() != 3:
            expected = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise LstmkitValueError(f"x must be a 3-D Tensor {expected}, got {describe(x)}")
        x = x.transpose(0, 1) if self.batch_first else x  # (T, B, I)
        given = [None] * len(self.nodes) if hx is None else hx
        if not isinstance(given, (list, tuple)) or len(given) != len(self.nodes):
            raise LstmkitValueError(
                "hx must be None or a list with one state (or None) per recurrent node, "
                f"{len(self.nodes)} here ({', '.join(n.name for n in self.nodes)}); "
                f"got {describe(hx)}"
            )
        if lengths is not None:
            if all(node.lengths != "input" for node in self.nodes):
                raise LstmkitValueError(
                    "lengths were given, but no recurrent node of this graph reads its "
                    "sequence_lens from a graph input"
                )
            lengths = check_lengths(lengths, batch_size=x.shape[1], steps=x.shape[0])
        results = []
        for k, (node, layer) in enumerate(zip(self.nodes, self.layers, strict=True)):
            lens = lengths if node.lengths == "input" else None
            if node.lengths == "constant":  # the graph's own, checked against this call's sizes
                lens = check_lengths(
                    self.get_buffer(f"lengths_{k}"), batch_size=x.shape[1], steps=x.shape[0]
                )
            state = given[k] if given[k] is not None else self._constant_state(k, node, x)
            if node.direction == "reverse":  # a forward layer on the reversed sequences
                out, h_n = layer(_reverse(x, lens), state, lengths=lens)
                out = _reverse(out, lens)
            else:
                out, h_n = layer(x, state, lengths=lens)
            results.append((out, h_n))
            x = out  # (T, B, D·H), what the layout ops between the nodes were checked to do
        return results

    def _constant_state(self, k: int, node: OnnxNode, x: Tensor) -> State | None:
        if "constant" not in node.initial:
            return None
        fields = [getattr(self, f"initial_{k}_{j}", None) for j in range(len(node.initial))]
        shape = next(f for f in fields if f is not None).shape  # (D, B, H)
        full = [x.new_zeros(shape) if f is None else f for f in fields]
        return full[0] if len(full) == 1 else LSTMState(*full)


def _reverse(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x`` (T, B, F) with each sequence reversed within its own length; the steps past it
    stay in place, so that reversing twice gives ``x`` back."""
    if lengths is None:
        return x.flip(0)
    t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (T, 1)
    last = lengths.to(x.device).unsqueeze(0) - 1  # (1, B)
    index = torch.where(t <= last, last - t, t)  # (T, B)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def load(path: str | os.PathLike[str], *, engine: str = "auto") -> OnnxRecurrent:
    """The recurrent nodes (ONNX LSTM, GRU, RNN) of the ONNX model at ``path`` as an
    :class:`OnnxRecurrent` of lstmkit layers holding the model's weights.

    The graph holds one recurrent node or a chain of them, each reading the previous one's Y
    through layout ops only (:data:`LAYOUT_OPS`: Transpose, Reshape, Squeeze, ...); the weights
    come from initializers or Constant nodes. ``engine`` is the layers' engine. What lstmkit
    cannot express (other activations, ``clip``, other ops) is an lstmkit error that names it.
    """
    try:
        import onnx
        import onnx.reference
    except ImportError:
        raise LstmkitRuntimeError(
            "lstmkit.onnx.load needs the onnx package; install it with `pip install onnx`"
        ) from None
    return _Importer(onnx, _read(onnx, path), label=str(path)).build(engine)


def _read(lib: Any, path: object) -> onnx.ModelProto:
    if not isinstance(path, (str, os.PathLike)):
        raise LstmkitTypeError(f"path must be a str or a path, got {describe(path)}")
    file = Path(path)
    if not file.exists():
        raise LstmkitFileNotFoundError(f"no ONNX file at {file}")
    if file.is_dir():
        raise LstmkitValueError(f"{file} is a folder; expected an ONNX model file")
    if file.stat().st_size == 0:
        raise LstmkitValueError(f"{file} is empty; expected an ONNX model")
    try:
        model = lib.load(file)
    except OSError as error:
        raise LstmkitOSError(f"could not read {file}: {one_line(error)}") from None
    except Exception as error:  # protobuf's DecodeError or onnx's own: not an ONNX model
        raise LstmkitValueError(f"{file} is not an ONNX model: {one_line(error)}") from None
    if model.ir_version <= 0 or not model.graph.node:  # (protobuf takes much as an empty one)
        raise LstmkitValueError(f"{file} is not an ONNX model: it holds no graph")
    return model  # type: ignore[no-any-return]


class _Importer:
    """One graph on its way to an :class:`OnnxRecurrent`. The layout ops that feed each recurrent
    node are checked by running them (onnx's reference evaluator) on probes: tensors of distinct
    values that stand for the graph input and for each recurrent node's outputs."""

    def __init__(self, lib: Any, model: onnx.ModelProto, *, label: str) -> None:
        self.onnx, self.model, self.label = lib, model, label
        graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.inputs = {v.name: v for v in graph.input if v.name not in self.initializers}
        self.recurrent = [n for n in graph.node if _op(n) in RECURRENT_OPS]
        self.producer = {o: n for n in graph.node if n not in self.recurrent for o in n.output if o}
        self.recurrent_outputs = {o for n in self.recurrent for o in n.output if o}
        self.probes: dict[str, np.ndarray] = {}
        self.constants: dict[str, Tensor] = {}
        self.steps, self.batch = _PROBE_STEPS, _PROBE_BATCH

    def build(self, engine: str) -> OnnxRecurrent:
        self._check_ops()
        layers: list[Recurrent] = []
        nodes: list[OnnxNode] = []
        batch_first, source = False, ""
        for k, proto in enumerate(self.recurrent):
            label = proto.name or f"#{k} ({proto.op_type})"
            slots = dict(zip(_SLOTS, proto.input, strict=False))
            if not all(slots.get(s) for s in "XWR"):
                raise LstmkitValueError(f"{self.label}: node {label} lacks X, W or R")
            weights = {
                s: self._constant(slots[s], f"{s} of node {label}") for s in "WRBP" if slots.get(s)
            }
            spec = _node_spec(proto, label, weights)
            if k == 0:
                batch_first, source = self._check_first(slots["X"], spec.node)
            else:
                self._check_chained(slots["X"], spec.node, nodes[-1])
            states = ("initial_h", "initial_c")[: len(spec.node.outputs) - 1]
            node = replace(
                spec.node,
                lengths=self._optional(slots, "sequence_lens", f"lengths_{k}", spec),
                initial=tuple(
                    self._optional(slots, s, f"initial_{k}_{j}", spec) for j, s in enumerate(states)
                ),
            )
            layers.append(_layer(spec, engine))
            nodes.append(node)
            self._add_probes(node)
        return OnnxRecurrent(
            layers, nodes, self.constants, batch_first=batch_first, input_name=source
        )

    def _check_ops(self) -> None:
        other = {_op(n) for n in self.model.graph.node} - LAYOUT_OPS - set(RECURRENT_OPS)
        if other:
            raise LstmkitValueError(
                f"{self.label}: the graph has {', '.join(sorted(other))} node(s); only the "
                "recurrent nodes (LSTM, GRU, RNN) and the re-layout between them "
                f"({', '.join(sorted(LAYOUT_OPS))}) are in scope of lstmkit.onnx.load"
            )
        if not self.recurrent:
            raise LstmkitValueError(f"{self.label}: the graph has no LSTM, GRU or RNN node")

    def _closure(self, name: str) -> tuple[list[onnx.NodeProto], list[str]]:
        """The layout nodes that compute ``name``, in graph order, and what they read that none
        of them computes, but the initializers: graph inputs and recurrent outputs."""
        needed: set[int] = set()
        sources: set[str] = set()
        pending, seen = [name], set()
        while pending:
            current = pending.pop()
            if not current or current in seen or current in self.initializers:
                continue
            seen.add(current)
            if current in self.inputs or current in self.recurrent_outputs:
                sources.add(current)
            elif current not in self.producer:
                raise LstmkitValueError(f"{self.label}: nothing in the graph makes {current!r}")
            else:
                needed.add(id(self.producer[current]))
                pending.extend(self.producer[current].input)
        return [n for n in self.model.graph.node if id(n) in needed], sorted(sources)

    def _evaluate(self, name: str, what: str) -> np.ndarray:
        """The value of ``name`` when the graph input and recurrent outputs are the probes."""
        if name in self.probes:
            return self.probes[name]
        if name in self.initializers:
            return np.asarray(self.onnx.numpy_helper.to_array(self.initializers[name]))
        nodes, sources = self._closure(name)
        helper, feeds = self.onnx.helper, {s: self.probes[s] for s in sources}
        used = {i: self.initializers[i] for n in nodes for i in n.input if i in self.initializers}
        kinds = {s: helper.np_dtype_to_tensor_dtype(v.dtype) for s, v in feeds.items()}
        inputs = [helper.make_tensor_value_info(s, kind, None) for s, kind in kinds.items()]
        output = [helper.make_empty_tensor_value_info(name)]
        graph = helper.make_graph(nodes, "layout", inputs, output, list(used.values()))
        opsets = list(self.model.opset_import)
        probe = helper.make_model(graph, opset_imports=opsets, ir_version=self.model.ir_version)
        try:
            evaluator = self.onnx.reference.ReferenceEvaluator(probe)
            return np.asarray(evaluator.run(None, feeds)[0])
        except Exception as error:
            raise LstmkitValueError(
                f"{self.label}: could not run the layout ops that compute {what} "
                f"({', '.join(n.op_type for n in nodes)}): {one_line(error)}"
            ) from None

    def _constant(self, name: str, what: str) -> np.ndarray:
        sources = self._closure(name)[1]
        if sources:
            raise LstmkitValueError(
                f"{self.label}: {what} must be a constant (an initializer or a Constant node); "
                f"it is computed from {', '.join(sources)}"
            )
        return self._evaluate(name, what)

    def _check_first(self, x: str, node: OnnxNode) -> tuple[bool, str]:
        """Whether the graph input that feeds the first node is batch-first, and its name. The
        layout ops between them must pass it on as it is or with its first two axes swapped."""
        sources = self._closure(x)[1]
        if len(sources) != 1 or sources[0] not in self.inputs:
            raise LstmkitValueError(
                f"{self.label}: X of the first recurrent node {node.name} must come from one "
                f"graph input; it comes from {', '.join(sources) or 'constants only'}"
            )
        name = sources[0]
        info = self.inputs[name].type.tensor_type
        dims = [d.dim_value for d in info.shape.dim]
        if info.HasField("shape") and len(dims) != 3:
            raise LstmkitValueError(
                f"{self.label}: the graph input {name!r} must be 3-D, got {len(dims)}-D"
            )
        shape = (dims[0] or self.steps, dims[1] or self.batch) if dims else (self.steps, self.batch)
        probe = self.probes[name] = _arange((*shape, node.input_size))
        value = self._evaluate(x, f"X of node {node.name}")
        if not (_same(value, probe) or _same(value, probe.transpose(1, 0, 2))):
            raise LstmkitValueError(
                f"{self.label}: the layout ops between the graph input {name!r} and X of node "
                f"{node.name} do more than swap its first two axes; lstmkit cannot follow them"
            )
        swapped = not _same(value, probe)
        batch_first = swapped != (node.layout == 1)
        self.steps, self.batch = shape[::-1] if batch_first else shape
        return batch_first, name

    def _check_chained(self, x: str, node: OnnxNode, before: OnnxNode) -> None:
        """The layout ops between the previous node's Y and this node's X must pass Y on as
        (T, B, D·H), or as (B, T, D·H) to a node with layout=1."""
        sources = self._closure(x)[1]
        if before.outputs[0] not in sources or any(
            s in self.recurrent_outputs and s not in before.outputs for s in sources
        ):
            raise LstmkitValueError(
                f"{self.label}: X of node {node.name} must come from Y of the recurrent node "
                f"before it, {before.name}; it comes from {', '.join(sources)}. "
                "lstmkit.onnx.load imports a chain of recurrent nodes"
            )
        y = self.probes[before.outputs[0]]
        perm = (1, 0, 2, 3) if before.layout == 1 else (0, 2, 1, 3)
        expected = y.transpose(perm).reshape(self.steps, self.batch, -1)  # (T, B, D·H)
        expected = expected.transpose(1, 0, 2) if node.layout == 1 else expected
        if not _same(self._evaluate(x, f"X of node {node.name}"), expected):
            raise LstmkitValueError(
                f"{self.label}: the layout ops between Y of node {before.name} and X of node "
                f"{node.name} do not turn Y {tuple(y.shape)} (T={self.steps}, B={self.batch}) "
                f"into {tuple(expected.shape)}; lstmkit cannot follow them"
            )
        if node.input_size != expected.shape[-1]:
            raise LstmkitValueError(
                f"{self.label}: node {node.name} has W for {node.input_size} input features; "
                f"the node before it gives {expected.shape[-1]}"
            )

    def _add_probes(self, node: OnnxNode) -> None:
        """Stand-ins for this node's outputs, in its ONNX layout, for the checks that follow."""
        T, B, D, H = self.steps, self.batch, node.num_directions, node.hidden_size
        y_shape = (T, D, B, H) if node.layout == 0 else (B, T, D, H)
        h_shape = (D, B, H) if node.layout == 0 else (B, D, H)
        for j, name in enumerate(node.outputs):
            if name:
                self.probes[name] = _arange(y_shape if j == 0 else h_shape)

    def _optional(self, slots: dict[str, str], slot: str, key: str, spec: _Spec) -> str:
        """How an optional input arrives: "" absent (or zeros, for a state), "input" a graph
        input, "constant" the graph's value, kept under ``key``."""
        name, what = slots.get(slot, ""), f"{slot} of node {spec.node.name}"
        if not name or name in self.inputs:
            return "input" if name else ""
        sources = self._closure(name)[1]
        value = self._evaluate(name, what) if set(sources) <= set(self.probes) else None
        if value is not None and slot != "sequence_lens" and not value.any():
            return ""  # zeros, as exporters write an initial state that was not given
        if value is None or sources:
            raise LstmkitValueError(
                f"{self.label}: {what} is computed from {', '.join(sources)}; lstmkit takes it "
                "as a graph input read directly, a constant, or zeros"
            )
        if slot == "sequence_lens":
            self.constants[key] = torch.from_numpy(value.astype(np.int64))
        else:
            state = value if spec.node.layout == 0 else value.transpose(1, 0, 2)  # (D, B, H)
            self.constants[key] = torch.from_numpy(np.array(state, spec.dtype))  # a copy
        return "constant"


_SLOTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")  # (GRU, RNN: 6)


@dataclass(frozen=True)
class _Spec:
    """A recurrent node's attributes and weights, checked, in the terms of lstmkit's layers."""

    node: OnnxNode
    dtype: np.dtype[Any]
    option: bool  # LSTM: input_forget (coupled); GRU: linear_before_reset (reset_after)
    nonlinearity: str  # the RNN's
    weights: dict[str, np.ndarray]  # W, R (, B, P) as ONNX stores them


def _op(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def _refuse(label: str, name: str, value: object, supported: str) -> LstmkitValueError:
    return LstmkitValueError(f"ONNX node {label}: {name}={value!r} is not supported; {supported}")


def _node_spec(proto: onnx.NodeProto, label: str, weights: dict[str, np.ndarray]) -> _Spec:
    from onnx import helper

    op = proto.op_type
    attrs: dict[str, Any] = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    for name, value in attrs.items():
        if name not in _ATTRIBUTES[op]:
            raise _refuse(
                label, name, value, f"the {op} attributes are {', '.join(_ATTRIBUTES[op])}"
            )
        if name in ("activation_alpha", "activation_beta", "clip"):
            raise _refuse(label, name, value, "lstmkit neither clips nor parametrises activations")
    direction = attrs.get("direction", "forward")
    if direction not in _DIRECTIONS:
        raise _refuse(label, "direction", direction, f"lstmkit supports {', '.join(_DIRECTIONS)}")
    D = 2 if direction == "bidirectional" else 1
    nonlinearity = _activation(op, label, attrs.get("activations"), D)
    layout = attrs.get("layout", 0)
    if layout not in (0, 1):
        raise _refuse(label, "layout", layout, "lstmkit supports 0 (T, B, I) and 1 (B, T, I)")
    flag = {"LSTM": "input_forget", "GRU": "linear_before_reset"}.get(op, "")
    if attrs.get(flag, 0) not in (0, 1):
        raise _refuse(label, flag, attrs[flag], "lstmkit supports 0 and 1")
    W, R = weights["W"], weights["R"]
    G, I = len(_ONNX_GATES[op]), W.shape[-1] if W.ndim else 0
    H: int = attrs["hidden_size"] if "hidden_size" in attrs else R.shape[-1] if R.ndim else 0
    expected = {"W": (D, G * H, I), "R": (D, G * H, H), "B": (D, 2 * G * H), "P": (D, 3 * H)}
    for slot, array in weights.items():
        if array.shape != expected[slot]:
            raise LstmkitValueError(
                f"ONNX node {label}: {slot} must have shape {expected[slot]} for {D} "
                f"direction(s) and hidden size {H}, got {array.shape}"
            )
    if W.dtype not in (np.float16, np.float32, np.float64):
        raise LstmkitValueError(
            f"ONNX node {label}: W is {W.dtype}; lstmkit imports float16, float32 and float64"
        )
    outputs = tuple([*proto.output, "", ""][: 3 if op == "LSTM" else 2])
    node = OnnxNode(label, op, direction, layout, I, H, outputs)
    return _Spec(node, W.dtype, bool(attrs.get(flag, 0)), nonlinearity, weights)


def _activation(op: str, label: str, activations: list[bytes] | None, D: int) -> str:
    """The nonlinearity that lstmkit uses for ``activations`` (listed for each direction)."""
    if activations is None:
        return "tanh"
    known = _ACTIVATIONS[op]
    names = [a.decode().lower() for a in activations]
    if op == "RNN" and D == 1 and len(names) == 2:
        names = names[:1]  # onnxruntime uses the first of two given for one direction
    per = len(next(iter(known)))
    chosen = {tuple(names[d * per : (d + 1) * per]) for d in range(D)}
    if len(names) == per * D and len(chosen) == 1 and next(iter(chosen)) in known:
        return known[next(iter(chosen))]
    supported = " or ".join(str([a.capitalize() for a in k]) for k in known)
    shown = [a.decode() for a in activations]
    raise _refuse(
        label, "activations", shown, f"lstmkit supports {supported} for each of {D} direction(s)"
    )


def _layer(spec: _Spec, engine: str) -> Recurrent:
    """The lstmkit layer of one node, with the node's weights in torch's order of the gates."""
    node, w = spec.node, spec.weights
    I, H = node.input_size, node.hidden_size
    common: dict[str, Any] = {
        "bias": "B" in w,
        "bidirectional": node.direction == "bidirectional",
        "engine": engine,
        "dtype": torch.from_numpy(np.zeros(0, spec.dtype)).dtype,
    }
    layer: Recurrent
    if node.op_type == "LSTM":
        peepholes = ("io" if spec.option else "ifo") if "P" in w else None
        layer = LSTM(I, H, peepholes=peepholes, coupled=spec.option, **common)
        gates, peeped = layer.config.blocks, layer.config.peepholes
    elif node.op_type == "GRU":
        layer, gates, peeped = GRU(I, H, reset_after=spec.option, **common), "rzn", ""
    else:
        layer, gates, peeped = RNN(I, H, nonlinearity=spec.nonlinearity, **common), "n", ""
    order = _ONNX_GATES[node.op_type]
    state: dict[str, np.ndarray] = {}
    for d in range(node.num_directions):
        suffix = "_l0_reverse" if d else "_l0"
        state["weight_ih" + suffix] = _gates(w["W"][d], order, gates)
        state["weight_hh" + suffix] = _gates(w["R"][d], order, gates)
        if "B" in w:
            Wb, Rb = np.split(w["B"][d], 2)
            state["bias_ih" + suffix] = _gates(Wb, order, gates)
            state["bias_hh" + suffix] = _gates(Rb, order, gates)
        P = dict(zip("iof", np.split(w["P"][d], 3), strict=True)) if "P" in w else {}
        state.update((f"weight_c{g}{suffix}", P[g]) for g in peeped)
    layer.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return layer


def _gates(a: np.ndarray, onnx_order: str, order: str) -> np.ndarray:
    """The blocks of rows of ``a``, one per gate of ``onnx_order``, in ``order``, which may leave
    some out (the f block of a coupled LSTM)."""
    blocks = dict(zip(onnx_order, np.split(a, len(onnx_order)), strict=True))
    return np.concatenate([blocks[g] for g in order])


def _arange(shape: tuple[int, ...]) -> np.ndarray:
    """A probe: distinct values (in float64, exact in any layout op), so that a moved or dropped
    element shows."""
    return (np.arange(int(np.prod(shape))) + 1.0).reshape(shape)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))
