"""The fused engine's other families against the reference engine: MUT1-3, the Clockwork RNN,
the Depth-Gated LSTM and the time × depth Grid LSTM, over randomized sweeps of their options,
with padded and packed batches, both directions, regularisers, and every gradient."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

import lstmkit
from lstmkit.engines import select_engine
from tests.engines.test_fused import RTOL, TOL, random_state, run_both


def random_mut(rng: random.Random, dtype: torch.dtype) -> lstmkit.Recurrent:
    kind = rng.choice([1, 2, 3])
    H = rng.randint(2, 9)
    I = H if kind in (1, 2) else rng.randint(1, 7)
    regularizers = {}
    if rng.random() < 0.5:
        name = rng.choice(["input_dropout", "recurrent_dropout", "zoneout_hidden"])
        regularizers[name] = rng.uniform(0.1, 0.5)
    return lstmkit.MUT(I, H, kind=kind, num_layers=1, **_common(rng, dtype), **regularizers)


def random_clockwork(rng: random.Random, dtype: torch.dtype) -> lstmkit.Recurrent:
    periods = rng.choice([[1, 2, 4], [1, 3], [2, 3, 5, 7], [1, 2, 4, 8], [3]])
    sizes = [rng.randint(1, 3) for _ in periods]
    regularizers = {}
    if rng.random() < 0.5:
        name = rng.choice(["input_dropout", "recurrent_dropout", "zoneout_hidden"])
        regularizers[name] = rng.uniform(0.1, 0.5)
    return lstmkit.ClockworkRNN(
        rng.randint(1, 6), sum(sizes), periods=periods, module_sizes=sizes,
        nonlinearity=rng.choice(["tanh", "relu"]), bias=rng.random() < 0.8,
        num_layers=rng.randint(1, 2), **_common(rng, dtype), **regularizers,
    )  # fmt: skip


def random_depth_gated(rng: random.Random, dtype: torch.dtype) -> lstmkit.Recurrent:
    L = rng.randint(1, 3)
    regularizers = {}
    if rng.random() < 0.5:
        names = ["input_dropout", "recurrent_dropout", "zoneout_hidden", "zoneout_cell"]
        for name in rng.sample(names, rng.randint(1, 2)):
            regularizers[name] = rng.uniform(0.1, 0.5)
    return lstmkit.DepthGatedLSTM(
        rng.randint(1, 6), rng.randint(2, 8), num_layers=L, bias=rng.random() < 0.8,
        peepholes=rng.random() < 0.5, dropout=rng.choice([0.0, 0.3]) if L > 1 else 0.0,
        **_common(rng, dtype), **regularizers,
    )  # fmt: skip


def random_grid(rng: random.Random, dtype: torch.dtype) -> lstmkit.Recurrent:
    transform = rng.choice(["lstm", "lstm", "tanh", "relu"])
    options = {
        "depth": rng.randint(1, 3), "tied": rng.random() < 0.3,
        "priority": rng.choice(["depth", None, "time"]), "depth_transform": transform,
        "output_inside": rng.random() < 0.6,
        "project_memory": transform == "lstm" and rng.random() < 0.4,
    }  # fmt: skip
    I, H, layers = rng.randint(1, 6), rng.randint(2, 7), rng.randint(1, 2)
    if rng.random() < 0.6:
        return lstmkit.GridLSTM(I, H, num_layers=layers, **options, **_common(rng, dtype))
    # zoneout on h, the output (GridLSTM does not offer it), through Recurrent
    regularizers = {"zoneout_hidden": rng.uniform(0.1, 0.5)}
    if rng.random() < 0.5:
        regularizers["input_dropout"] = rng.uniform(0.1, 0.5)
    common = _common(rng, dtype)
    cell = lstmkit.GridLSTMCell(I, H, **options, dtype=common.pop("dtype"))
    return lstmkit.Recurrent(cell, num_layers=layers, **common, **regularizers)


def _common(rng: random.Random, dtype: torch.dtype) -> dict[str, Any]:
    return {
        "bidirectional": rng.random() < 0.5,
        "batch_first": rng.random() < 0.5,
        "dtype": dtype,
    }


MAKERS = {
    "MUT": random_mut,
    "Clockwork": random_clockwork,
    "DepthGated": random_depth_gated,
    "Grid": random_grid,
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trial", range(8))
@pytest.mark.parametrize("family", list(MAKERS))
def test_fused_family_equals_reference(
    family: str, trial: int, dtype: torch.dtype, seed: int
) -> None:
    rng = random.Random(seed)
    layer = MAKERS[family](rng, dtype)
    layer.train(rng.random() < 0.7)
    assert select_engine("fused", layer).name == "fused"
    T, B = rng.choice([1, 2, 5, 9]), rng.choice([1, 3, 4])
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([rng.randint(1, T) for _ in range(B)]) if rng.random() < 0.4 else None
    state = random_state(layer, B, dtype)
    if family == "Grid" and not layer.regularizers.zoneout_hidden:
        state = state._replace(h=state.h.detach())  # the last output; only zoneout reads it
    results = run_both(layer, x, state, lengths)
    for a, b in zip(results["reference"], results["fused"], strict=True):
        torch.testing.assert_close(b, a, rtol=RTOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("clock", [0.0, 3.0, 1e20])
def test_a_given_clock_ticks_as_the_reference_counts_it(clock: float) -> None:
    # brought into the cycle before counting on: a large clock loses nothing
    layer = lstmkit.ClockworkRNN(3, 6, periods=[1, 2, 4], dtype=torch.float64)
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    state = lstmkit.ClockworkState(  # (layers, batch, ·)
        torch.randn(1, 2, 6, dtype=torch.float64),
        torch.tensor([[[clock], [5.0]]], dtype=torch.float64),
    )
    results = {}
    for engine in ("reference", "fused"):
        layer.engine = engine
        out, (h_n, t_n) = layer(x, state)
        results[engine] = (out, h_n, t_n)
    for a, b in zip(results["reference"], results["fused"], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12, equal_nan=True)
    assert results["fused"][2][0, 1, 0] == (5 + 7) % 4


@pytest.mark.parametrize("clock", [float("nan"), float("inf"), -3.0, -3.5, 0.5, 2.5])
@pytest.mark.parametrize("engine", ["reference", "fused"])
def test_a_clock_that_does_not_count_steps_is_refused(clock: float, engine: str) -> None:
    layer = lstmkit.ClockworkRNN(3, 6, periods=[1, 2, 4], engine=engine)
    state = lstmkit.ClockworkState(torch.randn(1, 2, 6), torch.tensor([[[0.0], [clock]]]))
    with pytest.raises(lstmkit.LstmkitValueError, match=r"expected whole numbers >= 0, got"):
        layer(torch.randn(4, 2, 3), state)
    with pytest.raises(lstmkit.LstmkitValueError, match=r"expected whole numbers >= 0, got"):
        layer.cell(0)(torch.randn(2, 3), lstmkit.ClockworkState(state.h[0], state.t[0]))
