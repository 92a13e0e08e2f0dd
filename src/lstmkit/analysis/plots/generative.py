"""Figures of what the generative models make and where they look: piano rolls (of the chorales
task, or sampled), DRAW's canvases over the glimpses and its read and write windows (Gregor et al.
2015, figures 7-8), and a caption's attention over an image (Xu et al. 2015, figures 2-3)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from torch import Tensor

from lstmkit._checks import describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.analysis.plots._common import FloatArray, _check_path, _clamp, _finish, _plain

KEYS = 88
"""Piano keys, MIDI 21 (A0) to 108 (C8), as the chorales task's rolls have them."""

LOWEST = 21

MAX_GLIMPSES = 10
"""The columns :func:`canvases` and :func:`windows` show unless told which glimpses."""

READ_COLOUR, WRITE_COLOUR = "tab:red", "tab:green"
"""The colours of the read and the write window, as in DRAW's figure 8 (read red, write green)."""


def _array(what: str, values: object, shape: str, dims: int | None = None) -> FloatArray:
    """``values`` (a tensor or a NumPy array) as float64 NumPy, with ``dims`` dimensions (by
    default as many as ``shape``, e.g. ``"(n, T, H, W)"``, names) and only finite numbers."""
    if isinstance(values, np.ndarray):
        values = torch.as_tensor(values)
    if not isinstance(values, Tensor):
        raise LstmkitTypeError(f"{what} must be a {shape} tensor, got {describe(values)}")
    dims = shape.count(",") + 1 if dims is None else dims
    if values.dim() != dims:
        raise LstmkitValueError(
            f"{what} must be {shape}, got {values.dim()}-D with shape {tuple(values.shape)}"
        )
    data: FloatArray = values.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(data).all():
        raise LstmkitValueError(f"{what} must hold finite numbers, got NaN or infinity")
    return data


def _check_unit_range(what: str, data: FloatArray) -> None:
    if data.size and (data.min() < 0 or data.max() > 1):
        raise LstmkitValueError(
            f"{what} must hold values in [0, 1], got values in [{data.min()}, {data.max()}]"
        )


def _check_glimpses(glimpses: object, steps: int) -> list[int]:
    """The glimpses to show, indices into T: those given, or up to :data:`MAX_GLIMPSES` evenly
    spaced from the first to the last (which is always shown: it is the reconstruction)."""
    if steps < 1:
        raise LstmkitValueError("expected at least one glimpse (T >= 1), got T = 0")
    if glimpses is None:
        return [int(t) for t in np.linspace(0, steps - 1, min(steps, MAX_GLIMPSES)).round()]
    if isinstance(glimpses, (str, bytes)) or not isinstance(glimpses, Sequence) or not glimpses:
        raise LstmkitTypeError(
            f"glimpses must be a non-empty sequence of ints, got {describe(glimpses)}"
        )
    picked = []
    for t in glimpses:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise LstmkitTypeError(f"glimpses must hold ints, got {describe(t)}")
        if not 0 <= t < steps:
            raise LstmkitValueError(
                f"glimpses must be in [0, {steps}) (indices into the T = {steps} glimpses), got {t}"
            )
        picked.append(int(t))
    return picked


def _check_titles(what: str, titles: object, count: int, of: str) -> list[str] | None:
    if titles is None:
        return None
    if isinstance(titles, str) or not isinstance(titles, Sequence):
        raise LstmkitTypeError(f"{what} must be a sequence of str, got {describe(titles)}")
    if not all(isinstance(t, str) for t in titles):
        raise LstmkitTypeError(f"{what} must hold only str, got {describe(list(titles))}")
    if len(titles) != count:
        raise LstmkitValueError(
            f"{what} must have one per {of}: expected {count}, got {len(titles)}"
        )
    return [str(t) for t in titles]


def _bare(ax: Axes) -> None:
    """An image panel: no ticks, but room for a title and a row label."""
    ax.set_xticks([])
    ax.set_yticks([])


def note_name(midi: int) -> str:
    """Scientific pitch notation of a MIDI number, naturals and sharps: 60 is C4, 21 is A0."""
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return f"{names[midi % 12]}{midi // 12 - 1}"


def piano_roll(
    rolls: Tensor | FloatArray,
    *,
    titles: Sequence[str] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Piano rolls as images, one panel per roll: time on x (one column per frame, a quarter
    note in the chorales task), the 88 keys on y from A0 at the bottom to C8 at the top,
    labelled with their names at the Cs (C1 to C8). A key on is dark; values in [0, 1] (a
    roll's 0/1, or a model's probabilities) are drawn on a fixed 0-1 gray scale.

    Args:
        rolls: ``(T, 88)`` or ``(n, T, 88)``; key ``k`` is MIDI pitch ``21 + k``, as
            :func:`lstmkit.tasks.chorales.piano_roll` makes them.
        titles: one title per roll (default: ``roll k`` for several, none for one).
        path: also save the figure here, ``.png`` or ``.svg``.
    """
    target = _check_path(path)
    given = tuple(rolls.shape) if isinstance(rolls, (Tensor, np.ndarray)) else ()
    if len(given) == 2:
        rolls = rolls[None]  # (1, T, 88)
    data = _array("rolls", rolls, "(T, 88) or (n, T, 88)", dims=3)
    n, T, keys = data.shape
    if keys != KEYS:
        raise LstmkitValueError(
            f"rolls must have {KEYS} keys on their last axis, (T, 88) or (n, T, 88), got shape "
            f"{given}"
        )
    if n < 1:
        raise LstmkitValueError("rolls must hold at least one roll, got n = 0")
    _check_unit_range("rolls", data)
    names = _check_titles("titles", titles, n, "roll")
    if names is None:
        names = [f"roll {k}" for k in range(n)] if n > 1 else [""]
    fig = Figure(figsize=(_clamp(2.5 + 0.08 * T, 7, 20), 3.2 * n), dpi=120, layout="constrained")
    Cs = [k for k in range(KEYS) if (LOWEST + k) % 12 == 0]  # C1 (MIDI 24) to C8 (108)
    axes = [fig.add_subplot(n, 1, k + 1) for k in range(n)]
    for ax, roll, name in zip(axes, data, names, strict=True):
        image = ax.imshow(
            roll.T,  # (88, T): a key per row
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            cmap="gray_r",
            vmin=0,
            vmax=1,
        )
        ax.set_yticks(Cs, labels=[note_name(LOWEST + k) for k in Cs], fontsize=8)
        ax.set_ylabel("key")
        ax.set_title(_plain(name), fontsize=10)
    axes[-1].set_xlabel("time step (frame)")
    fig.colorbar(image, ax=axes, label="key on", shrink=0.8)
    return _finish(fig, target)


def canvases(
    canvases: Tensor | FloatArray,
    *,
    glimpses: Sequence[int] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """DRAW's figure 7: the canvas σ(c_t) after chosen glimpses, one row per image, one column
    per glimpse, on a fixed 0-1 gray scale; the last glimpse's canvas is the reconstruction.

    Args:
        canvases: ``(n, T, H, W)`` σ(c_t), values in [0, 1], as
            :class:`lstmkit.modules.draw.DRAW` returns them (``output.canvases``).
        glimpses: indices into T of the columns (default: up to 10 evenly spaced from the first
            to the last). Column titles number the glimpses as the paper does, from 1:
            index ``k`` is ``t = k + 1``.
        path: also save the figure here, ``.png`` or ``.svg``.
    """
    target = _check_path(path)
    data = _array("canvases", canvases, "(n, T, H, W)")
    _check_unit_range("canvases", data)
    n, T, H, W = data.shape
    if n < 1:
        raise LstmkitValueError("canvases must hold at least one image, got n = 0")
    chosen = _check_glimpses(glimpses, T)
    side = _clamp(1.3 * max(W, 1) / max(H, 1), 0.6, 3.0)
    fig = Figure(
        figsize=(max(5.5, 0.4 + side * len(chosen)), 0.5 + 1.3 * n), dpi=120, layout="constrained"
    )
    for i in range(n):
        for j, t in enumerate(chosen):
            ax = fig.add_subplot(n, len(chosen), i * len(chosen) + j + 1)
            ax.imshow(data[i, t], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            _bare(ax)
            if i == 0:
                ax.set_title(f"t = {t + 1}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"image {i}", fontsize=8)
    fig.suptitle(
        r"DRAW: the canvas $\sigma(c_t)$ after glimpse t (Gregor et al. 2015)", fontsize=10
    )
    return _finish(fig, target)


def windows(
    images: Tensor | FloatArray,
    read: Tensor | FloatArray | None,
    write: Tensor | FloatArray | None,
    *,
    glimpses: Sequence[int] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """DRAW's read and write windows on the images (Gregor et al. 2015, figure 8): one row per
    image, one column per chosen glimpse, each panel the image with the read window's rectangle
    in red and the write window's in green.

    Args:
        images: ``(n, H, W)``, values in [0, 1], drawn on a fixed 0-1 gray scale.
        read, write: rectangles ``(n, T, 4)`` as ``(left, top, right, bottom)`` in DRAW's pixel
            coordinates, whose first pixel is 1
            (:class:`lstmkit.modules.draw.WindowRectangles`, from ``DRAW.windows``); each is
            drawn 1 lower so it lands on ``imshow``'s pixels, whose first is 0. Either may be
            None (not both); a window reaching past the image is clipped at its edge.
        glimpses: indices into T of the columns, as in :func:`canvases` (titled ``t = k + 1``).
        path: also save the figure here, ``.png`` or ``.svg``.
    """
    target = _check_path(path)
    data = _array("images", images, "(n, H, W)")
    _check_unit_range("images", data)
    n, H, W = data.shape
    boxes = _check_rectangles(n, read, write)
    T = next(b.shape[1] for b in boxes.values() if b is not None)
    chosen = _check_glimpses(glimpses, T)
    side = _clamp(1.5 * max(W, 1) / max(H, 1), 0.7, 3.0)
    fig = Figure(
        figsize=(max(5.5, 0.4 + side * len(chosen)), 0.8 + 1.5 * n), dpi=120, layout="constrained"
    )
    colours = {"read": READ_COLOUR, "write": WRITE_COLOUR}
    for i in range(n):
        for j, t in enumerate(chosen):
            ax = fig.add_subplot(n, len(chosen), i * len(chosen) + j + 1)
            ax.imshow(data[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            for name, box in boxes.items():
                if box is None:
                    continue
                left, top, right, bottom = box[i, t] - 1  # DRAW's pixel 1 is imshow's 0
                ax.add_patch(
                    Rectangle(
                        (left, top),
                        right - left,
                        bottom - top,
                        fill=False,
                        edgecolor=colours[name],
                        linewidth=1.5,
                        label=f"{name} window",
                    )
                )
            ax.set_xlim(-0.5, W - 0.5)
            ax.set_ylim(H - 0.5, -0.5)
            _bare(ax)
            if i == 0:
                ax.set_title(f"t = {t + 1}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"image {i}", fontsize=8)
    handles = [
        Line2D([], [], color=colours[name], label=f"{name} window")
        for name, box in boxes.items()
        if box is not None
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle("DRAW: the read and write windows at glimpse t (Gregor et al. 2015)", fontsize=10)
    return _finish(fig, target)


def _check_rectangles(n: int, read: object, write: object) -> dict[str, FloatArray | None]:
    """The read and write rectangles, each ``(n, T, 4)`` with ``left <= right`` and
    ``top <= bottom``, of one T; at least one of them given."""
    if read is None and write is None:
        raise LstmkitValueError("windows needs read or write rectangles (n, T, 4), got neither")
    boxes: dict[str, FloatArray | None] = {}
    for name, box in (("read", read), ("write", write)):
        if box is None:
            boxes[name] = None
            continue
        data = _array(name, box, "(n, T, 4)")
        if data.shape[0] != n or data.shape[2] != 4:
            raise LstmkitValueError(
                f"{name} must be (n, T, 4) = ({n}, T, 4), one rectangle per image and glimpse, "
                f"got shape {data.shape}"
            )
        if (data[..., 2] < data[..., 0]).any() or (data[..., 3] < data[..., 1]).any():
            raise LstmkitValueError(
                f"{name} rectangles must be (left, top, right, bottom) with left <= right and "
                "top <= bottom, got one the other way round"
            )
        boxes[name] = data
    given = [b for b in boxes.values() if b is not None]
    if len(given) == 2 and given[0].shape != given[1].shape:
        raise LstmkitValueError(
            f"read and write must have the same glimpses: expected write of shape "
            f"{given[0].shape}, got {given[1].shape}"
        )
    return boxes


def upsample(weights: FloatArray, size: tuple[int, int]) -> FloatArray:
    """Attention weights ``(L, h, w)`` stretched to an image ``(L, H, W)`` by bilinear
    interpolation between the centres of the grid's cells (each cell covers an ``H/h`` by
    ``W/w`` block of pixels; ``align_corners=False``), so the overlay is smooth, as in Xu et al.
    2015's figures, without inventing weight outside the range the grid holds."""
    grid = torch.from_numpy(weights)[:, None]  # (L, 1, h, w)
    up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)  # (L, 1, H, W)
    result: FloatArray = up[:, 0].numpy()
    return result


def caption_attention(
    image: Tensor | FloatArray,
    words: Sequence[str],
    alphas: Tensor | FloatArray,
    grid: tuple[int, int],
    *,
    path: str | Path | None = None,
) -> Figure:
    """Where a caption looks (Xu et al. 2015, "Show, Attend and Tell", figures 2-3): one panel
    per word, the image in gray with the word's attention weights over the grid of annotation
    vectors, upsampled to the image (:func:`upsample`, bilinear), laid over it
    semi-transparently on one scale for every word (0 to the largest weight of the caption);
    the word is the panel's title.

    Args:
        image: ``(H, W)`` grayscale, drawn from its own smallest to largest value.
        words: the caption, ``L`` words (the word emitted at each step).
        alphas: ``(L, h * w)`` non-negative weights, one row per word, the annotation vectors in
            row-major order of the grid.
        grid: ``(h, w)``, the rows and columns of the annotation grid (14 × 14 in the paper).
        path: also save the figure here, ``.png`` or ``.svg``.
    """
    target = _check_path(path)
    picture = _array("image", image, "(H, W)")
    H, W = picture.shape
    weights = _array("alphas", alphas, "(L, h * w)")
    h, w = _check_grid(grid)
    names = _check_titles("words", words, weights.shape[0], "row of alphas")
    if names is None:
        raise LstmkitTypeError("words must be a sequence of str, got None")
    if weights.shape[1] != h * w:
        raise LstmkitValueError(
            f"alphas must have one weight per cell of the {h} x {w} grid: expected (L, {h * w}), "
            f"got shape {weights.shape}"
        )
    if weights.size and weights.min() < 0:
        raise LstmkitValueError(f"alphas must be non-negative, got {weights.min()}")
    if not names or H < 1 or W < 1:
        raise LstmkitValueError(
            f"expected at least one word and a non-empty image, got {len(names)} words and an "
            f"image of shape {picture.shape}"
        )
    overlay = upsample(weights.reshape(-1, h, w), (H, W))  # (L, H, W)
    top = float(weights.max()) if float(weights.max()) > 0 else 1.0
    columns = min(len(names), 5)
    rows = math.ceil(len(names) / columns)
    side = _clamp(2.4 * W / H, 1.2, 4.0)
    fig = Figure(figsize=(0.6 + side * columns, 0.6 + 2.6 * rows), dpi=120, layout="constrained")
    axes = [fig.add_subplot(rows, columns, k + 1) for k in range(len(names))]
    for ax, word, heat in zip(axes, names, overlay, strict=True):
        ax.imshow(picture, cmap="gray", interpolation="nearest")
        shown = ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0, vmax=top)
        ax.set_title(_plain(word), fontsize=10)
        _bare(ax)
    fig.colorbar(shown, ax=axes, label="attention weight α", shrink=0.8)
    fig.suptitle("Where each word looks (Xu et al. 2015)")
    return _finish(fig, target)


def _check_grid(grid: object) -> tuple[int, int]:
    if (
        not isinstance(grid, tuple)
        or len(grid) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in grid)
    ):
        raise LstmkitTypeError(
            f"grid must be (h, w), two positive ints (the annotation grid), got {describe(grid)}"
        )
    return grid[0], grid[1]
