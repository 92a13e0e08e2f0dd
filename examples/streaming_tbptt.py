"""Truncated backpropagation through time on a stream of episodes, with ``resets=``.

Sixteen streams run side by side, each an endless run of episodes of 10-60 steps. An episode
shows one of four cues at its first step, then noise; at every step the target is the cue of the
episode under way. An LSTM reads the streams in chunks of 16 steps: its state is carried from
one chunk to the next, detached (gradients reach back at most one chunk), and ``resets=`` marks
the steps where an episode starts, so the state starts from zeros there, inside a chunk too.
Prints the held-out accuracy beside chance (0.25), and checks with ``return_cell_states=True``
that the cell state at each episode's first step is the one a fresh start gives. A few seconds
on a 2-core CPU:

    python examples/streaming_tbptt.py
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

import lstmkit

CUES, STREAMS, CHUNK, HIDDEN = 4, 16, 16, 32


class Episodes:
    """``STREAMS`` endless streams of episodes, a chunk at a time, drawn from ``generator``."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator
        self.left = torch.zeros(STREAMS, dtype=torch.int64)  # steps left in each episode
        self.cue = torch.zeros(STREAMS, dtype=torch.int64)

    def chunk(self) -> tuple[Tensor, Tensor, Tensor]:
        """Inputs ``(CHUNK, STREAMS, CUES + 1)``; targets and episode starts, each
        ``(CHUNK, STREAMS)``."""
        x = torch.zeros(CHUNK, STREAMS, CUES + 1)
        x[..., CUES] = torch.randn(CHUNK, STREAMS, generator=self.generator)  # noise
        targets = torch.empty(CHUNK, STREAMS, dtype=torch.int64)
        starts = torch.zeros(CHUNK, STREAMS, dtype=torch.bool)
        for t in range(CHUNK):
            new = self.left == 0
            count = int(new.sum())
            self.left[new] = torch.randint(10, 61, (count,), generator=self.generator)
            self.cue[new] = torch.randint(CUES, (count,), generator=self.generator)
            x[t, new, self.cue[new]] = 1.0  # the cue, at the episode's first step only
            starts[t], targets[t] = new, self.cue
            self.left -= 1
        return x, targets, starts


def main(steps: int = 200, seed: int = 0) -> dict[str, float]:
    """Trains on ``steps`` chunks; returns the held-out accuracy and the largest difference
    between a cell state at an episode's first step and a fresh start's."""
    torch.manual_seed(seed)
    lstm, head = lstmkit.LSTM(CUES + 1, HIDDEN), nn.Linear(HIDDEN, CUES)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-2)
    stream, state = Episodes(torch.Generator().manual_seed(seed)), None
    for _ in range(steps):
        x, targets, starts = stream.chunk()
        out, state = lstm(x, state, resets=starts)
        loss = nn.functional.cross_entropy(head(out).flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state = tuple(s.detach() for s in state)  # carried on, but no gradient through it

    held_out, state = Episodes(torch.Generator().manual_seed(seed + 1)), None
    correct = total = 0
    gap = 0.0
    with torch.no_grad():
        for _ in range(50):
            x, targets, starts = held_out.chunk()
            out, state, cells = lstm(x, state, resets=starts, return_cell_states=True)
            correct += int((head(out).argmax(-1) == targets).sum())
            total += targets.numel()
            for t, b in starts.nonzero().tolist():  # each episode's first step, from zeros
                _, (_, c) = lstm(x[t : t + 1, b : b + 1])
                gap = max(gap, float((cells[-1, t, b] - c[-1, 0]).abs().max()))
    accuracy = correct / total
    print(f"held-out accuracy {accuracy:.3f} (chance {1 / CUES:.2f}), {steps} chunks of {CHUNK}")
    print(f"cell state at an episode's first step vs. a fresh start: max difference {gap:.1e}")
    return {"accuracy": accuracy, "reset_gap": gap}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training chunks (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    main(args.steps, args.seed)
