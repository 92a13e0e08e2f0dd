"""The plots of traces, saturation, gradient flow and attention: what each figure shows is checked
against the numbers it was made from, and the saved files against their formats."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

import lstmkit
from lstmkit import _recording
from lstmkit._recording import Quantity
from lstmkit.analysis import plots
from lstmkit.analysis.gradient_flow import GradientFlow
from lstmkit.analysis.trace import Trace
from lstmkit.modules.attention import AttentionDecoder

T, B, I, H = 9, 3, 3, 6
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def lstm_trace(scale: float = 1.0) -> Trace:
    """A two-layer LSTM's trace on random input; weights and inputs grown by ``scale`` drive the
    gates of both layers into saturation."""
    model = lstmkit.LSTM(I, H, num_layers=2)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return lstmkit.trace(model, scale * torch.randn(T, B, I))


def gru_trace() -> Trace:
    return lstmkit.trace(lstmkit.GRU(I, H), torch.randn(T, B, I))


def image_of(fig: Figure) -> AxesImage:
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 1
    return images[0]


def legend_texts(ax: matplotlib.axes.Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC


def assert_svg(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


# -- heatmap ----------------------------------------------------------------------------------


def test_heatmap_shows_a_state_as_units_by_time_on_a_scale_centred_on_zero() -> None:
    trace = lstm_trace()
    fig = plots.heatmap(trace, "l1", "C_t", sample=2)
    image = image_of(fig)
    expected = trace["l1.C_t"][:, 2].T.double().numpy()  # (H, T)
    np.testing.assert_array_equal(image.get_array(), expected)
    low, high = image.get_clim()
    assert high == pytest.approx(np.abs(expected).max())
    assert low == -high
    assert image.get_cmap().name == "RdBu_r"
    ax = image.axes
    assert ax.get_title() == "l1 (LSTMCell): cell state $C_t$ over time, sequence 2 of 3"
    assert ax.get_xlabel() == "time step"
    assert ax.get_ylabel() == "unit"
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(u) for u in range(H)]
    (colorbar,) = [a for a in fig.axes if a is not ax]
    assert colorbar.get_ylabel() == "cell state $C_t$"


def test_heatmap_shows_a_gate_on_a_zero_to_one_scale_with_the_text_under_the_steps() -> None:
    text = 'if x:\n\t"a$b"'
    trace = lstmkit.trace(lstmkit.LSTM(I, H), torch.randn(len(text), 1, I))
    fig = plots.heatmap(trace, "l0", "f_t", units=[4, 1], text=text)
    image = image_of(fig)
    np.testing.assert_array_equal(
        image.get_array(), trace["l0.f_t"][:, 0, [4, 1]].T.double().numpy()
    )
    assert image.get_clim() == (0.0, 1.0)
    ax = image.axes
    assert ax.get_title() == "l0 (LSTMCell): forget gate $f_t$ over time"
    assert ax.get_xlabel().startswith("time step")
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == ["i", "f", "␣", "x", ":", "↵", "⇥", '"', "a", "$", "b", '"']
    assert [t.get_text() for t in ax.get_yticklabels()] == ["4", "1"]


def test_heatmap_of_a_long_text_numbers_the_steps(tmp_path: Path) -> None:
    steps = plots.MAX_TICK_LABELS + 1
    trace = lstmkit.trace(lstmkit.GRU(I, 2), torch.randn(steps, 1, I))
    fig = plots.heatmap(trace, "l0", "h_t", text="x" * steps, path=tmp_path / "h.png")
    ax = image_of(fig).axes
    assert ax.get_xlabel() == "time step"
    assert "x" not in {t.get_text() for t in ax.get_xticklabels()}
    assert_png(tmp_path / "h.png")


def test_heatmap_saves_png_and_svg_with_the_users_text_escaped(tmp_path: Path) -> None:
    text = "<script>--></g>&"
    trace = lstmkit.trace(lstmkit.LSTM(I, H), torch.randn(len(text), 1, I))
    plots.heatmap(trace, "l0", "o_t", text=text, path=tmp_path / "deep" / "o.png")
    assert_png(tmp_path / "deep" / "o.png")
    plots.heatmap(trace, "l0", "o_t", text=text, path=tmp_path / "o.SVG")
    root = assert_svg(tmp_path / "o.SVG")
    assert not any(el.tag.endswith("script") for el in root.iter())
    assert "<script>" not in (tmp_path / "o.SVG").read_text()


def test_figures_are_not_kept_by_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plots.heatmap(lstm_trace(), "l0", "h_t")
    plots.saturation(lstm_trace())
    assert plt.get_fignums() == before
    assert fig.canvas.manager is None


# -- unit traces ------------------------------------------------------------------------------


def test_unit_traces_draw_one_panel_per_unit_and_one_line_per_quantity(tmp_path: Path) -> None:
    trace = lstm_trace()
    fig = plots.unit_traces(trace, "l0", units=[5, 2], sample=1, path=tmp_path / "u.svg")
    assert len(fig.axes) == 2
    names = ["f_t", "i_t", "o_t", "C_t", "h_t"]
    for ax, unit in zip(fig.axes, [5, 2], strict=True):
        assert ax.get_title(loc="left") == f"unit {unit}"
        assert ax.get_ylabel() == "value"
        lines = [
            line for line in ax.get_lines() if line.get_label() in map(plots.quantity_label, names)
        ]
        assert len(lines) == len(names)
        for line, name in zip(lines, names, strict=True):
            np.testing.assert_array_equal(line.get_xdata(), np.arange(T))
            np.testing.assert_array_equal(
                line.get_ydata(), trace[f"l0.{name}"][:, 1, unit].double().numpy()
            )
    assert legend_texts(fig.axes[0]) == [
        "forget gate $f_t$",
        "input gate $i_t$",
        "output gate $o_t$",
        "cell state $C_t$",
        "hidden state $h_t$",
    ]
    assert fig.axes[-1].get_xlabel() == "time step"
    assert fig.get_suptitle() == "l0 (LSTMCell): single units over time, sequence 1 of 3"
    assert_svg(tmp_path / "u.svg")


def test_unit_traces_default_to_the_quantities_of_a_gru_and_take_chosen_names() -> None:
    trace = gru_trace()
    fig = plots.unit_traces(trace, "l0", units=3)
    assert len(fig.axes) == 1
    assert legend_texts(fig.axes[0]) == [
        "reset gate $r_t$",
        "update gate $z_t$",
        "candidate state $n_t$",
        "hidden state $h_t$",
    ]
    fig = plots.unit_traces(trace, "l0", units=[0, 1, 2], names=["h_t"])
    assert len(fig.axes) == 3
    assert legend_texts(fig.axes[0]) == ["hidden state $h_t$"]


# -- saturation -------------------------------------------------------------------------------


def test_saturation_fractions_count_strictly_below_and_above_the_thresholds() -> None:
    gate = torch.tensor(
        [  # (T=5, B=1, H=2): unit 0 has one value each side; unit 1 sits on both thresholds
            [[0.05, 0.1]],
            [[0.5, 0.9]],
            [[0.95, 0.1]],
            [[0.3, 0.9]],
            [[0.99, 0.5]],
        ]
    )
    trace = Trace({"x.f_t": gate}, {"cells": {"x": {"class": "LSTMCell", "reverse": False}}})
    left, right = plots.saturation_fractions(trace, "x", "f_t")
    assert left.dtype == right.dtype == np.float64
    np.testing.assert_array_equal(left, [0.2, 0.0])
    np.testing.assert_array_equal(right, [0.4, 0.0])


def test_saturation_fractions_match_a_count_over_every_step_and_sequence() -> None:
    trace = lstm_trace(scale=4.0)
    values = trace["l1.i_t"].double().numpy()  # (T, B, H)
    left_count, right_count = np.zeros(H), np.zeros(H)
    for t in range(T):
        for b in range(B):
            for u in range(H):
                left_count[u] += values[t, b, u] < 0.1
                right_count[u] += values[t, b, u] > 0.9
    left, right = plots.saturation_fractions(trace, "l1", "i_t")
    assert left_count.sum() > 0
    assert right_count.sum() > 0
    np.testing.assert_allclose(left, left_count / (T * B), rtol=0, atol=1e-12)
    np.testing.assert_allclose(right, right_count / (T * B), rtol=0, atol=1e-12)


def test_saturation_plots_one_panel_per_gate_with_a_dot_per_unit(tmp_path: Path) -> None:
    trace = lstm_trace(scale=4.0)
    fig = plots.saturation(trace, path=tmp_path / "s.png")
    assert_png(tmp_path / "s.png")
    assert [ax.get_title() for ax in fig.axes] == [
        "forget gate $f_t$",
        "input gate $i_t$",
        "output gate $o_t$",
    ]
    for ax, gate in zip(fig.axes, ["f_t", "i_t", "o_t"], strict=True):
        assert ax.get_xlabel() == "fraction of steps left-saturated (< 0.1)"
        assert ax.get_ylabel() == "fraction right-saturated (> 0.9)"
        assert ax.get_xlim()[0] <= 0 <= 1 <= ax.get_xlim()[1]
        assert ax.get_ylim()[0] <= 0 <= 1 <= ax.get_ylim()[1]
        diagonal = [
            line
            for line in ax.get_lines()
            if list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == [0, 1]
        ]
        assert len(diagonal) == 1
        dots = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert [d.get_label() for d in dots] == ["l0", "l1"]
        for dot, cell in zip(dots, ["l0", "l1"], strict=True):
            left, right = plots.saturation_fractions(trace, cell, gate)
            np.testing.assert_array_equal(dot.get_offsets(), np.stack([left, right], axis=1))
    assert legend_texts(fig.axes[-1])[-2:] == ["l0", "l1"]
    assert "Karpathy et al. 2015" in fig.get_suptitle()


def test_saturation_of_a_gru_shows_reset_and_update_gates_of_the_chosen_cells() -> None:
    trace = lstmkit.trace(lstmkit.GRU(I, H, num_layers=2), torch.randn(T, B, I))
    fig = plots.saturation(trace, cells=["l1"])
    assert [ax.get_title() for ax in fig.axes] == ["reset gate $r_t$", "update gate $z_t$"]
    for ax, gate in zip(fig.axes, ["r_t", "z_t"], strict=True):
        (dots,) = [c for c in ax.collections if isinstance(c, PathCollection)]
        left, right = plots.saturation_fractions(trace, "l1", gate)
        np.testing.assert_array_equal(dots.get_offsets(), np.stack([left, right], axis=1))


# -- gradient flow ----------------------------------------------------------------------------


def random_flow(label: str, steps: int, *, with_c: bool) -> GradientFlow:
    h = np.exp(np.cumsum(np.random.default_rng(steps).uniform(-1.0, 0.1, steps)))[::-1].copy()
    c = np.random.default_rng(steps + 1).uniform(0.1, 1.0, steps) if with_c else None
    return GradientFlow(label, "gap:gap=10", np.arange(steps - 1, -1, -1), h, c)


def test_gradient_flow_draws_h_solid_and_c_dashed_on_a_log_scale(tmp_path: Path) -> None:
    rnn = random_flow("rnn", 12, with_c=False)
    lstm = random_flow("lstm:chrono=10", 12, with_c=True)
    fig = plots.gradient_flow([rnn, lstm], path=tmp_path / "g.svg")
    assert_svg(tmp_path / "g.svg")
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "steps between $h_t$ and the loss"
    assert "gap:gap=10" in ax.get_title()
    lines = ax.get_lines()
    assert len(lines) == 3
    expected = [(rnn.h_norm, "-"), (lstm.h_norm, "-"), (lstm.c_norm, "--")]
    for line, (values, style) in zip(lines, expected, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), values)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(11, -1, -1))
        assert line.get_linestyle() == style
    assert lines[1].get_color() == lines[2].get_color() != lines[0].get_color()
    texts = legend_texts(ax)
    assert [t.split(":")[0] for t in texts] == ["rnn", "lstm", "lstm"]
    assert "partial h_t" in texts[1]
    assert "partial C_t" in texts[2]


def test_gradient_flow_shows_a_label_with_dollars_as_written(tmp_path: Path) -> None:
    flow = random_flow(r"odd $\frac{ label", 5, with_c=False)
    plots.gradient_flow(flow, path=tmp_path / "g.png")  # unescaped, '$' would start math mode
    assert_png(tmp_path / "g.png")


# -- attention --------------------------------------------------------------------------------


def attention_trace() -> Trace:
    decoder = AttentionDecoder(3, 4, 5)
    return lstmkit.trace(decoder, (torch.randn(2, 6, 3), torch.randn(2, 7, 4)))


def test_attention_shows_the_weights_of_one_sequence_with_labels(tmp_path: Path) -> None:
    trace = attention_trace()
    alphas = trace["AttentionDecoder.alpha_t"]  # (T=6, B=2, L=7)
    fig = plots.attention(
        alphas,
        inputs="ab cdef",
        outputs=[f"y{k}" for k in range(6)],
        sample=1,
        path=tmp_path / "a.png",
    )
    assert_png(tmp_path / "a.png")
    image = image_of(fig)
    np.testing.assert_array_equal(image.get_array(), alphas[:, 1].double().numpy())
    ax = image.axes
    assert ax.get_xlabel() == "annotation (input position)"
    assert ax.get_ylabel() == "output step"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "␣", "c", "d", "e", "f"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"y{k}" for k in range(6)]
    (colorbar,) = [a for a in fig.axes if a is not ax]
    assert "α" in colorbar.get_ylabel()
    assert ax.get_title().startswith("Attention weights α")


def test_attention_takes_a_2d_array_or_a_trace() -> None:
    weights = np.random.default_rng(3).dirichlet(np.ones(5), size=4)  # (T_out=4, L=5)
    np.testing.assert_array_equal(image_of(plots.attention(weights)).get_array(), weights)
    trace = attention_trace()
    np.testing.assert_array_equal(
        image_of(plots.attention(trace)).get_array(),
        trace["AttentionDecoder.alpha_t"][:, 0].double().numpy(),
    )


# -- the standard set -------------------------------------------------------------------------


def test_plot_trace_writes_every_figure_of_a_trace(tmp_path: Path) -> None:
    trace = attention_trace()
    written = plots.plot_trace(trace, tmp_path / "figs", suffix=".svg", units=[0, 4])
    names = sorted(p.name for p in written)
    quantities = ["C_t", "C_tilde", "f_t", "h_t", "i_t", "o_t"]
    assert names == sorted(
        ["AttentionDecoder.attention.svg", "AttentionDecoder.beta_t.svg", "saturation.svg"]
        + [f"cell.{q}.svg" for q in quantities]
        + ["cell.units.svg"]
    )
    for path in written:
        assert path.parent == tmp_path / "figs"
        assert_svg(path)


# -- names a new cell family declares ---------------------------------------------------------


def made_up_trace() -> Trace:
    """A trace of a cell lstmkit does not ship: ``zeta_t`` and ``eta_t`` (declared by the
    ``made_up_cell`` fixture) and ``xi_t`` (declared by nobody), all within [0.3, 0.7], and h_t."""
    values = {f"x.{name}": 0.3 + 0.4 * torch.rand(T, 1, H) for name in ("zeta_t", "eta_t", "xi_t")}
    values["x.h_t"] = torch.tanh(torch.randn(T, 1, H))
    return Trace(values, {"cells": {"x": {"class": "ZetaCell", "reverse": False}}})


def test_a_quantity_a_new_cell_declares_is_labelled_and_scaled_by_the_declaration(
    made_up_cell: dict[str, Quantity], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    zeta, eta = made_up_cell["zeta_t"], made_up_cell["eta_t"]
    trace = made_up_trace()
    image = image_of(plots.heatmap(trace, "x", "zeta_t"))
    assert image.axes.get_title() == f"x (ZetaCell): {zeta.what} {zeta.symbol} over time"
    assert image.get_clim() == (0.0, 1.0)  # a gate: the fixed 0-1 scale
    image = image_of(plots.heatmap(trace, "x", "eta_t"))
    assert image.axes.get_title() == f"x (ZetaCell): {eta.what} {eta.symbol} over time"
    assert image.get_clim() == (0.0, 1.0)  # a fraction: the same scale
    image = image_of(plots.heatmap(trace, "x", "xi_t"))
    assert image.axes.get_title() == "x (ZetaCell): xi_t over time"  # undeclared: its name
    low, high = image.get_clim()
    assert low == -high
    assert 0.3 < high <= 0.7
    fig = plots.unit_traces(trace, "x", units=1, names=["zeta_t", "eta_t", "xi_t"])
    assert legend_texts(fig.axes[0]) == [
        r"zeta gate of a made-up cell $\zeta_t$",
        r"share of a made-up mixture $\eta_t$",
        "xi_t",
    ]

    # a gate is drawn in the saturation plot, a fraction is not a gate
    fig = plots.saturation(trace)
    assert [ax.get_title() for ax in fig.axes] == [r"zeta gate of a made-up cell $\zeta_t$"]
    left, right = plots.saturation_fractions(trace, "x", "zeta_t")
    assert left.tolist() == right.tolist() == [0.0] * H  # never below 0.1 or above 0.9
    with pytest.raises(ValueError, match="'eta_t' is not a gate; the gates of 'x' are zeta_t"):
        plots.saturation_fractions(trace, "x", "eta_t")
    assert plots.GATES[:6] == ("f_t", "i_t", "o_t", "r_t", "z_t", "d_t")  # plots.GATE_ORDER
    assert "zeta_t" in plots.GATES[6:]
    assert plots.QUANTITIES["eta_t"] == (eta.what, eta.symbol, True)
    assert plots.QUANTITIES["C_t"] == ("cell state", r"$C_t$", False)
    written = plots.plot_trace(trace, tmp_path, units=[0])
    heatmaps = [f"x.{n}.png" for n in ("eta_t", "h_t", "xi_t", "zeta_t")]
    assert sorted(p.name for p in written) == sorted([*heatmaps, "x.units.png", "saturation.png"])

    monkeypatch.undo()  # the declarations are gone: plain names, a diverging scale, no gate
    assert "zeta_t" not in _recording.QUANTITIES
    image = image_of(plots.heatmap(trace, "x", "zeta_t"))
    assert image.axes.get_title() == "x (ZetaCell): zeta_t over time"
    assert image.get_clim()[0] < 0
    assert "zeta_t" not in plots.GATES
    with pytest.raises(ValueError, match="no cell of this trace has a gate"):
        plots.saturation(trace)


# -- bad arguments ----------------------------------------------------------------------------


def test_bad_arguments_are_refused_with_what_was_expected(tmp_path: Path) -> None:
    trace = lstm_trace()
    with pytest.raises(ValueError, match=r"unknown cell 'l2'; this trace has l0, l1"):
        plots.heatmap(trace, "l2", "C_t")
    with pytest.raises(ValueError, match=r"unknown quantity 'r_t' of cell 'l0'; it has C_t, "):
        plots.heatmap(trace, "l0", "r_t")
    with pytest.raises(ValueError, match=r"sample must be in \[0, 3\)"):
        plots.heatmap(trace, "l0", "C_t", sample=3)
    with pytest.raises(ValueError, match=r"units must be in \[0, 6\)"):
        plots.heatmap(trace, "l0", "C_t", units=[0, 6])
    with pytest.raises(TypeError, match="units must be a non-empty sequence"):
        plots.unit_traces(trace, "l0", units=[])
    with pytest.raises(ValueError, match="one character per step: expected 9, got 4"):
        plots.heatmap(trace, "l0", "C_t", text="abcd")
    with pytest.raises(ValueError, match=r"\.png or \.svg, got 'x\.pdf'"):
        plots.heatmap(trace, "l0", "C_t", path=tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(TypeError, match="trace must be an lstmkit Trace"):
        plots.saturation(trace.values)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="'C_t' is not a gate; the gates of 'l0' are f_t, i_t, o_t"
    ):
        plots.saturation_fractions(trace, "l0", "C_t")
    rnn = lstmkit.trace(lstmkit.RNN(I, H), torch.randn(T, B, I))
    with pytest.raises(ValueError, match="no cell of this trace has a gate"):
        plots.saturation(rnn)
    with pytest.raises(TypeError, match="flows must be a non-empty sequence"):
        plots.gradient_flow([])
    bad = GradientFlow("x", "t", np.arange(3), np.ones(4), None)
    with pytest.raises(ValueError, match=r"h_norm must have one value per distance"):
        plots.gradient_flow([bad])
    with pytest.raises(ValueError, match=r"alphas must be \(T_out, L\) or \(T, B, L\), got 4-D"):
        plots.attention(torch.rand(2, 3, 4, 5))
    with pytest.raises(ValueError, match="exactly one attention cell's alpha_t, found none"):
        plots.attention(trace)
    with pytest.raises(ValueError, match="one label per annotation: expected 7, got 2"):
        plots.attention(attention_trace(), inputs=["a", "b"])
