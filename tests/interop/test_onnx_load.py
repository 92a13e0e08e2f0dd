"""lstmkit.onnx.load: ONNX LSTM, GRU and RNN graphs, built here with onnx.helper and random
weights, give the outputs and final states of onnxruntime itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.interop.onnx_load import OnnxRecurrent, load

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


class Graph:
    """An ONNX graph under construction, with the values to feed onnxruntime and lstmkit."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[str] = []  # the graph's outputs
        self.recurrent_outputs: list[str] = []  # those of recurrent nodes
        self.feeds: dict[str, np.ndarray] = {}

    def random(self, *shape: int, scale: float = 0.5) -> np.ndarray:
        return (scale * self.rng.standard_normal(shape)).astype(np.float32)

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def input(self, name: str, value: np.ndarray, shape: list[Any] | None = None) -> str:
        kind = helper.np_dtype_to_tensor_dtype(value.dtype)
        self.inputs.append(helper.make_tensor_value_info(name, kind, shape or list(value.shape)))
        self.feeds[name] = value
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> list[str]:
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs

    def recurrent(
        self,
        op: str,
        x: str,
        name: str,
        *,
        I: int,
        H: int,
        direction: str = "forward",
        bias: bool = True,
        peepholes: bool = False,
        lengths: str = "",
        initial: tuple[str, ...] = (),
        **attrs: Any,
    ) -> list[str]:
        """A recurrent node with fresh random weights, every output a graph output."""
        D, G = (2 if direction == "bidirectional" else 1), GATES[op]
        inputs = [
            x,
            self.constant(f"{name}_W", self.random(D, G * H, I)),
            self.constant(f"{name}_R", self.random(D, G * H, H)),
            self.constant(f"{name}_B", self.random(D, 2 * G * H)) if bias else "",
            lengths,
            *initial,
        ]
        if peepholes:
            inputs += [""] * (7 - len(inputs)) + [self.constant(f"{name}_P", self.random(D, 3 * H))]
        outputs = [f"{name}_Y", f"{name}_Y_h"] + ([f"{name}_Y_c"] if op == "LSTM" else [])
        self.outputs += outputs
        self.recurrent_outputs += outputs
        return self.node(
            op, inputs, outputs, name=name, hidden_size=H, direction=direction, **attrs
        )

    def model(self) -> Any:
        graph = helper.make_graph(
            self.nodes,
            "test",
            self.inputs,
            [helper.make_empty_tensor_value_info(o) for o in self.outputs],
            self.initializers,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=9)

    def save(self, folder: Path) -> Path:
        path = folder / "model.onnx"
        onnx.save(self.model(), path)
        return path

    def onnxruntime(self) -> dict[str, np.ndarray]:
        """The outputs of onnxruntime, which runs recurrent nodes with layout=1 (not supported
        on its CPU) as the spec defines them: layout=0 between transposes."""
        model = as_layout_0(self.model())
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return dict(zip(self.outputs, session.run(self.outputs, self.feeds), strict=True))


def as_layout_0(model: Any) -> Any:
    """``model`` with each recurrent node of layout=1 turned into one of layout=0, its inputs
    X (B, T, I), initial_h and initial_c (B, D, H) and its outputs Y (B, T, D, H), Y_h and Y_c
    (B, D, H) transposed around it."""
    nodes = []
    for node in model.graph.node:
        layout = [a for a in node.attribute if a.name == "layout"]
        if not layout or layout[0].i == 0:
            nodes.append(node)
            continue
        layout[0].i = 0
        for j in (0, 5, 6):  # X, initial_h, initial_c
            if j < len(node.input) and node.input[j]:
                moved = f"{node.input[j]}_{node.name}_layout_0"
                nodes.append(
                    helper.make_node("Transpose", [node.input[j]], [moved], perm=[1, 0, 2])
                )
                node.input[j] = moved
        after = []
        for j, name in enumerate(node.output):
            node.output[j] = f"{name}_layout_0"
            perm = [2, 0, 1, 3] if j == 0 else [1, 0, 2]  # (T, D, B, H) → (B, T, D, H)
            after.append(helper.make_node("Transpose", [node.output[j]], [name], perm=perm))
        nodes += [node, *after]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def assert_same_as_onnxruntime(graph: Graph, module: OnnxRecurrent, x: str, **call: Any) -> None:
    theirs = graph.onnxruntime()
    ours = module.onnx_outputs(torch.from_numpy(graph.feeds[x]), **call)
    assert sorted(ours) == sorted(graph.recurrent_outputs)
    for name, value in ours.items():
        torch.testing.assert_close(value, torch.from_numpy(theirs[name]), rtol=1e-5, atol=1e-5)


def state_of(graph: Graph, names: tuple[str, ...], layout: int) -> Any:
    """An initial state fed to onnxruntime, as lstmkit takes it: (D, B, H) tensors."""
    fields = [torch.from_numpy(graph.feeds[n]) for n in names]
    fields = [f.transpose(0, 1) if layout == 1 else f for f in fields]
    return fields[0] if len(fields) == 1 else tuple(fields)


CASES = [
    # op, T, B, I, H, direction, options; options: bias, peepholes, lengths, initial, attributes
    ("LSTM", 6, 3, 4, 5, "forward", {}),
    ("LSTM", 5, 4, 3, 4, "forward", {"peepholes": True, "lengths": True}),
    ("LSTM", 4, 2, 3, 6, "bidirectional", {"peepholes": True, "input_forget": 1}),
    ("LSTM", 7, 3, 2, 3, "reverse", {"bias": False, "peepholes": True, "initial": True}),
    ("LSTM", 5, 5, 4, 3, "forward", {"bias": False, "input_forget": 1, "lengths": True}),
    ("LSTM", 6, 4, 3, 5, "reverse", {"lengths": True, "initial": True, "input_forget": 1}),
    ("LSTM", 5, 3, 4, 4, "bidirectional", {"lengths": True, "initial": True, "layout": 1}),
    ("LSTM", 3, 6, 5, 2, "forward", {"layout": 1, "peepholes": True}),
    ("GRU", 6, 3, 4, 5, "forward", {"linear_before_reset": 0, "initial": True}),
    ("GRU", 5, 4, 3, 4, "bidirectional", {"linear_before_reset": 1, "lengths": True}),
    ("GRU", 7, 2, 3, 3, "bidirectional", {"linear_before_reset": 0, "layout": 1}),
    ("GRU", 4, 5, 2, 6, "reverse", {"linear_before_reset": 0, "lengths": True, "bias": False}),
    ("RNN", 6, 3, 4, 5, "bidirectional", {"lengths": True}),
    ("RNN", 5, 4, 3, 4, "forward", {"activations": ["Relu"], "initial": True, "layout": 1}),
    ("RNN", 4, 2, 3, 3, "reverse", {"activations": ["Relu"], "lengths": True}),
    # onnxruntime takes the first of two activations given for one direction
    ("RNN", 5, 3, 2, 4, "forward", {"activations": ["Relu", "Tanh"]}),
]


def case_id(case: tuple[Any, ...]) -> str:
    op, *_, direction, options = case
    return "-".join([op, direction, *(f"{k}={v}" for k, v in options.items())])


@pytest.mark.parametrize(
    ("op", "T", "B", "I", "H", "direction", "options"),
    [pytest.param(*case, id=case_id(case)) for case in CASES],
)
def test_one_node_matches_onnxruntime(
    op: str,
    T: int,
    B: int,
    I: int,
    H: int,
    direction: str,
    options: dict[str, Any],
    seed: int,
    tmp_path: Path,
) -> None:
    graph, options = Graph(np.random.default_rng(seed)), dict(options)
    D, layout = (2 if direction == "bidirectional" else 1), options.get("layout", 0)
    x = graph.input("X", graph.random(*((T, B, I) if layout == 0 else (B, T, I)), scale=1.0))
    call: dict[str, Any] = {}
    if options.pop("lengths", False):
        lens = np.array([T, *graph.rng.integers(1, T, size=B - 1)], dtype=np.int32)
        options["lengths"] = graph.input("L", lens)
        call["lengths"] = torch.from_numpy(lens)
    if options.pop("initial", False):
        names = ("h0", "c0") if op == "LSTM" else ("h0",)
        shape = (D, B, H) if layout == 0 else (B, D, H)
        options["initial"] = tuple(graph.input(n, graph.random(*shape)) for n in names)
        call["hx"] = [state_of(graph, names, layout)]
    graph.recurrent(op, x, "rnn", I=I, H=H, direction=direction, **options)
    module = load(graph.save(tmp_path))
    assert module.batch_first == (layout == 1)
    assert_same_as_onnxruntime(graph, module, x, **call)
    output, (state,) = module(torch.from_numpy(graph.feeds[x]), **call)
    theirs = {k: torch.from_numpy(v) for k, v in graph.onnxruntime().items()}
    y = theirs["rnn_Y"]  # (T, D, B, H), or (B, T, D, H) with layout=1
    expected = y.transpose(1, 2) if layout == 0 else y  # output follows x: (T or B, ·, D, H)
    torch.testing.assert_close(output, expected.flatten(2), rtol=1e-5, atol=1e-5)
    h_n = state[0] if op == "LSTM" else state  # (D, B, H), as torch.nn
    y_h = theirs["rnn_Y_h"] if layout == 0 else theirs["rnn_Y_h"].transpose(0, 1)
    torch.testing.assert_close(h_n, y_h, rtol=1e-5, atol=1e-5)
    if "lengths" in call:  # zero past each length, in onnxruntime as in lstmkit
        steps = torch.arange(T).unsqueeze(1) >= call["lengths"]  # (T, B)
        padding = output.transpose(0, 1) if layout == 1 else output
        assert steps.any()
        assert bool((padding[steps] == 0).all())


def test_onnxruntime_ignores_the_f_rows_with_input_forget(seed: int) -> None:
    """What lets lstmkit's coupled cell, which has no f rows, stand for input_forget=1: scaling
    the rows of f in W, R, B and P changes nothing in onnxruntime (scaling those of i does)."""

    def scaled(block: int, scale: float) -> dict[str, np.ndarray]:
        graph = Graph(np.random.default_rng(seed))
        x = graph.input("X", graph.random(5, 3, 2, scale=1.0))
        graph.recurrent("LSTM", x, "rnn", I=2, H=4, peepholes=True, input_forget=1)
        for tensor in graph.initializers:  # blocks i, o, f, c (P: i, o, f) of H = 4 rows
            value = numpy_helper.to_array(tensor).copy()
            step = 12 if tensor.name.endswith("_P") else 16  # Wb and Rb follow each other in B
            for start in range(block * 4, value.shape[1], step):
                value[:, start : start + 4] *= scale
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
        return graph.onnxruntime()

    f_small, f_large, i_large = scaled(2, 0.5), scaled(2, 3.0), scaled(0, 3.0)
    for name, value in f_small.items():
        np.testing.assert_array_equal(value, f_large[name])
        assert not np.allclose(value, i_large[name])


def transpose_reshape(graph: Graph, y: str, name: str) -> str:
    """Y (T, D, B, H) → (T, B, D·H), as exporters write it."""
    moved = graph.node("Transpose", [y], [f"{name}_moved"], perm=[0, 2, 1, 3])[0]
    shape = graph.constant(f"{name}_shape", np.array([0, 0, -1], dtype=np.int64))
    return graph.node("Reshape", [moved, shape], [name])[0]


def test_a_chain_of_two_lstms(seed: int, tmp_path: Path) -> None:
    graph = Graph(np.random.default_rng(seed))
    x = graph.input("X", graph.random(7, 2, 3, scale=1.0), shape=["T", "B", 3])
    y1 = graph.recurrent("LSTM", x, "first", I=3, H=4)[0]
    graph.recurrent("LSTM", transpose_reshape(graph, y1, "between"), "second", I=4, H=5)
    module = load(graph.save(tmp_path))
    assert [type(layer) for layer in module.layers] == [lstmkit.LSTM, lstmkit.LSTM]
    assert_same_as_onnxruntime(graph, module, x)


def test_a_bidirectional_chain_with_lengths(seed: int, tmp_path: Path) -> None:
    """An LSTM and a GRU, both bidirectional, both reading the graph's sequence_lens, and a
    layout op after the last one that lstmkit leaves out."""
    graph = Graph(np.random.default_rng(seed))
    x = graph.input("X", graph.random(6, 4, 3, scale=1.0), shape=["T", "B", 3])
    lens = graph.input("L", np.array([6, 2, 5, 1], dtype=np.int32), shape=["B"])
    y1 = graph.recurrent("LSTM", x, "first", I=3, H=4, direction="bidirectional", lengths=lens)[0]
    between = transpose_reshape(graph, y1, "between")
    y2 = graph.recurrent(
        "GRU", between, "second", I=8, H=3, direction="bidirectional", lengths=lens,
        linear_before_reset=1,
    )[0]  # fmt: skip
    graph.outputs.append(transpose_reshape(graph, y2, "out"))
    module = load(graph.save(tmp_path), engine="reference")
    assert [layer.engine for layer in module.layers] == ["reference", "reference"]
    call = {"lengths": torch.from_numpy(graph.feeds[lens])}
    assert_same_as_onnxruntime(graph, module, x, **call)
    output, _ = module(torch.from_numpy(graph.feeds[x]), **call)
    torch.testing.assert_close(
        output, torch.from_numpy(graph.onnxruntime()["out"]), rtol=1e-5, atol=1e-5
    )
    assert [n.lengths for n in module.nodes] == ["input", "input"]


def test_a_batch_first_chain_as_exporters_write_it(seed: int, tmp_path: Path) -> None:
    """A graph input (B, T, I) transposed for an RNN of layout 0, whose zero initial state is
    computed from the input's shape (ConstantOfShape), squeezed and transposed for an LSTM of
    layout 1, whose Y is reshaped for a GRU of layout 1."""
    graph = Graph(np.random.default_rng(seed))
    x = graph.input("X", graph.random(3, 5, 2, scale=1.0), shape=["B", "T", 2])
    time_major = graph.node("Transpose", [x], ["X_tbi"], perm=[1, 0, 2])[0]
    shape = graph.node("Shape", [x], ["X_shape"])[0]
    index = graph.constant("zero", np.array([0], dtype=np.int64))
    batch = graph.node("Gather", [shape, index], ["batch"], axis=0)[0]
    sizes = [graph.constant("one", np.array([1], np.int64)), batch]
    sizes.append(graph.constant("hidden", np.array([4], np.int64)))
    h0_shape = graph.node("Concat", sizes, ["h0_shape"], axis=0)[0]
    zeros = helper.make_tensor("zero_value", TensorProto.FLOAT, [1], [0.0])
    h0 = graph.node("ConstantOfShape", [h0_shape], ["h0"], value=zeros)[0]
    y1 = graph.recurrent("RNN", time_major, "first", I=2, H=4, initial=(h0,))[0]
    axes = graph.constant("axes", np.array([1], dtype=np.int64))
    squeezed = graph.node("Squeeze", [y1, axes], ["squeezed"])[0]  # (T, B, H)
    batch_major = graph.node("Transpose", [squeezed], ["batch_major"], perm=[1, 0, 2])[0]
    y2 = graph.recurrent("LSTM", batch_major, "second", I=4, H=3, layout=1)[0]
    flat = graph.constant("flat", np.array([0, 0, -1], dtype=np.int64))
    between = graph.node("Reshape", [y2, flat], ["between"])[0]  # (B, T, H)
    graph.recurrent("GRU", between, "third", I=3, H=2, layout=1, direction="bidirectional")
    module = load(graph.save(tmp_path))
    assert module.batch_first
    assert module.nodes[0].initial == ("",)  # zeros
    assert_same_as_onnxruntime(graph, module, x)


def test_constants_from_initializers_and_constant_nodes(seed: int, tmp_path: Path) -> None:
    """Weights from Constant nodes; sequence_lens and initial states from initializers, which
    the module keeps and uses when no state and no lengths are given."""
    graph = Graph(np.random.default_rng(seed))
    x = graph.input("X", graph.random(5, 3, 2, scale=1.0))
    lens = graph.constant("L", np.array([2, 5, 3], dtype=np.int32))
    h0 = graph.constant("h0", graph.random(1, 3, 4))
    c0 = graph.constant("c0", graph.random(1, 3, 4))
    graph.recurrent("LSTM", x, "rnn", I=2, H=4, peepholes=True, lengths=lens, initial=(h0, c0))
    for name in ("rnn_W", "rnn_P"):  # the same values from a Constant node instead
        tensor = next(t for t in graph.initializers if t.name == name)
        graph.initializers.remove(tensor)
        graph.nodes.insert(0, helper.make_node("Constant", [], [name], value=tensor))
    module = load(graph.save(tmp_path))
    assert module.nodes[0].lengths == "constant"
    assert module.nodes[0].initial == ("constant", "constant")
    assert_same_as_onnxruntime(graph, module, x)


def lstm_graph(rng: np.random.Generator, **attrs: Any) -> tuple[Graph, str]:
    graph = Graph(rng)
    x = graph.input("X", graph.random(4, 2, 3, scale=1.0))
    return graph, graph.recurrent(attrs.pop("op", "LSTM"), x, "rnn", I=3, H=2, **attrs)[0]


@pytest.mark.parametrize(
    ("attrs", "names"),
    [
        ({"activations": ["HardSigmoid", "Tanh", "Tanh"]}, ["activations", "HardSigmoid"]),
        ({"clip": 3.0}, ["clip=3.0"]),
        ({"activation_alpha": [0.5]}, ["activation_alpha"]),
        ({"op": "GRU", "activation_beta": [0.5]}, ["activation_beta"]),
        ({"op": "GRU", "activations": ["Sigmoid", "Relu"]}, ["activations", "'Relu'"]),
        (
            {"op": "RNN", "direction": "bidirectional", "activations": ["Tanh", "Relu"]},
            ["activations", "for each of 2 direction(s)"],
        ),
        ({"op": "RNN", "activations": ["Tanh", "Tanh", "Tanh"]}, ["activations"]),
        ({"direction": "sideways"}, ["direction='sideways'"]),
        ({"layout": 2}, ["layout=2"]),
        ({"input_forget": 2}, ["input_forget=2"]),
        ({"hidden_size_typo": 2}, ["hidden_size_typo", "the LSTM attributes"]),
    ],
)
def test_what_lstmkit_cannot_express_is_refused_by_name(
    attrs: dict[str, Any], names: list[str], seed: int, tmp_path: Path
) -> None:
    graph, _ = lstm_graph(np.random.default_rng(seed), **attrs)
    with pytest.raises(lstmkit.LstmkitValueError) as caught:
        load(graph.save(tmp_path))
    message = str(caught.value)
    assert "ONNX node rnn" in message
    for name in names:
        assert name in message


@pytest.mark.parametrize("op", ["Softmax", "MatMul"])
def test_other_ops_are_out_of_scope(op: str, seed: int, tmp_path: Path) -> None:
    graph, y = lstm_graph(np.random.default_rng(seed))
    graph.outputs.append(graph.node(op, [y] * (2 if op == "MatMul" else 1), ["after"])[0])
    with pytest.raises(lstmkit.LstmkitValueError, match=f"the graph has {op} node") as caught:
        load(graph.save(tmp_path))
    assert "only the recurrent nodes (LSTM, GRU, RNN)" in str(caught.value)


def test_layout_ops_that_scramble_y_are_refused(seed: int, tmp_path: Path) -> None:
    """A Reshape of Y (T, D, B, H) to (T, B, D·H) without the Transpose mixes directions and
    sequences; onnxruntime runs it, lstmkit says it cannot follow it."""
    graph = Graph(np.random.default_rng(seed))
    x = graph.input("X", graph.random(4, 2, 3, scale=1.0))
    y1 = graph.recurrent("LSTM", x, "first", I=3, H=2, direction="bidirectional")[0]
    flat = graph.constant("flat", np.array([0, 0, -1], dtype=np.int64))
    scrambled = graph.node("Reshape", [y1, flat], ["scrambled"])[0]  # (T, 2, B·H) = (4, 2, 4)
    graph.recurrent("GRU", scrambled, "second", I=4, H=2)
    graph.onnxruntime()  # a valid graph
    with pytest.raises(lstmkit.LstmkitValueError, match="do not turn Y"):
        load(graph.save(tmp_path))


def test_a_branch_is_refused(seed: int, tmp_path: Path) -> None:
    graph = Graph(np.random.default_rng(seed))
    x = graph.input("X", graph.random(4, 2, 3, scale=1.0))
    graph.recurrent("LSTM", x, "first", I=3, H=2)
    graph.recurrent("GRU", x, "second", I=3, H=2)
    with pytest.raises(lstmkit.LstmkitValueError, match="X of node second must come from Y"):
        load(graph.save(tmp_path))


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01garbage", lstmkit.LstmkitValueError,
         "is not an ONNX model"),
        (bytes(range(256)) * 4, lstmkit.LstmkitValueError, "is not an ONNX model"),
        (b"", lstmkit.LstmkitValueError, "is empty"),
        (b"def f():\n    return 1\n", lstmkit.LstmkitValueError, "is not an ONNX model"),
        (None, lstmkit.LstmkitFileNotFoundError, "no ONNX file at"),
        ("folder", lstmkit.LstmkitValueError, "is a folder"),
    ],
)  # fmt: skip
def test_what_is_not_an_onnx_model_gets_one_line(
    content: bytes | str | None, error: type[Exception], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "model.onnx"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(error, match=message) as caught:
        load(path)
    assert isinstance(caught.value, lstmkit.LstmkitError)
    assert "\n" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_calls_that_do_not_fit_the_graph_are_refused(seed: int, tmp_path: Path) -> None:
    graph, _ = lstm_graph(np.random.default_rng(seed))
    module = load(graph.save(tmp_path))
    x = torch.from_numpy(graph.feeds["X"])
    with pytest.raises(
        lstmkit.LstmkitValueError, match=r"one state \(or None\) per recurrent node"
    ):
        module(x, (torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)))
    with pytest.raises(lstmkit.LstmkitValueError, match="no recurrent node of this graph reads"):
        module(x, lengths=[4, 3])
    with pytest.raises(lstmkit.LstmkitValueError, match=r"3-D Tensor \(T, B, I\)"):
        module(x[0])
