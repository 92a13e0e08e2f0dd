"""What the benchmark measures with: timed calls, alternating pairs, this machine's
matrix-product rates, and the peak memory of a call."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def product_rates(n: int = 2048) -> dict[str, float]:
    """This machine's float32 matrix-product rates in GFLOP/s, n x n, best of five, through each
    library torch offers: ``torch.mm`` (MKL or OpenBLAS) and oneDNN (which torch.nn.LSTM uses).
    On AMD CPUs MKL takes slow paths where oneDNN does not; on Intel MKL is often the faster."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    rates = {"torch.mm": _rate(lambda: torch.mm(a, b), n)}
    if torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        with warnings.catch_warnings():  # torch's mkldnn helpers are TorchScript, deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            import torch.utils.mkldnn as mkldnn

            with torch.no_grad():
                linear = mkldnn.to_mkldnn(nn.Linear(n, n, bias=False))  # type: ignore[no-untyped-call]
                on_dnn = a.to_mkldnn()
                rates["oneDNN"] = _rate(lambda: linear(on_dnn), n)
    return rates


def _rate(fn: Callable[[], object], n: int) -> float:
    fn()
    return 2 * n**3 / min(_timed(fn) for _ in range(5)) / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_pair(
    fn: Callable[[], object],
    base: Callable[[], object],
    *,
    min_repeats: int,
    min_seconds: float,
) -> tuple[list[float], list[float]]:
    """Times of ``fn`` and of ``base`` in ms, called alternately (A B, B A, ...) after two
    warm-up calls each, so that a machine that slows down or speeds up meanwhile slows both
    alike and neither always follows the other."""
    for _ in range(2):
        fn()
        base()
    times: list[float] = []
    base_times: list[float] = []
    began = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - began < min_seconds:
        if len(times) % 2 == 0:  # A B, then B A: neither always runs right after the other
            times.append(_timed(fn) * 1e3)
            base_times.append(_timed(base) * 1e3)
        else:
            base_times.append(_timed(base) * 1e3)
            times.append(_timed(fn) * 1e3)
    return times, base_times


def measure(fn: Callable[[], object], *, min_repeats: int, min_seconds: float) -> list[float]:
    """Times of repeated calls in ms, after two warm-up calls."""
    fn()
    fn()
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - began < min_seconds:
        times.append(_timed(fn) * 1e3)
    return times


def peak_memory_mb(fn: Callable[[], object]) -> float:
    """The largest amount of CPU memory that torch's allocator held at once during ``fn``,
    beyond what it held before, at operator granularity."""
    from torch.profiler import ProfilerActivity, profile

    with (
        _native_stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    # the profiler's C++ side logs two lines per use to stderr, which no setting turns off
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
