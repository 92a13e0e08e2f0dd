"""Property-based tests (Hypothesis) of every layer family on every engine that runs it: drawn
sizes (B = 0, B = 1, T = 1 among them), dtypes (float64, and float32 but for layer norm, whose
normalisation of two or three values amplifies float32's rounding; tests/engines/test_fused.py
judges it against the exact result), layouts (batch_first, padded with ``lengths=``, packed
sorted and unsorted), states and options. A well-formed draw gives what the reference
engine gives (outputs, final states and the input's gradient) and, where torch.nn can express
the layer, what torch.nn gives; a malformed one raises an :class:`lstmkit.LstmkitError` whose
message names what was expected and what came.

The examples are a fixed number and derandomised (tests/conftest.py's Hypothesis profiles);
``LSTMKIT_HYPOTHESIS=release`` draws many more."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import lstmkit
from lstmkit._state import map_state
from lstmkit.engines.registry import supporting_engines
from lstmkit.engines.regularizers import Regularizers

LAYOUTS = ("padded", "batch_first", "lengths", "packed sorted", "packed unsorted")


@dataclass
class Draw:
    layer: lstmkit.Recurrent
    x: torch.Tensor
    lengths: list[int] | None
    layout: str
    state: Any


def _lstm(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    variant = draw(st.sampled_from([None, *sorted(lstmkit.VARIANTS)]))
    options: dict[str, Any] = {} if variant is None else {"variant": variant}
    if common["dtype"] == torch.float64 and draw(st.booleans()):
        options["layer_norm"] = True
    proj = draw(st.integers(0, H - 1)) if variant is None and H > 1 else 0
    return lstmkit.LSTM(I, H, proj_size=proj, bias=draw(st.booleans()), **options, **common)


def _gru(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    layer_norm = common["dtype"] == torch.float64 and draw(st.booleans())
    return lstmkit.GRU(I, H, reset_after=draw(st.booleans()), layer_norm=layer_norm, **common)


def _rnn(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    return lstmkit.RNN(I, H, nonlinearity=draw(st.sampled_from(["tanh", "relu"])), **common)


def _mut(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    kind = draw(st.sampled_from([1, 2, 3]))
    if kind in (1, 2):  # they read x_t where h_t goes: square, one direction and layer
        common.update(num_layers=1, bidirectional=False)
        I = H
    return lstmkit.MUT(I, H, kind=kind, **common)


def _clockwork(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    modules = draw(st.integers(1, min(3, H)))
    sizes = [H // modules] * modules
    sizes[-1] += H - sum(sizes)
    periods = sorted(draw(st.sets(st.integers(1, 8), min_size=modules, max_size=modules)))
    return lstmkit.ClockworkRNN(I, H, periods=periods, module_sizes=sizes, **common)


def _depth_gated(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    return lstmkit.DepthGatedLSTM(
        I, H, peepholes=draw(st.booleans()), **common | {"num_layers": draw(st.integers(1, 3))}
    )


def _grid(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    return lstmkit.GridLSTM(
        I, H, depth=draw(st.integers(1, 2)),
        priority=draw(st.sampled_from(["depth", "time", None])),
        depth_transform=draw(st.sampled_from(["lstm", "tanh", "relu"])), **common,
    )  # fmt: skip


def _torch_lstm(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    proj = draw(st.integers(0, H - 1)) if H > 1 else 0
    return lstmkit.LSTM(I, H, proj_size=proj, bias=draw(st.booleans()), **common)


def _torch_gru(draw: Any, I: int, H: int, **common: Any) -> lstmkit.Recurrent:
    return lstmkit.GRU(I, H, bias=draw(st.booleans()), **common)


# the configurations torch.nn.LSTM, GRU and RNN compute
TORCH_FAMILIES = {"LSTM": _torch_lstm, "GRU": _torch_gru, "RNN": _rnn}

FAMILIES = {
    "LSTM": _lstm,
    "GRU": _gru,
    "RNN": _rnn,
    "MUT": _mut,
    "Clockwork": _clockwork,
    "DepthGated": _depth_gated,
    "Grid": _grid,
}


@st.composite
def draws(draw: Any, family: str, builders: dict[str, Any] | None = None) -> Draw:
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    I, H = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    layout = draw(st.sampled_from(LAYOUTS))
    common = {
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(st.booleans()),
        "batch_first": layout == "batch_first",
        "dtype": dtype,
    }
    layer = (FAMILIES if builders is None else builders)[family](draw, I, H, **common)
    B = draw(st.integers(0 if layout in ("padded", "batch_first") else 1, 3))
    T = draw(st.sampled_from([1, 2, 5]))
    shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    lengths = None
    if layout in ("lengths", "packed sorted", "packed unsorted"):
        lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
        if layout == "packed sorted":
            lengths = sorted(lengths, reverse=True)
    state = None
    if draw(st.booleans()):
        zeros = layer.initial_state(B, dtype=dtype, device=torch.device("cpu"))
        state = map_state(lambda t: torch.randn_like(t).requires_grad_(), zeros)
        if isinstance(state, lstmkit.ClockworkState):  # a clock: whole steps, drawn
            clock = draw(st.integers(0, 10**6))
            state = state._replace(t=torch.full_like(zeros.t, clock))
    if builders is None:  # (torch.nn's layers have no regularisers)
        _regularise(draw, layer)
    return Draw(layer, x, lengths, layout, state)


def _regularise(draw: Any, layer: lstmkit.Recurrent) -> None:
    """Draws the layer's mode and the regularisers its cell takes (a Clockwork cell's clock is no
    cell state; recurrent dropout needs a cell that supports it)."""
    layer.train(draw(st.booleans()))
    names = ["input_dropout", "zoneout_hidden"]
    cell = layer.cell(0)
    if cell.supports_recurrent_dropout:
        names.append("recurrent_dropout")
    zero = cell.initial_state(1, dtype=torch.float64, device=torch.device("cpu"))
    if "c" in getattr(zero, "_fields", ()):
        names.append("zoneout_cell")
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
    layer.regularizers = Regularizers(**{n: draw(st.floats(0.1, 0.5)) for n in chosen})


def run(d: Draw, module: torch.nn.Module | None = None) -> list[torch.Tensor]:
    """Outputs (padded, zero past each length), final states and dL/dx of one call, its
    regularisers' masks drawn from the same random state every time."""
    module = d.layer if module is None else module
    torch.manual_seed(20150827)
    x, state = d.x, d.state
    if d.layout.startswith("packed"):
        assert d.lengths is not None
        sorted_ = d.layout == "packed sorted"
        inp: Any = pack_padded_sequence(x, torch.tensor(d.lengths), enforce_sorted=sorted_)
        out, h_n = module(inp, state)
        assert isinstance(out, PackedSequence)
        out = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])[0]
    elif d.layout == "lengths":
        out, h_n = module(x, state, lengths=d.lengths)
    else:
        out, h_n = module(x, state)
    states = list(h_n) if isinstance(h_n, tuple) else [h_n]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    loss = (out * weights).sum() + sum(s.square().sum() for s in states)
    (dx,) = torch.autograd.grad(loss, [x], allow_unused=True)
    return [out, *states, torch.zeros_like(x) if dx is None else dx]


# float64 within the engines' sweep's 1e-10; float32 within 1e-5 (a few steps of a few units:
# the kernels' fast exp and reciprocal against torch's)
TOLERANCE = {torch.float64: (1e-9, 1e-10), torch.float32: (1e-5, 1e-5)}


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor], what: str) -> None:
    assert len(got) == len(expected), what
    for a, b in zip(got, expected, strict=True):
        rtol, atol = TOLERANCE[b.dtype]
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def engines_for(layer: lstmkit.Recurrent) -> list[str]:
    """Every engine that says it runs the layer, and auto."""
    return ["auto", *(e.name for e in supporting_engines(layer) if e.name != "reference")]


@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_every_engine_equals_the_reference_on_any_well_formed_draw(family: str, data: Any) -> None:
    d = data.draw(draws(family))
    d.layer.engine = "reference"
    expected = run(d)
    for engine in engines_for(d.layer):
        d.layer.engine = engine
        assert_same(run(d), expected, f"{engine} engine ({d.layer.last_engine})")


@pytest.mark.parametrize("family", ["LSTM", "GRU", "RNN"])
@given(data=st.data())
def test_what_torch_nn_expresses_it_computes_alike(family: str, data: Any) -> None:
    d = data.draw(draws(family, TORCH_FAMILIES))
    theirs = lstmkit.to_torch(d.layer.eval()).eval()
    if d.layout == "lengths":  # torch.nn has no lengths=: the same call, packed
        d.layout = "packed unsorted"
    with warnings.catch_warnings():  # torch.nn's own note, once a process, in float32
        warnings.filterwarnings("ignore", "LSTM with projections is not supported with oneDNN")
        expected = run(d, theirs)
    assert_same(expected, run(d), "torch.nn")


def _bad_features(d: Draw) -> Draw:
    x = torch.randn(*d.x.shape[:-1], d.x.shape[-1] + 1, dtype=d.x.dtype)
    return Draw(d.layer, x, d.lengths, d.layout, d.state)


def _bad_dtype(d: Draw) -> Draw:
    other = torch.float32 if d.x.dtype == torch.float64 else torch.float64
    return Draw(d.layer, d.x.detach().to(other), d.lengths, d.layout, d.state)


def _bad_rank(d: Draw) -> Draw:
    return Draw(d.layer, d.x.detach()[..., None], d.lengths, d.layout, d.state)


def _bad_state_width(d: Draw) -> Draw:
    zeros = d.layer.initial_state(_batch(d), dtype=d.x.dtype, device=torch.device("cpu"))
    return Draw(d.layer, d.x, d.lengths, d.layout, map_state(lambda t: t[..., :-1], zeros))


def _bad_state_batch(d: Draw) -> Draw:
    zeros = d.layer.initial_state(_batch(d) + 1, dtype=d.x.dtype, device=torch.device("cpu"))
    return Draw(d.layer, d.x, d.lengths, d.layout, zeros)


def _bad_state_kind(d: Draw) -> Draw:
    return Draw(d.layer, d.x, d.lengths, d.layout, [d.x.detach()])


def _bad_lengths(d: Draw) -> Draw:
    T = d.x.shape[1] if d.layer.batch_first else d.x.shape[0]
    lengths = [T + 1] + [1] * (_batch(d) - 1)
    return Draw(d.layer, d.x, lengths, "lengths", d.state)


def _batch(d: Draw) -> int:
    return d.x.shape[0] if d.layer.batch_first else d.x.shape[1]


MISTAKES = {
    "features": _bad_features,
    "dtype": _bad_dtype,
    "rank": _bad_rank,
    "state width": _bad_state_width,
    "state batch": _bad_state_batch,
    "state kind": _bad_state_kind,
    "lengths": _bad_lengths,
}


@pytest.mark.parametrize("mistake", MISTAKES)
@given(data=st.data())
def test_a_malformed_call_says_what_was_expected(mistake: str, data: Any) -> None:
    d = data.draw(draws(data.draw(st.sampled_from(sorted(FAMILIES)))))
    if _batch(d) == 0 and mistake == "lengths":
        return  # no sequence to give a bad length
    bad = MISTAKES[mistake](d)
    bad.layer.engine = data.draw(st.sampled_from(["auto", *engines_for(bad.layer), "reference"]))
    with pytest.raises(lstmkit.LstmkitError) as raised:
        run(bad)
    message = str(raised.value)  # "... expected X, got Y" or "X has A but B has C"
    assert any(word in message for word in ("got", "expected", " but ")), message
