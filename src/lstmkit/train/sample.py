"""Text from a character-level language model checkpoint (``lstmkit sample``)."""

from __future__ import annotations

from pathlib import Path

import torch

from lstmkit._errors import LstmkitValueError
from lstmkit.modules.sequence import SequenceModel
from lstmkit.tasks.charlm import CharCodec
from lstmkit.train.checkpoint import load_latest
from lstmkit.train.trainer import model_from_checkpoint


def load_charlm(checkpoint: str | Path) -> tuple[SequenceModel, str]:
    """The model of a ``charlm`` checkpoint, in eval mode, and its vocabulary: character ``k`` of
    the vocabulary is token ``k``, and any character outside it is token ``len(vocabulary)``
    (:class:`lstmkit.tasks.charlm.CharCodec` encodes and decodes with it)."""
    state, read = load_latest(checkpoint)
    task = state["task"]
    if task.get("name") != "charlm":
        raise LstmkitValueError(
            f"{read} was trained on the {task.get('name')!r} task; expected a 'charlm' checkpoint"
        )
    vocabulary = task.get("state", {}).get("vocabulary")
    if not isinstance(vocabulary, str) or not vocabulary:
        raise LstmkitValueError(f"{read}: the charlm task's vocabulary is missing or not text")
    return model_from_checkpoint(state, read), vocabulary


@torch.no_grad()
def sample_text(
    checkpoint: str | Path,
    *,
    prompt: str = "def ",
    length: int = 300,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """Continues ``prompt`` by ``length`` characters drawn from a ``charlm`` checkpoint.

    Each character is drawn from softmax(logits / temperature), restricted to the ``top_k``
    most likely characters when given. The same seed gives the same text.
    """
    if not prompt:
        raise LstmkitValueError("prompt must have at least one character")
    if length < 0:
        raise LstmkitValueError(f"length must be >= 0, got {length}")
    if not temperature > 0:
        raise LstmkitValueError(f"temperature must be positive, got {temperature}")
    model, vocabulary = load_charlm(checkpoint)
    codec = CharCodec(vocabulary)
    output_size = model.head.out_features
    if top_k is not None and not 1 <= top_k <= output_size:
        raise LstmkitValueError(f"top_k must be in [1, {output_size}], got {top_k}")
    codes = codec.encode(prompt)[None]  # (1, T)
    generator = torch.Generator().manual_seed(seed)
    assert model.embedding is not None
    output, hx = model.rnn(model.embedding(codes))
    logits = model.head(output[:, -1])  # (1, V)
    drawn = []
    for _ in range(length):
        scaled = logits[0] / temperature
        if top_k is not None:
            threshold = scaled.topk(top_k).values[-1]
            scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
        code = int(torch.multinomial(scaled.softmax(-1), 1, generator=generator))
        drawn.append(code)
        output, hx = model.rnn(model.embedding(torch.tensor([[code]])), hx)
        logits = model.head(output[:, -1])
    return prompt + codec.decode(drawn)
