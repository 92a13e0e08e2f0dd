"""The temporal order problem of Hochreiter & Schmidhuber 1997, experiments 6a and 6b."""

from __future__ import annotations

from typing import Any

import torch

from lstmkit._checks import check_choice
from lstmkit.tasks.base import Batch, LastStepClassification, uniform_int

SYMBOLS = "abcdXYBE"
"""Tokens 0 … 7: distractors a, b, c, d; the relevant X and Y; the end B and the start E."""

# Positions of the relevant symbols, as (first, last) ranges, in 0-based steps where step 0 is E.
POSITIONS = {"6a": ((10, 20), (50, 60)), "6b": ((10, 20), (33, 43), (66, 76))}


class TemporalOrderTask(LastStepClassification):
    """Classify a long sequence by the order of two (6a) or three (6b) widely separated symbols.

    A sequence of length 100 to 110 starts with E and ends with B; every other step is one of
    a, b, c, d, except that X or Y stands at a step t1 in [10, 20] and t2 in [50, 60] (6a), or
    t1 in [10, 20], t2 in [33, 43], t3 in [66, 76] (6b). The class is the sequence of relevant
    symbols read as a binary number with X = 0, Y = 1: XX, XY, YX, YY → 0 … 3 (6a), or 8 classes
    for 6b. Chance is 1/4 or 1/8. Step 0 is the E; the paper does not fix that convention.
    """

    name = "temporal_order"
    citation = "Hochreiter & Schmidhuber 1997, experiments 6a and 6b"
    vocab_size = len(SYMBOLS)
    input_size = len(SYMBOLS)

    def __init__(self, *, variant: str = "6a", solved_at: float = 0.95) -> None:
        check_choice("variant", variant, list(POSITIONS))
        self.variant, self.solved_at = variant, solved_at
        self.output_size = 2 ** len(POSITIONS[variant])
        if variant == "6a":
            self.published = (
                "LSTM solved it after 31,390 training sequences (Hochreiter & Schmidhuber 1997)"
            )

    @property
    def baseline(self) -> float:
        return 1.0 / self.output_size

    @property
    def baseline_note(self) -> str:
        return f"chance, 1/{self.output_size}"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        B = batch_size
        lengths = uniform_int(100, 110, (B,), generator)
        longest = 110
        tokens = torch.randint(0, 4, (B, longest), generator=generator)  # a, b, c, d
        tokens[:, 0] = SYMBOLS.index("E")
        rows = torch.arange(B)
        label = torch.zeros(B, dtype=torch.int64)
        for low, high in POSITIONS[self.variant]:
            where = uniform_int(low, high, (B,), generator)
            is_y = torch.randint(0, 2, (B,), generator=generator)
            tokens[rows, where] = SYMBOLS.index("X") + is_y
            label = label * 2 + is_y
        tokens[rows, lengths - 1] = SYMBOLS.index("B")
        tokens = tokens.masked_fill(torch.arange(longest) >= lengths[:, None], 0)  # padding
        return Batch(tokens, label, lengths)

    def options(self) -> dict[str, Any]:
        return {"variant": self.variant, "solved_at": self.solved_at}
