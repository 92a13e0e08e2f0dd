"""Grid LSTM (Kalchbrenner et al. 2015) against NumPy references written from the paper's
equations: the LSTM transform, the time × depth grid with every option, the layer (batch_first,
packed sequences, both directions), the image grid against a plain double loop; gradcheck;
weight tying; saving; bad input; and two tasks it learns."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
import torch
from torch.func import functional_call
from torch.nn.utils.rnn import pack_sequence

from lstmkit import GridLSTM, GridLSTM2d, GridLSTMCell, GridLSTMState, LSTMTransform
from lstmkit.modules.sequence import SequenceModel
from tests.helpers import assert_step_gradients, load_example
from tests.references import np64
from tests.references.grid import np_grid, np_image_grid, np_lstm

B, T, I, H, K = 3, 5, 3, 4, 3
f64 = torch.float64


def randomise(module: torch.nn.Module, std: float = 0.6) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)


def make_cell(**options: Any) -> GridLSTMCell:
    cell = GridLSTMCell(I, H, depth=K, dtype=f64, **options)
    randomise(cell)
    return cell


def random_state(batch: int = B, depth: int = K) -> GridLSTMState:
    return GridLSTMState(
        torch.randn(batch, H, dtype=f64),
        torch.randn(batch, depth * H, dtype=f64),
        torch.randn(batch, depth * H, dtype=f64),
    )


CONFIGS: list[dict[str, Any]] = [
    {},
    {"tied": True},
    {"priority": None},
    {"priority": "time"},
    {"depth_transform": "tanh"},
    {"depth_transform": "relu", "priority": None},
    {"output_inside": False},
    {"project_memory": True},
    {"tied": True, "priority": "time", "depth_transform": "tanh"},
]


# ---------------------------------------------------------------- the transform and the cell


@pytest.mark.parametrize("inside", [True, False])
def test_transform_matches_the_equations(inside: bool) -> None:
    transform = LSTMTransform(7, H, output_inside=inside, dtype=f64)
    randomise(transform, 1.0)
    Hv, m = torch.randn(B, 2, 7, dtype=f64), torch.randn(B, 2, H, dtype=f64)
    h_new, m_new = transform(Hv, m)
    p = {k: np64(v) for k, v in transform.state_dict().items()}
    h_ref, m_ref = np_lstm(np64(Hv), np64(m), p["weight"], p["bias"], inside)
    np.testing.assert_allclose(np64(h_new), h_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(m_new), m_ref, rtol=0, atol=1e-10)
    other, _ = np_lstm(np64(Hv), np64(m), p["weight"], p["bias"], not inside)
    assert np.abs(other - h_ref).max() > 1e-3  # the two output forms are different functions


@pytest.mark.parametrize(
    "options", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_cell_steps_match_the_equations(options: dict[str, Any]) -> None:
    cell = make_cell(**options)
    xs = torch.randn(T, B, I, dtype=f64)
    state = random_state()
    outs_ref, h_time_ref, m_time_ref = np_grid(
        np64(xs), np64(state.h_time), np64(state.m_time), cell.state_dict(), depth=K, **options
    )
    for t, x in enumerate(xs):
        state = cell(x, state)
        np.testing.assert_allclose(np64(state.h), outs_ref[t], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(state.h_time), h_time_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(state.m_time), m_time_ref, rtol=0, atol=1e-10)


def test_priority_decides_which_transform_sees_the_new_vector() -> None:
    x, state = torch.randn(B, I, dtype=f64), random_state()
    results = {}
    for priority in ("depth", "time", None):
        cell = GridLSTMCell(I, H, depth=K, priority=priority, dtype=f64)
        torch.manual_seed(1)
        randomise(cell)  # the same weights for every priority
        results[priority] = cell(x, state)
    none, depth, time = results[None], results["depth"], results["time"]
    # priority on depth: the depth output reads the new time vector; the bottom block's time
    # vector does not depend on that (the blocks above read the changed depth vector below)
    assert (depth.h - none.h).abs().max() > 1e-3
    torch.testing.assert_close(depth.h_time[:, :H], none.h_time[:, :H], rtol=0, atol=0)
    # priority on time: the other way round; no depth transform reads a new time vector
    assert (time.h_time - none.h_time).abs().max() > 1e-3
    torch.testing.assert_close(time.h, none.h, rtol=0, atol=0)


def test_non_lstm_depth_has_no_memory_weights() -> None:
    cell = GridLSTMCell(I, H, depth=K, depth_transform="relu")
    assert cell.weight_depth_b0.shape == (H, 2 * H)  # V_k: one block of rows, not four
    assert cell.weight_time_b0.shape == (4 * H, 2 * H)


@pytest.mark.parametrize(
    "options",
    [{}, {"tied": True, "priority": "time", "project_memory": True}, {"depth_transform": "tanh"}],
)
def test_cell_gradients(options: dict[str, Any]) -> None:
    cell = GridLSTMCell(2, 2, depth=2, dtype=f64, **options)
    randomise(cell)
    state = GridLSTMState(*(torch.randn(2, n, dtype=f64) for n in (2, 4, 4)))
    assert_step_gradients(cell, torch.randn(2, 2, 2, dtype=f64), state)


def test_tied_weights_are_shared_along_depth() -> None:
    untied, tied = GridLSTMCell(I, H, depth=K), GridLSTMCell(I, H, depth=K, tied=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    in_part = H * I + H
    block = (4 * H * 2 * H + 4 * H) * 2  # a time and a depth transform
    assert count(untied) == in_part + K * block
    assert count(tied) == in_part + block
    assert {n for n, _ in tied.named_parameters()} == {
        "weight_in",
        "bias_in",
        "weight_time",
        "bias_time",
        "weight_depth",
        "bias_depth",
    }
    # Changing the one shared time matrix changes the time vector of every block; changing the
    # top block's own matrix in an untied grid leaves the blocks below as they were.
    x, state = torch.randn(B, I, dtype=f64), random_state()
    for cell, name in ((tied.double(), "weight_time"), (untied.double(), f"weight_time_b{K - 1}")):
        before = cell(x, state).h_time
        with torch.no_grad():
            getattr(cell, name).add_(0.5)
        after = cell(x, state).h_time
        changed = [
            bool((after - before)[:, k * H : (k + 1) * H].abs().max() > 1e-6) for k in range(K)
        ]
        assert changed == ([True] * K if cell.tied else [False] * (K - 1) + [True])


# ---------------------------------------------------------------- the sequence layer


def make_layer(**options: Any) -> GridLSTM:
    layer = GridLSTM(I, H, depth=K, dtype=f64, **options)
    randomise(layer)
    return layer


def test_layer_matches_the_equations_layer_by_layer() -> None:
    layer = make_layer(num_layers=2, batch_first=True, tied=True)
    x = torch.randn(B, T, I, dtype=f64)
    h0 = GridLSTMState(*(torch.randn(2, B, n, dtype=f64) for n in (H, K * H, K * H)))
    out, h_n = layer(x, h0)
    sd = layer.state_dict()
    kw: dict[str, Any] = {"depth": K, "tied": True}
    o0, ht0, mt0 = np_grid(
        np64(x.transpose(0, 1)), np64(h0.h_time[0]), np64(h0.m_time[0]), sd, suffix="_l0", **kw
    )
    o1, ht1, mt1 = np_grid(o0, np64(h0.h_time[1]), np64(h0.m_time[1]), sd, suffix="_l1", **kw)
    np.testing.assert_allclose(np64(out.transpose(0, 1)), o1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n.h), np.stack([o0[-1], o1[-1]]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n.h_time), np.stack([ht0, ht1]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n.m_time), np.stack([mt0, mt1]), rtol=0, atol=1e-10)


def test_bidirectional_runs_a_second_grid_backwards() -> None:
    layer = make_layer(bidirectional=True, priority=None)
    x = torch.randn(T, B, I, dtype=f64)
    out, h_n = layer(x)
    sd, zeros = layer.state_dict(), np.zeros((B, K * H))
    fwd, *_ = np_grid(np64(x), zeros, zeros, sd, depth=K, priority=None, suffix="_l0")
    bwd, *_ = np_grid(
        np64(x.flip(0)), zeros, zeros, sd, depth=K, priority=None, suffix="_l0_reverse"
    )
    expected = np.concatenate([fwd, bwd[::-1]], -1)  # (T, B, 2H)
    np.testing.assert_allclose(np64(out), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n.h), np.stack([fwd[-1], bwd[-1]]), rtol=0, atol=1e-10)


def test_lengths_and_packed_sequences_equal_each_sequence_alone() -> None:
    layer = make_layer(bidirectional=True, num_layers=2, batch_first=True)
    x = torch.randn(B, T, I, dtype=f64)
    lengths = [3, T, 1]
    out, h_n = layer(x, lengths=lengths)
    packed_out, packed_h_n = layer(
        pack_sequence([x[b, :n] for b, n in enumerate(lengths)], enforce_sorted=False)
    )
    for b, n in enumerate(lengths):
        alone, alone_h_n = layer(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone[0], rtol=0, atol=1e-12)
        assert torch.count_nonzero(out[b, n:]) == 0
        for field, packed_field, alone_field in zip(h_n, packed_h_n, alone_h_n, strict=True):
            torch.testing.assert_close(field[:, b], alone_field[:, 0], rtol=0, atol=1e-12)
            torch.testing.assert_close(packed_field[:, b], alone_field[:, 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(
        packed_out.data,
        pack_sequence([out[b, :n] for b, n in enumerate(lengths)], enforce_sorted=False).data,
    )


def test_unbatched_input_equals_a_batch_of_one() -> None:
    layer = make_layer()
    x = torch.randn(T, I, dtype=f64)
    out, h_n = layer(x)
    batched, batched_h_n = layer(x.unsqueeze(1))
    torch.testing.assert_close(out, batched[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(h_n.m_time, batched_h_n.m_time[:, 0], rtol=0, atol=0)


def test_sequence_model_reads_the_top_depth_output() -> None:
    layer = make_layer(bidirectional=True, batch_first=True)
    model = SequenceModel(layer, vocab_size=None, output_size=2, readout="last").double()
    x = torch.randn(B, T, I, dtype=f64)
    out, _ = layer(x)
    expected = torch.cat([out[:, -1, :H], out[:, 0, H:]], dim=-1)  # each direction's last step
    torch.testing.assert_close(model.features(x), expected, rtol=0, atol=0)


def test_saves_and_loads() -> None:
    layer = GridLSTM(I, H, depth=K, num_layers=2, bidirectional=True, depth_transform="tanh")
    grid = GridLSTM2d(2, H, patch_size=2, num_layers=2)
    for module, build, x in (
        (
            layer,
            lambda: GridLSTM(
                I, H, depth=K, num_layers=2, bidirectional=True, depth_transform="tanh"
            ),
            torch.randn(T, B, I),
        ),
        (grid, lambda: GridLSTM2d(2, H, patch_size=2, num_layers=2), torch.randn(B, 2, 4, 6)),
    ):
        buffer = io.BytesIO()
        torch.save(module.state_dict(), buffer)
        buffer.seek(0)
        other = build()
        assert not torch.equal(other(x)[0], module(x)[0])  # a fresh draw differs ...
        other.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.equal(other(x)[0], module(x)[0])  # ... until the saved weights are loaded


# ---------------------------------------------------------------- the image grid


@pytest.mark.parametrize(
    ("patch_size", "num_layers", "inside", "shape"),
    [(1, 1, True, (4, 5)), (2, 2, True, (6, 4)), (1, 1, False, (3, 1)), (1, 2, True, (1, 4))],
)
def test_image_grid_matches_a_double_loop(
    patch_size: int, num_layers: int, inside: bool, shape: tuple[int, int]
) -> None:
    grid = GridLSTM2d(
        2, H, patch_size=patch_size, num_layers=num_layers, output_inside=inside, dtype=f64
    )
    randomise(grid)
    images = torch.randn(B, 2, *shape, dtype=f64)
    result = grid(images)
    expected = np_image_grid(np64(images), grid)
    np.testing.assert_allclose(np64(result.outputs), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(result.final), expected[:, -1, -1], rtol=0, atol=1e-10)


def test_image_grid_gradcheck() -> None:
    grid = GridLSTM2d(1, 2, dtype=f64)
    randomise(grid)
    names = [n for n, _ in grid.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in grid.parameters()]
    images = torch.randn(2, 1, 3, 3, dtype=f64, requires_grad=True)

    def run(images: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return functional_call(grid, dict(zip(names, args, strict=True)), (images,)).outputs

    assert torch.autograd.gradcheck(run, (images, *params))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: GridLSTMCell(I, H, depth=0), ValueError, "depth must be positive, got 0"),
        (lambda: GridLSTMCell(I, H, depth=2.0), TypeError, "depth must be an int, got float 2.0"),
        (
            lambda: GridLSTMCell(I, H, priority="row"),
            ValueError,
            "unknown priority 'row'; expected one of 'depth', 'time'",
        ),
        (
            lambda: GridLSTMCell(I, H, depth_transform="gelu"),
            ValueError,
            "unknown depth_transform 'gelu'; expected one of 'lstm', 'tanh', 'relu'",
        ),
        (lambda: GridLSTMCell(I, H, tied=1), TypeError, "tied must be a bool, got int 1"),
        (
            lambda: GridLSTMCell(I, H, project_memory=True, depth_transform="tanh"),
            ValueError,
            "needs depth_transform='lstm'; got depth_transform='tanh'",
        ),
        (
            lambda: GridLSTM(I, H, depth=2)(torch.randn(T, B, I + 1)),
            ValueError,
            "Expected 3, got 4",
        ),
        (
            lambda: GridLSTM2d(2, H)(torch.randn(B, 3, 4, 4)),
            ValueError,
            "with channels = 2, got shape (3, 3, 4, 4)",
        ),
        (
            lambda: GridLSTM2d(2, H)(torch.randn(4, 4)),
            ValueError,
            "images must be (B, channels, height, width)",
        ),
        (
            lambda: GridLSTM2d(2, H, patch_size=2)(torch.randn(B, 2, 4, 5)),
            ValueError,
            "multiples of patch_size = 2, got 4 × 5",
        ),
        (
            lambda: GridLSTM2d(2, H)(torch.randn(B, 2, 4, 4, dtype=f64)),
            TypeError,
            "images has dtype torch.float64",
        ),
        (
            lambda: LSTMTransform(3, H, output_inside="yes"),
            TypeError,
            "output_inside must be a bool",
        ),
    ],
)
def test_bad_input(build: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        build()


def test_bad_state() -> None:
    layer = GridLSTM(I, H, depth=K)
    wrong = GridLSTMState(torch.zeros(1, B, H), torch.zeros(1, B, H), torch.zeros(1, B, K * H))
    with pytest.raises(
        ValueError, match=re.escape("hx.h_time: expected shape (1, 3, 12), got (1, 3, 4)")
    ):
        layer(torch.randn(T, B, I), wrong)


# ---------------------------------------------------------------- learning


def test_deep_grid_learns_the_gap_task() -> None:
    results = load_example("grid_lstm_deep").main(steps=150, depth=2, models=("grid",))
    assert results["grid"] > 0.9  # chance is 1/4


def test_image_grid_learns_which_marks_share_a_row() -> None:
    results = load_example("grid_lstm_image").main(steps=300)
    assert results["grid"] > 0.9  # chance is 1/2
