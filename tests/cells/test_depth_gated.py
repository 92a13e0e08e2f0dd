"""The depth-gated LSTM against Yao et al. 2015's equations (a NumPy float64 stack), against
torch.nn.LSTM with its depth gates shut, gradcheck, the sequence layer's conventions, saving,
bad input, and learning."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit
from lstmkit import DepthGatedLSTM, DepthGatedLSTMCell
from tests.helpers import assert_step_gradients, load_example
from tests.references import np64
from tests.references.depth_gated import numpy_stack

B, T, I, H, L = 3, 5, 4, 3, 3
F64 = torch.float64


def params(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: np64(v) for k, v in module.state_dict().items()}


def randomize(module: torch.nn.Module, scale: float = 0.6) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, scale)


def make_cell(*, peepholes: bool = False, input_size: int = I) -> DepthGatedLSTMCell:
    cell = DepthGatedLSTMCell(input_size, H, num_layers=L, peepholes=peepholes, dtype=F64)
    randomize(cell)
    return cell


def make_layer(**kwargs) -> DepthGatedLSTM:
    layer = DepthGatedLSTM(I, H, num_layers=L, dtype=F64, **kwargs)
    randomize(layer)
    return layer


def as_layers(t: torch.Tensor) -> np.ndarray:
    """A cell state ``(B, L·H)`` as ``(L, B, H)``."""
    return np64(t).reshape(t.shape[0], -1, H).transpose(1, 0, 2)


@pytest.mark.parametrize("peepholes", [False, True])
def test_cell_steps_match_the_equations(peepholes: bool) -> None:
    cell = make_cell(peepholes=peepholes)
    xs = torch.randn(T, B, I, dtype=F64)
    state = lstmkit.LSTMState(torch.randn(B, L * H, dtype=F64), torch.randn(B, L * H, dtype=F64))
    h, c = as_layers(state.h), as_layers(state.c)
    for x in xs:
        state = cell(x, state)
        top, h, c = numpy_stack(np64(x)[None], h, c, params(cell), peepholes=peepholes)
        np.testing.assert_allclose(as_layers(state.h), h, rtol=0, atol=1e-10)
        np.testing.assert_allclose(as_layers(state.c), c, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np64(cell.output(state)), top[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_matches_the_equations_in_torch_nn_layout(batch_first: bool) -> None:
    layer = make_layer(batch_first=batch_first, peepholes=True)
    xs = torch.randn(T, B, I, dtype=F64)
    h0, c0 = torch.randn(L, B, H, dtype=F64), torch.randn(L, B, H, dtype=F64)
    out, (h_n, c_n) = layer(xs.transpose(0, 1) if batch_first else xs, (h0, c0))
    tops, h, c = numpy_stack(np64(xs), np64(h0), np64(c0), params(layer), peepholes=True)
    out = out.transpose(0, 1) if batch_first else out
    np.testing.assert_allclose(np64(out), tops, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n), h, rtol=0, atol=1e-10)  # row k: layer k
    np.testing.assert_allclose(np64(c_n), c, rtol=0, atol=1e-10)


def test_bidirectional_runs_a_reverse_stack() -> None:
    layer = make_layer(bidirectional=True)
    xs = torch.randn(T, B, I, dtype=F64)
    h0, c0 = torch.randn(2 * L, B, H, dtype=F64), torch.randn(2 * L, B, H, dtype=F64)
    out, (h_n, c_n) = layer(xs, (h0, c0))
    p = params(layer)
    fwd = numpy_stack(np64(xs), np64(h0[0::2]), np64(c0[0::2]), p)
    rev = numpy_stack(np64(xs)[::-1], np64(h0[1::2]), np64(c0[1::2]), p, suffix="_reverse")
    np.testing.assert_allclose(np64(out[..., :H]), fwd[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out[..., H:]), rev[0][::-1], rtol=0, atol=1e-10)
    # torch.nn's layout: row k·D + d is layer k of direction d
    np.testing.assert_allclose(np64(h_n[0::2]), fwd[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n[1::2]), rev[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(c_n[0::2]), fwd[2], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(c_n[1::2]), rev[2], rtol=0, atol=1e-10)


def test_shut_depth_gates_give_torch_nn_stacked_lstm() -> None:
    torch.manual_seed(0)
    reference = torch.nn.LSTM(I, H, num_layers=L, dtype=F64)
    layer = DepthGatedLSTM(I, H, num_layers=L, dtype=F64)
    missing, unexpected = layer.load_state_dict(reference.state_dict(), strict=False)
    gates = {f"{n}_l{k}" for k in range(1, L) for n in ("weight_xd", "weight_cd", "weight_ld")}
    assert set(missing) == gates | {f"bias_d_l{k}" for k in range(1, L)}
    assert unexpected == []
    xs = torch.randn(T, B, I, dtype=F64)
    h0, c0 = torch.randn(L, B, H, dtype=F64), torch.randn(L, B, H, dtype=F64)
    with torch.no_grad():
        for k in range(1, L):
            getattr(layer, f"bias_d_l{k}").fill_(-60.0)  # d_t ≈ 1e-26
    out, (h_n, c_n) = layer(xs, (h0, c0))
    expected, (h_ref, c_ref) = reference(xs, (h0, c0))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(c_n, c_ref, rtol=0, atol=1e-10)
    with torch.no_grad():  # open, the gates change the result: the comparison above can fail
        for k in range(1, L):
            getattr(layer, f"bias_d_l{k}").fill_(0.0)
    assert (layer(xs, (h0, c0))[0] - expected).abs().max() > 1e-3


def test_shut_depth_gates_with_peepholes_give_lstmkit_peephole_lstm() -> None:
    reference = lstmkit.LSTM(I, H, num_layers=L, peepholes="ifo", dtype=F64)
    randomize(reference)
    layer = DepthGatedLSTM(I, H, num_layers=L, peepholes=True, dtype=F64)
    layer.load_state_dict(reference.state_dict(), strict=False)
    with torch.no_grad():
        for k in range(1, L):
            getattr(layer, f"bias_d_l{k}").fill_(-60.0)
    xs = torch.randn(T, B, I, dtype=F64)
    out, (h_n, c_n) = layer(xs)
    expected, (h_ref, c_ref) = reference(xs)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(c_n, c_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("peepholes", [False, True])
def test_gradcheck(peepholes: bool) -> None:
    cell = DepthGatedLSTMCell(2, 2, num_layers=3, peepholes=peepholes, dtype=F64)
    randomize(cell)
    state = lstmkit.LSTMState(torch.randn(2, 6, dtype=F64), torch.randn(2, 6, dtype=F64))
    assert_step_gradients(cell, torch.randn(3, 2, 2, dtype=F64), state)


def test_layer_gradients_reach_every_parameter() -> None:
    layer = make_layer(bidirectional=True)
    out, (h_n, c_n) = layer(torch.randn(T, B, I, dtype=F64))
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_and_lengths_equal_each_sequence_alone(bidirectional: bool) -> None:
    layer = make_layer(bidirectional=bidirectional, batch_first=True)
    D = 2 if bidirectional else 1
    lengths = [5, 2, 4]
    x = torch.randn(B, T, I, dtype=F64)
    h0, c0 = torch.randn(L * D, B, H, dtype=F64), torch.randn(L * D, B, H, dtype=F64)
    padded, (h_pad, c_pad) = layer(x, (h0, c0), lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_packed, (h_pk, c_pk) = layer(packed, (h0, c0))
    unpacked, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=T)
    torch.testing.assert_close(unpacked, padded, rtol=0, atol=0)
    torch.testing.assert_close(h_pk, h_pad, rtol=0, atol=0)
    torch.testing.assert_close(c_pk, c_pad, rtol=0, atol=0)
    for b, n in enumerate(lengths):
        state = (h0[:, b : b + 1].contiguous(), c0[:, b : b + 1].contiguous())
        alone, (h_b, c_b) = layer(x[b : b + 1, :n], state)
        torch.testing.assert_close(padded[b, :n], alone[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(h_pad[:, b], h_b[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(c_pad[:, b], c_b[:, 0], rtol=0, atol=1e-12)
        assert torch.count_nonzero(padded[b, n:]) == 0


def test_unbatched_input_is_a_batch_of_one() -> None:
    layer = make_layer(bidirectional=True)
    x = torch.randn(T, I, dtype=F64)
    h0, c0 = torch.randn(2 * L, H, dtype=F64), torch.randn(2 * L, H, dtype=F64)
    out, (h_n, c_n) = layer(x, (h0, c0))
    batched, (h_b, c_b) = layer(x[:, None], (h0[:, None], c0[:, None]))
    torch.testing.assert_close(out, batched[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(h_n, h_b[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(c_n, c_b[:, 0], rtol=0, atol=0)
    assert h_n.shape == (2 * L, H)


def test_dropout_acts_only_on_the_input_from_the_layer_below() -> None:
    layer = make_layer(dropout=1.0)  # p = 1: every layer above 0 reads zeros from below
    xs = torch.randn(T, B, I, dtype=F64)
    h0, c0 = torch.randn(L, B, H, dtype=F64), torch.randn(L, B, H, dtype=F64)
    p = params(layer)
    out, (_, c_n) = layer.train()(xs, (h0, c0))
    tops, _, c = numpy_stack(np64(xs), np64(h0), np64(c0), p, zero_between=True)
    np.testing.assert_allclose(np64(out), tops, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(c_n), c, rtol=0, atol=1e-10)  # C_t^{k-1} still goes up
    out, _ = layer.eval()(xs, (h0, c0))
    expected = numpy_stack(np64(xs), np64(h0), np64(c0), p)[0]
    np.testing.assert_allclose(np64(out), expected, rtol=0, atol=1e-10)


def test_recurrent_dropout_mask_enters_the_recurrent_products_only() -> None:
    cell = make_cell()
    x = torch.randn(B, I, dtype=F64)
    state = lstmkit.LSTMState(torch.randn(B, L * H, dtype=F64), torch.randn(B, L * H, dtype=F64))
    mask = torch.bernoulli(torch.full((B, L * H), 0.5, dtype=F64)) * 2.0
    new = cell.step(cell.project_input(x), state, h_mask=mask)
    _, h, c = numpy_stack(
        np64(x)[None],
        as_layers(state.h),
        as_layers(state.c),
        params(cell),
        h_mask=as_layers(mask),
    )
    np.testing.assert_allclose(as_layers(new.h), h, rtol=0, atol=1e-10)
    np.testing.assert_allclose(as_layers(new.c), c, rtol=0, atol=1e-10)


def test_regularisers_run_and_are_off_in_evaluation() -> None:
    layer = make_layer(recurrent_dropout=0.3, input_dropout=0.2)
    plain = make_layer()
    plain.load_state_dict(layer.state_dict())
    xs = torch.randn(T, B, I, dtype=F64)
    torch.testing.assert_close(layer.eval()(xs)[0], plain.eval()(xs)[0], rtol=0, atol=0)
    assert (layer.train()(xs)[0] - plain(xs)[0]).abs().max() > 1e-6


def test_forget_bias_and_parameter_names() -> None:
    layer = DepthGatedLSTM(I, H, num_layers=2, bidirectional=True, peepholes=True)
    names = {n for n, _ in layer.named_parameters()}
    per_layer = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf"]
    expected = {f"{n}_l{k}" for n in [*per_layer, "weight_co"] for k in range(2)}
    expected |= {f"{n}_l1" for n in ("weight_xd", "weight_cd", "weight_ld", "bias_d")}
    assert names == expected | {n + "_reverse" for n in expected}
    assert layer.weight_xd_l1.shape == (H, H)
    assert layer.weight_ih_l1.shape == (4 * H, H)
    for k in range(2):
        assert torch.equal(getattr(layer, f"bias_ih_l{k}")[H : 2 * H], torch.ones(H))
        assert torch.equal(getattr(layer, f"bias_hh_l{k}")[H : 2 * H], torch.zeros(H))
    other = DepthGatedLSTM(I, H, num_layers=2, forget_bias=3.0)
    assert torch.equal(other.bias_ih_l1[H : 2 * H], torch.full((H,), 3.0))
    assert layer.depth == 2
    assert layer.num_directions == 2


def test_saves_and_loads() -> None:
    layer = make_layer(bidirectional=True, peepholes=True)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    other = DepthGatedLSTM(I, H, num_layers=L, bidirectional=True, peepholes=True, dtype=F64)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    xs = torch.randn(T, B, I, dtype=F64)
    out, (h_n, c_n) = other(xs)
    expected, (h_ref, c_ref) = layer(xs)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=0)
    torch.testing.assert_close(c_n, c_ref, rtol=0, atol=0)


def test_zero_initial_state_is_the_default() -> None:
    layer = make_layer(bidirectional=True)
    xs = torch.randn(T, B, I, dtype=F64)
    zeros = layer.initial_state(B, dtype=F64, device=torch.device("cpu"))
    assert zeros.h.shape == (2 * L, B, H)
    torch.testing.assert_close(layer(xs)[0], layer(xs, zeros)[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: DepthGatedLSTMCell(I, H, num_layers=0), ValueError, "num_layers must be positive"),
        (lambda: DepthGatedLSTM(I, H, num_layers=2.5), TypeError, "num_layers must be an int"),
        (lambda: DepthGatedLSTM(I, H, peepholes="ifo"), TypeError, "peepholes must be a bool"),
        (lambda: DepthGatedLSTM(I, H, dropout=1.5), ValueError, "dropout must be in [0, 1]"),
        (
            lambda: DepthGatedLSTM(I, H, bias=False, forget_bias=1.0),
            ValueError,
            "forget_bias sets the forget gate's bias, but bias=False",
        ),
        (lambda: DepthGatedLSTM(I, 0), ValueError, "hidden_size must be positive"),
        (
            lambda: DepthGatedLSTM(I, H, engine="native"),
            ValueError,
            "engine 'native' cannot run this layer",
        ),
    ],
)
def test_bad_options(build, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        build()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.randn(T, B, I + 1)), "input.size(-1) must be equal to input_size"),
        (
            lambda m: m(torch.randn(T, B, I), (torch.zeros(2, B, H), torch.zeros(2, B, H))),
            "hx.h: expected shape (6, 3, 3), got (2, 3, 3)",
        ),
        (
            lambda m: m(torch.randn(T, B, I), (torch.zeros(2 * L, B, H * L),) * 2),
            "hx.h: expected shape (6, 3, 3), got (6, 3, 9)",
        ),
        (lambda m: m(torch.randn(T, B, I), torch.zeros(2 * L, B, H)), "expected a tuple (h, c)"),
        (lambda m: m(torch.randn(T, I), (torch.zeros(2 * L, B, H),) * 2), "must be too"),
    ],
)
def test_bad_input(call, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        call(DepthGatedLSTM(I, H, num_layers=L, bidirectional=True))


def test_dropout_with_one_layer_warns() -> None:
    with pytest.warns(UserWarning, match="needs num_layers > 1"):
        DepthGatedLSTM(I, H, dropout=0.2)


def test_deep_depth_gated_lstm_learns_the_gap_task() -> None:
    results = load_example("depth_gated_lstm").main(steps=120, gap=15, depth=4, seeds=1)
    assert results["depth-gated LSTM"][0] > 0.9  # chance is 0.25
