"""MUT1, MUT2 and MUT3 against the paper's equations, gradcheck, the layer, and learning."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit import MUTCell
from tests.helpers import assert_step_gradients, load_example
from tests.references import np64
from tests.references.mut import mut_sequence

B, H = 3, 5


def make(kind: int, input_size: int = H) -> MUTCell:
    cell = MUTCell(input_size, H, kind=kind, dtype=torch.float64)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, 0.7)
    return cell


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_steps_match_the_equations(kind: int) -> None:
    cell = make(kind)
    xs = torch.randn(5, B, H, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    hs_ref, _ = mut_sequence(np64(xs), np64(h), cell.state_dict(), kind=kind)
    for t, x in enumerate(xs):
        h = cell(x, h)
        np.testing.assert_allclose(np64(h), hs_ref[t], rtol=0, atol=1e-10)


def test_mut3_takes_any_input_size() -> None:
    cell = make(3, input_size=7)
    xs = torch.randn(4, B, 7, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    hs_ref, _ = mut_sequence(np64(xs), np64(h), cell.state_dict(), kind=3)
    for t, x in enumerate(xs):
        h = cell(x, h)
        np.testing.assert_allclose(np64(h), hs_ref[t], rtol=0, atol=1e-10)


def test_the_three_architectures_are_different_functions() -> None:
    x, h = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    torch.manual_seed(0)
    steps = []
    for kind in (1, 2, 3):
        cell = make(kind)
        shared = {"weight_xz": 0.5, "weight_hr": -0.3, "weight_hh": 0.4}  # the same where shared
        with torch.no_grad():
            for name, value in shared.items():
                getattr(cell, name).fill_(value)
            for p in (cell.bias_z, cell.bias_r, cell.bias_h):
                p.zero_()
        steps.append(cell(x, h))
    assert (steps[0] - steps[1]).abs().max() > 1e-3
    assert (steps[1] - steps[2]).abs().max() > 1e-3


def test_mut1_update_gate_ignores_the_state() -> None:
    cell = make(1)
    x = torch.randn(B, H, dtype=torch.float64)
    # z = σ(W_xz x + b_z) does not see h: where z is near 0, h_{t+1} ≈ h_t for any h_t
    with torch.no_grad():
        cell.bias_z.fill_(-40.0)
    h = torch.randn(B, H, dtype=torch.float64)
    torch.testing.assert_close(cell(x, h), h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_gradients(kind: int) -> None:
    cell = make(kind)
    assert_step_gradients(
        cell, torch.randn(3, 2, H, dtype=torch.float64), torch.randn(2, H, dtype=torch.float64)
    )


@pytest.mark.parametrize("kind", [1, 2])
def test_mut1_and_mut2_need_input_size_equal_to_hidden_size(kind: int) -> None:
    with pytest.raises(ValueError, match=rf"MUT{kind} .* input_size=4, hidden_size=5"):
        MUTCell(4, 5, kind=kind)
    with pytest.raises(ValueError, match="layer 1 of a bidirectional network reads 2·hidden_size"):
        lstmkit.MUT(5, 5, kind=kind, num_layers=2, bidirectional=True)


@pytest.mark.parametrize("kind", [0, 4, True, "1"])
def test_unknown_kind(kind: object) -> None:
    with pytest.raises(ValueError, match="kind must be 1, 2 or 3"):
        MUTCell(5, 5, kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_layer_runs_the_cells_layer_by_layer(kind: int) -> None:
    layer = lstmkit.MUT(H, H, kind=kind, num_layers=2, batch_first=True, dtype=torch.float64)
    x = torch.randn(B, 6, H, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    out, h_n = layer(x, h0)
    state = layer.state_dict()
    hs0, last0 = mut_sequence(np64(x.transpose(0, 1)), np64(h0[0]), state, kind=kind, suffix="_l0")
    hs1, last1 = mut_sequence(hs0, np64(h0[1]), state, kind=kind, suffix="_l1")
    np.testing.assert_allclose(np64(out.transpose(0, 1)), hs1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n), np.stack([last0, last1]), rtol=0, atol=1e-10)


def test_saves_and_loads() -> None:
    layer = lstmkit.MUT(H, H, kind=2, num_layers=2)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    other = lstmkit.MUT(H, H, kind=2, num_layers=2)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(4, B, H)
    assert torch.equal(other(x)[0], layer(x)[0])


def test_recurrent_dropout_masks_only_the_products() -> None:
    cell = make(3)
    x, h = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    xp = cell.project_input(x)
    ones = torch.ones(B, H, dtype=torch.float64)
    assert torch.equal(cell.step(xp, h, h_mask=ones), cell.step(xp, h))
    # with every unit dropped the gates see no h, but the carried h_t still does
    dropped = cell.step(xp, h, h_mask=torch.zeros(B, H, dtype=torch.float64))
    z = torch.sigmoid(x @ cell.weight_xz.T + cell.bias_z)
    candidate = torch.tanh(x @ cell.weight_xh.T + cell.bias_h)
    torch.testing.assert_close(dropped, candidate * z + h * (1 - z), rtol=0, atol=1e-12)


def test_the_three_learn_a_gap() -> None:
    results = load_example("mut_cells").main(steps=150, gap=12, kinds=(1, 3), seeds=1)
    for kind in (1, 3):
        assert results[f"MUT{kind}"][0] > 0.9  # chance is 1/4
