"""The attention decoder against Xu et al. 2015's equations, gradcheck, masks, lengths, the
penalty, and a sequence-to-sequence task it learns."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
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
        (
            lambda d: d(torch.randn(B, T, E), torch.randn(B, L, D), lengths=[1.5, 1, 1]),
            "lengths must be whole numbers of steps, got torch.float32 [1.5, 1.0, 1.0]",
        ),
        (
            lambda d: d(torch.randn(B, T, E), torch.randn(B, 0, D)),
            "L >= 1 (something to attend to), D = 6, got shape (3, 0, 6)",
        ),
        (
            lambda d: d(torch.randn(B, T, E), torch.randn(B, L, D), state=torch.randn(B, H)),
            "state: expected a tuple (h, c) of Tensors, got a Tensor of shape (3, 4)",
        ),
        (
            lambda d: d(
                torch.randn(B, T, E), torch.randn(B, L, D), state=(torch.randn(B, H + 1),) * 2
            ),
            f"state.h: expected shape ({B}, {H}), got ({B}, {H + 1})",
        ),
        (
            lambda d: d(
                torch.randn(B, T, E), torch.randn(B, L, D), state=(torch.randn(B, H).double(),) * 2
            ),
            "state.h: expected dtype torch.float32 (the input's), got torch.float64",
        ),
    ],
)
def test_bad_input(call, message: str) -> None:
    with pytest.raises(lstmkit.LstmkitError, match=re.escape(message)):
        call(AttentionDecoder(E, D, H))


@pytest.mark.parametrize("batch_first", [True, False])
def test_no_steps_give_empty_outputs_and_the_state_as_it_came(batch_first: bool) -> None:
    dec = make(batch_first=batch_first)
    x = torch.randn((B, 0, E) if batch_first else (0, B, E), dtype=torch.float64)
    annotations = torch.randn(B, L, D, dtype=torch.float64)
    state = (torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64))
    out = dec(x, annotations, state=state)
    steps = (B, 0) if batch_first else (0, B)
    assert [tuple(t.shape) for t in out[:4]] == [(*steps, H), (*steps, D), (*steps, L), (*steps, 1)]
    assert out.state.h is state[0]
    assert out.state.c is state[1]
    started = dec(x, annotations).state  # the annotation-based start, as a call with steps has
    torch.testing.assert_close(started, dec.initial_state(annotations), rtol=0, atol=0)


def test_public_api() -> None:
    assert lstmkit.AttentionDecoder is AttentionDecoder


@st.composite
def decoder_calls(draw: Any) -> tuple[AttentionDecoder, torch.Tensor, torch.Tensor, Any]:
    """A decoder (batch_first) and a call: B = 0 and T = 0 among the sizes, with or without an
    annotation mask that leaves each sequence something to attend to."""
    B_, T_, L_ = draw(st.integers(0, 3)), draw(st.integers(0, 4)), draw(st.integers(1, 4))
    dec = make()
    y = torch.randn(B_, T_, E, dtype=torch.float64)
    a = torch.randn(B_, L_, D, dtype=torch.float64)
    mask = None
    if draw(st.booleans()):
        keep = draw(st.lists(st.integers(1, L_), min_size=B_, max_size=B_))
        mask = torch.arange(L_)[None, :] < torch.tensor(keep, dtype=torch.long)[:, None]
    return dec, y, a, mask


@given(call=decoder_calls())
def test_any_well_formed_call_follows_the_equations(call: Any) -> None:
    dec, y, a, mask = call
    out = dec(y, a, annotation_mask=mask)
    B_, T_, L_ = y.shape[0], y.shape[1], a.shape[1]
    assert tuple(out.alphas.shape) == (B_, T_, L_)
    if B_ == 0 or T_ == 0:
        assert out.outputs.numel() == 0
        return
    expected = numpy_decoder(dec, np64(y), np64(a), None if mask is None else mask.numpy())
    got = (out.outputs, out.contexts, out.alphas, out.state.h, out.state.c)
    for value, reference in zip(got, expected, strict=True):
        np.testing.assert_allclose(np64(value), reference, rtol=0, atol=1e-10)
