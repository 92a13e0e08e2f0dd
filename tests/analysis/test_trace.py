"""Traces against values recomputed by hand from the weights, and gradient flow against autograd."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lstmkit
from lstmkit import Trace, _recording
from lstmkit.analysis.gradient_flow import gradient_flow
from lstmkit.cli import main as cli_main
from lstmkit.modules.sequence import SequenceModel
from lstmkit.tasks import Task, make_task
from lstmkit.train import (
    ModelConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    Trainer,
    build_model,
    load_run,
)
from tests.references import np64, sigmoid
from tests.references.lstm import lstm_by_hand

T, B, I, H = 6, 3, 4, 5
F64 = torch.float64


def random_(module: torch.nn.Module, scale: float = 0.5) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, scale)


def test_lstm_trace_equals_the_equations_in_both_directions() -> None:
    layer = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, dtype=F64)
    random_(layer)
    x = torch.randn(T, B, I, dtype=F64)
    trace = lstmkit.trace(layer, x)
    state = layer.state_dict()
    forward = lstm_by_hand(np64(x), state, "_l0")
    backward = lstm_by_hand(np64(x.flip(0)), state, "_l0_reverse")
    for name in ("i_t", "f_t", "C_tilde", "C_t", "o_t", "h_t"):
        np.testing.assert_allclose(np64(trace[f"l0.{name}"]), forward[name], rtol=0, atol=1e-12)
        # the reverse direction's steps are stored in input order
        np.testing.assert_allclose(
            np64(trace[f"l0_reverse.{name}"]), backward[name][::-1], rtol=0, atol=1e-12
        )
    layer1_input = np.concatenate([forward["h_t"], backward["h_t"][::-1]], axis=-1)
    np.testing.assert_allclose(
        np64(trace["l1.C_t"]), lstm_by_hand(layer1_input, state, "_l1")["C_t"], rtol=0, atol=1e-12
    )
    assert trace.cells == ["l0", "l0_reverse", "l1", "l1_reverse"]
    assert trace.meta["cells"]["l0_reverse"] == {"class": "LSTMCell", "reverse": True}


def test_gru_trace_equals_the_equations() -> None:
    layer = lstmkit.GRU(I, H, dtype=F64)
    random_(layer)
    x = torch.randn(T, B, I, dtype=F64)
    trace = lstmkit.trace(layer, x)
    s = layer.state_dict()
    W_ih, W_hh = np64(s["weight_ih_l0"]), np64(s["weight_hh_l0"])
    b_ih, b_hh = np64(s["bias_ih_l0"]), np64(s["bias_hh_l0"])
    h = np.zeros((B, H))
    for t, x_t in enumerate(np64(x)):
        gx, gh = x_t @ W_ih.T + b_ih, h @ W_hh.T + b_hh
        r = sigmoid(gx[:, :H] + gh[:, :H])
        z = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        for name, value in (("r_t", r), ("z_t", z), ("n_t", n), ("h_t", h)):
            np.testing.assert_allclose(np64(trace[f"l0.{name}"][t]), value, rtol=0, atol=1e-12)


def test_variants_record_only_the_gates_they_have() -> None:
    layer = lstmkit.LSTM(I, H, variant="NIG", proj_size=2)
    trace = lstmkit.trace(layer, torch.randn(T, B, I))
    assert trace.names("l0") == ["C_t", "C_tilde", "f_t", "h_t", "m_t", "o_t"]
    assert trace["l0.h_t"].shape == (T, B, 2)  # projected
    assert trace["l0.m_t"].shape == (T, B, H)  # before the projection


def test_tracing_does_not_change_the_outputs_and_restores_the_engine() -> None:
    model = SequenceModel(
        lstmkit.LSTM(I, H, num_layers=2, batch_first=True, peepholes="if"),
        vocab_size=None,
        output_size=3,
        readout="all",
    ).eval()
    x = torch.randn(B, T, I)
    with torch.no_grad():
        fast = model(x)  # auto: the fused engine
        model.rnn.engine = "reference"
        reference = model(x)
        model.rnn.engine = "auto"
    trace = lstmkit.trace(model, x)
    assert model.rnn.engine == "auto"
    assert torch.equal(trace.outputs, reference)
    torch.testing.assert_close(trace.outputs, fast, rtol=0, atol=1e-5)
    assert trace.cells == ["rnn.l0", "rnn.l1"]
    # the head reads the top layer's h_t at every step
    torch.testing.assert_close(
        trace.outputs, model.head(trace["rnn.l1.h_t"].transpose(0, 1)), rtol=0, atol=1e-6
    )


def test_no_recording_without_a_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recorded outside a trace")

    monkeypatch.setattr(_recording, "record", refuse)
    x = torch.randn(T, B, H)
    for layer in (
        lstmkit.LSTM(H, H, engine="reference"),
        lstmkit.GRU(H, H, engine="reference"),
        lstmkit.RNN(H, H, engine="reference"),
        lstmkit.MUT(H, H),
        lstmkit.ClockworkRNN(H, 8),
        lstmkit.DepthGatedLSTM(H, H, num_layers=2),
        lstmkit.GridLSTM(H, H, depth=2),
    ):
        layer(x)
    assert _recording.RECORDING is None


def test_recording_is_off_again_after_a_failing_model() -> None:
    class Broken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = lstmkit.LSTM(I, H)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.rnn(x)
            raise RuntimeError("boom")

    model = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        lstmkit.trace(model, torch.randn(T, B, I))
    assert _recording.RECORDING is None
    assert model.rnn.engine == "auto"


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_and_load(suffix: str, tmp_path) -> None:
    trace = lstmkit.trace(lstmkit.LSTM(I, H, bidirectional=True), torch.randn(T, B, I))
    path = trace.save(tmp_path / f"trace{suffix}")
    loaded = Trace.load(path)
    assert loaded.keys() == trace.keys()
    for key in trace.values:
        assert torch.equal(loaded[key], trace[key])
    assert loaded.meta == trace.meta


def test_a_save_that_fails_leaves_the_previous_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = lstmkit.trace(lstmkit.RNN(I, H), torch.randn(T, B, I))
    path = before.save(tmp_path / "trace.npz")
    after = lstmkit.trace(lstmkit.GRU(I, H), torch.randn(T, B, I))

    def torn(file: object, **entries: object) -> None:
        assert not isinstance(file, (str, Path))  # written to the temporary file, not the target
        file.write(b"PK\x03\x04 half a zip")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", torn)
    with pytest.raises(OSError, match="disk full"):
        after.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["trace.npz"]  # no temporary file left
    loaded = Trace.load(path)
    assert loaded.keys() == before.keys()
    assert torch.equal(loaded["l0.h_t"], before["l0.h_t"])


def test_bad_trace_files_and_arguments(tmp_path) -> None:
    trace = lstmkit.trace(lstmkit.RNN(I, H), torch.randn(T, B, I))
    with pytest.raises(ValueError, match=r"\.npz or \.safetensors, got 'trace.pt'"):
        trace.save(tmp_path / "trace.pt")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not an lstmkit trace"):
        Trace.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="no trace at"):
        Trace.load(tmp_path / "missing.npz")
    with pytest.raises(KeyError, match=r"no 'l0\.f_t' in this trace; it has l0\.h_t"):
        trace["l0.f_t"]
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        lstmkit.trace("model", torch.randn(T, B, I))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no lstmkit cell to trace"):
        lstmkit.trace(torch.nn.Linear(I, H), torch.randn(B, I))


def test_sequences_of_different_lengths_are_traced_in_batch_order() -> None:
    layer = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I)
    lengths = [3, T, 2]  # unsorted: the packed batch runs them in another order
    by_lengths = lstmkit.trace(layer, (x,), lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    by_packing = lstmkit.trace(layer, packed)
    for b, n in enumerate(lengths):
        alone = lstmkit.trace(layer, x[b : b + 1, :n])
        for key in alone:
            for traced in (by_lengths, by_packing):
                torch.testing.assert_close(traced[key][:n, b], alone[key][:, 0], rtol=0, atol=1e-6)
                assert torch.isnan(traced[key][n:, b]).all()  # nothing past the length


def test_the_other_cells_record_what_they_have() -> None:
    x = torch.randn(T, B, H)
    clock = lstmkit.ClockworkRNN(H, 8, periods=[1, 2, 4, 8])
    trace = lstmkit.trace(clock, x)
    steps = torch.arange(T, dtype=torch.float32)[:, None, None].expand(T, B, 1)
    assert torch.equal(trace["l0.active"], clock.cell(0).active(steps).float())
    # (a trace runs the reference engine; the layer, the fused one)
    torch.testing.assert_close(trace["l0.h_t"], clock(x)[0], rtol=1.3e-6, atol=1e-6)

    mut = lstmkit.MUT(H, H, kind=2)
    assert lstmkit.trace(mut, x).names("l0") == ["h_t", "r_t", "z_t"]

    deep = lstmkit.DepthGatedLSTM(H, H, num_layers=3)
    trace = lstmkit.trace(deep, x)
    assert trace["l0.d_t"].shape == (T, B, 2 * H)  # layers 1 and 2 have a depth gate
    torch.testing.assert_close(trace["l0.h_t"][..., -H:], deep(x)[0], rtol=0, atol=1e-6)

    grid = lstmkit.GridLSTM(H, H, depth=2)
    trace = lstmkit.trace(grid, x)
    assert trace["l0.m_time"].shape == (T, B, 2 * H)
    torch.testing.assert_close(trace["l0.h_t"], grid(x)[0], rtol=0, atol=1e-6)


def test_attention_weights_are_traced() -> None:
    decoder = lstmkit.AttentionDecoder(3, 6, H)
    y, annotations = torch.randn(2, 4, 3), torch.randn(2, 7, 6)
    trace = lstmkit.trace(decoder, (y, annotations))
    torch.testing.assert_close(
        trace["AttentionDecoder.alpha_t"].transpose(0, 1), trace.outputs.alphas
    )
    assert trace["cell.C_t"].shape == (4, 2, H)  # the decoder's own LSTM cell, step by step


def model_for(layer: lstmkit.Recurrent, task: Task) -> SequenceModel:
    """A float64 model of ``layer`` sized for ``task``, read at the last step."""
    model = SequenceModel(
        layer, vocab_size=task.vocab_size, output_size=task.output_size, readout="last"
    )
    return model.to(F64)


def test_gradient_flow_equals_autograd_through_an_unrolled_rnn() -> None:
    task = make_task("gap", gap=7, classes=3, distractors=4)
    torch.manual_seed(0)
    model = model_for(lstmkit.RNN(6, H, batch_first=True), task)
    flow = gradient_flow(model, task, batch_size=8, seed=4)
    # by hand: the same batch, the recurrence unrolled, autograd on every h_t
    batch = task.batch(8, torch.Generator().manual_seed(4))
    x = model.embedding(batch.inputs)
    s = model.rnn.state_dict()
    h = torch.zeros(8, H, dtype=F64)
    hs = []
    for t in range(x.shape[1]):
        h = torch.tanh(
            x[:, t] @ s["weight_ih_l0"].T
            + s["bias_ih_l0"]
            + h @ s["weight_hh_l0"].T
            + s["bias_hh_l0"]
        )
        h.retain_grad()
        hs.append(h)
    loss = F.cross_entropy(model.head(h), batch.targets)
    loss.backward()
    want = np.array([g.grad.norm(dim=1).mean().item() for g in hs])
    np.testing.assert_allclose(flow.h_norm, want, rtol=1e-10, atol=0)
    assert flow.distance.tolist() == list(range(len(hs) - 1, -1, -1))
    assert flow.c_norm is None
    assert flow.h_norm[0] < flow.h_norm[-1]  # it vanishes with distance


def test_gradient_flow_of_the_lstm_cell_state() -> None:
    task = make_task("gap", gap=5, classes=3, distractors=4)
    torch.manual_seed(1)
    model = model_for(lstmkit.LSTM(6, H, batch_first=True), task)
    flow = gradient_flow(model, "gap:gap=5,classes=3,distractors=4", batch_size=4, label="lstm")
    batch = task.batch(4, torch.Generator().manual_seed(0))
    cell = model.rnn.cell(0)
    x = model.embedding(batch.inputs)
    state = cell.initial_state(4, dtype=F64, device=torch.device("cpu"))
    Cs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        state.c.retain_grad()
        Cs.append(state.c)
    F.cross_entropy(model.head(state.h), batch.targets).backward()
    want = np.array([c.grad.norm(dim=1).mean().item() for c in Cs])
    assert flow.c_norm is not None
    np.testing.assert_allclose(flow.c_norm, want, rtol=1e-10, atol=0)
    assert flow.label == "lstm"
    assert flow.task == "gap:gap=5,classes=3,distractors=4"


def test_gradient_flow_refuses_sequences_of_different_lengths() -> None:
    task = make_task("gap", gap=3, max_gap=6)
    model = model_for(lstmkit.RNN(4, H, batch_first=True), task)
    with pytest.raises(ValueError, match="needs sequences of one length"):
        gradient_flow(model, task)


def _tiny_charlm_run(out: Path) -> Path:
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=8),
        task=TaskConfig("charlm", {"max_chars": 5000, "length": 20}),
        run=RunConfig(steps=3, batch_size=4, eval_every=3, eval_size=4, early_stop=False),
    )
    Trainer(config, out_dir=out, progress=False).fit()
    return out / "checkpoint.pt"


def test_trace_command_records_a_trained_model(tmp_path: Path) -> None:
    checkpoint = _tiny_charlm_run(tmp_path / "run")
    text = 'print("x")\n'
    assert cli_main(["trace", str(checkpoint), "--text", text, "-o", str(tmp_path / "t.npz")]) == 0
    saved = Trace.load(tmp_path / "t.npz")
    model, task = load_run(checkpoint)
    again = lstmkit.trace(model, task.encode(text)[None])
    assert (
        saved.keys()
        == again.keys()
        == sorted(f"rnn.l0.{n}" for n in ("C_t", "C_tilde", "f_t", "h_t", "i_t", "o_t"))
    )
    for key in saved.values:
        assert torch.equal(saved[key], again[key])
    assert saved["rnn.l0.C_t"].shape == (len(text), 1, 8)
    assert cli_main(["trace", str(checkpoint), "-o", str(tmp_path / "b.safetensors")]) == 0
    assert Trace.load(tmp_path / "b.safetensors")["rnn.l0.h_t"].shape == (20, 1, 8)


def test_gradient_flow_command_plots_and_writes_the_numbers(tmp_path: Path) -> None:
    out = tmp_path / "flow.png"
    argv = ["gradient-flow", "--cell", "rnn", "--cell", "lstm", "--task", "gap:gap=6"]
    assert cli_main([*argv, "--hidden-size", "8", "--batch-size", "4", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert [n["label"] for n in numbers] == ["rnn", "lstm"]
    task = make_task("gap", gap=6)
    torch.manual_seed(0)
    config = TrainConfig(model=ModelConfig(cell="lstm", hidden_size=8), task=TaskConfig("gap"))
    direct = gradient_flow(build_model(config, task), "gap:gap=6", batch_size=4)
    np.testing.assert_allclose(numbers[1]["h_norm"], direct.h_norm, rtol=1e-6, atol=0)
    assert numbers[0]["c_norm"] is None


def test_plot_and_explain_commands_on_a_trained_model(tmp_path: Path) -> None:
    checkpoint = _tiny_charlm_run(tmp_path / "run")
    text = 'if a < b:\n    print("x")\n'
    assert cli_main(["plot", str(checkpoint), "--text", text, "-o", str(tmp_path / "p")]) == 0
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    quantities = ("C_t", "C_tilde", "f_t", "h_t", "i_t", "o_t", "units")
    assert names == sorted([*(f"rnn.l0.{q}.png" for q in quantities), "saturation.png"])
    page = tmp_path / "page.html"
    assert cli_main(["explain", str(checkpoint), "--text", text, "-o", str(page)]) == 0
    html = page.read_text()
    assert "a < b" not in html  # the user's text never lands unescaped
    assert html.count("<script") == html.count("</script>")
