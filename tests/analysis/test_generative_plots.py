"""The figures of the generative models: piano rolls, DRAW's canvases and windows, and a caption's
attention over an image. What each figure shows is checked against the numbers it was made from
(image arrays, rectangle corners, the upsampled weights by hand), and the saved files against
their formats."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from lstmkit import LstmkitError
from lstmkit.analysis import plots
from lstmkit.modules.draw import DRAW

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def images_of(fig: Figure) -> list[AxesImage]:
    return [im for ax in fig.axes for im in ax.get_images()]


def array_of(image: AxesImage) -> np.ndarray:
    data = image.get_array()
    assert data is not None
    return np.asarray(data)


def rectangles(ax: object) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]  # type: ignore[attr-defined]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC


def assert_svg(path: Path) -> None:
    assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg"


# -- piano rolls ------------------------------------------------------------------------------


def test_piano_roll_shows_each_roll_keys_by_time_with_the_cs_named(tmp_path: Path) -> None:
    rolls = (torch.rand(3, 17, 88) < 0.1).to(torch.uint8)
    fig = plots.piano_roll(rolls, titles=["a", "b $x$", "c"], path=tmp_path / "r.svg")
    assert_svg(tmp_path / "r.svg")
    shown = images_of(fig)
    assert len(shown) == 3
    for image, roll in zip(shown, rolls, strict=True):
        np.testing.assert_array_equal(array_of(image), roll.T.double().numpy())  # (88, T)
        assert image.origin == "lower"  # A0 at the bottom
        assert image.get_clim() == (0.0, 1.0)
        ax = image.axes
        # the Cs are MIDI 24, 36, ..., 108: keys 3, 15, ..., 87
        assert list(ax.get_yticks()) == [3, 15, 27, 39, 51, 63, 75, 87]
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"C{o}" for o in range(1, 9)]
    assert [image.axes.get_title() for image in shown] == ["a", r"b \$x\$", "c"]
    assert shown[-1].axes.get_xlabel().startswith("time step")


def test_piano_roll_of_one_roll_and_of_probabilities(tmp_path: Path) -> None:
    probabilities = torch.rand(11, 88, dtype=torch.float64)
    fig = plots.piano_roll(probabilities.numpy(), path=tmp_path / "p.png")
    assert_png(tmp_path / "p.png")
    (image,) = images_of(fig)
    np.testing.assert_array_equal(array_of(image), probabilities.T.numpy())
    assert plots.generative.note_name(60) == "C4"
    assert plots.generative.note_name(21) == "A0"
    assert plots.generative.note_name(70) == "A#4"


@pytest.mark.parametrize(
    ("rolls", "message"),
    [
        (torch.zeros(5, 87), r"rolls must have 88 keys.*got shape \(5, 87\)"),
        (torch.zeros(2, 3, 5, 88), r"rolls must be \(T, 88\) or \(n, T, 88\), got 4-D"),
        (torch.full((4, 88), 1.5), r"values in \[0, 1\], got values in \[1\.5, 1\.5\]"),
        ([[0.0] * 88], r"rolls must be a \(T, 88\) or \(n, T, 88\) tensor, got a list of 1"),
    ],
)
def test_piano_roll_refuses_bad_rolls(rolls: object, message: str) -> None:
    with pytest.raises(LstmkitError, match=message):
        plots.piano_roll(rolls)  # type: ignore[arg-type]


def test_piano_roll_needs_one_title_per_roll() -> None:
    with pytest.raises(ValueError, match="titles must have one per roll: expected 2, got 1"):
        plots.piano_roll(torch.zeros(2, 4, 88), titles=["only one"])


# -- DRAW's canvases --------------------------------------------------------------------------


def test_canvases_show_the_chosen_glimpses_of_each_image(tmp_path: Path) -> None:
    canvases = torch.rand(2, 7, 5, 6)
    fig = plots.canvases(canvases, glimpses=[6, 0, 3], path=tmp_path / "c.png")
    assert_png(tmp_path / "c.png")
    shown = images_of(fig)
    assert len(shown) == 2 * 3
    for k, image in enumerate(shown):
        i, t = divmod(k, 3)
        np.testing.assert_array_equal(array_of(image), canvases[i, [6, 0, 3][t]].double().numpy())
        assert image.get_clim() == (0.0, 1.0)
        assert image.get_cmap().name == "gray"
    assert [image.axes.get_title() for image in shown[:3]] == ["t = 7", "t = 1", "t = 4"]
    assert [shown[k].axes.get_ylabel() for k in (0, 3)] == ["image 0", "image 1"]


def test_canvases_default_to_ten_glimpses_evenly_spaced_ending_with_the_last() -> None:
    steps = int(torch.randint(11, 40, ()))
    canvases = torch.rand(1, steps, 4, 4)
    shown = images_of(plots.canvases(canvases))
    expected = np.round(np.linspace(0, steps - 1, 10)).astype(int)
    assert len(shown) == 10
    assert expected[-1] == steps - 1
    for image, t in zip(shown, expected, strict=True):
        np.testing.assert_array_equal(array_of(image), canvases[0, t].double().numpy())
        assert image.axes.get_title() == f"t = {t + 1}"
    few = images_of(plots.canvases(torch.rand(1, 3, 4, 4)))  # fewer than ten: every one
    assert [image.axes.get_title() for image in few] == ["t = 1", "t = 2", "t = 3"]


def test_canvases_of_a_draw_model(tmp_path: Path) -> None:
    model = DRAW(height=8, width=8, glimpses=5, hidden_size=16, z_size=3, attention=True)
    x = (torch.rand(2, 8, 8) > 0.5).float()
    with torch.no_grad():
        out = model(x)
    shown = images_of(plots.canvases(out.canvases, path=tmp_path / "draw.svg"))
    assert_svg(tmp_path / "draw.svg")
    np.testing.assert_array_equal(array_of(shown[-1]), out.canvases[1, -1].double().numpy())


@pytest.mark.parametrize(
    ("canvases", "glimpses", "message"),
    [
        (torch.rand(3, 4, 4), None, r"canvases must be \(n, T, H, W\), got 3-D"),
        (torch.rand(1, 3, 4, 4) + 1, None, r"canvases must hold values in \[0, 1\]"),
        (torch.rand(1, 3, 4, 4), [3], r"glimpses must be in \[0, 3\).*got 3"),
        (torch.rand(1, 3, 4, 4), [], "glimpses must be a non-empty sequence"),
    ],
)
def test_canvases_refuse_bad_input(canvases: object, glimpses: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        plots.canvases(canvases, glimpses=glimpses)  # type: ignore[arg-type]


# -- DRAW's windows ---------------------------------------------------------------------------


def random_rectangles(n: int, steps: int, size: int) -> torch.Tensor:
    corner = 1 + torch.rand(n, steps, 2) * size
    extent = torch.rand(n, steps, 2) * size / 2
    return torch.cat([corner, corner + extent], dim=-1)  # (left, top, right, bottom)


def test_windows_draw_read_and_write_rectangles_one_lower(tmp_path: Path) -> None:
    images = torch.rand(2, 9, 7)
    read, write = random_rectangles(2, 5, 7), random_rectangles(2, 5, 7)
    chosen = [4, 1]
    fig = plots.windows(images, read, write, glimpses=chosen, path=tmp_path / "w.png")
    assert_png(tmp_path / "w.png")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2 * 2
    for k, ax in enumerate(panels):
        i, t = divmod(k, 2)
        (image,) = ax.get_images()
        np.testing.assert_array_equal(array_of(image), images[i].double().numpy())
        assert ax.get_xlim() == (-0.5, 6.5)
        assert ax.get_ylim() == (8.5, -0.5)  # row 0 at the top, as imshow draws it
        boxes = rectangles(ax)
        assert [b.get_label() for b in boxes] == ["read window", "write window"]
        assert boxes[0].get_edgecolor() != boxes[1].get_edgecolor()
        for box, rect in zip(boxes, (read, write), strict=True):
            left, top, right, bottom = (rect[i, chosen[t]].double() - 1).tolist()
            np.testing.assert_allclose(box.get_xy(), (left, top), rtol=1e-12)
            np.testing.assert_allclose(box.get_width(), right - left, rtol=1e-12)
            np.testing.assert_allclose(box.get_height(), bottom - top, rtol=1e-12)
            assert not box.get_fill()
    assert [panels[k].get_title() for k in (0, 1)] == ["t = 5", "t = 2"]
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert legend_texts == ["read window", "write window"]


def test_windows_of_a_draw_model_with_only_the_write_window(tmp_path: Path) -> None:
    model = DRAW(height=6, width=6, glimpses=4, hidden_size=8, z_size=2, attention=True)
    x = torch.rand(1, 6, 6)
    with torch.no_grad():
        rects = model.windows(x)
    assert rects.write is not None
    fig = plots.windows(x, None, rects.write, path=tmp_path / "w.svg")
    assert_svg(tmp_path / "w.svg")
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 4
    for t, ax in enumerate(panels):
        (box,) = rectangles(ax)
        assert box.get_label() == "write window"
        left, top, _, _ = (rects.write[0, t].double() - 1).tolist()
        np.testing.assert_allclose(box.get_xy(), (left, top), rtol=1e-6)


def test_windows_refuse_bad_input() -> None:
    images, boxes = torch.rand(2, 5, 5), random_rectangles(2, 3, 5)
    with pytest.raises(ValueError, match="got neither"):
        plots.windows(images, None, None)
    with pytest.raises(ValueError, match=r"read must be \(n, T, 4\) = \(2, T, 4\).*\(1, 3, 4\)"):
        plots.windows(images, boxes[:1], None)
    with pytest.raises(ValueError, match=r"same glimpses: expected write of shape \(2, 3, 4\)"):
        plots.windows(images, boxes, boxes[:, :2])
    with pytest.raises(ValueError, match="left <= right"):
        plots.windows(images, boxes[..., [2, 1, 0, 3]], None)
    with pytest.raises(ValueError, match=r"images must hold values in \[0, 1\]"):
        plots.windows(images - 1, boxes, None)
    with pytest.raises(ValueError, match=r"images must be \(n, H, W\), got 2-D"):
        plots.windows(images[0], boxes, None)


# -- a caption's attention --------------------------------------------------------------------


def bilinear(grid: np.ndarray, H: int, W: int) -> np.ndarray:
    """``(h, w)`` stretched to ``(H, W)`` by hand: pixel centre y + 1/2 sits at (y + 1/2) h / H
    in grid cells, between the two nearest cell centres (clamped at the edges)."""
    h, w = grid.shape
    out = np.zeros((H, W))
    for y in range(H):
        for x in range(W):
            sy = max((y + 0.5) * h / H - 0.5, 0.0)
            sx = max((x + 0.5) * w / W - 0.5, 0.0)
            y0, x0 = min(int(sy), h - 1), min(int(sx), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[y, x] = (
                grid[y0, x0] * (1 - fy) * (1 - fx)
                + grid[y0, x1] * (1 - fy) * fx
                + grid[y1, x0] * fy * (1 - fx)
                + grid[y1, x1] * fy * fx
            )
    return out


def test_caption_attention_lays_each_words_upsampled_weights_over_the_image(
    tmp_path: Path,
) -> None:
    h, w, H, W = 3, 4, 12, 10
    image = torch.rand(H, W)
    words = ["a", "dog", "on", "the", "<end>", "grass"]
    alphas = torch.softmax(3 * torch.randn(len(words), h * w), dim=-1)
    fig = plots.caption_attention(image, words, alphas, (h, w), path=tmp_path / "x.png")
    assert_png(tmp_path / "x.png")
    panels = [ax for ax in fig.axes if len(ax.get_images()) == 2]
    assert [ax.get_title() for ax in panels] == words
    top = float(alphas.max())
    for ax, weights in zip(panels, alphas, strict=True):
        picture, overlay = ax.get_images()
        np.testing.assert_array_equal(array_of(picture), image.double().numpy())
        assert picture.get_cmap().name == "gray"
        expected = bilinear(weights.double().numpy().reshape(h, w), H, W)
        np.testing.assert_allclose(array_of(overlay), expected, rtol=0, atol=1e-12)
        alpha = overlay.get_alpha()
        assert alpha is not None
        assert 0 < alpha < 1
        assert overlay.get_clim() == pytest.approx((0.0, top))
    (colorbar,) = [ax for ax in fig.axes if ax not in panels]
    assert "α" in colorbar.get_ylabel()


def test_caption_attention_keeps_a_uniform_grid_flat_and_a_single_cell_in_its_corner() -> None:
    H, W = 8, 8
    image = torch.rand(H, W)
    uniform = torch.full((1, 4), 0.25)
    corner = torch.zeros(1, 4)
    corner[0, 0] = 1.0  # the top-left cell of a 2 x 2 grid
    fig = plots.caption_attention(image, ["even", "corner"], torch.cat([uniform, corner]), (2, 2))
    flat, peaked = (array_of(ax.get_images()[1]) for ax in fig.axes if ax.get_images())
    np.testing.assert_allclose(flat, 0.25, rtol=0, atol=1e-15)
    assert peaked[:2, :2].min() == 1.0  # the top-left block before the first cell centre...
    assert peaked[H - 2 :, :].max() == 0.0  # ...and nothing in the bottom rows
    assert peaked[:, W - 2 :].max() == 0.0


def test_caption_attention_refuses_what_does_not_agree() -> None:
    image, alphas = torch.rand(6, 6), torch.rand(3, 4)
    with pytest.raises(
        ValueError, match="words must have one per row of alphas: expected 3, got 2"
    ):
        plots.caption_attention(image, ["a", "b"], alphas, (2, 2))
    with pytest.raises(ValueError, match=r"one weight per cell of the 3 x 2 grid.*\(L, 6\)"):
        plots.caption_attention(image, ["a", "b", "c"], alphas, (3, 2))
    with pytest.raises(ValueError, match="alphas must be non-negative"):
        plots.caption_attention(image, ["a", "b", "c"], -alphas, (2, 2))
    with pytest.raises(TypeError, match=r"grid must be \(h, w\)"):
        plots.caption_attention(image, ["a", "b", "c"], alphas, [2, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"image must be \(H, W\), got 3-D"):
        plots.caption_attention(image[None], ["a", "b", "c"], alphas, (2, 2))
    with pytest.raises(TypeError, match="words must be a sequence of str"):
        plots.caption_attention(image, "abc", alphas, (2, 2))
