"""What ``lstmkit sample`` does with a generative checkpoint (DRAW digits, VRNN and STORN piano
rolls), and ``lstmkit caption``: a captioner's words for an image, with where it looked."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lstmkit._errors import LstmkitValueError
from lstmkit.cli._args import common, folder_path, positive_int

if TYPE_CHECKING:
    from lstmkit.cli._args import Commands
    from lstmkit.tasks import Task

GENERATIVE = ("draw", "vrnn", "storn")
"""The model kinds ``lstmkit sample`` draws pictures or music from."""


def sample_generative(
    model: nn.Module, task: Task, kind: str, *, count: int, length: int, seed: int, out: Path
) -> list[Path]:
    """Draws ``count`` samples from a DRAW, VRNN or STORN model into the folder ``out``: digits
    as the canvas after each glimpse (and, for a DRAW with attention, its read and write windows
    on held-out digits); piano rolls of ``length`` frames as MIDI files and a picture. Returns
    the files written."""
    from lstmkit.analysis.plots import generative as plots
    from lstmkit.modules import DRAW
    from lstmkit.train.trainer import eval_batches

    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, DRAW):
        drawn = model.generate(count, generator=generator)
        written = [out / "digits.png"]
        plots.canvases(drawn.canvases, path=written[0])
        if model.attention:
            digits = eval_batches(task, count, chunk=count)[0].targets
            rects = model.windows(digits, generator=generator)
            written.append(out / "windows.png")
            plots.windows(digits, rects.read, rects.write, path=written[-1])
        return written
    from lstmkit.tasks.chorales import write_midi

    rolls = model.sample(count, length, generator=generator)  # type: ignore[operator]
    written = []
    if task.name == "chorales":
        for i, roll in enumerate(rolls):
            written.append(write_midi(roll, out / f"sample-{i + 1}.mid"))
    written.append(out / "piano_roll.png" if task.name == "chorales" else out / "digits.png")
    if task.name == "chorales":
        plots.piano_roll(rolls, path=written[-1])
    else:  # rows of a digit
        plots.canvases(rolls.unsqueeze(1), path=written[-1])
    return written


def add_caption(commands: Commands) -> None:
    caption = commands.add_parser(
        "caption",
        help="caption an image with a captioner checkpoint, and show where it looked",
        description="Writes a caption for a held-out canvas of the captions task (--index) or "
        "for an image of your own (--image, a PNG or .npy of the canvas's size, values in "
        "[0, 1]), and draws the attention weights over the image for every word (Xu et al. "
        "2015's figure).",
    )
    caption.set_defaults(handler=caption_command)
    caption.add_argument("checkpoint", type=Path, help="checkpoint.pt of a captioner run")
    which = caption.add_mutually_exclusive_group()
    which.add_argument(
        "--index", type=int, default=0, help="a held-out canvas, by number (default: 0)"
    )
    which.add_argument("--image", type=Path, help="a grayscale image (.png or .npy) instead")
    caption.add_argument(
        "--out", type=Path, default=Path("attention.png"), help="the figure (.png or .svg)"
    )
    common(caption)


def caption_command(args: argparse.Namespace) -> int:
    from lstmkit.analysis.plots.generative import caption_attention
    from lstmkit.modules.captioner import Captioner
    from lstmkit.tasks.captions import EOS, caption_text
    from lstmkit.train.trainer import load_model

    model, task, config = load_model(args.checkpoint)
    if not isinstance(model, Captioner):
        raise LstmkitValueError(
            f"{args.checkpoint} holds a {config.model.kind!r} model trained on {task.name}; "
            "lstmkit caption reads captioner checkpoints (model.kind = captioner)"
        )
    truth = None
    if args.image is not None:
        image = read_image(args.image, task.image_size)
    else:
        image, truth = held_out_canvas(task, args.index)
    out = model(image[None, None], max_length=_longest(task))
    tokens = out.tokens[0].tolist()
    words = caption_text(tokens).split()
    labels = [*words, "<end>"] if EOS in tokens else words  # a caption may run out unended
    caption_attention(image, labels, out.alphas[0, : len(labels)], model.grid_shape, path=args.out)
    print(f"caption: {' '.join(words)}")
    if truth is not None:
        print(f"truth:   {truth}")
    print(f"figure: {args.out}")
    return 0


def _longest(task: Task) -> int:
    """The most words a caption of ``task`` can have, its end included."""
    from lstmkit.train.trainer import eval_batches

    return int(eval_batches(task, 1, chunk=1)[0].targets.shape[1])


def held_out_canvas(task: Task, index: int) -> tuple[Tensor, str]:
    """Held-out canvas ``index`` of a captions task ``(H, W)`` and its true caption."""
    from lstmkit.tasks.captions import caption_text
    from lstmkit.train.trainer import eval_batches

    total = sum(len(b) for b in eval_batches(task, 1_000_000))
    if not 0 <= index < total:
        raise LstmkitValueError(
            f"--index must be in [0, {total - 1}] (held-out canvases), got {index}"
        )
    batch = eval_batches(task, index + 1, chunk=index + 1)[0]
    return batch.inputs[index, 0], caption_text(batch.targets[index].tolist())


def read_image(path: Path, size: tuple[int, int] | None) -> Tensor:
    """A grayscale image ``(H, W)`` float32 in [0, 1] from a PNG (RGB averaged) or a .npy file,
    checked to be of ``size``."""
    import numpy as np

    if not path.is_file():
        raise LstmkitValueError(f"no image file at {path}")
    if path.suffix.lower() == ".npy":
        array: Any = np.load(path, allow_pickle=False)
    elif path.suffix.lower() == ".png":
        from matplotlib.image import imread

        array = imread(path)
        if array.ndim == 3:
            array = array[..., :3].mean(-1)
    else:
        raise LstmkitValueError(f"an image must be a .png or .npy file, got {path.name}")
    image = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if size is not None and tuple(image.shape) != tuple(size):
        raise LstmkitValueError(
            f"{path.name} is {tuple(image.shape)} pixels; the captioner reads canvases of "
            f"{tuple(size)} (height, width), grayscale"
        )
    if not bool(((image >= 0) & (image <= 1)).all()):
        raise LstmkitValueError(f"{path.name} must hold values in [0, 1]")
    return image


def add_sample_flags(sample: argparse.ArgumentParser) -> None:
    """``lstmkit sample``'s options for the generative checkpoints."""
    sample.add_argument(
        "--count",
        type=positive_int,
        default=8,
        help="digits or pieces to draw from a draw, vrnn or storn checkpoint (default: 8)",
    )
    sample.add_argument(
        "--out",
        type=folder_path,
        default=Path("samples"),
        help="folder for the pictures and MIDI files of a generative checkpoint (default: samples)",
    )
