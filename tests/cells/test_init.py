"""How cells start: orthogonal recurrent blocks in every family, the IRNN's identity, the GRU's
update-gate bias and chrono initialisation, checked in float64 against the documented values
and against a GRU step written here from its equations."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lstmkit import (
    ClockworkCell,
    DepthGatedLSTMCell,
    GridLSTMCell,
    GRUCell,
    LSTMCell,
    MUTCell,
    RNNCell,
)
from tests.references import np64, sigmoid

I, H = 5, 6
F64 = torch.float64


def assert_orthogonal(W: Tensor, atol: float = 1e-12) -> None:
    """Orthonormal columns (a square or tall W: WᵀW = I) or rows (a wide one: WWᵀ = I)."""
    w = np64(W)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), rtol=0, atol=atol)


def row_blocks(W: Tensor, rows: int) -> list[Tensor]:
    return list(W.detach().split(rows, dim=0))


# Each case: a cell built with the given recurrent_init, and the recurrent blocks that must be
# orthogonal (each gate's rows of the matrix that reads h_{t-1}, as the docstrings say).
Blocks = Callable[[nn.Module], list[Tensor]]
CASES: dict[str, tuple[Callable[..., nn.Module], Blocks]] = {
    "rnn": (lambda **o: RNNCell(I, H, **o), lambda c: [c.weight_hh]),
    "lstm": (lambda **o: LSTMCell(I, H, **o), lambda c: row_blocks(c.weight_hh, H)),
    "lstm-CIFG": (
        lambda **o: LSTMCell(I, H, variant="CIFG", **o),
        lambda c: row_blocks(c.weight_hh, H),
    ),
    "lstm-FGR": (
        lambda **o: LSTMCell(I, H, variant="FGR", **o),
        lambda c: row_blocks(c.weight_hh, H),
    ),
    "lstm-layer-norm": (
        lambda **o: LSTMCell(I, H, layer_norm=True, **o),
        lambda c: row_blocks(c.weight_hh, H),
    ),
    # (H, P) blocks with orthonormal columns, and the projection (P, H) with orthonormal rows
    "lstm-projection": (
        lambda **o: LSTMCell(I, H, proj_size=4, **o),
        lambda c: [*row_blocks(c.weight_hh, H), c.weight_hr],
    ),
    "gru": (lambda **o: GRUCell(I, H, **o), lambda c: row_blocks(c.weight_hh, H)),
    "gru-reset-before": (
        lambda **o: GRUCell(I, H, reset_after=False, **o),
        lambda c: row_blocks(c.weight_hh, H),
    ),
    "gru-layer-norm": (
        lambda **o: GRUCell(I, H, layer_norm=True, **o),
        lambda c: row_blocks(c.weight_hh, H),
    ),
    "mut1": (lambda **o: MUTCell(H, H, kind=1, **o), lambda c: [c.weight_hr, c.weight_hh]),
    "mut2": (
        lambda **o: MUTCell(H, H, kind=2, **o),
        lambda c: [c.weight_hz, c.weight_hr, c.weight_hh],
    ),
    "mut3": (
        lambda **o: MUTCell(I, H, kind=3, **o),
        lambda c: [c.weight_hz, c.weight_hr, c.weight_hh],
    ),
    "dglstm": (
        lambda **o: DepthGatedLSTMCell(I, H, num_layers=2, **o),
        lambda c: [*row_blocks(c.weight_hh_l0, H), *row_blocks(c.weight_hh_l1, H)],
    ),
    # each transform's blocks that read its own dimension: h^t columns of W^t, h^d of W^d
    "grid": (
        lambda **o: GridLSTMCell(I, H, depth=2, **o),
        lambda c: [
            b
            for k in range(2)
            for b in (
                *row_blocks(getattr(c, f"weight_time_b{k}")[:, :H], H),
                *row_blocks(getattr(c, f"weight_depth_b{k}")[:, H:], H),
            )
        ],
    ),
    "grid-tied-tanh": (
        lambda **o: GridLSTMCell(I, H, depth=3, tied=True, depth_transform="tanh", **o),
        lambda c: [*row_blocks(c.weight_time[:, :H], H), c.weight_depth[:, H:]],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_orthogonal_gives_every_recurrent_block_its_own_orthogonal_matrix(case: str) -> None:
    build, blocks = CASES[case]
    cell = build(recurrent_init="orthogonal", dtype=F64)
    found = blocks(cell)
    for block in found:
        assert_orthogonal(block)
    # each block its own draw, not one matrix repeated
    firsts = {round(float(b[0, 0].detach()), 12) for b in found}
    assert len(firsts) == len(found)


@pytest.mark.parametrize("case", list(CASES))
def test_orthogonal_changes_the_recurrent_blocks_and_nothing_else(case: str, seed: int) -> None:
    build, blocks = CASES[case]
    torch.manual_seed(seed)
    plain = build(dtype=F64)
    torch.manual_seed(seed)
    ortho = build(recurrent_init="orthogonal", dtype=F64)
    with torch.no_grad():
        for new, drawn in zip(blocks(ortho), blocks(plain), strict=True):
            gram = np64(drawn).T @ np64(drawn)
            assert np.abs(gram - np.eye(gram.shape[0])).max() > 0.1  # a uniform draw is not
            new.copy_(drawn)  # (the blocks are views of the parameters)
    # with the blocks put back, every parameter is the uniform draw it was
    for (name, p), (_, q) in zip(plain.named_parameters(), ortho.named_parameters(), strict=True):
        assert torch.equal(p, q), name


def test_clockwork_orthogonal_keeps_the_mask_and_puts_every_eigenvalue_on_the_unit_circle() -> None:
    cell = ClockworkCell(I, 10, module_sizes=[4, 3, 2, 1], recurrent_init="orthogonal", dtype=F64)
    W = cell.weight_hh.detach()
    start = 0
    for size in cell.module_sizes:  # each module's own block
        assert_orthogonal(W[start : start + size, start : start + size])
        start += size
    mask = cell.recurrent_mask
    assert bool((W[~mask] == 0).all())  # fast modules do not feed slower ones
    above = mask & ~torch.block_diag(*(torch.ones(k, k, dtype=torch.bool) for k in [4, 3, 2, 1]))
    bound = 1 / math.sqrt(10)
    assert bool((W[above].abs() <= bound).all())  # slow-to-fast blocks: the uniform draw
    assert float(W[above].abs().max()) > 0
    moduli = torch.linalg.eigvals(W).abs()
    torch.testing.assert_close(moduli, torch.ones(10, dtype=F64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_orthogonal_in_lower_precision_is_the_float64_draw_rounded(dtype: torch.dtype) -> None:
    cell = LSTMCell(I, H, recurrent_init="orthogonal", dtype=dtype)
    eps = torch.finfo(dtype).eps
    for block in row_blocks(cell.weight_hh, H):
        assert block.dtype == dtype
        assert_orthogonal(block, atol=8 * eps)


def test_the_irnn_start_is_the_identity_zero_biases_and_tiny_input_weights() -> None:
    cell = RNNCell(64, 128, nonlinearity="relu", recurrent_init="identity", dtype=F64)
    assert torch.equal(cell.weight_hh, torch.eye(128, dtype=F64))
    assert cell.bias_ih is not None
    assert cell.bias_hh is not None
    assert torch.equal(cell.bias_ih, torch.zeros(128, dtype=F64))
    assert torch.equal(cell.bias_hh, torch.zeros(128, dtype=F64))
    w = np64(cell.weight_ih).ravel()  # N(0, 0.001²), 8192 draws
    assert abs(w.std() / 0.001 - 1) < 0.05
    assert abs(w.mean()) < 4 * 0.001 / math.sqrt(w.size)
    # a step is then relu(h_{t-1} + W_ih x_t): the state carried on, the input added
    x, h = torch.randn(7, 64, dtype=F64), torch.randn(7, 128, dtype=F64).abs()
    expected = np.maximum(np64(h) + np64(x) @ w.reshape(128, 64).T, 0.0)
    np.testing.assert_allclose(np64(cell(x, h)), expected, rtol=0, atol=1e-14)


def test_the_clockwork_irnn_start_fits_the_clock() -> None:
    cell = ClockworkCell(I, 8, nonlinearity="relu", recurrent_init="identity", dtype=F64)
    assert torch.equal(cell.weight_hh, torch.eye(8, dtype=F64))
    assert cell.bias is not None
    assert torch.equal(cell.bias, torch.zeros(8, dtype=F64))
    assert np.abs(np64(cell.weight_ih)).max() < 0.006  # 6 standard deviations of 0.001


@pytest.mark.parametrize(
    "build",
    [
        lambda **o: GRUCell(I, H, **o),
        lambda **o: LSTMCell(I, H, **o),
        lambda **o: MUTCell(I, H, kind=3, **o),
        lambda **o: DepthGatedLSTMCell(I, H, num_layers=2, **o),
        lambda **o: GridLSTMCell(I, H, **o),
    ],
    ids=["gru", "lstm", "mut", "dglstm", "grid"],
)
def test_identity_is_refused_where_gates_read_the_state(build: Callable[..., Any]) -> None:
    with pytest.raises(
        ValueError,
        match=r"recurrent_init must be one of 'uniform', 'orthogonal', got 'identity'; "
        r"'identity' \(Le et al. 2015's IRNN\) is for the ungated cells rnn and clockwork",
    ):
        build(recurrent_init="identity")
    with pytest.raises(ValueError, match="must be one of 'uniform', 'orthogonal', got 'ortho'"):
        build(recurrent_init="ortho")
    with pytest.raises(TypeError, match="recurrent_init must be a string, got int 1"):
        build(recurrent_init=1)


def test_rnn_and_clockwork_name_identity_among_their_choices() -> None:
    expected = "one of 'uniform', 'orthogonal', 'identity', got 'eye'"
    for build in (RNNCell, ClockworkCell):
        with pytest.raises(ValueError, match=expected):
            build(I, H, recurrent_init="eye")


# ---------------------------------------------------------------- the GRU's update gate


def gru_step64(
    sd: dict[str, Tensor], x: Tensor, h: Tensor, *, reset_after: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One GRU step in float64 from the equations (torch.nn's layout: row blocks r, z, n of H
    rows each), and its update gate z_t: returns ``(h_t, z_t)``, each ``(B, H)``."""
    W_i, W_h = np64(sd["weight_ih"]), np64(sd["weight_hh"])
    H = W_h.shape[1]
    b_i, b_h = np64(sd["bias_ih"]), np64(sd["bias_hh"])
    xv, hv = np64(x), np64(h)
    r_, z_, n_ = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)
    r = sigmoid(xv @ W_i[r_].T + b_i[r_] + hv @ W_h[r_].T + b_h[r_])
    z = sigmoid(xv @ W_i[z_].T + b_i[z_] + hv @ W_h[z_].T + b_h[z_])
    if reset_after:
        n = np.tanh(xv @ W_i[n_].T + b_i[n_] + r * (hv @ W_h[n_].T + b_h[n_]))
    else:
        n = np.tanh(xv @ W_i[n_].T + b_i[n_] + (r * hv) @ W_h[n_].T + b_h[n_])
    return (1 - z) * n + z * hv, z


@pytest.mark.parametrize("reset_after", [True, False])
def test_update_bias_lands_in_the_z_rows_and_makes_the_unit_keep_its_state(
    reset_after: bool, seed: int
) -> None:
    torch.manual_seed(seed)
    plain = GRUCell(I, H, reset_after=reset_after, dtype=F64)
    torch.manual_seed(seed)
    cell = GRUCell(I, H, reset_after=reset_after, update_bias=3.0, dtype=F64)
    z_rows = torch.zeros(3 * H, dtype=torch.bool)
    z_rows[H : 2 * H] = True
    for b in (cell.bias_ih, cell.bias_hh, plain.bias_ih, plain.bias_hh):
        assert b is not None
    assert torch.equal(cell.bias_ih[z_rows], torch.full((H,), 3.0, dtype=F64))
    assert torch.equal(cell.bias_hh[z_rows], torch.zeros(H, dtype=F64))
    assert torch.equal(cell.bias_ih[~z_rows], plain.bias_ih[~z_rows])  # r and n as drawn
    assert torch.equal(cell.bias_hh[~z_rows], plain.bias_hh[~z_rows])
    assert torch.equal(cell.weight_ih, plain.weight_ih)
    assert torch.equal(cell.weight_hh, plain.weight_hh)

    x, h = torch.randn(256, I, dtype=F64), torch.randn(256, H, dtype=F64)
    expected, z = gru_step64(cell.state_dict(), x, h, reset_after=reset_after)
    np.testing.assert_allclose(np64(cell(x, h)), expected, rtol=0, atol=1e-12)
    assert z.mean() > 0.9  # σ(3) ≈ 0.95 of h_{t-1} kept
    _, z_plain = gru_step64(plain.state_dict(), x, h, reset_after=reset_after)
    assert 0.3 < z_plain.mean() < 0.7  # torch.nn's start keeps about half
    # and a negative bias lets the candidate in: the post's z' = 1 - z near 1
    let_in = GRUCell(I, H, reset_after=reset_after, update_bias=-3.0, dtype=F64)
    assert gru_step64(let_in.state_dict(), x, h, reset_after=reset_after)[1].mean() < 0.1


@pytest.mark.parametrize("reset_after", [True, False])
def test_chrono_draws_b_z_log_uniform_and_the_gate_keeps_the_state(
    reset_after: bool, seed: int
) -> None:
    T_max, wide = 200, 400
    torch.manual_seed(seed)
    plain = GRUCell(wide, wide, reset_after=reset_after, dtype=F64)
    torch.manual_seed(seed)
    cell = GRUCell(wide, wide, reset_after=reset_after, chrono=T_max, dtype=F64)
    assert cell.bias_ih is not None
    assert cell.bias_hh is not None
    assert plain.bias_ih is not None
    z_ih, z_hh = cell.bias_ih[wide : 2 * wide], cell.bias_hh[wide : 2 * wide]
    assert torch.equal(z_hh, torch.zeros(wide, dtype=F64))
    u = np.exp(np64(z_ih))  # U(1, T_max - 1)
    assert u.min() >= 1.0
    assert u.max() <= T_max - 1
    assert abs(u.mean() - T_max / 2) < 4 * (T_max - 2) / math.sqrt(12 * wide)
    assert u.min() < 1 + 0.05 * T_max  # the whole range
    assert u.max() > T_max - 1 - 0.05 * T_max
    for rows in (slice(0, wide), slice(2 * wide, 3 * wide)):
        assert torch.equal(cell.bias_ih[rows], plain.bias_ih[rows])

    # the keep gate z_t at the start, on fresh inputs: about σ(log u) = 1 - 1/(1 + u) per unit
    x, h = torch.randn(64, wide, dtype=F64), torch.randn(64, wide, dtype=F64)
    step, z = gru_step64(cell.state_dict(), x, h, reset_after=reset_after)
    np.testing.assert_allclose(np64(cell(x, h)), step, rtol=0, atol=1e-11)
    assert z.mean() > 0.9
    per_unit, expected = z.mean(axis=0), u / (1 + u)
    assert np.corrcoef(per_unit, expected)[0, 1] > 0.8
    assert np.abs(per_unit - expected).mean() < 0.05
    _, z_plain = gru_step64(plain.state_dict(), x, h, reset_after=reset_after)
    assert 0.3 < z_plain.mean() < 0.7  # torch.nn's start keeps about half


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"update_bias": 1.0, "chrono": 10},
            ValueError,
            r"give update_bias or chrono, not both: both set the update gate's bias; "
            r"got update_bias=1.0, chrono=10",
        ),
        ({"chrono": 2}, ValueError, r"chrono needs T_max >= 3 .*got 2"),
        ({"chrono": 2.5}, TypeError, "chrono must be an int T_max, got float 2.5"),
        ({"chrono": True}, TypeError, "chrono must be an int T_max, got bool True"),
        ({"update_bias": "big"}, TypeError, "update_bias must be a number, got str 'big'"),
        (
            {"update_bias": 2.0, "bias": False},
            ValueError,
            "update_bias sets the update gate's bias, but this cell has bias=False",
        ),
        (
            {"chrono": 20, "bias": False},
            ValueError,
            "chrono sets the update gate's bias, but this cell has bias=False",
        ),
    ],
)
def test_bad_gru_initialisation_options_say_what_was_expected(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        GRUCell(I, H, **options)


def test_the_options_reach_spawned_cells_and_the_repr() -> None:
    cell = GRUCell(I, H, chrono=30, recurrent_init="orthogonal", dtype=F64)
    other = cell.spawn(H)
    assert (other.chrono, other.update_bias, other.recurrent_init) == (30, None, "orthogonal")
    assert "chrono=30, recurrent_init='orthogonal'" in repr(cell)
    for block in row_blocks(other.weight_hh, H):
        assert_orthogonal(block)
    lstm = LSTMCell(I, H, recurrent_init="orthogonal", proj_size=2).spawn(2)
    assert lstm.config.recurrent_init == "orthogonal"
    assert RNNCell(I, H, recurrent_init="identity").spawn(3).recurrent_init == "identity"


def test_the_image_grid_starts_its_hidden_columns_orthogonal_and_leaves_the_input_alone() -> None:
    from lstmkit import GridLSTM2d, LSTMTransform

    torch.manual_seed(3)
    grid = GridLSTM2d(3, H, recurrent_init="orthogonal", dtype=F64)  # columns h^1, h^2, x
    blocks = []
    for transform in grid.transforms(0):
        W = transform.weight.detach()
        blocks += [*row_blocks(W[:, :H], H), *row_blocks(W[:, H : 2 * H], H)]
        inputs = W[:, 2 * H :]
        assert inputs.abs().max() <= 1 / math.sqrt(H)  # torch.nn's uniform draw, untouched
        assert np.abs(np64(inputs).T @ np64(inputs) - np.eye(3)).max() > 0.1
        assert torch.equal(transform.bias.detach()[H : 2 * H], torch.ones(H, dtype=F64))
    assert len(blocks) == 16  # 2 transforms x 2 hidden vectors x 4 gates
    for block in blocks:
        assert_orthogonal(block)
    assert len({round(float(b[0, 0]), 12) for b in blocks}) == 16
    assert "recurrent_init='orthogonal', hidden_inputs=2" in repr(grid)
    with pytest.raises(ValueError, match="needs hidden_inputs"):
        LSTMTransform(6, H, recurrent_init="orthogonal")
    with pytest.raises(ValueError, match="do not fit"):
        LSTMTransform(6, H, recurrent_init="orthogonal", hidden_inputs=2)
