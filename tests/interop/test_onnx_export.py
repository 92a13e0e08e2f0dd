"""ONNX export: every lstmkit layer exports and runs in real onnxruntime, with the sequence
length and batch size chosen at run time, as ONNX's own operator where it expresses the layer
and as a Scan elsewhere, and gives lstmkit's outputs and final states within 1e-5."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from torch import Tensor, nn

import lstmkit
from lstmkit import LstmkitError, LstmkitTypeError, LstmkitValueError
from lstmkit.interop.onnx_export import export
from lstmkit.interop.onnx_int8 import quantize
from lstmkit.interop.onnx_load import load

TOLERANCE = 1e-5  # float32, the bound


class Call(nn.Module):
    """A layer called with padded input, its lengths and a given state, returning the output
    and every field of the final state: the graph's inputs and outputs are plain tensors."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, lengths: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        hx: Any = state[0] if len(state) == 1 else tuple(state)
        out, h_n = self.layer(x, hx, lengths=lengths)
        return (out, *((h_n,) if isinstance(h_n, Tensor) else tuple(h_n)))


def draw_options(rng: np.random.Generator) -> dict[str, Any]:
    """Two layers or two directions, not both: each becomes a Scan of its own, a few seconds
    of export each."""
    layers, bidirectional = [(1, False), (1, True), (2, False)][int(rng.integers(3))]
    return {
        "num_layers": layers,
        "bidirectional": bidirectional,
        "batch_first": bool(rng.integers(0, 2)),
    }


# (name, builder from drawn options, the ONNX operator the layer must become)
FAMILIES: list[tuple[str, Callable[[dict[str, Any]], nn.Module], str]] = [
    ("lstm", lambda o: lstmkit.LSTM(5, 6, **o), "LSTM"),
    ("peepholes", lambda o: lstmkit.LSTM(5, 6, peepholes="io", **o), "LSTM"),
    ("vanilla", lambda o: lstmkit.LSTM(5, 6, variant="vanilla", **o), "LSTM"),
    ("cifg", lambda o: lstmkit.LSTM(5, 6, variant="CIFG", **o), "LSTM"),
    ("lstm-no-bias", lambda o: lstmkit.LSTM(5, 6, bias=False, **o), "LSTM"),
    ("gru", lambda o: lstmkit.GRU(5, 6, **o), "GRU"),
    ("gru-cho", lambda o: lstmkit.GRU(5, 6, reset_after=False, **o), "GRU"),
    ("rnn-tanh", lambda o: lstmkit.RNN(5, 6, **o), "RNN"),
    ("rnn-relu", lambda o: lstmkit.RNN(5, 6, nonlinearity="relu", **o), "RNN"),
    ("layer-norm", lambda o: lstmkit.LSTM(5, 6, layer_norm=True, **o), "Scan"),
    ("gru-layer-norm", lambda o: lstmkit.GRU(5, 6, layer_norm=True, **o), "Scan"),
    ("NIG", lambda o: lstmkit.LSTM(5, 6, variant="NIG", **o), "Scan"),
    ("NOAF", lambda o: lstmkit.LSTM(5, 6, variant="NOAF", **o), "Scan"),
    ("FGR", lambda o: lstmkit.LSTM(5, 6, variant="FGR", **o), "Scan"),
    ("projection", lambda o: lstmkit.LSTM(5, 6, proj_size=3, **o), "Scan"),
    ("zoneout", lambda o: lstmkit.LSTM(5, 6, zoneout_hidden=0.2, zoneout_cell=0.3, **o), "Scan"),
    ("MUT2", lambda o: lstmkit.MUT(6, 6, kind=2, **o), "Scan"),
    ("clockwork", lambda o: lstmkit.ClockworkRNN(5, 6, periods=(1, 2, 4), **o), "Scan"),
    ("depth-gated", lambda o: lstmkit.DepthGatedLSTM(5, 6, **o), "Scan"),
    ("grid", lambda o: lstmkit.GridLSTM(5, 6, depth=2, **o), "Scan"),
]


def run_onnx(path: Path, inputs: list[Tensor]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert len(names) == len(inputs)
    return session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})


def call_inputs(layer: nn.Module, steps: int, batch: int, gen: torch.Generator) -> list[Tensor]:
    """Input, lengths (the longest = steps) and a random initial state for ``layer``."""
    layout = (batch, steps) if layer.batch_first else (steps, batch)
    x = torch.randn(*layout, layer.input_size, generator=gen)
    lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
    lengths[int(torch.randint(0, batch, (1,), generator=gen))] = steps
    zero = layer.initial_state(batch, dtype=torch.float32, device=torch.device("cpu"))
    fields = [zero] if isinstance(zero, Tensor) else list(zero)
    if isinstance(layer, lstmkit.DepthGatedLSTM):  # its state is given in torch's layout
        rows = layer.depth * layer.num_directions
        fields = [torch.zeros(rows, batch, layer.hidden_size) for _ in range(2)]
    state = []
    for f, name in zip(fields, getattr(zero, "_fields", [""] * len(fields)), strict=True):
        if name == "t":  # a Clockwork RNN's clock: whole steps
            state.append(torch.randint(0, 9, f.shape, generator=gen).to(f.dtype))
        else:
            state.append(torch.randn(f.shape, generator=gen))
    return [x, lengths, *state]


@pytest.mark.parametrize(("name", "build", "operator"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_exports_and_runs_in_onnxruntime(
    tmp_path: Path, name: str, build: Callable[[dict[str, Any]], nn.Module], operator: str
) -> None:
    rng = np.random.default_rng(sum(map(ord, name)))
    options = draw_options(rng)
    torch.manual_seed(int(rng.integers(1 << 30)))
    layer = build(options).eval()
    model = Call(layer)
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
    report = export(model, tuple(call_inputs(layer, 4, 3, gen)), tmp_path / "m.onnx")
    assert report.operators == {"layer": operator}
    ops = {node.op_type for node in onnx.load(str(report.path)).graph.node}
    assert operator in ops
    if operator != "Scan":
        assert "Scan" not in ops

    # another length and batch at run time than at export
    steps, batch = int(rng.integers(6, 11)), int(rng.integers(4, 7))
    inputs = call_inputs(layer, steps, batch, gen)
    got = run_onnx(report.path, inputs)
    with torch.no_grad():
        want = model(*inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(g, w.numpy(), atol=TOLERANCE, rtol=0)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # (torch.onnx's own deprecation notes)
def test_plain_torch_onnx_export_works_too(tmp_path: Path) -> None:
    torch.manual_seed(0)
    layer = lstmkit.LSTM(3, 4, peepholes="ifo", num_layers=2).eval()
    x = torch.randn(5, 2, 3)
    T, B = torch.export.Dim("T"), torch.export.Dim("B")
    path = tmp_path / "plain.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=True, dynamic_shapes=({0: T, 1: B},))
    x2 = torch.randn(8, 3, 3)
    got = run_onnx(path, [x2])
    with torch.no_grad():
        out, (h, c) = layer(x2)
    for g, w in zip(got, (out, h, c), strict=True):
        np.testing.assert_allclose(g, w.numpy(), atol=TOLERANCE, rtol=0)


def test_attention_decoder_exports_as_a_scan(tmp_path: Path) -> None:
    class Decode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = lstmkit.AttentionDecoder(5, 7, 6)

        def forward(
            self, y: Tensor, a: Tensor, mask: Tensor, lengths: Tensor
        ) -> tuple[Tensor, ...]:
            out = self.decoder(y, a, annotation_mask=mask, lengths=lengths)
            return (out.outputs, out.contexts, out.alphas, out.betas, *out.state)

    torch.manual_seed(1)
    model = Decode().eval()

    def draw(B: int, T: int, L: int) -> list[Tensor]:
        mask = torch.rand(B, L) < 0.7
        mask[:, 0] = True
        return [torch.randn(B, T, 5), torch.randn(B, L, 7), mask, torch.randint(1, T + 1, (B,))]

    report = export(model, tuple(draw(3, 4, 6)), tmp_path / "att.onnx")
    assert report.operators == {"decoder": "Scan"}
    inputs = draw(5, 9, 4)
    got = run_onnx(report.path, inputs)
    with torch.no_grad():
        want = model(*inputs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), atol=TOLERANCE, rtol=0)


def test_grid_lstm_2d_exports_with_its_image_size_fixed(tmp_path: Path) -> None:
    class Image(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.grid = lstmkit.GridLSTM2d(3, 6, num_layers=2)

        def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
            out = self.grid(images)
            return out[0], out[1]

    torch.manual_seed(4)
    model = Image().eval()
    report = export(model, torch.randn(2, 3, 4, 5), tmp_path / "g.onnx", dynamic_axes=False)
    images = torch.randn(2, 3, 4, 5)
    got = run_onnx(report.path, [images])
    with torch.no_grad():
        want = model(images)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), atol=TOLERANCE, rtol=0)


def test_fixed_axes_keep_the_example_shape(tmp_path: Path) -> None:
    layer = lstmkit.GRU(3, 4).eval()
    report = export(layer, torch.randn(5, 2, 3), tmp_path / "fixed.onnx", dynamic_axes=False)
    run_onnx(report.path, [torch.randn(5, 2, 3)])
    with pytest.raises(InvalidArgument, match=r"(?i)dimension"):
        run_onnx(report.path, [torch.randn(6, 2, 3)])


def test_export_traces_in_evaluation_mode_and_restores_the_mode(tmp_path: Path) -> None:
    layer = lstmkit.LSTM(3, 4, num_layers=2, dropout=0.5, zoneout_hidden=0.3)
    assert layer.training
    report = export(layer, torch.randn(5, 2, 3), tmp_path / "m.onnx")
    assert layer.training
    x = torch.randn(7, 3, 3)
    got = run_onnx(report.path, [x])
    layer.eval()
    with torch.no_grad():
        out, _ = layer(x)
    np.testing.assert_allclose(got[0], out.numpy(), atol=TOLERANCE, rtol=0)


def test_int8_copy_quantises_the_lstm_and_stays_close(tmp_path: Path) -> None:
    torch.manual_seed(2)
    layer = lstmkit.LSTM(16, 64, num_layers=2).eval()
    report = export(layer, torch.randn(5, 2, 16), tmp_path / "f32.onnx")
    small = quantize(report.path, tmp_path / "int8.onnx")
    ops = {node.op_type for node in onnx.load(str(small)).graph.node}
    assert "DynamicQuantizeLSTM" in ops
    assert small.stat().st_size < report.path.stat().st_size / 2
    x = torch.randn(20, 4, 16)
    (f32, *_), (i8, *_) = run_onnx(report.path, [x]), run_onnx(small, [x])
    assert 0 < np.abs(f32 - i8).max() < 0.05


def test_int8_copy_of_a_scan_model_runs(tmp_path: Path) -> None:
    """Shape notes on the weights would go stale when the quantiser transposes them."""
    torch.manual_seed(3)
    layer = lstmkit.LSTM(16, 32, layer_norm=True).eval()
    report = export(layer, torch.randn(5, 2, 16), tmp_path / "f32.onnx")
    small = quantize(report.path, tmp_path / "int8.onnx")
    x = torch.randn(9, 3, 16)
    (f32, *_), (i8, *_) = run_onnx(report.path, [x]), run_onnx(small, [x])
    assert np.abs(f32 - i8).max() < 0.05


def test_bad_calls_say_what_is_wrong(tmp_path: Path) -> None:
    layer = lstmkit.LSTM(3, 4)
    with pytest.raises(LstmkitTypeError, match=r"nn\.Module"):
        export("not a model", torch.randn(2, 2, 3), tmp_path / "m.onnx")  # type: ignore[arg-type]
    with pytest.raises(LstmkitTypeError, match="example_input"):
        export(layer, [1, 2], tmp_path / "m.onnx")
    with pytest.raises(LstmkitValueError, match=r"opset must be .* from 17"):
        export(layer, torch.randn(2, 2, 3), tmp_path / "m.onnx", opset=13)
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(4, 2, 3), [4, 2])
    with pytest.raises(LstmkitValueError, match="PackedSequence"):
        export(layer, (packed,), tmp_path / "m.onnx")
    with pytest.raises(LstmkitError):
        quantize(tmp_path / "missing.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "m.onnx").exists()


ROUND_TRIP = [
    ("lstm", lambda: lstmkit.LSTM(4, 5, num_layers=2, bidirectional=True)),
    ("peepholes", lambda: lstmkit.LSTM(4, 5, peepholes="ifo")),
    ("cifg", lambda: lstmkit.LSTM(4, 5, variant="CIFG", bidirectional=True)),
    ("gru", lambda: lstmkit.GRU(4, 5, num_layers=2)),
    ("gru-cho", lambda: lstmkit.GRU(4, 5, reset_after=False, bidirectional=True)),
    ("rnn-relu", lambda: lstmkit.RNN(4, 5, nonlinearity="relu")),
]


@pytest.mark.parametrize(("name", "build"), ROUND_TRIP, ids=[r[0] for r in ROUND_TRIP])
def test_export_then_load_gives_the_same_layer(
    tmp_path: Path, name: str, build: Callable[[], nn.Module]
) -> None:
    torch.manual_seed(sum(map(ord, name)))
    layer = build().eval()
    report = export(layer, torch.randn(5, 2, 4), tmp_path / "m.onnx")
    loaded = load(report.path)
    x = torch.randn(7, 3, 4)
    with torch.no_grad():
        want, _ = layer(x)
        got, _ = loaded(x)
    torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=0)
    # the weights themselves came back, in lstmkit's layout
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in layer.parameters())
