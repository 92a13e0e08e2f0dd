"""The fused engine against the reference engine: outputs, final states and the gradients of the
input, the initial states and every parameter, over a randomized sweep of configurations."""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
import time
from typing import Any

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit
from lstmkit._state import map_state
from lstmkit.cells.lstm import VARIANTS
from lstmkit.engines import select_engine
from lstmkit.engines.fused import build as _build

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
RTOL = {torch.float32: 1.3e-6, torch.float64: 0.0}
"""Relative tolerance on top: torch's own for float32, whose gradients sum rows and steps and
reach magnitudes of 5-10 in the sweeps (about 2e-6 relative apart there); none for float64."""


def random_layer(
    rng: random.Random,
    dtype: torch.dtype,
    kinds: tuple[str, ...] = ("LSTM", "LSTM", "LSTM", "GRU", "RNN"),
    **extra: Any,
) -> lstmkit.Recurrent:
    kind = rng.choice(kinds)
    I, H = rng.randint(1, 9), rng.randint(2, 11)
    common: dict[str, Any] = {
        "num_layers": rng.randint(1, 2),
        "bidirectional": rng.random() < 0.5,
        "batch_first": rng.random() < 0.5,
        "bias": rng.random() < 0.8,
        "dtype": dtype,
        **extra,
    }
    # layer norm over a row of 2 or 3 values is ill-conditioned (1 / std up to 316): in float32
    # both engines' rounding errors exceed 1e-5 there, so float64 alone covers it
    normable = dtype == torch.float64 or H >= 4
    if kind == "GRU":
        norm = rng.random() < 0.3 and normable
        return lstmkit.GRU(I, H, reset_after=rng.random() < 0.5, layer_norm=norm, **common)
    if kind == "RNN":
        return lstmkit.RNN(I, H, nonlinearity=rng.choice(["tanh", "relu"]), **common)
    options: dict[str, Any] = {"proj_size": rng.choice([0, 0, rng.randint(1, H - 1)])}
    if rng.random() < 0.6:
        options["variant"] = rng.choice(list(VARIANTS))
    else:
        options["coupled"] = rng.random() < 0.3
        allowed = "io" if options["coupled"] else "ifo"
        options["peepholes"] = "".join(g for g in allowed if rng.random() < 0.5)
        options["full_gate_recurrence"] = rng.random() < 0.3
        # LN(W_hh·h) with h of 1-3 units is as ill-conditioned (with one unit it is sign(h)
        # times a fixed row): float64 alone covers it
        narrow = 0 < options["proj_size"] < 4 and dtype != torch.float64
        options["layer_norm"] = rng.random() < 0.3 and normable and not narrow
        if not options["coupled"]:
            options["input_activation"] = rng.random() < 0.8
            options["output_activation"] = rng.random() < 0.8
    return lstmkit.LSTM(I, H, **options, **common)


def random_state(layer: lstmkit.Recurrent, batch: int, dtype: torch.dtype) -> Any:
    zero = layer.initial_state(batch, dtype=dtype, device=torch.device("cpu"))
    if isinstance(zero, torch.Tensor):
        return torch.randn_like(zero).requires_grad_()
    if isinstance(zero, lstmkit.ClockworkState):  # a clock counts steps: whole numbers >= 0
        return type(zero)(torch.randn_like(zero.h).requires_grad_(), torch.randint_like(zero.t, 50))
    return type(zero)(*(torch.randn_like(t).requires_grad_() for t in zero))


def run_both(
    layer: lstmkit.Recurrent, x: torch.Tensor, hx: Any, lengths: torch.Tensor | None
) -> dict:
    results = {}
    draws = torch.randint(2**31, ()).item()
    for engine in ("reference", "fused"):
        layer.engine = engine
        torch.manual_seed(draws)  # the regularisers' masks: both engines draw the same
        inp = x
        if lengths is not None:
            inp = pack_padded_sequence(
                x, lengths, batch_first=layer.batch_first, enforce_sorted=False
            )
        out, h_n = layer(inp, hx)
        out = out.data if lengths is not None else out
        states = list(h_n) if isinstance(h_n, tuple) else [h_n]
        generator = torch.Generator().manual_seed(7)
        weights = [torch.randn(t.shape, generator=generator, dtype=t.dtype) for t in [out, *states]]
        loss = sum((w * t).sum() for w, t in zip(weights, [out, *states], strict=True))
        hx_leaves = [t for t in (hx if isinstance(hx, tuple) else [hx]) if t.requires_grad]
        leaves = [x, *hx_leaves, *layer.parameters()]
        results[engine] = [out, *states, *torch.autograd.grad(loss, leaves)]
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trial", range(25))
def test_fused_equals_reference(trial: int, dtype: torch.dtype, seed: int) -> None:
    rng = random.Random(seed)
    layer = random_layer(rng, dtype)
    assert select_engine("fused", layer).name == "fused"
    T, B = rng.choice([1, 2, 6]), rng.choice([1, 3, 5])
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = torch.randn(shape[::-1], dtype=dtype).permute(2, 1, 0).requires_grad_()  # non-contiguous
    lengths = torch.tensor([rng.randint(1, T) for _ in range(B)]) if rng.random() < 0.4 else None
    hx = random_state(layer, B, dtype)
    results = run_both(layer, x, hx, lengths)
    if dtype == torch.float32 and any(_normed(cell) for cell in layer.iter_cells()):
        no_worse_than_the_reference(layer, x, hx, lengths, results)
        return
    for a, b in zip(results["reference"], results["fused"], strict=True):
        torch.testing.assert_close(b, a, rtol=RTOL[dtype], atol=TOL[dtype])


def _normed(cell: Any) -> bool:
    config = getattr(cell, "config", None)
    return bool(getattr(cell, "layer_norm", False) or getattr(config, "layer_norm", False))


def no_worse_than_the_reference(
    layer: lstmkit.Recurrent, x: torch.Tensor, hx: Any, lengths: Any, results: dict
) -> None:
    """Layer norm in float32: its 1 / std amplifies rounding, and the fused kernels accumulate
    the statistics in double where F.layer_norm (the reference) does in float32, so the two can
    differ by a few 1e-5. Each is compared with the exact result instead (the same layer run in
    float64): the fused engine's error must be within twice the reference's, plus 1e-5."""
    exact_layer = copy.deepcopy(layer).double()
    x64 = x.detach().double().requires_grad_()
    hx64 = map_state(lambda t: t.detach().double().requires_grad_(), hx)
    exact = run_both(exact_layer, x64, hx64, lengths)["reference"]
    for ref, fused, truth in zip(results["reference"], results["fused"], exact, strict=True):
        ref_error = (ref.double() - truth).abs().max().item()
        fused_error = (fused.double() - truth).abs().max().item()
        assert fused_error <= 2 * ref_error + 1e-5, (fused_error, ref_error)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trial", range(12))
def test_fused_regularisers_equal_reference(trial: int, dtype: torch.dtype, seed: int) -> None:
    # the masks are drawn in Python, in the reference engine's order, and handed to the kernels
    rng = random.Random(seed)
    options = ("input_dropout", "recurrent_dropout", "zoneout_hidden", "zoneout_cell")
    kind = rng.choice(["LSTM", "LSTM", "GRU", "RNN"])
    if kind != "LSTM":  # their state has no c
        options = options[:3]
    chosen = [name for name in options if rng.random() < 0.5] or [rng.choice(options)]
    settings = {name: rng.uniform(0.1, 0.6) for name in chosen}
    layer = random_layer(rng, dtype, kinds=(kind,), **settings)
    layer.train(rng.random() < 0.75)
    assert select_engine("fused", layer).name == "fused"
    T, B = rng.choice([1, 3, 6]), rng.choice([1, 4])
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([rng.randint(1, T) for _ in range(B)]) if rng.random() < 0.4 else None
    results = run_both(layer, x, random_state(layer, B, dtype), lengths)
    for a, b in zip(results["reference"], results["fused"], strict=True):
        torch.testing.assert_close(b, a, rtol=RTOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize(
    "make",
    [
        lambda: lstmkit.LSTM(3, 5, num_layers=2, variant="vanilla"),
        lambda: lstmkit.LSTM(3, 5, variant="FGR", proj_size=2, bidirectional=True),
        lambda: lstmkit.GRU(3, 5, reset_after=False, bidirectional=True),
        lambda: lstmkit.RNN(3, 5, nonlinearity="relu"),
    ],
)
@pytest.mark.parametrize("packed", [False, True])
def test_rows_split_among_threads(make, packed: bool) -> None:
    # enough sequences that the kernels split the batch into a block per thread
    torch.set_num_threads(2)
    layer = make().double()
    B, T = 300, 4
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,)) if packed else None
    results = run_both(layer, x, random_state(layer, B, torch.float64), lengths)
    for a, b in zip(results["reference"], results["fused"], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10)


def test_inference_without_gradients_matches() -> None:
    layer = lstmkit.LSTM(4, 6, num_layers=2, variant="NOAF")
    x = torch.randn(7, 3, 4)
    with torch.no_grad():
        layer.engine = "reference"
        expected = layer(x)[0]
        layer.engine = "fused"
        got = layer(x)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_nan_input_shows_in_the_output() -> None:
    layer = lstmkit.LSTM(2, 3, variant="vanilla", engine="fused")
    x = torch.randn(3, 1, 2)
    x[1, 0, 0] = float("nan")
    out, _ = layer(x)
    assert torch.isnan(out[1:]).all()
    assert torch.isfinite(out[0]).all()


def test_dropout_between_layers_only_in_training() -> None:
    layer = lstmkit.LSTM(3, 5, num_layers=3, dropout=0.5, variant="CIFG", engine="fused")
    x = torch.randn(4, 2, 3)
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0], rtol=0, atol=0)


def test_auto_follows_the_measurements() -> None:
    # fused everywhere, but for a large standard LSTM's inference, where oneDNN measured faster
    for layer in (lstmkit.LSTM(3, 4, variant="vanilla"), lstmkit.GRU(3, 4), lstmkit.LSTM(3, 4)):
        assert select_engine("auto", layer, training=True).name == "fused"
        assert select_engine("auto", layer, training=False).name == "fused"
    big = lstmkit.LSTM(3, 512)
    assert select_engine("auto", big, training=True).name == "fused"
    assert select_engine("auto", big, training=False).name == "native"
    assert (
        select_engine("auto", lstmkit.LSTM(3, 512, peepholes="o"), training=False).name == "fused"
    )
    x = torch.randn(2, 1, 3)
    big(x)
    assert big.last_engine == "fused"
    with torch.no_grad():
        big(x)
    assert big.last_engine == "native"


def test_what_fused_does_not_run_says_why() -> None:
    on_meta = lstmkit.LSTM(3, 4, variant="vanilla", device="meta")
    with pytest.raises(
        ValueError, match="its parameters are on meta; the fused engine runs on the CPU"
    ):
        on_meta.engine = "fused"
    assert select_engine("auto", on_meta).name == "reference"
    layer = lstmkit.LSTM(3, 4, variant="vanilla")
    layer(torch.randn(2, 1, 3))
    assert layer.last_engine == "fused"
    layer.to("meta")  # the choice follows the parameters
    layer(torch.randn(2, 1, 3, device="meta"))
    assert layer.last_engine == "reference"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precisions_compute_in_float32(dtype: torch.dtype) -> None:
    layer = lstmkit.LSTM(3, 6, num_layers=2, variant="CIFG", dtype=dtype, engine="fused")
    wide = lstmkit.LSTM(3, 6, num_layers=2, variant="CIFG", engine="reference")
    wide.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
    x = torch.randn(5, 2, 3).to(dtype)
    out, (h, c) = layer(x)
    assert out.dtype == h.dtype == c.dtype == dtype
    expected, _ = wide(x.float())
    # the same computation in float32, then rounded to the half precision: one rounding apart
    torch.testing.assert_close(out.float(), expected.to(dtype).float(), rtol=0, atol=2e-2)
    out.float().sum().backward()
    assert layer.weight_hh_l1.grad is not None
    assert layer.weight_hh_l1.grad.dtype == dtype


def test_a_failed_build_falls_back_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = lstmkit.LSTM(3, 4, variant="vanilla")
    named = lstmkit.LSTM(3, 4, variant="vanilla", engine="fused")
    x = torch.randn(2, 1, 3)

    def fail() -> None:
        monkeypatch.setattr(_build, "_failure", "no compiler here")
        raise _build.KernelBuildError("no compiler here")

    monkeypatch.setattr(_build, "_module", None)
    monkeypatch.setattr(_build, "load", fail)
    with pytest.warns(
        lstmkit.EngineFallbackWarning, match=r"fused engine is unavailable \(no compiler here\)"
    ):
        out, _ = layer(x)  # auto: falls back to the reference engine
    layer.engine = "reference"
    torch.testing.assert_close(out, layer(x)[0], rtol=0, atol=0)
    with pytest.raises(
        ValueError,
        match=r"engine 'fused' cannot run this layer: its C\+\+ kernels could not be built "
        r"\(no compiler here\)",
    ):
        named(x)


NO_COMPILER = """
import warnings
import torch, lstmkit
warnings.simplefilter("error")  # every warning is an error but the one that says so
warnings.filterwarnings("default", category=lstmkit.EngineFallbackWarning)
layer = lstmkit.LSTM(3, 4, variant="vanilla")  # building a layer never compiles
out, _ = layer(torch.randn(2, 1, 3))          # the first run tries, fails, falls back
print("ok", tuple(out.shape), lstmkit.engines.select_engine("auto", layer).name)
"""


def test_without_a_compiler_lstmkit_still_works(tmp_path) -> None:
    env = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-compiler"),
        "TORCH_EXTENSIONS_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", NO_COMPILER],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "ok (2, 1, 4) reference" in done.stdout
    assert "EngineFallbackWarning: the fused engine is unavailable" in done.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda: lstmkit.LSTM(1, 4, variant="vanilla"),
        lambda: lstmkit.LSTM(1, 4, coupled=True),
        lambda: lstmkit.GRU(1, 4),
        lambda: lstmkit.GRU(1, 4, reset_after=False),
        lambda: lstmkit.RNN(1, 4),
    ],
)
def test_saturated_activations_stay_finite_and_equal(make, dtype: torch.dtype) -> None:
    # pre-activations far beyond where exp overflows: sigmoid and tanh must saturate, not NaN
    layer = make().to(dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 3)
    values = [
        -1e4,
        -200.0,
        -88.8,
        -87.5,
        -20.0,
        0.0,
        20.0,
        88.8,
        200.0,
        1e4,
        float("inf"),
        float("-inf"),
    ]
    x = torch.tensor(values, dtype=dtype).view(-1, 1, 1).repeat(1, 3, 1)
    outputs = {}
    for engine in ("reference", "fused"):
        layer.engine = engine
        with torch.no_grad():
            outputs[engine] = layer(x)[0]
    assert torch.isfinite(outputs["fused"]).all()
    torch.testing.assert_close(outputs["fused"], outputs["reference"], rtol=0, atol=TOL[dtype])


def test_a_killed_builds_lock_does_not_hang_later_runs(tmp_path, caplog) -> None:
    lock = tmp_path / "lock"
    lock.write_text("")
    assert not _build.clear_stale_lock(tmp_path)  # fresh: another process may be building
    assert lock.exists()
    old = time.time() - _build.STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))
    with caplog.at_level("WARNING", logger="lstmkit"):
        assert _build.clear_stale_lock(tmp_path)
    assert not lock.exists()
    assert "by a build that did not finish" in caplog.text
    assert not _build.clear_stale_lock(tmp_path)  # nothing left to remove


@pytest.mark.parametrize("family", ["LSTM", "GRU"])
def test_a_layer_normalised_training_step_holds_no_more_than_torch_nns_lstm(family: str) -> None:
    # W_ih·x is computed again in the backward pass rather than kept for layer norm's; counted
    # by torch's allocator (the benchmark's measure), so deterministic
    from lstmkit.experiments.timing import peak_memory_mb

    torch.manual_seed(0)
    x = torch.randn(40, 16, 64, requires_grad=True)
    ours = getattr(lstmkit, family)(64, 64, layer_norm=True, engine="fused")
    theirs = torch.nn.LSTM(64, 64)

    def step(layer: torch.nn.Module) -> Any:
        return lambda: layer(x)[0].sum().backward()

    for layer in (ours, theirs):
        step(layer)()  # first calls build and pack outside the measurement
    assert peak_memory_mb(step(ours)) < peak_memory_mb(step(theirs))
