"""Each task's generator is deterministic given its seed and matches its published definition."""

from __future__ import annotations

import math
import re

import pytest
import torch

import lstmkit
from lstmkit.tasks import (
    TASKS,
    AddingTask,
    CharLMTask,
    CopyTask,
    GapTask,
    ReberTask,
    TemporalOrderTask,
    make_task,
)
from lstmkit.tasks.reber import SYMBOLS as REBER_SYMBOLS
from lstmkit.tasks.temporal_order import SYMBOLS as ORDER_SYMBOLS


def draw(task, n: int = 64, seed: int = 0):
    return task.batch(n, torch.Generator().manual_seed(seed))


SMALL = {
    "gap": {"gap": 7, "max_gap": 12},
    "adding": {"length": 30},
    "copy": {"blanks": 12},
    "temporal_order": {},
    "reber": {},
    "charlm": {"length": 20},
    "smnist": {"digits": 100},
    "vowels": {},
    "chorales": {"pieces": 12},
    "series": {"name": "airpassengers", "arima": False},
    "digits": {"digits": 100},
    "captions": {"digits": 100, "held_out": 50},
}


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_batch_other_seed_other_batch(name: str) -> None:
    task = make_task(name, **SMALL[name])
    a, b, c = draw(task, seed=3), draw(task, seed=3), draw(task, seed=4)
    assert torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.targets, b.targets)
    assert (a.lengths is None) == (b.lengths is None)
    if a.lengths is not None:
        assert torch.equal(a.lengths, b.lengths)
    assert not torch.equal(a.inputs, c.inputs)


def test_gap_sequences() -> None:
    task = GapTask(gap=7, max_gap=12, classes=5, distractors=9)
    batch = draw(task, 200)
    assert task.vocab_size == 15
    for tokens, target, length in zip(batch.inputs, batch.targets, batch.lengths, strict=True):
        n = int(length)
        assert 9 <= n <= 14  # cue + gap of 7..12 + query
        assert tokens[0] == target  # country k -> language k
        assert 0 <= int(target) < 5
        middle = tokens[1 : n - 1]
        assert ((middle >= 5) & (middle < 14)).all()  # distractors only
        assert tokens[n - 1] == 14  # the query
        assert (tokens[n:] == 0).all()  # padding
    assert set(batch.lengths.tolist()) == set(range(9, 15))  # every gap length occurs
    fixed = draw(GapTask(gap=4))
    assert fixed.lengths is None
    assert fixed.inputs.shape[1] == 6


def test_adding_le_form() -> None:
    task = AddingTask(length=30, form="le")
    batch = draw(task)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert (markers[:, :15].sum(1) == 1).all()
    assert (markers[:, 15:].sum(1) == 1).all()
    torch.testing.assert_close(batch.targets, (values * markers).sum(1))


def test_adding_hochreiter_form() -> None:
    task = AddingTask(length=40, form="hochreiter")
    batch = draw(task, 500)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert ((values >= -1) & (values <= 1)).all()
    ones = markers == 1
    assert (ones.sum(1) == 2).all()
    first = ones.float().argmax(1)  # the earlier mark is among the first ten steps
    assert (first <= 9).all()
    last = 39 - ones.flip(1).float().argmax(1)
    assert (last <= 40 // 2 - 2).all()  # the later one among the first T/2 - 1
    # the first and last steps carry -1 unless a mark is there
    assert ((markers[:, 0] == -1) | ones[:, 0]).all()
    assert (markers[:, -1] == -1).all()
    assert ((markers == 0) | (markers == 1) | (markers == -1)).all()
    torch.testing.assert_close(batch.targets, 0.5 + (values * ones).sum(1) / 4)


def test_adding_metrics_by_hand() -> None:
    task = AddingTask(length=40, form="hochreiter")
    batch = draw(task, 4)
    outputs = (batch.targets + torch.tensor([0.03, -0.039, 0.041, -0.2]))[:, None]
    m = task.metrics(outputs, batch)
    assert m["accuracy"] == 0.5
    assert m["mse"] == pytest.approx((0.03**2 + 0.039**2 + 0.041**2 + 0.2**2) / 4, rel=1e-5)
    assert task.baseline == pytest.approx(1 - 0.92**2)
    assert AddingTask(form="le").baseline == pytest.approx(0.1667, abs=1e-4)


def test_adding_baselines_are_what_a_constant_scores() -> None:
    le, hochreiter = AddingTask(length=50, form="le"), AddingTask(length=50, form="hochreiter")
    big = draw(le, 100_000)
    assert le.metrics(torch.ones(100_000, 1), big)["mse"] == pytest.approx(le.baseline, rel=0.02)
    big = draw(hochreiter, 100_000)
    constant = torch.full((100_000, 1), 0.5)
    assert hochreiter.metrics(constant, big)["accuracy"] == pytest.approx(
        hochreiter.baseline, abs=0.005
    )


def test_copy_layout_and_published_baselines() -> None:
    task = CopyTask(blanks=12)
    batch = draw(task)
    x, y = batch.inputs, batch.targets
    assert x.shape == y.shape == (64, 32)
    data = x[:, :10]
    assert ((data >= 1) & (data <= 8)).all()
    assert (x[:, 10:21] == 0).all()  # T - 1 = 11 blanks
    assert (x[:, 21] == 9).all()  # the delimiter
    assert (x[:, 22:] == 0).all()
    assert (y[:, :22] == 0).all()
    assert torch.equal(y[:, 22:], data)
    # Arjovsky et al. 2016's memoryless baselines
    for blanks, published in [(100, 0.173), (200, 0.095), (300, 0.065), (500, 0.040)]:
        assert CopyTask(blanks=blanks).baseline == pytest.approx(published, abs=5e-4)


def test_copy_memoryless_strategy_scores_the_baseline() -> None:
    task = CopyTask(blanks=20)
    batch = draw(task, 8)
    outputs = torch.full((8, 40, 10), -1e9)
    outputs[:, :30, 0] = 0.0  # certain blanks where blanks are due
    outputs[:, 30:, 1:9] = 0.0  # then uniform over the 8 categories
    assert task.metrics(outputs, batch)["xent"] == pytest.approx(task.baseline, rel=1e-5)


@pytest.mark.parametrize(
    ("variant", "positions"), [("6a", [(10, 20), (50, 60)]), ("6b", [(10, 20), (33, 43), (66, 76)])]
)
def test_temporal_order(variant: str, positions: list[tuple[int, int]]) -> None:
    task = TemporalOrderTask(variant=variant)
    batch = draw(task, 300)
    X, Y = ORDER_SYMBOLS.index("X"), ORDER_SYMBOLS.index("Y")
    for tokens, label, length in zip(batch.inputs, batch.targets, batch.lengths, strict=True):
        n = int(length)
        assert 100 <= n <= 110
        assert tokens[0] == ORDER_SYMBOLS.index("E")
        assert tokens[n - 1] == ORDER_SYMBOLS.index("B")
        relevant = [t for t in range(n) if int(tokens[t]) in (X, Y)]
        assert len(relevant) == len(positions)
        for t, (low, high) in zip(relevant, positions, strict=True):
            assert low <= t <= high
        others = [int(tokens[t]) for t in range(1, n - 1) if t not in relevant]
        assert all(0 <= s <= 3 for s in others)  # a, b, c, d
        # XX -> 0, XY -> 1, YX -> 2, YY -> 3 (and 8 classes for three symbols)
        expected = 0
        for t in relevant:
            expected = 2 * expected + (1 if int(tokens[t]) == Y else 0)
        assert int(label) == expected
    assert set(batch.targets.tolist()) == set(range(2 ** len(positions)))


# The embedded Reber grammar as a regular expression, written from the grammar's diagram: an
# independent check of the generator.
REBER = r"B(?:TS*X(?:XT*VP)*(?:S|XT*VV)|PT*V(?:PXT*V)*(?:V|PS))E"
EMBEDDED = re.compile(rf"B(?:T{REBER}T|P{REBER}P)E")


def test_reber_strings_belong_to_the_grammar() -> None:
    batch = draw(ReberTask(), 300)
    seen = set()
    for tokens, targets, length in zip(batch.inputs, batch.targets, batch.lengths, strict=True):
        n = int(length)
        prefix = "".join(REBER_SYMBOLS[int(t)] for t in tokens[:n])
        string = prefix + "E"  # the input stops before the final E, which is the last target
        assert EMBEDDED.fullmatch(string), string
        seen.add(string)
        for t in range(n):
            allowed = {REBER_SYMBOLS[k] for k in torch.nonzero(targets[t]).flatten().tolist()}
            assert string[t + 1] in allowed  # what comes next is always allowed
            assert len(allowed) in (1, 2)
        second_to_last = {
            REBER_SYMBOLS[k] for k in torch.nonzero(targets[n - 2]).flatten().tolist()
        }
        assert second_to_last == {string[1]}  # the long-term dependency
        assert (targets[n:] == 0).all()
    assert len(seen) > 50


def test_reber_metric_by_hand() -> None:
    task = ReberTask()
    batch = draw(task, 16)
    perfect = batch.targets * 10.0 - 5.0  # legal symbols high, the rest low
    assert task.metrics(perfect, batch)["accuracy"] == 1.0
    wrong = perfect.clone()
    n = int(batch.lengths[0])
    wrong[0, n - 2] = -wrong[0, n - 2]  # sequence 0 gets its repeated T/P wrong
    m = task.metrics(wrong, batch)
    assert m["accuracy"] == pytest.approx(15 / 16)


def test_charlm_windows_and_baseline(tmp_path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("ab" * 5000, encoding="utf-8")
    task = CharLMTask(path=str(path), length=10)
    assert task.vocabulary == "ab"
    assert task.baseline == pytest.approx(1.0)  # two equally frequent characters: 1 bit
    batch = draw(task, 8)
    text = path.read_text()
    for inputs, targets in zip(batch.inputs, batch.targets, strict=True):
        window = task.decode(inputs.tolist())
        assert window in text
        assert torch.equal(inputs[1:], targets[:-1])
    held = task.eval_batches(4, 2)
    assert sum(len(b) for b in held) == 8
    uniform = torch.zeros(4, 10, task.output_size)
    expected = math.log2(task.output_size)  # a uniform guess: log2(V) bits
    assert task.metrics(uniform, held[0])["bpc"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 40, r"is not text: it holds NUL bytes; pass binary=true"),
        (b"ab\xff\xfe" * 3000, r"is not UTF-8 text: 6000 of its first 12000 bytes do not decode"),
    ],
)
def test_charlm_refuses_a_file_that_is_not_text(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with pytest.raises(lstmkit.LstmkitValueError, match=message):
        CharLMTask(path=str(path), length=10)
    task = CharLMTask(path=str(path), length=10, binary=True)  # asked for: read as it is
    assert "\ufffd" in task.vocabulary


def test_charlm_reads_text_that_holds_replacement_characters(tmp_path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("ab\ufffd" * 2000 + "é" * 100, encoding="utf-8")  # U+FFFD written, valid
    assert set(CharLMTask(path=str(path), length=10).vocabulary) == {"a", "b", "\ufffd", "é"}


def test_charlm_default_corpus_needs_no_download() -> None:
    task = CharLMTask(max_chars=50_000)
    assert "standard library" in task.source
    assert len(task.train_text) + len(task.eval_text) == 50_000
    assert 3.0 < task.baseline < 6.0


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        ("gap", {"gap": 0}, ValueError, "gap must be positive"),
        ("gap", {"gap": 5, "max_gap": 3}, ValueError, "max_gap must be >= gap"),
        ("gap", {"classes": 1}, ValueError, "classes must be at least 2"),
        ("adding", {"form": "sum"}, ValueError, "unknown form 'sum'"),
        ("adding", {"length": 10, "form": "hochreiter"}, ValueError, "at least 22"),
        ("temporal_order", {"variant": "6c"}, ValueError, "unknown variant '6c'"),
        ("charlm", {"path": "/no/such/file.txt"}, FileNotFoundError, "no text file"),
        ("gap", {"length": 5}, TypeError, "its options are gap, max_gap"),
        ("nope", {}, ValueError, "unknown task 'nope'; expected one of 'gap'"),
    ],
)
def test_bad_task_options(name: str, options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        make_task(name, **options)
