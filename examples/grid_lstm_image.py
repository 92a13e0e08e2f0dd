"""A 2-D Grid LSTM over an image: do the two marked pixels lie in the same row?

Each 8 × 8 image holds faint noise and two bright pixels; half the time they share a row. The
answer needs context along both image dimensions, which lstmkit.GridLSTM2d (Kalchbrenner et
al. 2015) carries in two memories, one along the rows and one down the columns; a linear head
reads the bottom-right block, which has seen the whole image. Blocks are 2 × 2 patches. Prints
the held-out accuracy beside chance (0.5); a few seconds on a 2-core CPU:

    python examples/grid_lstm_image.py
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit import GridLSTM2d


def marked_pixels(
    count: int, size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images ``(count, 1, size, size)`` with two marks, and whether they share a row."""
    same = torch.randint(0, 2, (count,), generator=generator)
    row_1 = torch.randint(0, size, (count,), generator=generator)
    shift = torch.randint(1, size, (count,), generator=generator)
    row_2 = torch.where(same.bool(), row_1, (row_1 + shift) % size)
    col_1 = torch.randint(0, size, (count,), generator=generator)
    col_2 = (col_1 + torch.randint(1, size, (count,), generator=generator)) % size  # distinct
    images = 0.1 * torch.randn(count, 1, size, size, generator=generator)
    rows = torch.arange(count)
    images[rows, 0, row_1, col_1] = 1.0
    images[rows, 0, row_2, col_2] = 1.0
    return images, same


class SameRow(nn.Module):
    def __init__(self, hidden: int = 16, patch_size: int = 2) -> None:
        super().__init__()
        self.grid = GridLSTM2d(1, hidden, patch_size=patch_size)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.grid(images).final)  # type: ignore[no-any-return]


def main(steps: int = 400, size: int = 8, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    model = SameRow()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        images, same = marked_pixels(64, size, generator)
        loss = F.cross_entropy(model(images), same)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.3f}")
    images, same = marked_pixels(1000, size, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        accuracy = (model(images).argmax(-1) == same).float().mean().item()
    seconds = time.perf_counter() - start
    print(f"held-out accuracy {accuracy:.3f} (chance 0.50), {seconds:.0f} s")
    return {"grid": accuracy, "chance": 0.5}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps (default: 400)")
    parser.add_argument("--size", type=int, default=8, help="image side in pixels (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    main(args.steps, args.size, args.seed)
