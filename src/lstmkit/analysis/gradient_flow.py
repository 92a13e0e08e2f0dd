"""Gradient flow: how large ∂L/∂h_t and ∂L/∂C_t are against the distance from the loss.

The vanishing gradient of Hochreiter 1991 and Bengio et al. 1994, measured on a real model: a
vanilla RNN's ‖∂L/∂h_t‖ falls off exponentially with the number of steps between h_t and the
loss, an LSTM's ‖∂L/∂C_t‖ much more slowly: the picture of the post's central claim.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit._checks import check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._spec import Spec
from lstmkit.analysis.trace import run_recorded
from lstmkit.tasks import Task, make_task


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norms of one model on one batch, per step.

    ``distance[t]`` is the number of steps between step t and the loss (T - 1 - t for a loss read
    at the last step); ``h_norm[t]`` is the mean over the batch's sequences of ‖∂L/∂h_t‖₂ for the
    top layer's forward direction; ``c_norm`` the same for the cell state C_t (None for cells
    without one).
    """

    label: str  # what was measured, for legends: "rnn", "lstm:chrono=100", ...
    task: str  # the task spec the batch came from
    distance: np.ndarray  # (T,) int
    h_norm: np.ndarray  # (T,) float
    c_norm: np.ndarray | None  # (T,) float, or None


def gradient_flow(
    model: nn.Module,
    task: Task | str,
    *,
    batch_size: int = 32,
    seed: int = 0,
    label: str | None = None,
) -> GradientFlow:
    """Measures ‖∂L/∂h_t‖ (and ‖∂L/∂C_t‖) of ``model`` on one batch of ``task``, for every step t
    of the top layer's forward direction.

    ``model`` is a :class:`lstmkit.modules.sequence.SequenceModel` (or any module whose forward
    takes the task's inputs and whose output the task's loss reads) sized for the task; ``task``
    a task or a spec such as ``"gap:gap=50"``, whose sequences must all have one length. L is the
    task's loss on a batch of ``batch_size`` drawn with ``seed``. The model runs once on the
    reference engine with every h_t and C_t kept in the autograd graph; one backward pass gives
    the total derivative of L with respect to each (through every later step), and the norm over
    units is averaged over the batch.
    """
    if isinstance(task, str):
        spec = Spec.parse(task)
        task_obj, task_name = make_task(spec.name, **spec.options), task
    elif isinstance(task, Task):
        task_obj, task_name = task, _spec(task)
    else:
        raise LstmkitTypeError(f"task must be a Task or a task spec string, got {describe(task)}")
    check_positive_int("batch_size", batch_size)
    batch = task_obj.batch(batch_size, torch.Generator().manual_seed(seed))
    if batch.lengths is not None:
        raise LstmkitValueError(
            f"gradient_flow needs sequences of one length; {task_name} draws different lengths "
            "(give it a fixed length, e.g. gap:gap=50 without max_gap)"
        )
    outputs, recorder, cells = run_recorded(model, (batch.inputs,), keep_graph=True)
    forward = [k for k, (_, reverse) in cells.items() if not reverse and k in recorder.steps]
    top = next((k for k in reversed(forward) if "h_t" in recorder.steps[k][0]), None)
    if top is None:
        raise LstmkitValueError(f"{type(model).__name__} has no traced cell that reports h_t")
    steps = recorder.steps[top]
    hs = [s["h_t"] for s in steps]
    cs = [s["C_t"] for s in steps] if "C_t" in steps[0] else []
    loss = task_obj.loss(outputs, batch)
    grads = torch.autograd.grad(loss, hs + cs, allow_unused=True)

    def norms(gs: tuple[Tensor | None, ...], like: list[Tensor]) -> np.ndarray:
        values = [
            0.0 if g is None else g.detach().flatten(1).norm(dim=1).mean().item()
            for g, _ in zip(gs, like, strict=True)
        ]
        return np.asarray(values, dtype=np.float64)

    T = len(hs)
    return GradientFlow(
        label=label or type(cells[top][0]).__name__,
        task=task_name,
        distance=np.arange(T - 1, -1, -1),
        h_norm=norms(grads[:T], hs),
        c_norm=norms(grads[T:], cs) if cs else None,
    )


def _spec(task: Task) -> str:
    """A task as the spec that builds it, its options at their defaults left out."""
    defaults = {name: p.default for name, p in inspect.signature(type(task)).parameters.items()}
    changed = [f"{k}={v}" for k, v in task.options().items() if k in defaults and v != defaults[k]]
    return task.name + (":" + ",".join(changed) if changed else "")
