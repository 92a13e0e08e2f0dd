"""Which library multiplies inside the fused kernels: measured per shape, forced by
LSTMKIT_PRODUCTS, BLAS for float64 and without measuring; and the oneDNN path computes what the
reference engine computes."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import lstmkit
from lstmkit.engines.fused import build as _build
from lstmkit.engines.fused import products
from lstmkit.engines.tuning import Tuner
from tests.engines.test_fused import random_state, run_both


class FakeKernels:
    """Products that take the seconds given per library, and say which were timed."""

    def __init__(self, seconds: dict[int, float], onednn: bool = True) -> None:
        self.seconds, self.onednn, self.timed = seconds, onednn, []

    def has_onednn(self) -> bool:
        return self.onednn

    def product_seconds(self, m: int, k: int, n: int, lib: int, reps: int) -> float:
        self.timed.append((m, k, n, lib))
        return self.seconds[lib]


@pytest.fixture
def measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    monkeypatch.delenv("LSTMKIT_PRODUCTS", raising=False)


@pytest.mark.usefixtures("measuring")
def test_the_faster_library_wins_and_is_remembered(tmp_path) -> None:
    tuner = Tuner(path=tmp_path / "cache.json", repeats=3)
    slow_blas = FakeKernels({products.BLAS: 2.0, products.ONEDNN: 1.0})
    assert products.library(slow_blas, 30, 64, 256, torch.float32, tuner=tuner) == products.ONEDNN
    assert slow_blas.timed == [(32, 64, 256, 0), (32, 64, 256, 1)] * 3  # interleaved, rows bucketed
    later = Tuner(path=tmp_path / "cache.json")  # another process: read from the file
    fast_blas = FakeKernels({products.BLAS: 1.0, products.ONEDNN: 2.0})
    assert products.library(fast_blas, 17, 64, 256, torch.float32, tuner=later) == products.ONEDNN
    assert fast_blas.timed == []  # the remembered choice holds: the same rounding every run
    assert products.library(fast_blas, 64, 64, 256, torch.float32, tuner=later) == products.BLAS


@pytest.mark.usefixtures("measuring")
def test_a_forgotten_choice_or_other_threads_are_measured_again(tmp_path) -> None:
    tuner = Tuner(path=tmp_path / "cache.json", repeats=1)
    slow_blas = FakeKernels({products.BLAS: 2.0, products.ONEDNN: 1.0})
    assert products.library(slow_blas, 8, 4, 16, torch.float32, tuner=tuner) == products.ONEDNN
    tuner.choices.clear()
    fast_blas = FakeKernels({products.BLAS: 1.0, products.ONEDNN: 2.0})
    assert products.library(fast_blas, 8, 4, 16, torch.float32, tuner=tuner) == products.BLAS
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        assert products.library(slow_blas, 8, 4, 16, torch.float32, tuner=tuner) == products.ONEDNN
    finally:
        torch.set_num_threads(threads)
    assert products.library(slow_blas, 8, 4, 16, torch.float32, tuner=tuner) == products.BLAS


@pytest.mark.usefixtures("measuring")
def test_a_near_tie_keeps_blas(tmp_path) -> None:
    tuner = Tuner(path=tmp_path / "cache.json")
    close = FakeKernels({products.BLAS: 1.03, products.ONEDNN: 1.0})
    assert products.library(close, 8, 4, 16, torch.float32, tuner=tuner) == products.BLAS


@pytest.mark.usefixtures("measuring")
def test_when_nothing_is_measured(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    tuner = Tuner(path=tmp_path / "cache.json")
    kernels = FakeKernels({products.BLAS: 2.0, products.ONEDNN: 1.0})
    assert products.library(kernels, 8, 4, 16, torch.float64, tuner=tuner) == products.BLAS
    no_dnn = FakeKernels({products.BLAS: 2.0, products.ONEDNN: 1.0}, onednn=False)
    assert products.library(no_dnn, 8, 4, 16, torch.float32, tuner=tuner) == products.BLAS
    monkeypatch.setenv("LSTMKIT_PRODUCTS", "onednn")
    assert products.library(kernels, 8, 4, 16, torch.float32, tuner=tuner) == products.ONEDNN
    monkeypatch.setenv("LSTMKIT_PRODUCTS", "auto")
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")
    assert products.library(kernels, 8, 4, 16, torch.float32, tuner=tuner) == products.BLAS
    assert kernels.timed == []
    assert not (tmp_path / "cache.json").exists()


def test_a_bad_setting_says_what_it_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMKIT_PRODUCTS", "openblas")
    with pytest.raises(
        ValueError, match="LSTMKIT_PRODUCTS must be one of auto, blas, onednn; got 'openblas'"
    ):
        products.forced()


def test_the_kernels_time_both_libraries() -> None:
    kernels = _build.load()
    assert kernels.has_onednn()  # torch's x86 CPU builds carry oneDNN
    before = torch.get_rng_state()
    for lib in (products.BLAS, products.ONEDNN):
        seconds = kernels.product_seconds(8, 16, 64, lib, 3)
        assert 0 < seconds < 10
    assert torch.equal(torch.get_rng_state(), before)  # a user's random draws are left alone


MAKERS: list[Any] = [
    lambda: lstmkit.LSTM(3, 9, num_layers=2, bidirectional=True, peepholes="ifo", proj_size=4),
    lambda: lstmkit.LSTM(3, 9, variant="FGR", recurrent_dropout=0.3, zoneout_cell=0.2),
    lambda: lstmkit.LSTM(3, 9, variant="CIFG"),
    lambda: lstmkit.GRU(3, 9, reset_after=False, bidirectional=True, recurrent_dropout=0.2),
    lambda: lstmkit.GRU(3, 9, zoneout_hidden=0.3),
    lambda: lstmkit.GRU(3, 9),
    lambda: lstmkit.RNN(3, 9, nonlinearity="relu"),
]


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("make", MAKERS)
def test_onednn_products_equal_the_reference(make, packed: bool, monkeypatch) -> None:
    monkeypatch.setenv("LSTMKIT_PRODUCTS", "onednn")
    layer = make()
    T, B = 5, 70  # enough rows that the kernels split them among threads
    x = torch.randn(T, B, 3, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,)) if packed else None
    results = run_both(layer, x, random_state(layer, B, torch.float32), lengths)
    for a, b in zip(results["reference"], results["fused"], strict=True):
        # torch's float32 tolerances (atol 1e-5, rtol 1.3e-6): the bias gradients sum 350 rows
        torch.testing.assert_close(b, a)
