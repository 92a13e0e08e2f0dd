"""The Variational RNN (Chung et al. 2015) and STORN (Bayer & Osendorfer 2014) against a float64
reference of their bounds, the closed-form KL by hand, gradcheck, padding, sampling, and a short
training run on the chorales that must beat the memoryless baseline."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lstmkit import LstmkitError
from lstmkit._likelihoods import bernoulli_nll, gaussian_kl
from lstmkit.modules import STORN, VRNN
from tests.references import np64
from tests.references.vrnn import negative_bound

K, H, Z, B, T = 5, 4, 3, 3, 6
LENGTHS = [6, 2, 4]
MODELS = {"vrnn": VRNN, "storn": STORN}


def make(which: str, kind: str, **kwargs: object) -> nn.Module:
    model = MODELS[which](K, H, Z, cell=kind, **kwargs).double()  # type: ignore[arg-type]
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model


def rolls(*shape: int) -> torch.Tensor:
    return (torch.rand(*shape, dtype=torch.float64) < 0.3).double()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("which", ["vrnn", "storn"])
def test_bound_matches_the_equations(which: str, kind: str) -> None:
    model = make(which, kind)
    x, eps = rolls(B, T, K), torch.randn(B, T, Z, dtype=torch.float64)
    out = model(x, torch.tensor(LENGTHS), noise=eps)
    loss, rec, kl = negative_bound(model, np64(x), np64(eps), LENGTHS, kind, which)
    assert out.loss.item() == pytest.approx(loss, rel=0, abs=1e-10)
    assert out.reconstruction.item() == pytest.approx(rec, rel=0, abs=1e-10)
    assert out.kl.item() == pytest.approx(kl, rel=0, abs=1e-10)
    assert kl > 0.0
    assert rec > 0.0
    for b, n in enumerate(LENGTHS):
        assert torch.count_nonzero(out.steps[b, n:]) == 0


def test_storn_with_a_forward_recognition_rnn_matches_the_equations() -> None:
    model = make("storn", "gru", bidirectional=False)
    x, eps = rolls(B, T, K), torch.randn(B, T, Z, dtype=torch.float64)
    out = model(x, LENGTHS, noise=eps)
    loss, _, _ = negative_bound(model, np64(x), np64(eps), LENGTHS, "gru", "storn")
    assert out.loss.item() == pytest.approx(loss, rel=0, abs=1e-10)


@pytest.mark.parametrize("which", ["vrnn", "storn"])
def test_garbage_padding_leaves_the_bound_alone(which: str) -> None:
    model = make(which, "lstm")
    x, eps = rolls(B, T, K), torch.randn(B, T, Z, dtype=torch.float64)
    clean = model(x, LENGTHS, noise=eps)
    pad_x = torch.randn(B, 3, K, dtype=torch.float64) * 7.0  # not even binary
    lengths = [4, *LENGTHS[1:]]  # sequence 0 now ends at step 4: its last frames are garbage
    for b, n in enumerate(lengths):
        x[b, n:] = torch.randn(T - n, K, dtype=torch.float64) * 5.0
    cut = model(x, lengths, noise=eps)
    garbage = model(
        torch.cat([x, pad_x], 1),
        lengths,
        noise=torch.cat([eps, torch.randn(B, 3, Z, dtype=torch.float64)], 1),
    )
    torch.testing.assert_close(garbage.loss, cut.loss, rtol=0, atol=1e-12)
    torch.testing.assert_close(garbage.steps[:, :T], cut.steps, rtol=0, atol=1e-12)
    # sequences 1 and 2 kept their real frames, so their steps are those of the clean batch
    torch.testing.assert_close(cut.steps[1:], clean.steps[1:], rtol=0, atol=1e-12)


def test_gaussian_kl_by_hand() -> None:
    # dim 1: log(1/0.5) + (0.25 + 1)/2 - 1/2;  dim 2: log(1/2) + (4 + 1)/2 - 1/2; sum = 2.125
    kl = gaussian_kl(
        torch.tensor([1.0, 0.0], dtype=torch.float64),
        torch.tensor([0.5, 2.0], dtype=torch.float64),
        torch.tensor([0.0, 1.0], dtype=torch.float64),
        torch.tensor([1.0, 1.0], dtype=torch.float64),
    )
    assert kl.item() == pytest.approx(2.125, rel=0, abs=1e-15)
    # N(0, 1) from N(0, e^2): log e + 1/(2 e^2) - 1/2
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    kl = gaussian_kl(zero, one, zero, one * math.e)
    assert kl.item() == pytest.approx(0.5 + 0.5 * math.exp(-2.0), rel=0, abs=1e-15)
    assert gaussian_kl(one, one * 3.0, one, one * 3.0).item() == 0.0


def test_bernoulli_nll_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0, math.log(3.0)]], dtype=torch.float64)  # p = 1/2, 1/2, 3/4
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    expected = 2 * math.log(2.0) + math.log(4.0)  # -log(1/2) - log(1/2) - log(1/4)
    assert bernoulli_nll(logits, x).item() == pytest.approx(expected, rel=0, abs=1e-15)


@pytest.mark.parametrize(("which", "kind"), [("vrnn", "lstm"), ("vrnn", "gru"), ("storn", "gru")])
def test_gradcheck(which: str, kind: str) -> None:
    model = MODELS[which](3, 2, 2, cell=kind).double()  # type: ignore[operator]
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x, eps = rolls(2, 3, 3), torch.randn(2, 3, 2, dtype=torch.float64)

    def run(*args: torch.Tensor) -> torch.Tensor:
        weights = dict(zip(names, args, strict=True))
        return functional_call(model, weights, (x, [3, 2]), {"noise": eps}).loss

    assert torch.autograd.gradcheck(run, tuple(params))


@pytest.mark.parametrize("which", ["vrnn", "storn"])
def test_sample_is_binary_and_seeded(which: str) -> None:
    model = MODELS[which](88, 8, 4)
    first = model.sample(3, 10, generator=torch.Generator().manual_seed(5))
    again = model.sample(3, 10, generator=torch.Generator().manual_seed(5))
    other = model.sample(3, 10, generator=torch.Generator().manual_seed(6))
    assert first.shape == (3, 10, 88)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("which", ["vrnn", "storn"])
def test_noise_comes_from_the_generator(which: str) -> None:
    model = make(which, "lstm")
    x = rolls(B, T, K)
    a = model(x, generator=torch.Generator().manual_seed(1)).loss
    b = model(x, generator=torch.Generator().manual_seed(1)).loss
    eps = torch.randn(B, T, Z, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert a.item() == b.item() == model(x, noise=eps).loss.item()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.zeros(2, 3, K + 1)), "x must be (B, T, K) with K = 5"),
        (lambda m: m(torch.zeros(2, 0, K)), "T ≥ 1"),
        (lambda m: m(torch.zeros(2, 3, K), noise=torch.zeros(2, 3, Z + 1)), "noise must be"),
        (lambda m: m(torch.zeros(2, 3, K), [3, 4]), "must not exceed"),
    ],
)
@pytest.mark.parametrize("which", ["vrnn", "storn"])
def test_bad_input_says_what_was_expected(which: str, call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(MODELS[which](K, H, Z))


@pytest.mark.parametrize("which", ["vrnn", "storn"])
def test_starting_from_the_key_frequencies_predicts_them(which: str) -> None:
    model = make(which, "lstm")
    frequency = torch.rand(K, dtype=torch.float64) * 0.9 + 0.05
    model.start_from_frequencies(frequency)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.zero_()  # no weights: the output is the bias alone
    x = torch.bernoulli(torch.rand(3, 5, K)).double()
    expected = -(x * frequency.log() + (1 - x) * (-frequency).log1p()).sum(-1).mean()
    out = model(x, noise=torch.randn(3, 5, model.latent_size, dtype=torch.float64))
    torch.testing.assert_close(out.reconstruction, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(LstmkitError, match="strictly between 0 and 1"):
        model.start_from_frequencies(torch.ones(K))
    with pytest.raises(LstmkitError, match=rf"frequency must be a \({K},\) Tensor"):
        model.start_from_frequencies(torch.ones(K + 1) / 2)


def test_unknown_cell() -> None:
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        VRNN(K, H, Z, cell="rnn")


def whole_pieces(inputs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor):
    """Frames 0..T-1 of each piece from the task's (frames 0..T-2, frames 1..T-1) pairs."""
    return torch.cat([inputs[:, :1], targets], 1), lengths + 1


def test_vrnn_learns_the_chorales_better_than_the_memoryless_baseline() -> None:
    from lstmkit.tasks import make_task

    task = make_task("chorales", pieces=40)
    x, lengths = whole_pieces(task.train_inputs, task.train_targets, task.train_lengths)
    held, held_lengths = whole_pieces(task.eval_inputs, task.eval_targets, task.eval_lengths)
    model = VRNN(88, 32, 8)
    model.start_from_frequencies(task.key_frequency)  # the baseline, learnt in 0 steps
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster, and fair to a busy machine
    try:
        start = time.perf_counter()
        for _ in range(150):
            index = torch.randint(0, len(lengths), (8,), generator=generator)
            steps = int(lengths[index].max())
            loss = model(x[index, :steps], lengths[index], generator=generator).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            out = model(held, held_lengths, generator=generator)
    finally:
        torch.set_num_threads(threads)
    memoryless = task.memoryless_nll(held, held_lengths)  # over the same frames as the bound
    print(
        f"held-out bound {out.loss.item():.3f} nats/step (KL {out.kl.item():.4f}), memoryless "
        f"{memoryless:.3f} (task.baseline {task.baseline:.3f}), {seconds:.1f} s"
    )
    assert out.loss.item() < memoryless - 0.3
    assert out.loss.item() < task.baseline - 0.3


def test_the_generative_models_example_in_its_fast_form(tmp_path: Path) -> None:
    from tests.helpers import load_example

    example = load_example("generative_models")
    results = example.main(example.FAST, tmp_path)
    # Measured (one core, ~29 s): DRAW 200.0 with attention, 189.9 without, after 300 steps
    # (independent pixels 207.1); VRNN 10.85 and STORN 10.63 nats per frame after 100 steps,
    # both started at the memoryless 11.39.
    assert results["DRAW, with attention"] < 204.0
    assert results["DRAW, without attention"] < 200.0
    assert results["VRNN"] < 11.39 - 0.3
    assert results["STORN"] < 11.39 - 0.3
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "draw_digits.png",
        "draw_windows.png",
        "storn-1.mid",
        "storn-2.mid",
        "storn_piano_roll.png",
        "vrnn-1.mid",
        "vrnn-2.mid",
        "vrnn_piano_roll.png",
    ]
