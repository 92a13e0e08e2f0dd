"""Figures of where a signal goes: the gradient flowing back through time, and attention weights
over the annotations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.analysis.gradient_flow import GradientFlow
from lstmkit.analysis.plots._common import (
    FloatArray,
    _check_index,
    _check_labels,
    _check_path,
    _clamp,
    _finish,
    _numpy,
    _of_batch,
    _plain,
)
from lstmkit.analysis.trace import Trace


def gradient_flow(
    flows: Sequence[GradientFlow] | GradientFlow, *, path: str | Path | None = None
) -> Figure:
    """‖∂L/∂h_t‖ (solid) and ‖∂L/∂C_t‖ (dashed, where the cell has C_t) against the number of steps
    between step t and the loss, on a log scale: one colour per :class:`GradientFlow`, named in
    the legend by its label. A straight falling line is an exponentially vanishing gradient.
    """
    target = _check_path(path)
    items = [flows] if isinstance(flows, GradientFlow) else flows
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        raise LstmkitTypeError(
            f"flows must be a non-empty sequence of GradientFlow, got {describe(flows)}"
        )
    for k, flow in enumerate(items):
        if not isinstance(flow, GradientFlow):
            raise LstmkitTypeError(f"flows[{k}] must be a GradientFlow, got {describe(flow)}")
        steps = len(flow.distance)
        for field_name, values in (("h_norm", flow.h_norm), ("c_norm", flow.c_norm)):
            if values is not None and np.shape(values) != (steps,):
                raise LstmkitValueError(
                    f"flows[{k}].{field_name} must have one value per distance, expected shape "
                    f"({steps},), got {np.shape(values)}"
                )

    fig = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for k, flow in enumerate(items):
        colour = f"C{k % 10}"
        label = _plain(flow.label)
        ax.plot(
            flow.distance,
            flow.h_norm,
            color=colour,
            label=f"{label}: " + r"$\Vert\partial L/\partial h_t\Vert$",
        )
        if flow.c_norm is not None:
            ax.plot(
                flow.distance,
                flow.c_norm,
                color=colour,
                linestyle="--",
                label=f"{label}: " + r"$\Vert\partial L/\partial C_t\Vert$",
            )
    ax.set_yscale("log")
    ax.set_xlabel(r"steps between $h_t$ and the loss")
    ax.set_ylabel("gradient norm, mean over the batch (log scale)")
    tasks = list(dict.fromkeys(flow.task for flow in items))
    ax.set_title(f"Gradient flow back through time on {_plain(', '.join(tasks))}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, target)


def attention(
    alphas: Tensor | FloatArray | Trace,
    *,
    inputs: Sequence[str] | str | None = None,
    outputs: Sequence[str] | str | None = None,
    sample: int = 0,
    path: str | Path | None = None,
) -> Figure:
    """Attention weights α as an image: one row per output step, one column per annotation.

    Args:
        alphas: ``(T_out, L)`` weights of one sequence; or ``(T, B, L)``, time-major as a trace
            records ``alpha_t`` (for :class:`lstmkit.AttentionDecoder`'s batch-first
            ``output.alphas (B, T, L)`` pass ``output.alphas[b]``); or a trace with one
            attention cell.
        inputs: a label per annotation (a string gives one character each).
        outputs: a label per output step.
        sample: the sequence to show of ``(T, B, L)`` weights.
        path: also save the figure here, ``.png`` or ``.svg``.
    """
    target = _check_path(path)
    weights, B = _weights_of(alphas, sample)
    data = _numpy(weights)  # (T_out, L)
    T_out, L = data.shape
    column_labels = _check_labels("inputs", inputs, L, "annotations")
    row_labels = _check_labels("outputs", outputs, T_out, "output steps")

    fig = Figure(
        figsize=(
            _clamp(2.5 + (0.16 if column_labels else 0.06) * L, 7, 24),
            _clamp(1.8 + (0.18 if row_labels else 0.06) * T_out, 3, 16),
        ),
        dpi=120,
        layout="constrained",
    )
    ax = fig.add_subplot()
    top = float(data.max()) if data.size and float(data.max()) > 0 else 1.0
    image = ax.imshow(
        data, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=top
    )
    fig.colorbar(image, ax=ax, label="attention weight α")
    ax.set_xlabel("annotation (input position)")
    ax.set_ylabel("output step")
    if column_labels:
        ax.set_xticks(range(L), labels=column_labels, fontsize=8, parse_math=False)
    if row_labels:
        ax.set_yticks(range(T_out), labels=row_labels, fontsize=8, parse_math=False)
    ax.set_title(f"Attention weights α over the annotations{_of_batch(sample, B)}", fontsize=10)
    return _finish(fig, target)


def _weights_of(alphas: Tensor | FloatArray | Trace, sample: int) -> tuple[Tensor, int]:
    """The ``(T_out, L)`` weights that :func:`attention` draws, and the batch size they came
    from."""
    if isinstance(alphas, Trace):
        keys = [k for k in sorted(alphas.values) if k.endswith(".alpha_t")]
        if len(keys) != 1:
            found = ", ".join(keys) if keys else f"none (its cells are {', '.join(alphas.cells)})"
            raise LstmkitValueError(
                f"expected a trace with exactly one attention cell's alpha_t, found {found}; "
                "pass trace['<cell>.alpha_t'] to choose"
            )
        weights = alphas[keys[0]]
    elif isinstance(alphas, (Tensor, np.ndarray)):
        weights = alphas if isinstance(alphas, Tensor) else torch.as_tensor(alphas)
    else:
        raise LstmkitTypeError(
            f"alphas must be a Tensor, a NumPy array or a Trace, got {describe(alphas)}"
        )
    if weights.dim() == 3:
        _check_index("sample", sample, weights.shape[1], "sequences")
        B = weights.shape[1]
        weights = weights[:, sample]
    elif weights.dim() == 2:
        if sample != 0:
            raise LstmkitValueError(
                f"sample applies to (T, B, L) weights; these are 2-D {tuple(weights.shape)}"
            )
        B = 1
    else:
        raise LstmkitValueError(
            f"alphas must be (T_out, L) or (T, B, L), got {weights.dim()}-D with shape "
            f"{tuple(weights.shape)}"
        )
    return weights, B
