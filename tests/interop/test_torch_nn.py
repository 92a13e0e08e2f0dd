"""from_torch / to_torch: conversions both ways keep the weights and the outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lstmkit

T, B, I, H = 5, 3, 4, 6


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True, proj_size=2),
        lambda: nn.LSTM(I, H, bias=False, dropout=0.3, num_layers=2),
        lambda: nn.GRU(I, H, num_layers=2, bidirectional=True),
        lambda: nn.RNN(I, H, nonlinearity="relu", batch_first=True),
    ],
)
def test_layers_round_trip(make) -> None:
    theirs = make().double().eval()
    ours = lstmkit.from_torch(theirs)
    assert isinstance(ours, lstmkit.Recurrent)
    assert not ours.training
    x = (
        torch.randn(B, T, I, dtype=torch.float64)
        if theirs.batch_first
        else torch.randn(T, B, I, dtype=torch.float64)
    )
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], rtol=0, atol=1e-10)
    back = lstmkit.to_torch(ours)
    assert type(back) is type(theirs)
    assert repr(back) == repr(theirs)
    assert back.weight_hh_l0.dtype == torch.float64
    torch.testing.assert_close(back(x)[0], theirs(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    "make",
    [lambda: nn.LSTMCell(I, H), lambda: nn.GRUCell(I, H, bias=False), lambda: nn.RNNCell(I, H)],
)
def test_cells_round_trip(make) -> None:
    theirs = make()
    ours = lstmkit.from_torch(theirs)
    x = torch.randn(B, I)
    out_a, out_b = ours(x), theirs(x)
    for a, b in zip(
        out_a if isinstance(out_a, tuple) else [out_a],
        out_b if isinstance(out_b, tuple) else [out_b],
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    back = lstmkit.to_torch(ours)
    assert type(back) is type(theirs)
    for name, p in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[name], p)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (
            lambda: lstmkit.LSTM(I, H, variant="vanilla"),
            "torch.nn cannot express this layer: its LSTM cell is a variant",
        ),
        (lambda: lstmkit.GRU(I, H, reset_after=False), "reset_after=False"),
        (lambda: lstmkit.LSTMCell(I, H, coupled=True), "torch.nn cannot express this cell"),
        (lambda: lstmkit.LSTMCell(I, H, proj_size=2), "it has proj_size"),
    ],
)
def test_to_torch_refuses_what_torch_cannot_express(module, message) -> None:
    with pytest.raises(ValueError, match=message):
        lstmkit.to_torch(module())


def test_from_torch_refuses_other_modules() -> None:
    with pytest.raises(TypeError, match=r"from_torch converts torch\.nn\.LSTM, GRU, RNN"):
        lstmkit.from_torch(nn.Linear(2, 2))
