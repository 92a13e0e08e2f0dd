"""The attention decoder against Xu et al. 2015's equations, gradcheck, masks, lengths, the
penalty, and a sequence-to-sequence task it learns."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from torch.func import functional_call

import lstmkit
from lstmkit import AttentionDecoder, doubly_stochastic_penalty
from tests.helpers import load_example
from tests.references import np64
from tests.references.attention import numpy_decoder

B, T, L, E, D, H, A = 3, 4, 5, 2, 6, 4, 3


def make(**kwargs) -> AttentionDecoder:
    dec = AttentionDecoder(E, D, H, attention_size=A, **kwargs).double()
    with torch.no_grad():
        for p in dec.parameters():
            p.normal_(0.0, 0.5)
    return dec


def test_matches_the_equations() -> None:
    dec = make()
    y, a = torch.randn(B, T, E, dtype=torch.float64), torch.randn(B, L, D, dtype=torch.float64)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[1, 3:] = False
    out = dec(y, a, annotation_mask=mask)
    hs, zs, alphas, h, c = numpy_decoder(dec, np64(y), np64(a), mask.numpy())
    np.testing.assert_allclose(np64(out.outputs), hs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out.contexts), zs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out.alphas), alphas, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out.state.h), h, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out.state.c), c, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.alphas.sum(-1), torch.ones(B, T, dtype=torch.float64))
    assert torch.count_nonzero(out.alphas[1, :, 3:]) == 0  # masked annotations get no weight


def test_without_the_gate_beta_is_one() -> None:
    dec = make(gate=False)
    out = dec(torch.randn(B, T, E, dtype=torch.float64), torch.randn(B, L, D, dtype=torch.float64))
    assert torch.equal(out.betas, torch.ones(B, T, 1, dtype=torch.float64))
    assert dec.beta is None


def test_gradcheck() -> None:
    dec = AttentionDecoder(2, 3, 2, attention_size=2).double()
    names = [n for n, _ in dec.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in dec.parameters()]
    y = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)

    def run(y: torch.Tensor, a: torch.Tensor, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = functional_call(dec, dict(zip(names, args, strict=True)), (y, a))
        return out.outputs, out.contexts, out.alphas

    assert torch.autograd.gradcheck(run, (y, a, *params))


def test_lengths_stop_each_sequence_at_its_end() -> None:
    dec = make()
    y, a = torch.randn(B, T, E, dtype=torch.float64), torch.randn(B, L, D, dtype=torch.float64)
    out = dec(y, a, lengths=[4, 2, 3])
    for b, n in enumerate([4, 2, 3]):
        alone = dec(y[b : b + 1, :n], a[b : b + 1])
        torch.testing.assert_close(out.outputs[b, :n], alone.outputs[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out.state.h[b], alone.state.h[0], rtol=0, atol=1e-12)
        assert torch.count_nonzero(out.outputs[b, n:]) == 0
        assert torch.count_nonzero(out.alphas[b, n:]) == 0


def test_time_first_layout() -> None:
    dec = make()
    y, a = torch.randn(B, T, E, dtype=torch.float64), torch.randn(B, L, D, dtype=torch.float64)
    first = AttentionDecoder(E, D, H, attention_size=A, batch_first=False).double()
    first.load_state_dict(dec.state_dict())
    torch.testing.assert_close(
        first(y.transpose(0, 1), a).outputs.transpose(0, 1), dec(y, a).outputs
    )


def test_doubly_stochastic_penalty_by_hand() -> None:
    alphas = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])  # (B=1, T=2, L=2): columns sum to 1.5, 0.5
    assert doubly_stochastic_penalty(alphas).item() == pytest.approx(0.25 + 0.25)
    assert doubly_stochastic_penalty(alphas, weight=2.0).item() == pytest.approx(1.0)


def test_saves_and_loads() -> None:
    dec = make()
    buffer = io.BytesIO()
    torch.save(dec.state_dict(), buffer)
    buffer.seek(0)
    other = AttentionDecoder(E, D, H, attention_size=A).double()
    other.load_state_dict(torch.load(buffer, weights_only=True))
    y, a = torch.randn(B, T, E, dtype=torch.float64), torch.randn(B, L, D, dtype=torch.float64)
    torch.testing.assert_close(other(y, a).outputs, dec(y, a).outputs, rtol=0, atol=0)


def test_learns_to_reverse_sequences() -> None:
    accuracy = load_example("attention_reverse").main(steps=250, length=6)
    assert accuracy > 0.9  # chance is 0.1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda d: d(torch.randn(B, T, E + 1), torch.randn(B, L, D)),
            "inputs must be (B, T, E) with E = 2",
        ),
        (
            lambda d: d(torch.randn(B, T, E), torch.randn(B + 1, L, D)),
            "annotations must be (B, L, D) with B = 3",
        ),
        (
            lambda d: d(
                torch.randn(B, T, E),
                torch.randn(B, L, D),
                annotation_mask=torch.zeros(B, L, dtype=torch.bool),
            ),
            "nothing to attend to",
        ),
        (
            lambda d: d(torch.randn(B, T, E), torch.randn(B, L, D), lengths=[5, 1, 1]),
            "lengths must be 3 values in [1, 4]",
        ),
    ],
)
def test_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call(AttentionDecoder(E, D, H))


def test_public_api() -> None:
    assert lstmkit.AttentionDecoder is AttentionDecoder
