"""The post's own example, as a task: "I grew up in France… I speak fluent *French*"."""

from __future__ import annotations

from typing import Any

import torch

from lstmkit._checks import check_positive_int
from lstmkit._errors import LstmkitValueError
from lstmkit.tasks.base import Batch, LastStepClassification, uniform_int


class GapTask(LastStepClassification):
    """A cue, a gap of distractors, a query: the answer depends only on the cue.

    Each sequence is ``[cue, d_1, …, d_gap, query]``. The cue is one of ``classes`` "countries"
    (tokens ``0 … classes-1``); the distractors are drawn uniformly from ``distractors`` other
    tokens; the query is one more token. The target, read at the query, is the cue's "language":
    class ``k`` for cue ``k``. Nothing between cue and query carries information, so a model
    must hold the cue for ``gap`` steps — the long-term dependency of "Understanding LSTM
    Networks" (colah, 2015), after the latching experiments of Hochreiter & Schmidhuber 1997 and
    Bengio et al. 1994.

    Options: ``gap`` (fixed), or ``gap`` to ``max_gap`` (drawn per sequence, so lengths vary);
    ``classes`` K (chance is 1/K); ``distractors``, the distractor vocabulary; ``solved_at``,
    the held-out accuracy that counts as solved.

    Tokens: ``0 … K-1`` cues, ``K … K+V-1`` distractors, ``K+V`` the query (vocabulary K+V+1).
    """

    name = "gap"
    citation = "colah 2015; Hochreiter & Schmidhuber 1997; Bengio et al. 1994"

    def __init__(
        self,
        *,
        gap: int = 50,
        max_gap: int | None = None,
        classes: int = 8,
        distractors: int = 16,
        solved_at: float = 0.95,
    ) -> None:
        check_positive_int("gap", gap)
        check_positive_int("classes", classes)
        check_positive_int("distractors", distractors)
        if classes < 2:
            raise LstmkitValueError(f"classes must be at least 2, got {classes}")
        if max_gap is not None:
            check_positive_int("max_gap", max_gap)
            if max_gap < gap:
                raise LstmkitValueError(f"max_gap must be >= gap, got gap={gap}, max_gap={max_gap}")
        if not 0.0 < solved_at <= 1.0:
            raise LstmkitValueError(f"solved_at must be in (0, 1], got {solved_at}")
        self.gap, self.max_gap = gap, max_gap
        self.classes, self.distractors, self.solved_at = classes, distractors, solved_at
        self.vocab_size = classes + distractors + 1
        self.input_size = self.vocab_size
        self.output_size = classes
        self.query = classes + distractors

    @property
    def baseline(self) -> float:
        return 1.0 / self.classes

    @property
    def baseline_note(self) -> str:
        return f"chance, 1/{self.classes}"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        longest = self.max_gap or self.gap
        cue = torch.randint(0, self.classes, (batch_size,), generator=generator)
        noise = torch.randint(
            self.classes,
            self.classes + self.distractors,
            (batch_size, longest),
            generator=generator,
        )
        gaps = uniform_int(self.gap, longest, (batch_size,), generator)
        tokens = torch.cat([cue[:, None], noise, torch.zeros(batch_size, 1, dtype=torch.int64)], 1)
        tokens[torch.arange(batch_size), gaps + 1] = self.query  # the query ends each sequence
        lengths = gaps + 2
        if self.max_gap is None:
            return Batch(tokens, cue)
        positions = torch.arange(longest + 2)
        tokens = tokens.masked_fill(positions >= lengths[:, None], 0)  # padding
        return Batch(tokens, cue, lengths)

    def options(self) -> dict[str, Any]:
        return {
            "gap": self.gap,
            "max_gap": self.max_gap,
            "classes": self.classes,
            "distractors": self.distractors,
            "solved_at": self.solved_at,
        }
