"""Japanese Vowels: name which of nine speakers said /ae/ from 7 to 29 frames of 12 LPC cepstrum
coefficients (Kudo et al. 1999), a variable-length multichannel classification fed to the model
as packed sequences. The data ships with sktime, in the dataset's own 270 / 370 split."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.tasks._data import cached, package_version, pad, require, stratified_order
from lstmkit.tasks.base import Batch, HeldOutClassification

CHANNELS = 12
"""LPC cepstrum coefficients per frame."""

SPEAKERS = 9

SPLITS = ("train", "test")


def _read(split: str) -> dict[str, Tensor]:
    """One of sktime's splits: every frame of every utterance, one after another, as ``steps``
    ``(sum of lengths, 12)`` float64; ``lengths`` and ``labels`` (speakers 0-8) ``(N,)``."""
    datasets = require("sktime.datasets", "vowels")
    frame, labels = datasets.load_japanese_vowels(split=split, return_X_y=True)
    utterances = []
    for i in range(len(frame)):
        channels = [np.asarray(frame.iloc[i, c], dtype=np.float64) for c in range(CHANNELS)]
        utterances.append(np.stack(channels, axis=1))  # (T_i, 12); sktime's channels share a T_i
    return {
        "steps": torch.from_numpy(np.concatenate(utterances)),
        "lengths": torch.tensor([len(u) for u in utterances], dtype=torch.int64),
        "labels": torch.tensor([int(label) - 1 for label in labels], dtype=torch.int64),
    }


def japanese_vowels() -> dict[str, Tensor]:
    """Both splits, keys ``train_steps``, ``train_lengths``, ``train_labels``, ``test_...``
    (see :func:`_read`); read once, then from the cache."""

    def build() -> dict[str, Tensor]:
        return {f"{s}_{k}": v for s in SPLITS for k, v in _read(s).items()}

    key = {"dataset": "JapaneseVowels", "version": package_version("sktime", "vowels")}
    return cached("vowels", key, build)


class JapaneseVowelsTask(HeldOutClassification):
    """Name the speaker (one of nine) of an utterance of /ae/: 7 to 29 frames of 12 LPC cepstrum
    coefficients, read frame by frame, answered at each utterance's own last frame.

    Data: sktime's copy of the UCI set, split as its authors split it: 270 training utterances
    (30 per speaker) and 370 held out, recorded on other occasions (24 to 88 per speaker).
    Sequences of a batch are padded after their ends and carry their lengths, which the model
    packs (``pack_padded_sequence``), so padding never enters the recurrence and the answer is
    read at each sequence's last real frame. With ``standardise`` (the default) each channel
    has its mean subtracted and is divided by its standard deviation (population form), both
    taken over every frame of the training utterances only and applied to both parts.

    Training batches draw training utterances uniformly with replacement; evaluation reads the
    held-out ones in a fixed order that interleaves the speakers. The metric is held-out
    accuracy; the baseline is chance, 1/9: the training speakers are balanced, so naming the
    most common one is no better (a constant answer scores 6.5-23.8 % on the held-out part,
    whose speakers are not balanced). ``solved_at`` stops a run early at that accuracy.
    """

    name = "vowels"
    citation = "Kudo et al. 1999 (Japanese Vowels: nine speakers saying /ae/)"
    readout = "last"
    metric = "accuracy"
    higher_is_better = True
    vocab_size = None
    input_size = CHANNELS
    output_size = SPEAKERS
    source = (
        "sktime.datasets.load_japanese_vowels: the UCI Japanese Vowels set shipped with sktime, "
        "its own 270 / 370 split"
    )
    needs_data: ClassVar[bool] = True
    baseline_summary: ClassVar[str] = "chance, 1/9 (balanced training speakers)"
    published = (
        "held-out accuracy on the same 270 / 370 split: LSTM-FCN 99 %, MLSTM-FCN 100 % (Karim "
        "et al. 2019, Multivariate LSTM-FCNs for time series classification)"
    )

    def __init__(self, *, standardise: bool = True, solved_at: float | None = None) -> None:
        if not isinstance(standardise, bool):
            raise LstmkitTypeError(
                f"standardise must be true or false, got {describe(standardise)}"
            )
        if solved_at is not None and not 0.0 < solved_at <= 1.0:
            raise LstmkitValueError(f"solved_at must be in (0, 1] or none, got {solved_at}")
        self.standardise, self.solved_at = standardise, solved_at
        data = japanese_vowels()
        train_steps = data["train_steps"]
        if standardise:
            self.mean = train_steps.mean(0)  # (12,) over every training frame
            self.std = train_steps.std(0, correction=0)
        else:
            self.mean = torch.zeros(CHANNELS, dtype=torch.float64)
            self.std = torch.ones(CHANNELS, dtype=torch.float64)
        self.train_inputs, self.train_lengths = self._padded(train_steps, data["train_lengths"])
        self.train_targets = data["train_labels"]
        self.held_out_indices = order = stratified_order(data["test_labels"])
        """Indices into sktime's test split, in the order evaluation reads them."""
        inputs, lengths = self._padded(data["test_steps"], data["test_lengths"])
        self.eval_inputs, self.eval_lengths = inputs[order], lengths[order]
        self.eval_targets = data["test_labels"][order]

    def _padded(self, steps: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Utterances standardised (or not) as float32, ``(N, T_max, 12)`` with zeros after each
        end, and their ``(N,)`` lengths."""
        x = ((steps - self.mean) / self.std).float()
        return pad(torch.split(x, lengths.tolist()))

    @property
    def baseline(self) -> float:
        return 1.0 / SPEAKERS

    @property
    def baseline_note(self) -> str:
        return self.baseline_summary

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        index = torch.randint(0, len(self.train_targets), (batch_size,), generator=generator)
        return _trimmed(
            self.train_inputs[index], self.train_targets[index], self.train_lengths[index]
        )

    def eval_rows(self, rows: slice) -> Batch:
        return _trimmed(self.eval_inputs[rows], self.eval_targets[rows], self.eval_lengths[rows])

    def options(self) -> dict[str, Any]:
        return {"standardise": self.standardise, "solved_at": self.solved_at}


def _trimmed(inputs: Tensor, targets: Tensor, lengths: Tensor) -> Batch:
    """A batch padded only to its own longest sequence."""
    return Batch(inputs[:, : int(lengths.max())], targets, lengths)
