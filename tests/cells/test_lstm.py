"""LSTMCell against the equations, gradcheck, the reductions between variants, and its options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import lstmkit
from lstmkit import FullGateState, LSTMCell, LSTMState
from tests.helpers import assert_step_gradients
from tests.references import np64
from tests.references.lstm import LSTMFlags, lstm_sequence, lstm_weights

B, I, H, P = 3, 5, 6, 4

# Each case: the keyword options, and the flags of the same LSTM for the NumPy reference,
# written out by hand from the definitions (not derived from lstmkit's config).
CASES: dict[str, tuple[dict, LSTMFlags]] = {
    "standard": ({}, LSTMFlags()),
    "vanilla": ({"variant": "vanilla"}, LSTMFlags(peepholes="ifo")),
    "NIG": ({"variant": "NIG"}, LSTMFlags(peepholes="fo", input_gate=False)),
    "NFG": ({"variant": "NFG"}, LSTMFlags(peepholes="io", forget_gate=False)),
    "NOG": ({"variant": "NOG"}, LSTMFlags(peepholes="if", output_gate=False)),
    "NIAF": ({"variant": "NIAF"}, LSTMFlags(peepholes="ifo", input_activation=False)),
    "NOAF": ({"variant": "NOAF"}, LSTMFlags(peepholes="ifo", output_activation=False)),
    "NP": ({"variant": "NP"}, LSTMFlags()),
    "CIFG": ({"variant": "CIFG"}, LSTMFlags(peepholes="io", coupled=True)),
    "FGR": ({"variant": "FGR"}, LSTMFlags(peepholes="ifo", full_gate_recurrence=True)),
    "peep_i": ({"peepholes": "i"}, LSTMFlags(peepholes="i")),
    "peep_f": ({"peepholes": "f"}, LSTMFlags(peepholes="f")),
    "peep_o": ({"peepholes": "o"}, LSTMFlags(peepholes="o")),
    "peep_if": ({"peepholes": ["f", "i"]}, LSTMFlags(peepholes="if")),
    "peep_fo": ({"peepholes": "of"}, LSTMFlags(peepholes="fo")),
    "coupled": ({"coupled": True}, LSTMFlags(coupled=True)),
    "proj": ({"proj_size": P}, LSTMFlags(proj=True)),
    "vanilla_proj_nobias": (
        {"variant": "vanilla", "proj_size": P, "bias": False},
        LSTMFlags(peepholes="ifo", proj=True, bias=False),
    ),
    "NOAF_proj": (
        {"variant": "NOAF", "proj_size": P},
        LSTMFlags(peepholes="ifo", output_activation=False, proj=True),
    ),
    "FGR_coupled": (
        {"coupled": True, "full_gate_recurrence": True, "peepholes": "i"},
        LSTMFlags(peepholes="i", coupled=True, full_gate_recurrence=True),
    ),
    "FGR_NOG_proj": (
        {"full_gate_recurrence": True, "output_gate": False, "proj_size": P},
        LSTMFlags(full_gate_recurrence=True, output_gate=False, proj=True),
    ),
    "layer_norm": ({"layer_norm": True}, LSTMFlags(layer_norm=True)),
    "vanilla_ln_proj": (
        {"variant": "vanilla", "layer_norm": True, "proj_size": P},
        LSTMFlags(peepholes="ifo", layer_norm=True, proj=True),
    ),
    "CIFG_ln_nobias": (
        {"variant": "CIFG", "layer_norm": True, "bias": False},
        LSTMFlags(peepholes="io", coupled=True, layer_norm=True, bias=False),
    ),
    "NOAF_ln_FGR": (
        {"output_activation": False, "layer_norm": True, "full_gate_recurrence": True},
        LSTMFlags(output_activation=False, layer_norm=True, full_gate_recurrence=True),
    ),
    "all_off": (
        {
            "input_gate": False,
            "forget_gate": False,
            "output_gate": False,
            "input_activation": False,
        },
        LSTMFlags(input_gate=False, forget_gate=False, output_gate=False, input_activation=False),
    ),
}


def make_cell(options: dict, *, dtype: torch.dtype = torch.float64) -> LSTMCell:
    cell = LSTMCell(I, H, dtype=dtype, **options)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, 0.6)  # larger than the init, so every term matters
    return cell


def random_state(cell: LSTMCell, batch: int = B) -> LSTMState | FullGateState:
    template = cell.initial_state(batch, dtype=torch.float64, device=torch.device("cpu"))
    return type(template)(*(torch.randn_like(t) for t in template))


@pytest.mark.parametrize("name", CASES)
def test_steps_match_the_equations(name: str) -> None:
    options, flags = CASES[name]
    cell = make_cell(options)
    xs = torch.randn(4, B, I, dtype=torch.float64)
    state = random_state(cell)
    a0 = np64(state.a) if flags.full_gate_recurrence else None
    hs_ref, h_ref, c_ref, a_ref = lstm_sequence(
        np64(xs), np64(state.h), np64(state.c), lstm_weights(cell.state_dict(), flags), flags, a0
    )
    for t, x in enumerate(xs):
        state = cell(x, state)
        np.testing.assert_allclose(np64(state.h), hs_ref[t], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(state.h), h_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(state.c), c_ref, rtol=0, atol=1e-10)
    if flags.full_gate_recurrence:
        assert isinstance(state, FullGateState)
        np.testing.assert_allclose(np64(state.a), a_ref, rtol=0, atol=1e-10)
    else:
        assert type(state) is LSTMState


@pytest.mark.parametrize("name", CASES)
def test_layer_matches_the_equations(name: str) -> None:
    options, flags = CASES[name]
    lstm = lstmkit.LSTM(I, H, num_layers=2, dtype=torch.float64, engine="reference", **options)
    xs = torch.randn(5, B, I, dtype=torch.float64)
    out, h_n = lstm(xs)
    sd = lstm.state_dict()
    x = np64(xs)
    for k in range(2):
        w = lstm_weights(sd, flags, suffix=f"_l{k}")
        h0 = np.zeros((B, P if flags.proj else H))
        x, h, c, _ = lstm_sequence(x, h0, np.zeros((B, H)), w, flags)
        np.testing.assert_allclose(np64(h_n.h[k]), h, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np64(h_n.c[k]), c, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out), x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(name: str) -> None:
    options, _ = CASES[name]
    if "proj_size" in options:
        options = {**options, "proj_size": 1}
    cell = LSTMCell(3, 2, dtype=torch.float64, **options)
    x = torch.randn(2, 2, 3, dtype=torch.float64)
    assert_step_gradients(cell, x, random_state(cell, batch=2))


def _standard_from(cell: LSTMCell) -> LSTMCell:
    """A standard LSTM with the same weights wherever the two share a block."""
    std = LSTMCell(I, H, dtype=torch.float64, proj_size=cell.config.proj_size)
    blocks = cell.config.blocks
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            src, dst = getattr(cell, name), getattr(std, name)
            dst.zero_()
            for j, g in enumerate("ifgo"):
                if g in blocks:
                    k = blocks.index(g)
                    dst[j * H : (j + 1) * H] = src[k * H : (k + 1) * H]
        if cell.weight_hr is not None:
            std.weight_hr.copy_(cell.weight_hr)
    return std


def _run(cell: LSTMCell, xs: torch.Tensor, state: LSTMState) -> LSTMState:
    if cell.config.full_gate_recurrence:
        k = len(cell.config.recurrent_gates)
        state = FullGateState(state.h, state.c, torch.randn(B, k * H, dtype=torch.float64))
    for x in xs:
        state = cell(x, state)
    return LSTMState(state.h, state.c)


def _assert_same(a: LSTMState, b: LSTMState) -> None:
    torch.testing.assert_close(a.h, b.h, rtol=0, atol=1e-10)
    torch.testing.assert_close(a.c, b.c, rtol=0, atol=1e-10)


@pytest.fixture
def seq() -> tuple[torch.Tensor, LSTMState]:
    xs = torch.randn(4, B, I, dtype=torch.float64)
    return xs, LSTMState(
        torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    )


def test_zero_peepholes_give_the_standard_lstm(seq) -> None:
    xs, s0 = seq
    cell = make_cell({"peepholes": "ifo"})
    with torch.no_grad():
        for g in "ifo":
            getattr(cell, f"weight_c{g}").zero_()
    _assert_same(_run(cell, xs, s0), _run(_standard_from(cell), xs, s0))
    with torch.no_grad():
        cell.weight_co.fill_(0.5)  # and a nonzero peephole does change the result
    assert not torch.allclose(_run(cell, xs, s0).h, _run(_standard_from(cell), xs, s0).h)


def test_coupled_equals_a_forget_gate_of_one_minus_input(seq) -> None:
    xs, s0 = seq
    cell = make_cell({"coupled": True})
    std = _standard_from(cell)
    with torch.no_grad():  # σ(-a) = 1 - σ(a): f's weights are minus i's
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            p = getattr(std, name)
            p[H : 2 * H] = -p[:H]
    _assert_same(_run(cell, xs, s0), _run(std, xs, s0))


@pytest.mark.parametrize(("variant", "gate"), [("NIG", "i"), ("NFG", "f"), ("NOG", "o")])
def test_a_removed_gate_equals_a_gate_saturated_at_one(seq, variant: str, gate: str) -> None:
    xs, s0 = seq
    cell = make_cell({"variant": variant})
    # the same variant with the gate back but pinned at σ(1000) = 1 in float64
    peepholes = "ifo".replace(gate, "")
    pinned = make_cell({"peepholes": peepholes})
    with torch.no_grad():
        src = _standard_from(cell)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(pinned, name).copy_(getattr(src, name))
        for g in peepholes:
            getattr(pinned, f"weight_c{g}").copy_(getattr(cell, f"weight_c{g}"))
        j = "ifgo".index(gate)
        pinned.weight_ih[j * H : (j + 1) * H] = 0.0
        pinned.weight_hh[j * H : (j + 1) * H] = 0.0
        pinned.bias_ih[j * H : (j + 1) * H] = 1000.0
        pinned.bias_hh[j * H : (j + 1) * H] = 0.0
    _assert_same(_run(cell, xs, s0), _run(pinned, xs, s0))


def test_no_peepholes_preset_is_the_standard_lstm(seq) -> None:
    xs, s0 = seq
    cell = make_cell({"variant": "NP"})
    assert cell.config.is_standard
    _assert_same(_run(cell, xs, s0), _run(_standard_from(cell), xs, s0))


def test_zero_gate_recurrence_gives_vanilla(seq) -> None:
    xs, s0 = seq
    fgr = make_cell({"variant": "FGR"})
    vanilla = LSTMCell(I, H, dtype=torch.float64, variant="vanilla")
    state = {k: v for k, v in fgr.state_dict().items() if k != "weight_gg"}
    vanilla.load_state_dict(state)
    with torch.no_grad():
        fgr.weight_gg.zero_()
    _assert_same(_run(fgr, xs, s0), _run(vanilla, xs, s0))


def test_activation_switches_change_what_they_say(seq) -> None:
    xs, s0 = seq
    vanilla = make_cell({"variant": "vanilla"})
    for variant in ("NIAF", "NOAF"):
        other = LSTMCell(I, H, dtype=torch.float64, variant=variant)
        other.load_state_dict(vanilla.state_dict())
        # with tiny pre-activations tanh(v) ≈ v, so removing it changes little; with the
        # random weights above it changes a lot
        assert (_run(other, xs, s0).h - _run(vanilla, xs, s0).h).abs().max() > 1e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_lstmcell(dtype: torch.dtype) -> None:
    ref = nn.LSTMCell(I, H, dtype=dtype)
    cell = lstmkit.from_torch(ref)
    x, h, c = (
        torch.randn(B, I, dtype=dtype),
        torch.randn(B, H, dtype=dtype),
        torch.randn(B, H, dtype=dtype),
    )
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    expected = ref(x, (h, c))
    got = cell(x, (h, c))
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=tol)
    # unbatched, as torch.nn.LSTMCell
    for e, g in zip(ref(x[0], (h[0], c[0])), cell(x[0], (h[0], c[0])), strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=tol)


def test_state_is_zero_when_omitted() -> None:
    cell = make_cell({"variant": "vanilla"})
    x = torch.randn(B, I, dtype=torch.float64)
    zeros = LSTMState(
        torch.zeros(B, H, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64)
    )
    _assert_same(cell(x), cell(x, zeros))


def _biases(cell: LSTMCell, gate: str) -> torch.Tensor:
    j = cell.config.blocks.index(gate)
    return (cell.bias_ih + cell.bias_hh)[j * H : (j + 1) * H]


def test_forget_bias_is_one_by_default_and_settable() -> None:
    torch.testing.assert_close(_biases(LSTMCell(I, H), "f"), torch.ones(H))
    torch.testing.assert_close(_biases(LSTMCell(I, H, forget_bias=3.0), "f"), torch.full((H,), 3.0))
    # coupled: f = 1 - σ(a_i) = σ(-a_i), so the forget bias shows as -b_i
    torch.testing.assert_close(
        _biases(LSTMCell(I, H, coupled=True, forget_bias=2.0), "i"), torch.full((H,), -2.0)
    )
    # the other biases keep torch.nn's uniform init
    assert _biases(LSTMCell(I, H), "i").abs().max() <= 2 / math.sqrt(H)


def test_chrono_initialisation() -> None:
    T_max = 50
    cell = LSTMCell(I, 400, chrono=T_max)
    Hc = 400
    b_f = (cell.bias_ih + cell.bias_hh)[Hc : 2 * Hc]
    b_i = (cell.bias_ih + cell.bias_hh)[:Hc]
    assert b_f.min() >= 0.0
    assert b_f.max() <= math.log(T_max - 1) + 1e-6
    torch.testing.assert_close(b_i, -b_f)
    # log U(1, T_max - 1) has mean ((T-1) log(T-1) - (T-1) + 1) / (T - 2) - 0 ≈ 2.93 for T = 50
    u = T_max - 1.0
    mean = (u * math.log(u) - u + 1.0) / (u - 1.0)
    assert abs(b_f.mean().item() - mean) < 0.15


def test_spawn_keeps_the_configuration_and_draws_fresh_weights() -> None:
    cell = LSTMCell(I, H, variant="FGR", proj_size=2, chrono=20)
    other = cell.spawn(7)
    assert other.config == cell.config
    assert other.input_size == 7
    assert not torch.equal(other.weight_hh, cell.weight_hh)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"variant": "vanila"},
            ValueError,
            "'vanilla', 'NIG', 'NFG', 'NOG', 'NIAF', 'NOAF', 'NP', 'CIFG', 'FGR'",
        ),
        ({"variant": "NIG", "input_gate": True}, ValueError, "variant='NIG' sets input_gate=False"),
        ({"variant": "CIFG", "peepholes": "ifo"}, ValueError, "sets peepholes='io'"),
        ({"coupled": True, "forget_gate": False}, ValueError, "needs both"),
        ({"coupled": True, "input_gate": False}, ValueError, "needs both"),
        (
            {"peepholes": "f", "forget_gate": False},
            ValueError,
            "forget gate, but that gate is switched off",
        ),
        ({"peepholes": "f", "coupled": True}, ValueError, "derived as 1 - i_t"),
        ({"peepholes": "ix"}, ValueError, "at most once"),
        ({"peepholes": "ii"}, ValueError, "at most once"),
        ({"peepholes": 3}, TypeError, "string of gates"),
        (
            {"proj_size": H},
            ValueError,
            "proj_size must be smaller than hidden_size, got proj_size=6, hidden_size=6",
        ),
        ({"proj_size": -1}, ValueError, "proj_size must be >= 0"),
        ({"forget_bias": 1.0, "chrono": 10}, ValueError, "not both"),
        ({"chrono": 2}, ValueError, "T_max >= 3"),
        ({"chrono": 2.5}, TypeError, "chrono must be an int"),
        ({"forget_bias": 2.0, "forget_gate": False}, ValueError, "no forget gate"),
        ({"forget_bias": 2.0, "bias": False}, ValueError, "bias=False"),
        ({"coupled": "yes"}, TypeError, "coupled must be a bool"),
        ({"peephole": "i"}, TypeError, "unexpected LSTM option(s) ['peephole']"),
    ],
)
def test_bad_options_say_what_is_wrong(options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=_literal(message)):
        LSTMCell(I, H, **options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, H), "input_size must be positive, got 0"),
        ((I, -2), "hidden_size must be positive, got -2"),
        ((I, 2.0), "hidden_size must be an int"),
    ],
)
def test_bad_sizes(args: tuple, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=_literal(message)):
        LSTMCell(*args)


def test_bad_step_input() -> None:
    cell = LSTMCell(I, H)
    with pytest.raises(ValueError, match="Expected 5, got 4"):
        cell(torch.randn(B, 4))
    with pytest.raises(ValueError, match="got 3-D"):
        cell(torch.randn(2, B, I))
    with pytest.raises(TypeError, match=r"expected a tuple \(h, c\) of Tensors, got a Tensor"):
        cell(torch.randn(B, I), torch.randn(B, H))
    with pytest.raises(ValueError, match=r"hx.c: expected shape \(3, 6\), got \(3, 7\)"):
        cell(torch.randn(B, I), (torch.randn(B, H), torch.randn(B, 7)))
    with pytest.raises(TypeError, match=r"float64 but the parameters have torch\.float32"):
        cell(torch.randn(B, I, dtype=torch.float64))


def _literal(text: str) -> str:
    import re

    return re.escape(text)
