"""The embedded Reber grammar (Reber 1967; Cleeremans et al. 1989; Hochreiter & Schmidhuber
1997)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.tasks.base import Batch, Task, step_mask

SYMBOLS = "BTPSXVE"

# The Reber grammar as a graph: state -> the (symbol, next state) choices, each taken with
# probability 1/2. State 0 emits the B, state 6 the E that ends the string.
REBER = {
    0: (("B", 1),),
    1: (("T", 2), ("P", 3)),
    2: (("S", 2), ("X", 4)),
    3: (("T", 3), ("V", 5)),
    4: (("X", 3), ("S", 6)),
    5: (("P", 4), ("V", 6)),
    6: (("E", -1),),
}
_CHOICE_BITS = 256  # random bits drawn per string; a string needs one per two-way choice


def embedded_reber_string(bits: list[int]) -> tuple[str, list[str]]:
    """One embedded Reber string and, for each of its symbols but the last, the set of symbols
    that may follow it (as a string). ``bits`` supply the choices, 0 for the first branch."""
    take = iter(bits * 2)  # a string longer than the bits allow is astronomically unlikely
    outer = "T" if next(take) == 0 else "P"
    symbols, follow = ["B", outer], ["TP", "B"]
    state = 0
    while state != -1:
        choices = REBER[state]
        symbol, state = choices[next(take)] if len(choices) == 2 else choices[0]
        symbols.append(symbol)
        follow.append("".join(c for c, _ in REBER[state]) if state != -1 else outer)
    symbols += [outer, "E"]
    follow.append("E")
    return "".join(symbols), follow


class ReberTask(Task):
    """Predict the next symbol of strings from the embedded Reber grammar.

    A string is ``B``, then ``T`` or ``P``, then a string of the Reber grammar (``B … E``), then
    the same ``T`` or ``P`` again, then ``E``. At every step the target is the set of symbols
    that may come next (multi-hot over B, T, P, S, X, V, E). Everything but the second-to-last
    symbol follows from the last few symbols; that one repeats the symbol at step 1, across the
    whole inner string, which is the long-term dependency.

    A string counts as correct when at every step the outputs ranked highest are exactly the
    legal next symbols (Hochreiter & Schmidhuber 1997's criterion); the main metric is the
    fraction of correct strings. A predictor that knows the grammar but forgets step 1 guesses
    the second-to-last symbol, so it gets half the strings right: that is the baseline.
    """

    name = "reber"
    citation = "Reber 1967; Cleeremans et al. 1989; Hochreiter & Schmidhuber 1997, Table 1"
    readout = "all"
    metric = "accuracy"
    higher_is_better = True
    published = (
        "LSTM learned it in 100% of trials after about 8,440 sequences; Elman nets in 0% "
        "(Hochreiter & Schmidhuber 1997, Table 1)"
    )
    vocab_size = len(SYMBOLS)
    input_size = len(SYMBOLS)
    output_size = len(SYMBOLS)

    def __init__(self, *, solved_at: float = 0.99) -> None:
        self.solved_at = solved_at

    @property
    def baseline(self) -> float:
        return 0.5

    @property
    def baseline_note(self) -> str:
        return "knowing the grammar but guessing the repeated T/P"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        bits = torch.randint(0, 2, (batch_size, _CHOICE_BITS), generator=generator).tolist()
        strings = [embedded_reber_string(row) for row in bits]
        longest = max(len(s) for s, _ in strings) - 1
        inputs = torch.zeros(batch_size, longest, dtype=torch.int64)
        targets = torch.zeros(batch_size, longest, len(SYMBOLS))
        lengths = torch.tensor([len(s) - 1 for s, _ in strings])
        for b, (string, follow) in enumerate(strings):
            inputs[b, : len(string) - 1] = torch.tensor([SYMBOLS.index(c) for c in string[:-1]])
            for t, allowed in enumerate(follow):
                targets[b, t, [SYMBOLS.index(c) for c in allowed]] = 1.0
        return Batch(inputs, targets, lengths)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        mask = step_mask(batch.lengths, outputs.shape[0], outputs.shape[1], outputs.device)
        return F.binary_cross_entropy_with_logits(outputs[mask], batch.targets[mask])

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        mask = step_mask(batch.lengths, outputs.shape[0], outputs.shape[1], outputs.device)
        allowed = batch.targets.bool()
        count = allowed.sum(dim=-1, keepdim=True)  # (B, T, 1) legal next symbols
        rank = outputs.argsort(dim=-1, descending=True).argsort(dim=-1)  # 0 = highest
        step_ok = ((rank < count) == allowed).all(dim=-1) | ~mask
        return {
            "accuracy": step_ok.all(dim=1).float().mean().item(),
            "step_accuracy": step_ok[mask].float().mean().item(),
        }

    def solved(self, metrics: dict[str, float]) -> bool:
        return metrics["accuracy"] >= self.solved_at

    def options(self) -> dict[str, Any]:
        return {"solved_at": self.solved_at}
