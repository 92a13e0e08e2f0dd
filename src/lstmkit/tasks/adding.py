"""The adding problem, in the two published forms."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_choice, check_positive_int
from lstmkit._errors import LstmkitValueError
from lstmkit.tasks.base import Batch, Task, uniform_int

HOCHREITER_TOLERANCE = 0.04
"""Hochreiter & Schmidhuber 1997 count a sequence as correct when |error| < 0.04."""


class AddingTask(Task):
    """Add the two marked numbers of a long sequence; every step is ``(value, marker)``.

    ``form="hochreiter"`` (Hochreiter & Schmidhuber 1997, experiment 4): values uniform in
    [-1, 1]; X1 is marked at a random step among the first 10, X2 at a different random step
    among the first T/2 - 1 (marker 1.0); the first and last steps carry marker -1.0 unless X1
    is the first step; every other marker is 0. Target 0.5 + (X1 + X2)/4. A sequence is
    correct when |error| < 0.04; the main metric is the fraction correct. (The paper also draws
    each length from [T, T + T/10]; here every sequence has length T.)

    ``form="le"`` (Le, Jaitly & Hinton 2015): values uniform in [0, 1], one marker in each half
    of the sequence, target X1 + X2; the main metric is the mean squared error, and always
    predicting 1 scores 1/6 ≈ 0.167.

    Options: ``length`` T, ``form``, ``solved_at`` (fraction correct for "hochreiter", MSE for
    "le").
    """

    name = "adding"
    citation = "Hochreiter & Schmidhuber 1997; Le et al. 2015"
    readout = "last"
    vocab_size = None
    input_size = 2
    output_size = 1

    def __init__(
        self,
        *,
        length: int = 100,
        form: Literal["hochreiter", "le"] = "le",
        solved_at: float | None = None,
    ) -> None:
        check_positive_int("length", length)
        check_choice("form", form, ["hochreiter", "le"])
        minimum = 22 if form == "hochreiter" else 2
        if length < minimum:
            raise LstmkitValueError(
                f"length must be at least {minimum} for form={form!r}, got {length}"
            )
        self.length, self.form = length, form
        hochreiter = form == "hochreiter"
        self.solved_at = solved_at if solved_at is not None else (0.95 if hochreiter else 0.01)
        self.metric = "accuracy" if hochreiter else "mse"
        self.higher_is_better = hochreiter
        self.published = (
            "LSTM needed 74,000 training sequences at T=100 (Hochreiter & Schmidhuber 1997, "
            "Table 7)"
            if hochreiter
            else "a tanh RNN stays at MSE ~0.167; LSTM goes below it (Le et al. 2015)"
        )

    @property
    def baseline(self) -> float:
        if self.form == "le":
            return 1.0 / 6.0  # Var(X1 + X2) for X uniform in [0, 1]: predicting the mean, 1
        # Predicting 0.5 is right when |X1 + X2| / 4 < 0.04; X1 + X2 is triangular on [-2, 2].
        return 1.0 - (1.0 - 4 * HOCHREITER_TOLERANCE / 2.0) ** 2

    @property
    def baseline_note(self) -> str:
        if self.form == "le":
            return "always predicting 1"
        return "always predicting 0.5"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        B, T = batch_size, self.length
        rows = torch.arange(B)
        markers = torch.zeros(B, T)
        if self.form == "le":
            values = torch.rand(B, T, generator=generator)
            first = uniform_int(0, T // 2 - 1, (B,), generator)
            second = uniform_int(T // 2, T - 1, (B,), generator)
        else:
            values = torch.rand(B, T, generator=generator) * 2.0 - 1.0
            first = uniform_int(0, 9, (B,), generator)
            # the second mark: uniform over the first T/2 - 1 steps other than the first mark
            second = uniform_int(0, T // 2 - 3, (B,), generator)
            second = second + (second >= first).long()
            markers[:, 0] = -1.0
            markers[:, T - 1] = -1.0
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x1, x2 = values[rows, first], values[rows, second]
        target = x1 + x2 if self.form == "le" else 0.5 + (x1 + x2) / 4.0
        return Batch(torch.stack([values, markers], dim=-1), target)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.mse_loss(outputs.squeeze(-1), batch.targets)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        error = outputs.squeeze(-1) - batch.targets
        result = {"mse": error.pow(2).mean().item()}
        if self.form == "hochreiter":
            result["accuracy"] = (error.abs() < HOCHREITER_TOLERANCE).float().mean().item()
        return result

    def solved(self, metrics: dict[str, float]) -> bool:
        if self.form == "hochreiter":
            return metrics["accuracy"] >= self.solved_at
        return metrics["mse"] <= self.solved_at

    def options(self) -> dict[str, Any]:
        return {"length": self.length, "form": self.form, "solved_at": self.solved_at}
