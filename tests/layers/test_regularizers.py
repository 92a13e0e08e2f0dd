"""Variational input and recurrent dropout (Gal & Ghahramani 2016) and zoneout (Krueger et al.
2017) as layer options: the masks, where they apply, training against evaluation, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit
from lstmkit import Recurrent, RecurrentCell
from lstmkit.engines import regularizers, select_engine
from lstmkit.tasks import CharLMTask
from tests.helpers import load_example
from tests.references import np64
from tests.references.gru import gru_sequence
from tests.references.lstm import LSTMFlags, lstm_sequence, lstm_weights

T, B, I, H = 6, 4, 3, 5


class Echo(RecurrentCell):
    """Outputs its input: the layer's output is exactly what reached the cell."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input_size = self.hidden_size = size

    def step(self, xp_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return xp_t


def test_input_dropout_keeps_one_mask_per_sequence() -> None:
    layer = Recurrent(Echo(200), input_dropout=0.5).train()
    x = torch.ones(T, B, 200)
    out, _ = layer(x)
    assert torch.equal(out, out[0].expand_as(out))  # the same units dropped at every step
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept units are scaled by 1 / (1 - p)
    assert 0.35 < (out[0] == 0).float().mean().item() < 0.65
    assert not torch.equal(out[:, 0], out[:, 1])  # but each sequence has its own mask
    layer.eval()
    assert torch.equal(layer(x)[0], x)


def test_input_dropout_on_packed_sequences_follows_each_sequence() -> None:
    layer = Recurrent(Echo(50), input_dropout=0.5).train()
    x = torch.ones(B, T, 50)
    lengths = torch.tensor([6, 2, 4, 3])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = layer(packed)
    padded = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(padded[b, :n], padded[b, 0].expand(n, 50))


def fixed_mask(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Makes the dropout masks known: each is drawn from a seeded generator and recorded."""
    drawn: list[torch.Tensor] = []
    generator = torch.Generator().manual_seed(3)

    def mask(like: torch.Tensor, p: float) -> torch.Tensor:
        m = (torch.rand(like.shape, generator=generator, dtype=like.dtype) > p).to(like) / (1 - p)
        drawn.append(m)
        return m

    monkeypatch.setattr(regularizers, "_dropout_mask", mask)
    return drawn


def test_recurrent_dropout_on_the_lstm_product_only(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = fixed_mask(monkeypatch)
    layer = lstmkit.LSTM(
        I, H, variant="vanilla", recurrent_dropout=0.4, dtype=torch.float64
    ).train()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h, c) = layer(x)
    (mask,) = drawn
    flags = LSTMFlags(peepholes="ifo")
    w = lstm_weights(layer.state_dict(), flags, suffix="_l0")
    zeros = np.zeros((B, H))
    hs, h_ref, c_ref, _ = lstm_sequence(np64(x), zeros, zeros, w, flags, h_mask=np64(mask))
    np.testing.assert_allclose(np64(out), hs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np64(h[0]), h_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np64(c[0]), c_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_recurrent_dropout_on_the_gru_products_not_its_interpolation(
    monkeypatch: pytest.MonkeyPatch, reset_after: bool
) -> None:
    drawn = fixed_mask(monkeypatch)
    layer = lstmkit.GRU(
        I, H, reset_after=reset_after, recurrent_dropout=0.4, dtype=torch.float64
    ).train()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(1, B, H, dtype=torch.float64)
    out, _ = layer(x, h0)
    sd = {k.removesuffix("_l0"): v for k, v in layer.state_dict().items()}
    hs, _ = gru_sequence(np64(x), np64(h0[0]), sd, reset_after=reset_after, h_mask=np64(drawn[0]))
    np.testing.assert_allclose(np64(out), hs, rtol=0, atol=1e-12)


def test_zoneout_in_evaluation_is_its_expectation() -> None:
    layer = lstmkit.LSTM(I, H, zoneout_hidden=0.3, zoneout_cell=0.6, dtype=torch.float64).eval()
    plain = lstmkit.LSTM(I, H, dtype=torch.float64)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h_n, c_n) = layer(x)
    cell = plain.cell(0)
    h = c = torch.zeros(B, H, dtype=torch.float64)
    outs = []
    for x_t in x:
        new_h, new_c = cell(x_t, (h, c))
        h, c = 0.3 * h + 0.7 * new_h, 0.6 * c + 0.4 * new_c
        outs.append(h)
    torch.testing.assert_close(out, torch.stack(outs), rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n[0], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_n[0], c, rtol=0, atol=1e-12)


def test_zoneout_in_training_keeps_units_at_random() -> None:
    frozen = lstmkit.GRU(I, H, zoneout_hidden=1.0).train()  # every unit always keeps its value
    h0 = torch.randn(1, B, H)
    out, h_n = frozen(torch.randn(T, B, I), h0)
    assert torch.equal(h_n, h0)
    assert torch.equal(out, h0[0].expand(T, B, H))
    some = lstmkit.RNN(I, 400, zoneout_hidden=0.25).train()
    x = torch.randn(2, B, I)
    out, _ = some(x)
    unchanged = (out[1] == out[0]).float().mean().item()  # a unit kept its step-0 value
    assert 0.18 < unchanged < 0.32


def test_which_engine_runs_the_regularisers() -> None:
    # the fused engine draws their masks in Python and runs them; a cell of a user's own runs
    # them on the reference engine
    for layer in (
        lstmkit.LSTM(I, H, variant="CIFG", recurrent_dropout=0.1, zoneout_cell=0.2),
        lstmkit.GRU(I, H, recurrent_dropout=0.1, zoneout_hidden=0.2),
        lstmkit.RNN(I, H, recurrent_dropout=0.1, zoneout_hidden=0.2),
    ):
        assert select_engine("auto", layer).name == "fused"
    own = Recurrent(Echo(H), zoneout_hidden=0.2)
    assert select_engine("auto", own).name == "reference"
    assert "zoneout_hidden=0.2" in repr(own)


def test_dropouts_only_in_training_zoneout_always() -> None:
    layer = lstmkit.LSTM(I, H, input_dropout=0.5, recurrent_dropout=0.5)
    plain = lstmkit.LSTM(I, H)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], plain(x)[0], rtol=0, atol=1e-6)
    layer.train()
    assert not torch.allclose(layer(x)[0], plain(x)[0])


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Recurrent(Echo(3), recurrent_dropout=0.2), ValueError, "Echo does not"),
        (
            lambda: lstmkit.GRU(I, H, zoneout_cell=0.2),
            ValueError,
            "state has none (use zoneout_hidden)",
        ),
        (
            lambda: lstmkit.LSTM(I, H, zoneout_hidden=1.5),
            ValueError,
            "zoneout_hidden must be in [0, 1], got 1.5",
        ),
        (lambda: lstmkit.RNN(I, H, zoneout=0.1), TypeError, "the regularisers are input_dropout"),
    ],
)
def test_bad_regulariser_options(build, error: type, message: str) -> None:
    import re

    with pytest.raises(error, match=re.escape(message)):
        build()


def test_dropout_and_zoneout_lower_held_out_bits_per_character() -> None:
    results = load_example("regularized_charlm").main(steps=200, chars=20_000)
    baseline = CharLMTask(max_chars=20_000, length=64).baseline  # unigram entropy, 4.8 bits
    plain_train, plain_held_out = results["none"]
    for name in ("recurrent dropout 0.25", "zoneout h 0.05, C 0.5"):
        train, held_out = results[name]
        assert held_out < 0.6 * baseline
        assert held_out - train < plain_held_out - plain_train  # a smaller generalisation gap
