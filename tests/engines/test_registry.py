"""The engine registry: what "auto" picks, named engines, registering a new one, and every engine
against the reference on random configurations."""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit
from lstmkit.engines import (
    Engine,
    engine_names,
    register_engine,
    select_engine,
    unregister_engine,
)
from lstmkit.engines.reference import ReferenceEngine


def test_auto_ranks_the_engines_that_can_run_a_layer() -> None:
    assert select_engine("auto", lstmkit.LSTM(3, 4, num_layers=2, proj_size=2)).name == "fused"
    assert select_engine("auto", lstmkit.GRU(3, 4)).name == "fused"
    assert select_engine("auto", lstmkit.RNN(3, 4, nonlinearity="relu")).name == "fused"
    assert select_engine("auto", lstmkit.LSTM(3, 4, variant="NP")).name == "fused"
    on_meta = lstmkit.LSTM(3, 4, device="meta")  # fused runs on the CPU only
    assert select_engine("auto", on_meta).name == "native"
    for variant in ("vanilla", "CIFG", "NOAF", "FGR"):
        assert select_engine("auto", lstmkit.LSTM(3, 4, variant=variant)).name == "fused"
    assert select_engine("auto", lstmkit.GRU(3, 4, reset_after=False)).name == "fused"


def test_a_registered_engine_is_used_by_name_and_by_auto() -> None:
    calls = []

    class Counting(ReferenceEngine):
        name = "counting-test"
        supports = "every cell, counting calls"

        def run(self, layer, x, batch_sizes, hx):  # type: ignore[no-untyped-def]
            calls.append(layer)
            return super().run(layer, x, batch_sizes, hx)

    register_engine(Counting(), priority=1000)
    try:
        assert engine_names()[0] == "counting-test"
        layer = lstmkit.LSTM(3, 4, variant="vanilla")
        layer(torch.randn(2, 1, 3))
        assert calls == [layer]
        named = lstmkit.LSTM(3, 4, engine="counting-test")
        named(torch.randn(2, 1, 3))
        assert len(calls) == 2
    finally:
        unregister_engine("counting-test")
    # layers that chose it choose again once it is gone
    layer(torch.randn(2, 1, 3))
    assert len(calls) == 2


def test_auto_is_reserved() -> None:
    class Auto(ReferenceEngine):
        name = "auto"

    with pytest.raises(ValueError, match="reserved"):
        register_engine(Auto(), priority=1)


def _random_layer(rng: random.Random, dtype: torch.dtype) -> lstmkit.Recurrent:
    kind = rng.choice(["LSTM", "GRU", "RNN"])
    I, H = rng.randint(1, 6), rng.randint(2, 7)
    common = {
        "num_layers": rng.randint(1, 3),
        "bidirectional": rng.random() < 0.5,
        "batch_first": rng.random() < 0.5,
        "bias": rng.random() < 0.8,
        "dtype": dtype,
    }
    if kind == "LSTM":
        return lstmkit.LSTM(I, H, proj_size=rng.choice([0, 0, H - 1]), **common)
    if kind == "GRU":
        return lstmkit.GRU(I, H, **common)
    return lstmkit.RNN(I, H, nonlinearity=rng.choice(["tanh", "relu"]), **common)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trial", range(12))
def test_native_equals_reference_on_random_configurations(
    trial: int, dtype: torch.dtype, seed: int
) -> None:
    rng = random.Random(seed)
    layer = _random_layer(rng, dtype)
    T, B = rng.choice([1, 2, 7]), rng.choice([1, 3])
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    # non-contiguous input: a transposed view
    x = torch.randn(shape[::-1], dtype=dtype).permute(2, 1, 0).requires_grad_()
    assert not x.is_contiguous() or min(shape) == 1
    packed = rng.random() < 0.4
    lengths = torch.tensor([rng.randint(1, T) for _ in range(B)])
    hx = layer.initial_state(B, dtype=dtype, device=torch.device("cpu"))
    hx = (
        tuple(torch.randn_like(t).requires_grad_() for t in hx)
        if isinstance(hx, tuple)
        else torch.randn_like(hx).requires_grad_()
    )
    results = {}
    for engine in ("reference", "native"):
        layer.engine = engine
        inp = (
            pack_padded_sequence(x, lengths, batch_first=layer.batch_first, enforce_sorted=False)
            if packed
            else x
        )
        out, h_n = layer(inp, hx)
        out = out.data if packed else out
        states = list(h_n) if isinstance(h_n, tuple) else [h_n]
        weights = [
            torch.randn_like(t, generator=torch.Generator().manual_seed(1)) for t in [out, *states]
        ]
        loss = sum((w * t).sum() for w, t in zip(weights, [out, *states], strict=True))
        leaves = [x, *(hx if isinstance(hx, tuple) else [hx]), *layer.parameters()]
        results[engine] = [out, *states, *torch.autograd.grad(loss, leaves)]
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for a, b in zip(results["reference"], results["native"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)


def test_engine_is_abstract() -> None:
    with pytest.raises(TypeError):
        Engine()  # type: ignore[abstract]
