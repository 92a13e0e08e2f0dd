"""A character-level language model on any text, by default on the Python standard library's own
source files: a corpus every user already has, with no download."""

from __future__ import annotations

import math
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._checks import check_positive_int
from lstmkit._errors import LstmkitFileNotFoundError, LstmkitValueError
from lstmkit.tasks.base import Batch, Task

DEFAULT_CHARS = 2_000_000
"""How much of the standard library the default corpus reads."""


def stdlib_corpus(max_chars: int = DEFAULT_CHARS) -> tuple[str, str]:
    """The first ``max_chars`` characters of the standard library's top-level ``*.py`` files in
    name order, and a description of where they came from."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, size, used = [], 0, 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        size += len(text)
        used += 1
        if size >= max_chars:
            break
    if not parts:
        raise LstmkitFileNotFoundError(f"no *.py files in the standard library folder {root}")
    return "".join(parts)[:max_chars], f"{used} files of the Python standard library in {root}"


BLOCKS = 20
"""The text is cut into this many blocks to choose the held-out ones."""


def split_text(text: str, held_out: float) -> tuple[str, str]:
    """Training and held-out text: the text is cut into 20 equal blocks and every k-th block,
    k = round(1 / held_out), is held out. Held-out text then comes from all over the corpus (a
    corpus of many files varies along its length), and never overlaps the training text."""
    every = max(2, round(1.0 / held_out))
    size = max(1, len(text) // BLOCKS)
    blocks = [text[i : i + size] for i in range(0, len(text), size)]
    held = [b for j, b in enumerate(blocks) if j % every == every - 1]
    kept = [b for j, b in enumerate(blocks) if j % every != every - 1]
    return "".join(kept), "".join(held)


class CharCodec:
    """Characters to tokens and back: character ``k`` of the vocabulary is token ``k``, and any
    character outside it is the unknown token ``len(vocabulary)``, decoded as U+FFFD."""

    def __init__(self, vocabulary: str) -> None:
        self.vocabulary = vocabulary
        self._index = {c: i for i, c in enumerate(vocabulary)}

    @property
    def size(self) -> int:
        """Tokens, the unknown one included."""
        return len(self.vocabulary) + 1

    def encode(self, text: str) -> Tensor:
        """``(len(text),)`` int64 tokens."""
        unknown = len(self.vocabulary)
        return torch.tensor([self._index.get(c, unknown) for c in text], dtype=torch.int64)

    def decode(self, codes: list[int]) -> str:
        vocabulary = self.vocabulary
        return "".join(vocabulary[c] if c < len(vocabulary) else "\ufffd" for c in codes)


UNDECODABLE = 0.01
"""The largest share of a text file's bytes that may be invalid UTF-8 (replaced by U+FFFD)."""


def read_text(file: Path, max_chars: int, *, binary: bool = False) -> str:
    """The first ``max_chars`` characters of a UTF-8 text file. A file that is not text (a NUL
    byte, or more than :data:`UNDECODABLE` of it invalid UTF-8) is refused with the reason,
    unless ``binary``; invalid bytes then read as U+FFFD."""
    if not file.is_file():
        raise LstmkitFileNotFoundError(f"charlm: no text file at {file}")
    with open(file, "rb") as f:
        data = f.read(4 * max_chars)  # UTF-8 takes at most 4 bytes a character
    decoded = data.decode("utf-8", errors="replace")
    if binary:
        return decoded[:max_chars]
    advice = "; pass binary=true (charlm:path=...,binary=true) to read it anyway"
    if b"\0" in data:
        raise LstmkitValueError(f"charlm: {file} is not text: it holds NUL bytes{advice}")
    # U+FFFD in the file itself is three valid bytes; what decoding replaced is the rest
    replaced = decoded.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    if data and replaced > UNDECODABLE * len(data):
        raise LstmkitValueError(
            f"charlm: {file} is not UTF-8 text: {replaced} of its first {len(data)} bytes do not "
            f"decode{advice}"
        )
    return decoded[:max_chars]


class CharLMTask(Task):
    """Predict each next character of a text; the metric is bits per character on held-out text.

    The text is a file given by ``path`` (read as UTF-8), or by default the Python standard
    library's source (:func:`stdlib_corpus`). A ``held_out`` fraction is kept for evaluation,
    spread over the text (see :func:`split_text`). Training batches are random windows of
    ``length`` characters; evaluation uses the held-out text cut into consecutive windows. The
    vocabulary is every character of the text; the baseline is the unigram entropy of the
    training text, in bits — what a model without memory of the previous characters scores. A
    language model has no natural point of "solved"; give ``solved_at`` (bits per character) to
    stop early there.
    """

    name = "charlm"
    citation = "Graves 2013; Karpathy et al. 2015 (character-level LSTM language models)"
    readout = "all"
    metric = "bpc"
    higher_is_better = False
    source = "the Python standard library's source files, or a text file given by path"
    published = "LSTM: 1.38 bpc on char-PTB, 1.43 on text8 (Cooijmans et al. 2017; large models)"

    def __init__(
        self,
        *,
        path: str | None = None,
        length: int = 100,
        held_out: float = 0.1,
        max_chars: int = DEFAULT_CHARS,
        solved_at: float | None = None,
        vocabulary: str | None = None,
        binary: bool = False,
    ) -> None:
        check_positive_int("length", length)
        check_positive_int("max_chars", max_chars)
        if not 0.0 < held_out < 0.5:
            raise LstmkitValueError(f"held_out must be in (0, 0.5), got {held_out}")
        if path is None:
            text, self.source = stdlib_corpus(max_chars)
        else:
            text = read_text(Path(path), max_chars, binary=binary)
            self.source = path
        train_part, eval_part = split_text(text, held_out)
        if min(len(train_part), len(eval_part)) < length + 1:
            raise LstmkitValueError(
                f"charlm: the text has {len(text)} characters, too few for windows of {length} "
                f"in both the training and the held-out part; use a longer text or a smaller length"
            )
        self.path, self.length, self.held_out = path, length, held_out
        self.max_chars, self.solved_at = max_chars, solved_at
        self.codec = CharCodec(vocabulary if vocabulary is not None else "".join(sorted(set(text))))
        self.vocabulary = self.codec.vocabulary
        self.vocab_size = self.input_size = self.output_size = self.codec.size
        self.train_text, self.eval_text = (self.codec.encode(p) for p in (train_part, eval_part))
        counts = Counter(self.train_text.tolist())
        total = sum(counts.values())
        self._entropy = -sum(n / total * math.log2(n / total) for n in counts.values())

    @property
    def baseline(self) -> float:
        return self._entropy

    @property
    def baseline_note(self) -> str:
        return "unigram entropy of the training text"

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        starts = torch.randint(
            0, len(self.train_text) - self.length, (batch_size,), generator=generator
        )
        windows = self.train_text[starts[:, None] + torch.arange(self.length + 1)]  # (B, T+1)
        return Batch(windows[:, :-1], windows[:, 1:])

    def eval_batches(self, batch_size: int, count: int) -> list[Batch]:
        """Consecutive held-out windows, the same every time: ``count`` batches at most."""
        n = (len(self.eval_text) - 1) // self.length
        windows = self.eval_text[: n * self.length + 1]
        inputs = windows[:-1].view(n, self.length)
        targets = windows[1:].view(n, self.length)
        return [
            Batch(inputs[i : i + batch_size], targets[i : i + batch_size])
            for i in range(0, min(n, batch_size * count), batch_size)
        ]

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten())

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        return {"bpc": self.loss(outputs, batch).item() / math.log(2)}

    def solved(self, metrics: dict[str, float]) -> bool:
        return self.solved_at is not None and metrics["bpc"] <= self.solved_at

    def encode(self, text: str) -> Tensor:
        return self.codec.encode(text)

    def decode(self, codes: list[int]) -> str:
        return self.codec.decode(codes)

    def options(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "length": self.length,
            "held_out": self.held_out,
            "max_chars": self.max_chars,
            "solved_at": self.solved_at,
        }

    def state(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}
