"""Japanese Vowels from sktime: read offline in the dataset's own split, lengths as sktime has
them, standardised with training statistics only (by hand), a padded batch with lengths equal to
each utterance run alone, accuracy by hand, and a short run beats chance."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.layers.registry import build_layer
from lstmkit.modules.sequence import SequenceModel
from lstmkit.tasks import JapaneseVowelsTask, make_task
from lstmkit.tasks.base import Batch
from lstmkit.train import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, Trainer

Utterances = list[np.ndarray]  # each (T_i, 12)


def _sktime(split: str) -> tuple[Utterances, list[int]]:
    from sktime.datasets import load_japanese_vowels

    frame, labels = load_japanese_vowels(split=split, return_X_y=True)
    utterances = [
        np.stack([frame.iloc[i, c].to_numpy() for c in range(12)], axis=1)
        for i in range(len(frame))
    ]
    return utterances, [int(label) - 1 for label in labels]


@pytest.fixture(scope="module")
def raw() -> dict[str, tuple[Utterances, list[int]]]:
    return {"train": _sktime("train"), "test": _sktime("test")}


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the vowels task tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_loads_offline_in_the_datasets_own_split_with_sktimes_lengths(
    raw: dict[str, tuple[Utterances, list[int]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))  # an empty cache: read the package
    _no_network(monkeypatch)
    task = JapaneseVowelsTask()
    train, train_labels = raw["train"]
    test, test_labels = raw["test"]
    assert task.train_lengths.tolist() == [len(u) for u in train]
    assert task.train_targets.tolist() == train_labels
    assert len(test) == len(task.eval_targets) == 370
    order = task.held_out_indices.tolist()
    assert task.eval_lengths.tolist() == [len(test[i]) for i in order]
    assert task.eval_targets.tolist() == [test_labels[i] for i in order]
    assert sorted(order) == list(range(370))  # every held-out utterance, once
    assert min(task.train_lengths.min(), task.eval_lengths.min()) == 7
    assert max(task.train_lengths.max(), task.eval_lengths.max()) == 29
    # the UCI description: 30 training utterances per speaker; 31 35 88 44 29 24 40 50 29 held out
    assert torch.bincount(task.train_targets).tolist() == [30] * 9
    assert torch.bincount(task.eval_targets).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    share = torch.bincount(task.eval_targets).double() / 370
    for m in [37, 185]:  # speakers interleaved: any prefix holds each in about its share
        prefix = torch.bincount(task.eval_targets[:m], minlength=9).double()
        assert (prefix - m * share).abs().max() <= 1.0
    assert (tmp_path / "data" / "vowels.safetensors").is_file()


def test_standardised_with_training_statistics_only(
    raw: dict[str, tuple[Utterances, list[int]]],
) -> None:
    train, _ = raw["train"]
    test, _ = raw["test"]
    frames = np.concatenate(train)  # every frame of every training utterance
    mean = frames.sum(0) / len(frames)
    std = np.sqrt(((frames - mean) ** 2).sum(0) / len(frames))
    task = JapaneseVowelsTask()
    np.testing.assert_allclose(task.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(task.std.numpy(), std, rtol=1e-12)
    test_mean = np.concatenate(test).mean(0)
    assert np.abs(test_mean - mean).max() > 0.01  # so using the held-out statistics would show
    for k in [0, 5, 369]:
        i = int(task.held_out_indices[k])
        n = len(test[i])
        expected = torch.tensor((test[i] - mean) / std, dtype=torch.float32)
        torch.testing.assert_close(task.eval_inputs[k, :n], expected)
        assert (task.eval_inputs[k, n:] == 0).all()  # padding after the end
    for k in [0, 100]:
        n = len(train[k])
        expected = torch.tensor((train[k] - mean) / std, dtype=torch.float32)
        torch.testing.assert_close(task.train_inputs[k, :n], expected)
    plain = JapaneseVowelsTask(standardise=False)
    torch.testing.assert_close(
        plain.train_inputs[0, : len(train[0])], torch.tensor(train[0]).float()
    )


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_padded_batch_with_lengths_is_each_utterance_alone(cell: str, engine: str) -> None:
    task = JapaneseVowelsTask()
    batch = task.batch(12, torch.Generator().manual_seed(5))
    assert batch.lengths is not None
    assert len(set(batch.lengths.tolist())) > 3
    assert batch.inputs.shape[1] == int(batch.lengths.max())
    layer = build_layer(cell, 12, 16, batch_first=True, engine=engine)
    model = SequenceModel(layer, vocab_size=None, output_size=9, readout="last").double()
    x = batch.inputs.double()
    together = model(x, batch.lengths)
    for i, n in enumerate(batch.lengths.tolist()):
        alone = model(x[i : i + 1, :n])  # no padding: its last real frame is the last frame
        torch.testing.assert_close(together[i : i + 1], alone, rtol=0, atol=1e-12)
    ignoring = model(x)  # reading the padding too gives other answers
    shorter = batch.lengths < batch.inputs.shape[1]
    assert not torch.allclose(ignoring[shorter], together[shorter])


def test_batches_and_eval_batches() -> None:
    task = JapaneseVowelsTask()
    a = task.batch(32, torch.Generator().manual_seed(1))
    b = task.batch(32, torch.Generator().manual_seed(1))
    assert torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.lengths, b.lengths)
    assert not torch.equal(a.targets, task.batch(32, torch.Generator().manual_seed(2)).targets)
    whole = task.eval_batches(256, 2)
    assert [len(x) for x in whole] == [256, 114]
    assert torch.equal(torch.cat([x.targets for x in whole]), task.eval_targets)
    assert torch.equal(torch.cat([x.lengths for x in whole]), task.eval_lengths)
    assert all(x.inputs.shape[1] == int(x.lengths.max()) for x in whole)


def test_accuracy_by_hand() -> None:
    task = JapaneseVowelsTask()
    targets = torch.tensor([8, 0, 4, 4, 2])
    outputs = torch.zeros(5, 9)
    for row, guess in enumerate([8, 1, 4, 3, 2]):  # right, wrong, right, wrong, right
        outputs[row, guess] = 1.0
    batch = Batch(torch.zeros(5, 7, 12), targets, torch.full((5,), 7))
    assert task.metrics(outputs, batch)["accuracy"] == pytest.approx(3 / 5)
    assert task.baseline == pytest.approx(1 / 9)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"standardise": "yes"}, "standardise"), ({"solved_at": 0.0}, "solved_at")],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(LstmkitError, match=message):
        make_task("vowels", **options)


def test_a_short_run_beats_chance() -> None:
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=32),
        task=TaskConfig("vowels", {}),
        optim=OptimConfig(lr=1e-2),
        run=RunConfig(steps=100, batch_size=32, eval_every=100, eval_size=370),
    )
    result = Trainer(config, progress=False).fit()
    assert result.baseline == pytest.approx(1 / 9)
    assert result.metrics["accuracy"] > 0.8, result
