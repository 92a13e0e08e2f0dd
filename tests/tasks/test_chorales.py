"""JSB Chorales from music21's Bach chorales: read offline, the piano roll against music21's own
notes and a hand reading of the score, a split by piece, repeats dropped, the NLL and the
memoryless baseline by hand, and a short run beats the baseline."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.tasks import ChoralesTask, make_task
from lstmkit.tasks.base import Batch
from lstmkit.tasks.chorales import (
    KEYS,
    PUBLISHED_SPLIT,
    _duplicates,
    bernoulli_nll,
    split_pieces,
    transposition,
    work,
)
from lstmkit.train import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, Trainer

PIECES = 12


@pytest.fixture(scope="module")
def task() -> ChoralesTask:
    return ChoralesTask(pieces=PIECES)


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chorales task tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _sounding(score_name: str, offset: float) -> set[int]:
    """MIDI numbers music21 itself says the sung parts hold at ``offset``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from music21 import corpus

        score = corpus.parse(f"bach/{score_name}")
    sung = [p for p in score.parts if p.partName in ("Soprano", "Alto", "Tenor", "Bass")]
    found = set()
    for part in sung:
        notes = part.flatten().notes.getElementsByOffset(  # begun by offset, not yet ended
            offset, offset, mustBeginInSpan=False, includeElementsThatEndAtStart=False
        )
        found |= {p.midi for n in notes for p in n.pitches}
    return found


def test_loads_offline_and_the_roll_is_the_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))  # an empty cache: parse the scores
    _no_network(monkeypatch)
    task = ChoralesTask(pieces=PIECES)
    assert (tmp_path / "data" / f"chorales-{PIECES}.safetensors").is_file()
    assert task.names[0] == "bwv1.6.mxl"
    roll = task.rolls[0]
    assert roll.shape == (80, KEYS)  # 80 quarter notes long
    # read by hand from the score: S F4 C5 A4 F4, A C4 C4 C4 D4, T A3 G3 A3 A3, B F3 E3 F3 D3;
    # the horn's G4 at beat 2 doubles no voice and is not sung, so it is left out
    by_hand = [{53, 57, 60, 65}, {52, 55, 60, 72}, {53, 57, 60, 69}, {50, 57, 62, 65}]
    for t, keys in enumerate(by_hand):
        assert set((torch.nonzero(roll[t]).flatten() + 21).tolist()) == keys
    for t in [0, 7, 23, 41, 79]:
        on = set((torch.nonzero(roll[t]).flatten() + 21).tolist())
        assert on == _sounding("bwv1.6", float(t)), t


def test_split_by_piece_in_the_published_proportions(task: ChoralesTask) -> None:
    parts = [set(task.splits[s].tolist()) for s in ("train", "valid", "test")]
    assert not parts[0] & parts[1]
    assert not parts[0] & parts[2]
    assert not parts[1] & parts[2]
    assert set().union(*parts) == set(range(len(task.names)))
    again = ChoralesTask(pieces=PIECES)
    for name in ("train", "valid", "test"):
        assert torch.equal(again.splits[name], task.splits[name])
    assert len(task.eval_lengths) == len(task.splits["valid"])  # evaluate="valid" by default
    for row, index in enumerate(task.splits["valid"].tolist()):
        n = int(task.eval_lengths[row])
        assert n == len(task.rolls[index]) - 1
        torch.testing.assert_close(task.eval_inputs[row, :n], task.rolls[index][:-1].float())
        torch.testing.assert_close(task.eval_targets[row, :n], task.rolls[index][1:].float())
    # on BL2012's 382 pieces the deal is exactly theirs
    assert tuple(len(v) for v in split_pieces(382).values()) == PUBLISHED_SPLIT


def test_repeats_are_found_and_dropped() -> None:
    assert work("bwv248.9-1.mxl") == work("bwv248.9-s.mxl") == "bwv248.9"
    assert work("bwv277.krn") == work("bwv277.mxl") != work("bwv27.6.mxl")
    a = torch.zeros(6, KEYS, dtype=torch.uint8)
    a[0, [30, 34, 37]] = 1
    a[3, [32, 39]] = 1
    up = torch.roll(a, 2, dims=1)  # the same chorale two semitones higher
    other = a.clone()
    other[5, 40] = 1
    fresh = a.clone()
    fresh[2, 50] = 1
    names = ["bwv1.1.mxl", "bwv2.1.mxl", "bwv1.1-b.mxl", "bwv3.1.mxl", "bwv4.1.mxl"]
    rolls = [a, up, other, other, fresh]
    assert _duplicates(names, rolls) == [False, True, True, True, False]


def test_nll_by_hand() -> None:
    logits = torch.tensor(
        [[[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], [[1.0, 1.0, 1.0], [9.0, 9.0, 9.0]]]
    )
    targets = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]])
    mask = torch.tensor([[True, True], [True, False]])  # the last step is padding

    def log_sigmoid(z: float) -> float:
        return -math.log1p(math.exp(-z))

    def nll(z: list[float], y: list[float]) -> float:
        return -sum(
            log_sigmoid(zk) if yk else log_sigmoid(-zk) for zk, yk in zip(z, y, strict=True)
        )

    steps = [
        nll([2.0, -1.0, 0.5], [1, 0, 1]),
        nll([0.0, 3.0, -2.0], [0, 1, 1]),
        nll([1.0, 1.0, 1.0], [0, 1, 0]),
    ]
    expected = sum(steps) / 3
    assert bernoulli_nll(logits, targets, mask).item() == pytest.approx(expected, rel=1e-6)


def test_the_memoryless_baseline_is_its_formula(task: ChoralesTask) -> None:
    train = np.concatenate([task.rolls[i][1:].numpy() for i in task.splits["train"].tolist()])
    p = (train.sum(0) + 0.5) / (len(train) + 1.0)
    held = np.concatenate([task.rolls[i][1:].numpy() for i in task.splits["valid"].tolist()])
    per_step = -(held * np.log(p) + (1 - held) * np.log(1 - p)).sum(1)
    assert task.baseline == pytest.approx(per_step.mean(), rel=1e-12)
    assert 0.5 < held.sum(1).mean() <= 5  # about four voices sound at a time, sometimes unison
    # a model that outputs the logits of those frequencies at every step scores the baseline
    batch = task.eval_batches(256, 1)[0]
    logits = torch.logit(task.key_frequency.float()).expand(len(batch), batch.inputs.shape[1], -1)
    assert task.metrics(logits, batch)["nll"] == pytest.approx(task.baseline, rel=1e-5)


def test_transpose_moves_each_piece_to_c(task: ChoralesTask) -> None:
    assert [transposition(t) for t in (0, 5, 7, 6, 12 + 9, 12 + 2)] == [0, -5, 5, 6, 3, -2]
    moved = ChoralesTask(pieces=PIECES, transpose=True)
    assert moved.names == task.names
    original, shifted = task.rolls[0], moved.rolls[0]  # bwv1.6 is in F major: down 5
    torch.testing.assert_close(shifted[:, :-5], original[:, 5:])
    assert moved.splits["train"].tolist() == task.splits["train"].tolist()


def test_batches_are_seeded_and_padded_with_lengths(task: ChoralesTask) -> None:
    a = task.batch(8, torch.Generator().manual_seed(1))
    b = task.batch(8, torch.Generator().manual_seed(1))
    assert a.lengths is not None
    assert b.lengths is not None
    assert torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.lengths, b.lengths)
    assert a.inputs.shape[1] == int(a.lengths.max())
    for row in range(8):
        n = int(a.lengths[row])
        assert not a.inputs[row, n:].any()
        assert not a.targets[row, n:].any()
        torch.testing.assert_close(a.inputs[row, 1:n], a.targets[row, : n - 1])  # next frame


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pieces": 2}, "pieces"),
        ({"pieces": "all"}, "pieces"),
        ({"transpose": "yes"}, "transpose"),
        ({"evaluate": "train"}, "evaluate"),
        ({"solved_at": 0.0}, "solved_at"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(LstmkitError, match=message):
        make_task("chorales", **options)


def test_a_short_run_beats_the_memoryless_baseline() -> None:
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=32),
        task=TaskConfig("chorales", {"pieces": 40}),
        optim=OptimConfig(lr=1e-2),
        run=RunConfig(steps=150, batch_size=16, eval_every=150, eval_size=256),
    )
    result = Trainer(config, progress=False).fit()
    assert result.metric == "nll"
    assert result.metrics["nll"] < result.baseline - 0.5, result  # 10.49 against 11.39 measured


def test_eval_batch_is_every_held_out_piece_at_once(task: ChoralesTask) -> None:
    (batch,) = task.eval_batches(256, 2)
    assert isinstance(batch, Batch)
    assert len(batch) == len(task.splits["valid"])
    assert torch.equal(batch.lengths, task.eval_lengths)
