"""``lstmkit export`` and ``lstmkit sample --onnx``: a trained character model written as ONNX
(float32 and int8), sampled through onnxruntime with the checkpoint's own text, and every
mistake one line. The runs and exports are shared by the module's tests (an export takes
seconds)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import lstmkit
from lstmkit.cli import main
from lstmkit.train.sample import CharStepModel, OnnxCharModel, load_charlm, onnx_session
from lstmkit.train.trainer import load_run

TEXT = "the cat sat on the mat. a dog ran to the cat. " * 200


def run(*args: str) -> tuple[int, str, str]:
    """``lstmkit ARGS`` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def train(folder: Path, *args: str) -> Path:
    status, _, err = run("train", *args, "--no-progress", "--out", str(folder))
    assert status == 0, err
    return folder / "checkpoint.pt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def charlm(folder: Path) -> Path:
    text = folder / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    task = f"charlm:path={text},length=24"
    return train(folder / "lm", "--task", task, "--hidden-size", "24", "--steps", "60")


@pytest.fixture(scope="module")
def exported(folder: Path, charlm: Path) -> tuple[Path, str]:
    """The charlm checkpoint exported with --int8, and what the command printed."""
    status, out, err = run("export", str(charlm), "-o", str(folder / "lm.onnx"), "--int8")
    assert status == 0, err
    return folder / "lm.onnx", out


def test_export_writes_a_float32_and_an_int8_step_model(
    exported: tuple[Path, str], charlm: Path
) -> None:
    path, out = exported
    int8 = path.with_name("lm.int8.onnx")
    assert "rnn (LSTM): ONNX LSTM" in out
    sizes = re.findall(r"^(\S+): ([\d.]+) kB", out, re.M)
    assert sizes == [(str(p), f"{p.stat().st_size / 1024:.1f}") for p in (path, int8)]
    differences = [float(d) for d in re.findall(r"PyTorch on (?:an|the) example: (\S+)", out)]
    assert len(differences) == 2
    assert differences[0] < 1e-5  # float32: onnxruntime sums in another order
    assert 1e-5 < differences[1] < 0.5  # int8: rounded weights, still the same model
    assert int8.stat().st_size < 0.7 * path.stat().st_size
    float_ops = {n.op_type for n in onnx.load(path).graph.node}
    int8_ops = {n.op_type for n in onnx.load(int8).graph.node}
    assert "LSTM" in float_ops
    assert "DynamicQuantizeLSTM" in int8_ops
    assert "LSTM" not in int8_ops
    _, vocabulary = load_charlm(charlm)
    for file in (path, int8):
        meta = OnnxCharModel(file).metadata
        assert meta["lstmkit.task"] == "charlm"
        assert meta["lstmkit.version"] == lstmkit.__version__
        assert OnnxCharModel(file).vocabulary == vocabulary
    model = OnnxCharModel(path)
    assert [i.name for i in model.session.get_outputs()] == ["logits", "h_n", "c_n"]
    assert model.state_shapes == ((1, 24), (1, 24))


def test_the_step_model_carries_its_state_as_the_checkpoint_reads_a_text(
    exported: tuple[Path, str], charlm: Path
) -> None:
    model, _ = load_charlm(charlm)
    onnx_model = OnnxCharModel(exported[0])
    tokens = torch.randint(0, model.head.out_features, (3, 17))  # (B, T): 3 texts of 17
    with torch.no_grad():
        want = model(tokens)  # (B, T, V), from the zero state in one call
    whole, _ = onnx_model.run(tokens.T.contiguous().numpy(), onnx_model.initial_state(3))
    state, pieces = onnx_model.initial_state(3), []
    for t in range(tokens.shape[1]):  # one character a call, the state carried
        logits, state = onnx_model.run(tokens.T[t : t + 1].contiguous().numpy(), state)
        pieces.append(logits)
    stepped = np.concatenate(pieces)
    torch.testing.assert_close(torch.from_numpy(whole).transpose(0, 1), want, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        torch.from_numpy(stepped), torch.from_numpy(whole), atol=1e-5, rtol=0
    )
    step = CharStepModel(model)
    with torch.no_grad():
        logits, *_ = step(tokens.T, *step.initial_state(3))
    torch.testing.assert_close(logits, torch.from_numpy(whole), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "options",
    [
        ["--seed", "0"],
        ["--seed", "1", "--top-k", "4"],
        ["--seed", "2", "--temperature", "1.5", "--prompt", "a dog"],
        ["--seed", "3", "--temperature", "0.3"],
    ],
)
def test_sampling_through_onnxruntime_gives_the_checkpoints_text(
    exported: tuple[Path, str], charlm: Path, options: list[str]
) -> None:
    ours = run("sample", str(charlm), "--length", "200", *options)
    theirs = run("sample", "--onnx", str(exported[0]), "--length", "200", *options)
    assert ours[0] == theirs[0] == 0, theirs[2]
    assert theirs[1] == ours[1]
    prompt = options[options.index("--prompt") + 1] if "--prompt" in options else "def "
    text = ours[1].rstrip("\n")
    assert text.startswith(prompt)
    assert len(text) == len(prompt) + 200


def test_the_seed_changes_the_text_and_int8_samples_from_the_same_vocabulary(
    exported: tuple[Path, str],
) -> None:
    path = exported[0]
    texts = {
        run("sample", "--onnx", str(path), "--seed", str(s), "--length", "80")[1] for s in range(4)
    }
    assert len(texts) == 4  # so the equality above is not that of a constant
    status, out, err = run(
        "sample", "--onnx", str(path.with_name("lm.int8.onnx")), "--length", "80"
    )
    assert status == 0, err
    assert out.startswith("def ")
    assert set(out.rstrip("\n")[4:]) <= set(TEXT)


@pytest.fixture(scope="module")
def gap_export(folder: Path) -> tuple[Path, Path, str]:
    """A model of the gap task with sequences of different lengths, exported."""
    spec = "gap:gap=3,max_gap=6"
    checkpoint = train(folder / "gap", "--task", spec, "--hidden-size", "8", "--steps", "3")
    status, out, err = run("export", str(checkpoint), "-o", str(folder / "gap.onnx"))
    assert status == 0, err
    return checkpoint, folder / "gap.onnx", out


def test_a_task_with_lengths_exports_its_model_as_training_called_it(
    gap_export: tuple[Path, Path, str],
) -> None:
    checkpoint, path, out = gap_export
    assert "rnn (LSTM): ONNX LSTM" in out
    model, task = load_run(checkpoint)
    batch = task.batch(5, torch.Generator().manual_seed(1))  # another batch size and length
    assert batch.lengths is not None
    assert len(set(batch.lengths.tolist())) > 1
    session = onnx_session(path)
    assert [i.name for i in session.get_inputs()] == ["inputs", "lengths"]
    got = session.run(None, {"inputs": batch.inputs.numpy(), "lengths": batch.lengths.numpy()})
    with torch.no_grad():
        want = model(batch.inputs, batch.lengths)
    torch.testing.assert_close(torch.from_numpy(got[0]), want, atol=1e-5, rtol=0)


def one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0]


def test_export_refuses_a_missing_file_and_one_that_is_not_a_checkpoint(folder: Path) -> None:
    status, _, err = run("export", str(folder / "missing.pt"), "-o", str(folder / "x.onnx"))
    one_line_error(status, err, "no checkpoint at", "missing.pt")
    text = folder / "notes.pt"
    text.write_text("not a checkpoint", encoding="utf-8")
    status, _, err = run("export", str(text), "-o", str(folder / "x.onnx"))
    one_line_error(status, err, "notes.pt is not a readable checkpoint")
    assert not (folder / "x.onnx").exists()


def test_sample_refuses_a_model_that_is_not_a_character_model_export(
    folder: Path, exported: tuple[Path, str], gap_export: tuple[Path, Path, str]
) -> None:
    stripped = onnx.load(exported[0])
    del stripped.metadata_props[:]
    onnx.save(stripped, folder / "bare.onnx")
    for path in (folder / "bare.onnx", gap_export[1]):
        status, _, err = run("sample", "--onnx", str(path))
        one_line_error(status, err, str(path), "is not an lstmkit character-model export")
    status, _, err = run("sample", "--onnx", str(folder / "text.txt"))
    one_line_error(status, err, "text.txt is not an ONNX model onnxruntime can run")
    status, _, err = run("sample", "--onnx", str(folder / "missing.onnx"))
    one_line_error(status, err, "no ONNX model at")


def test_sample_takes_a_checkpoint_or_an_onnx_model(
    exported: tuple[Path, str], charlm: Path
) -> None:
    status, _, err = run("sample", str(charlm), "--onnx", str(exported[0]))
    one_line_error(status, err, "give a checkpoint or --onnx MODEL", "got both")
    status, _, err = run("sample")
    one_line_error(status, err, "got neither")


def test_int8_and_onnx_sampling_without_onnxruntime_say_what_to_install(
    folder: Path, charlm: Path, exported: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    target = folder / "without.onnx"
    status, _, err = run("export", str(charlm), "-o", str(target), "--int8")
    one_line_error(status, err, "--int8 needs onnxruntime", "pip install")
    assert not target.exists()  # refused before any work
    status, _, err = run("sample", "--onnx", str(exported[0]))
    one_line_error(status, err, "needs onnxruntime")


def test_bench_onnx_runs_fast_and_scores_alike(folder: Path, charlm: Path) -> None:
    """A fast run of the deploy benchmark (the figures of the README come from a full one):
    the three runtimes score the held-out text alike and sample the same text."""
    table, data = folder / "bench.md", folder / "bench.json"
    status, _, err = run(
        "bench-onnx", str(charlm), "--batch", "2", "--sample-length", "5", "--repeats", "1",
        "--seconds", "0.01", "--table", str(table), "--json", str(data),
    )  # fmt: skip
    assert status == 0, err
    results = json.loads(data.read_text())
    bpc = results["bpc"]
    assert abs(bpc["onnxruntime float32"] - bpc["lstmkit"]) < 1e-4
    assert abs(bpc["onnxruntime int8"] - bpc["lstmkit"]) < 0.2
    assert results["same_text"]
    assert "held-out bits per character" in table.read_text()
