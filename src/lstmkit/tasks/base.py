"""What every task provides: seeded batches, a loss, metrics, and the baseline to beat.

Batches are a pure function of a seed: ``task.batch(n, generator)`` draws everything from the
``torch.Generator`` it is given (CPU, so the same seed gives the same batch on any machine with the
same torch), and the trainer seeds a fresh generator per step from ``(run seed, step)``. That makes
resuming a run exact without saving any data-loader state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """One batch of a task, batch-first.

    inputs: ``(B, T)`` int64 tokens, or ``(B, T, F)`` float features.
    targets: per task: ``(B,)`` classes or values for a readout at the last step, ``(B, T)``
        classes or ``(B, T, K)`` multi-hot labels for a readout at every step.
    lengths: ``(B,)`` int64 on the CPU when the sequences differ in length, else None.
    """

    inputs: Tensor
    targets: Tensor
    lengths: Tensor | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def rows(self, start: int, stop: int) -> Batch:
        """Sequences ``start:stop`` of the batch (how data parallelism splits a global batch)."""
        lengths = None if self.lengths is None else self.lengths[start:stop]
        return Batch(self.inputs[start:stop], self.targets[start:stop], lengths)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.inputs.to(device), self.targets.to(device), self.lengths)


class Task(ABC):
    """A seeded sequence task with its metric and the baseline a model must beat.

    Subclasses set the class attributes and implement :meth:`batch`, :meth:`loss` and
    :meth:`metrics`.
    """

    name: ClassVar[str]
    citation: ClassVar[str]
    readout: ClassVar[Literal["last", "all"]]
    """Where the model answers: at each sequence's last step, or at every step."""
    metric: str
    """The main metric, a key of :meth:`metrics`."""
    higher_is_better: bool

    vocab_size: int | None
    """Number of input tokens, or None when inputs are float features."""
    input_size: int
    """Features per step (the embedding's input for tokens is vocab_size)."""
    output_size: int

    @property
    @abstractmethod
    def baseline(self) -> float:
        """The main metric of the best answer that ignores the sequence's memory (chance for a
        classification)."""

    @property
    @abstractmethod
    def baseline_note(self) -> str:
        """What the baseline is, in words."""

    published: str = ""
    """A published figure to print beside results, with its source."""

    source: str = "generated from the run's seed"
    """Where the data comes from (a package and its files, for the tasks on real data); a task
    built from a user's file names the file on the instance."""

    needs_data: ClassVar[bool] = False
    """Whether building the task reads a dataset (listings then describe it from the class
    attributes, without building it)."""

    baseline_summary: ClassVar[str] = ""
    """The baseline in words, for a task whose baseline's value depends on its data: what a
    listing prints without building the task (``needs_data``)."""

    models: ClassVar[tuple[str, ...]] = ("sequence",)
    """The model kinds (``model.kind``) that can learn the task: every task takes a sequence
    model; the tasks of binary frames (piano rolls, binarised digits) also take the generative
    models, which read the batch's targets as their data."""

    image_size: tuple[int, int] | None = None
    """Height and width of the task's images, for the models built for images (DRAW, the
    captioner); None for a task of sequences only."""

    nll_per_sequence: ClassVar[bool] = False
    """Whether the main metric, a negative log-likelihood, is summed over each sequence's steps
    (per digit) rather than averaged over steps (per time step); it tells a generative model
    in which unit to report its bound."""

    @abstractmethod
    def batch(self, batch_size: int, generator: torch.Generator) -> Batch: ...

    @abstractmethod
    def loss(self, outputs: Tensor, batch: Batch) -> Tensor: ...

    @abstractmethod
    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Metrics of one batch; means over sequences, so batches can be averaged."""

    @abstractmethod
    def solved(self, metrics: dict[str, float]) -> bool:
        """Whether held-out metrics count as solving the task."""

    @property
    def has_goal(self) -> bool:
        """Whether the task has a point at which it counts as solved."""
        return getattr(self, "solved_at", 0.0) is not None

    def options(self) -> dict[str, Any]:
        """The constructor options that rebuild this task."""
        return {}

    def describe(self) -> str:
        return f"{self.name} ({self.citation})"

    def state(self) -> dict[str, Any]:
        """What a checkpoint must keep to rebuild the task exactly (e.g. a vocabulary)."""
        return {}


def accuracy(outputs: Tensor, targets: Tensor) -> float:
    return (outputs.argmax(dim=-1) == targets).float().mean().item()


class LastStepClassification(Task):
    """A task that names one class per sequence, read at its last step: cross-entropy loss,
    accuracy, solved at ``self.solved_at``."""

    readout = "last"
    metric = "accuracy"
    higher_is_better = True
    solved_at: float

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        return {"accuracy": accuracy(outputs, batch.targets)}

    def solved(self, metrics: dict[str, float]) -> bool:
        return metrics["accuracy"] >= self.solved_at


def step_mask(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """``(B, T)`` bool, True at real steps."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device) < lengths.to(device).unsqueeze(1)


def uniform_int(low: int, high: int, size: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Integers drawn uniformly from ``[low, high]``, both ends included."""
    return torch.randint(low, high + 1, size, generator=generator)


class HeldOutClassification(Task):
    """A task that names a class at the last step, trained on drawn examples and evaluated on a
    fixed held-out set (``eval_targets``, read in its stored order): cross-entropy, accuracy,
    solved at ``solved_at`` (an accuracy, or None to use the whole budget)."""

    eval_targets: Tensor
    solved_at: float | None

    @abstractmethod
    def eval_rows(self, rows: slice) -> Batch:
        """The held-out examples ``rows`` as one batch."""

    def eval_batches(self, batch_size: int, count: int) -> list[Batch]:
        """The held-out examples in their fixed order: ``count`` batches at most."""
        n = min(len(self.eval_targets), batch_size * count)
        return [self.eval_rows(slice(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        return {"accuracy": accuracy(outputs, batch.targets)}

    def solved(self, metrics: dict[str, float]) -> bool:
        return self.solved_at is not None and metrics["accuracy"] >= self.solved_at
