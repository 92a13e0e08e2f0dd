"""The copy-memory task of Arjovsky, Shah & Bengio 2016."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_positive_int
from lstmkit.tasks.base import Batch, Task

BLANK, DELIMITER = 0, 9
CATEGORIES = 8  # data symbols 1 … 8
SYMBOLS = 10  # data symbols to remember


class CopyTask(Task):
    """Remember 10 symbols across T blanks, then write them out.

    Input, length T + 20: 10 symbols drawn from 8 categories (tokens 1 … 8), T - 1 blanks (0),
    the delimiter (9), 10 blanks. Target: T + 10 blanks, then the 10 symbols. The loss is the
    cross-entropy over all T + 20 steps. Writing blanks and then guessing uniformly among the
    8 categories scores 10·ln 8 / (T + 20) — the memoryless baseline (0.173 nats at T = 100).
    Solved when the held-out symbol accuracy on the 10 recalled steps reaches ``solved_at``.
    """

    name = "copy"
    citation = "Arjovsky, Shah & Bengio 2016"
    readout = "all"
    metric = "xent"
    higher_is_better = False
    vocab_size = 10
    input_size = 10
    output_size = 10

    def __init__(self, *, blanks: int = 100, solved_at: float = 0.99) -> None:
        check_positive_int("blanks", blanks)
        self.blanks, self.solved_at = blanks, solved_at

    @property
    def baseline(self) -> float:
        return SYMBOLS * math.log(CATEGORIES) / (self.blanks + 20)

    @property
    def baseline_note(self) -> str:
        return "blanks, then a uniform guess among 8 categories (nats per step)"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        T = self.blanks
        data = torch.randint(1, CATEGORIES + 1, (batch_size, SYMBOLS), generator=generator)
        inputs = torch.zeros(batch_size, T + 20, dtype=torch.int64)
        inputs[:, :SYMBOLS] = data
        inputs[:, SYMBOLS + T - 1] = DELIMITER
        targets = torch.zeros(batch_size, T + 20, dtype=torch.int64)
        targets[:, -SYMBOLS:] = data
        return Batch(inputs, targets)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten())

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        recalled = outputs[:, -SYMBOLS:].argmax(dim=-1) == batch.targets[:, -SYMBOLS:]
        return {
            "xent": self.loss(outputs, batch).item(),
            "accuracy": recalled.float().mean().item(),
        }

    def solved(self, metrics: dict[str, float]) -> bool:
        return metrics["accuracy"] >= self.solved_at

    def options(self) -> dict[str, Any]:
        return {"blanks": self.blanks, "solved_at": self.solved_at}
