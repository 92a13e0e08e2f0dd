"""RNNCell against the equation h_t = tanh(W·[h_{t-1}, x_t] + b), torch.nn.RNNCell and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lstmkit
from lstmkit import RNNCell
from tests.helpers import assert_step_gradients
from tests.references import np64
from tests.references.rnn import rnn_sequence

B, I, H = 3, 5, 6


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_steps_match_the_equation(nonlinearity: str, bias: bool) -> None:
    cell = RNNCell(I, H, nonlinearity=nonlinearity, bias=bias, dtype=torch.float64)
    xs = torch.randn(4, B, I, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    hs_ref, _ = rnn_sequence(
        np64(xs), np64(h), cell.state_dict(), nonlinearity=nonlinearity, bias=bias
    )
    for t, x in enumerate(xs):
        h = cell(x, h)
        np.testing.assert_allclose(np64(h), hs_ref[t], rtol=0, atol=1e-10)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_rnncell(nonlinearity: str, dtype: torch.dtype) -> None:
    ref = nn.RNNCell(I, H, nonlinearity=nonlinearity, dtype=dtype)
    cell = lstmkit.from_torch(ref)
    x, h = torch.randn(B, I, dtype=dtype), torch.randn(B, H, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(cell(x, h), ref(x, h), rtol=0, atol=tol)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck(nonlinearity: str) -> None:
    cell = RNNCell(3, 2, nonlinearity=nonlinearity, dtype=torch.float64)
    x = torch.randn(2, 2, 3, dtype=torch.float64)
    assert_step_gradients(cell, x, torch.randn(2, 2, dtype=torch.float64))


def test_bad_nonlinearity() -> None:
    with pytest.raises(
        ValueError, match="unknown nonlinearity 'sigmoid'; expected one of 'tanh', 'relu'"
    ):
        RNNCell(I, H, nonlinearity="sigmoid")
