"""``lstmkit sample`` on DRAW, VRNN and STORN checkpoints and ``lstmkit caption`` on a captioner's,
end to end in this process with tiny budgets: the files they write, what they print, and the
errors for the wrong checkpoint, a malformed one, and an image of the wrong size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from lstmkit.cli import main
from lstmkit.tasks.captions import CaptionsTask, caption_text
from lstmkit.train.trainer import eval_batches


def train(tmp_path: Path, name: str, task: str, kind: str, *extra: str) -> Path:
    """A two-step run of ``kind`` on ``task``; returns its checkpoint."""
    out = tmp_path / name
    status = main(
        [
            "train", "--task", task, "--kind", kind, "--hidden-size", "8", "--steps", "2",
            "--batch-size", "4", "--eval-every", "2", "--eval-size", "4", "--out", str(out),
            "--no-progress", *extra,
        ]
    )  # fmt: skip
    assert status == 0
    return out / "checkpoint.pt"


def picture(path: Path) -> np.ndarray:
    """A written PNG's pixels, checked to be a real picture (not one flat colour)."""
    pixels = imread(path)
    assert pixels.ndim == 3
    assert min(pixels.shape[:2]) > 50
    assert float(pixels.std()) > 0.05
    return pixels


@pytest.fixture(scope="module")
def draw_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind = "draw:glimpses=3,z_size=4,attention=true,read_n=2,write_n=3"
    return train(tmp_path_factory.mktemp("draw"), "draw", "digits", kind)


@pytest.fixture(scope="module")
def captioner_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind = "captioner:feature_size=8"
    return train(tmp_path_factory.mktemp("cap"), "cap", "captions:held_out=20", kind)


def test_sample_draws_digits_and_windows_from_a_draw_checkpoint(
    draw_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = []
    for name in ("one", "two"):
        args = ["sample", str(draw_checkpoint), "--count", "3", "--out", str(tmp_path / name)]
        assert main(args) == 0
        runs.append({p.name: picture(p) for p in sorted((tmp_path / name).iterdir())})
    assert sorted(runs[0]) == ["digits.png", "windows.png"]
    for name, pixels in runs[0].items():  # the same seed draws the same digits and windows
        np.testing.assert_array_equal(pixels, runs[1][name])
    printed = capsys.readouterr().out
    assert str(tmp_path / "one" / "digits.png") in printed
    assert main(["sample", str(draw_checkpoint), "--out", str(tmp_path / "3"), "--seed", "3"]) == 0
    assert not np.array_equal(picture(tmp_path / "3" / "digits.png"), runs[0]["digits.png"])


@pytest.mark.parametrize("kind", ["vrnn:latent_size=3", "storn:latent_size=3"])
def test_sample_writes_midi_and_a_piano_roll_from_a_chorales_checkpoint(
    kind: str, tmp_path: Path
) -> None:
    import music21

    checkpoint = train(tmp_path, "run", "chorales:pieces=10", kind)
    out = tmp_path / "samples"
    args = ["sample", str(checkpoint), "--count", "2", "--length", "24", "--out", str(out)]
    assert main(args) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["piano_roll.png", "sample-1.mid", "sample-2.mid"]
    picture(out / "piano_roll.png")
    for midi in ("sample-1.mid", "sample-2.mid"):  # an untrained model sounds many notes
        score = music21.converter.parse(out / midi)
        pitches = [p.midi for n in score.flatten().notes for p in n.pitches]
        assert len(pitches) > 10
        assert min(pitches) >= 21  # within the piano roll's 88 keys
        assert max(pitches) <= 108


def test_caption_writes_the_caption_the_truth_and_the_attention_figure(
    captioner_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figure = tmp_path / "where.png"
    assert main(["caption", str(captioner_checkpoint), "--index", "7", "--out", str(figure)]) == 0
    lines = capsys.readouterr().out.splitlines()
    task = CaptionsTask(held_out=20)
    truth = caption_text(eval_batches(task, 20, chunk=20)[0].targets[7])
    assert lines[1] == f"truth:   {truth}"
    words = lines[0].removeprefix("caption:").split()
    assert lines[0].startswith("caption:")
    assert set(words) <= {*"0123456789", "left", "of", "above"}
    picture(figure)


def test_caption_reads_an_image_file_of_the_canvas_size(
    captioner_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = CaptionsTask(held_out=20)
    canvas = eval_batches(task, 20, chunk=20)[0].inputs[2, 0]
    np.save(tmp_path / "canvas.npy", canvas.numpy())
    figure = tmp_path / "fig.png"
    assert main(["caption", str(captioner_checkpoint), "--index", "2", "--out", str(figure)]) == 0
    from_index = capsys.readouterr().out.splitlines()[0]
    args = ["caption", str(captioner_checkpoint), "--image", str(tmp_path / "canvas.npy")]
    assert main([*args, "--out", str(figure)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == from_index  # the same canvas, same words
    np.save(tmp_path / "small.npy", torch.rand(28, 28).numpy())
    assert main([*args[:-1], str(tmp_path / "small.npy"), "--out", str(figure)]) == 2
    assert "small.npy is (28, 28) pixels; the captioner reads canvases of (64, 64)" in (
        capsys.readouterr().err
    )


def test_the_wrong_checkpoint_or_a_malformed_one_is_a_clear_error(
    draw_checkpoint: Path,
    captioner_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["caption", str(draw_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "holds a 'draw:glimpses=3,z_size=4,attention=true,read_n=2,write_n=3' model" in err
    assert "lstmkit caption reads captioner checkpoints" in err
    assert main(["sample", str(captioner_checkpoint), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "holds a captioner; lstmkit caption writes its captions" in err
    assert not (tmp_path / "s").exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    for command in ("sample", "caption"):
        assert main([command, str(garbage)]) == 2
        assert "garbage.pt" in capsys.readouterr().err
    assert main(["caption", str(captioner_checkpoint), "--index", "20"]) == 2
    assert "--index must be in [0, 19] (held-out canvases), got 20" in capsys.readouterr().err


def test_a_model_kind_on_a_task_it_cannot_learn_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--task", "chorales:pieces=10", "--kind", "draw", "--steps", "1"]
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "a draw model cannot learn the chorales task" in err
    assert not (tmp_path / "x").exists()
