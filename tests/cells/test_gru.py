"""GRUCell in both reset forms against the equations, torch.nn.GRUCell and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lstmkit
from lstmkit import GRUCell
from tests.helpers import assert_step_gradients
from tests.references import np64
from tests.references.gru import gru_sequence

B, I, H = 3, 5, 6


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_steps_match_the_equations(reset_after: bool, bias: bool, layer_norm: bool) -> None:
    cell = GRUCell(
        I, H, bias=bias, reset_after=reset_after, layer_norm=layer_norm, dtype=torch.float64
    )
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, 0.6)
    xs = torch.randn(4, B, I, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    hs_ref, _ = gru_sequence(
        np64(xs),
        np64(h),
        cell.state_dict(),
        reset_after=reset_after,
        bias=bias,
        layer_norm=layer_norm,
    )
    for t, x in enumerate(xs):
        h = cell(x, h)
        np.testing.assert_allclose(np64(h), hs_ref[t], rtol=0, atol=1e-10)


def test_the_two_forms_differ() -> None:
    after = GRUCell(I, H, dtype=torch.float64)
    before = GRUCell(I, H, reset_after=False, dtype=torch.float64)
    before.load_state_dict(after.state_dict())
    x, h = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    assert (after(x, h) - before(x, h)).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_grucell(dtype: torch.dtype) -> None:
    ref = nn.GRUCell(I, H, dtype=dtype)
    cell = lstmkit.from_torch(ref)
    x, h = torch.randn(B, I, dtype=dtype), torch.randn(B, H, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(cell(x, h), ref(x, h), rtol=0, atol=tol)
    torch.testing.assert_close(cell(x[0], h[0]), ref(x[0], h[0]), rtol=0, atol=tol)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gradcheck(reset_after: bool, layer_norm: bool) -> None:
    cell = GRUCell(3, 2, reset_after=reset_after, layer_norm=layer_norm, dtype=torch.float64)
    x = torch.randn(2, 2, 3, dtype=torch.float64)
    assert_step_gradients(cell, x, torch.randn(2, 2, dtype=torch.float64))


def test_bad_input() -> None:
    cell = GRUCell(I, H)
    with pytest.raises(
        TypeError, match=r"hx: expected a Tensor of shape \(3, 6\), got a tuple of 2"
    ):
        cell(torch.randn(B, I), (torch.randn(B, H), torch.randn(B, H)))
    with pytest.raises(TypeError, match="reset_after must be a bool"):
        GRUCell(I, H, reset_after=1)  # type: ignore[arg-type]
