"""Every public entry point rejects bad input with a message that says what was expected and what
came."""

from __future__ import annotations

import re

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit

T, B, I, H = 5, 3, 4, 6


def lit(text: str) -> str:
    return re.escape(text)


@pytest.fixture
def lstm() -> lstmkit.LSTM:
    return lstmkit.LSTM(I, H, num_layers=2)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: torch.randn(T, B, 1, I), ValueError, "got 4-D with shape (5, 3, 1, 4)"),
        (lambda: torch.randn(I), ValueError, "got 1-D with shape (4,)"),
        (
            lambda: torch.randn(T, B, I + 1),
            ValueError,
            "input.size(-1) must be equal to input_size. Expected 4, got 5",
        ),
        (
            lambda: torch.randn(T, B, I, dtype=torch.float64),
            TypeError,
            "input has dtype torch.float64 but the parameters have torch.float32",
        ),
        (
            lambda: torch.ones(T, B, I, dtype=torch.int64),
            TypeError,
            "input must be floating point, got dtype torch.int64",
        ),
        (
            lambda: torch.randn(T, B, I, device="meta"),
            ValueError,
            "input is on meta but the parameters are on cpu",
        ),
        (lambda: [[0.0] * I] * T, TypeError, "input must be a Tensor, got a list of 5"),
        (lambda: torch.randn(0, B, I), ValueError, "at least one time step"),
    ],
)
def test_bad_input_tensors(lstm, make, error, message) -> None:
    with pytest.raises(error, match=lit(message)):
        lstm(make())


@pytest.mark.parametrize(
    ("hx", "error", "message"),
    [
        (
            lambda: torch.randn(2, B, H),
            TypeError,
            "hx: expected a tuple (h, c) of Tensors, got a Tensor of shape (2, 3, 6)",
        ),
        (
            lambda: (torch.randn(2, B, H),),
            ValueError,
            "hx: expected a tuple (h, c) of 2 Tensors, got a tuple of 1",
        ),
        (
            lambda: (torch.randn(2, B, H), None),
            TypeError,
            "hx.c: expected a Tensor of shape (2, 3, 6), got NoneType None",
        ),
        (
            lambda: (torch.randn(1, B, H), torch.randn(2, B, H)),
            ValueError,
            "hx.h: expected shape (2, 3, 6), got (1, 3, 6)",
        ),
        (
            lambda: (torch.randn(2, B, H), torch.randn(2, B + 1, H)),
            ValueError,
            "hx.c: expected shape (2, 3, 6), got (2, 4, 6)",
        ),
        (
            lambda: (torch.randn(2, H), torch.randn(2, H)),
            ValueError,
            "(the input is batched, so the state must be too)",
        ),
        (
            lambda: (torch.randn(2, B, H, dtype=torch.float64), torch.randn(2, B, H)),
            TypeError,
            "hx.h: expected dtype torch.float32 (the input's), got torch.float64",
        ),
        (
            lambda: (torch.randn(2, B, H, device="meta"), torch.randn(2, B, H)),
            ValueError,
            "hx.h: expected device cpu (the input's), got meta",
        ),
    ],
)
def test_bad_states(lstm, hx, error, message) -> None:
    with pytest.raises(error, match=lit(message)):
        lstm(torch.randn(T, B, I), hx())


def test_unbatched_input_needs_an_unbatched_state(lstm) -> None:
    with pytest.raises(ValueError, match=lit("(the input is unbatched, so the state must be too)")):
        lstm(torch.randn(T, I), (torch.randn(2, B, H), torch.randn(2, B, H)))


def test_tuple_state_for_a_tensor_state_cell() -> None:
    gru = lstmkit.GRU(I, H)
    with pytest.raises(
        TypeError, match=lit("hx: expected a Tensor of shape (1, 3, 6), got a tuple of 2")
    ):
        gru(torch.randn(T, B, I), (torch.randn(1, B, H), torch.randn(1, B, H)))


@pytest.mark.parametrize(
    ("lengths", "error", "message"),
    [
        ([5, 6, 1], ValueError, "lengths must not exceed the sequence length 5, got [5, 6, 1]"),
        ([5, 0, 1], ValueError, "lengths must be positive, got [5, 0, 1]"),
        ([5, -1, 1], ValueError, "lengths must be positive"),
        ([5, 1], ValueError, "expected shape (3,), got (2,)"),
        (
            torch.tensor([5.0, 1.0, 2.0]),
            TypeError,
            "lengths must hold integers, got dtype torch.float32",
        ),
        ("5", TypeError, "lengths must be a 1-D integer Tensor or a list of ints, got str '5'"),
    ],
)
def test_bad_lengths(lstm, lengths, error, message) -> None:
    with pytest.raises(error, match=lit(message)):
        lstm(torch.randn(T, B, I), lengths=lengths)


def test_lengths_with_packed_or_unbatched_input(lstm) -> None:
    packed = pack_padded_sequence(torch.randn(T, B, I), torch.tensor([5, 3, 2]))
    with pytest.raises(ValueError, match="a PackedSequence carries its own"):
        lstm(packed, lengths=[5, 3, 2])
    with pytest.raises(ValueError, match="lengths needs batched input"):
        lstm(torch.randn(T, I), lengths=[5])


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: lstmkit.LSTM(I, H, variant="NOPE"),
            ValueError,
            "unknown variant 'NOPE'; expected one of 'vanilla', 'NIG'",
        ),
        (
            lambda: lstmkit.LSTM(I, H, engine="fast"),
            ValueError,
            "unknown engine 'fast'; expected one of 'auto', 'fused', 'native', 'reference'",
        ),
        (
            lambda: lstmkit.LSTM(I, H, peepholes="i", engine="native"),
            ValueError,
            "engine 'native' cannot run this layer: its LSTM cell is a variant",
        ),
        (
            lambda: lstmkit.GRU(I, H, reset_after=False, engine="native"),
            ValueError,
            "reset_after=False",
        ),
        (
            lambda: lstmkit.LSTM(I, H, proj_size=H),
            ValueError,
            "proj_size must be smaller than hidden_size, got proj_size=6, hidden_size=6",
        ),
        (lambda: lstmkit.LSTM(I, H, coupled=True, forget_gate=False), ValueError, "needs both"),
        (lambda: lstmkit.LSTM(0, H), ValueError, "input_size must be positive, got 0"),
        (
            lambda: lstmkit.LSTM(I, H, num_layers=0),
            ValueError,
            "num_layers must be positive, got 0",
        ),
        (
            lambda: lstmkit.LSTM(I, H, num_layers=True),
            TypeError,
            "num_layers must be an int, got bool True",
        ),
        (
            lambda: lstmkit.LSTM(I, H, num_layers=2, dropout=1.5),
            ValueError,
            "dropout must be in [0, 1], got 1.5",
        ),
        (
            lambda: lstmkit.LSTM(I, H, bidirectional="yes"),
            TypeError,
            "bidirectional must be a bool, got str 'yes'",
        ),
        (lambda: lstmkit.RNN(I, H, nonlinearity="gelu"), ValueError, "unknown nonlinearity 'gelu'"),
        (
            lambda: lstmkit.Recurrent(torch.nn.LSTMCell(I, H)),
            TypeError,
            "cell must be an lstmkit.RecurrentCell",
        ),
        (lambda: lstmkit.LSTM(I, H, 2), TypeError, "positional argument"),
    ],
)
def test_bad_construction(build, error, message) -> None:
    with pytest.raises(error, match=lit(message)):
        build()


def test_setting_an_engine_checks_it(lstm) -> None:
    with pytest.raises(ValueError, match="unknown engine 'turbo'"):
        lstm.engine = "turbo"
    variant = lstmkit.LSTM(I, H, variant="vanilla")
    with pytest.raises(ValueError, match=r"It supports what torch\.nn can express"):
        variant.engine = "native"
    assert variant.engine == "auto"


def test_cell_accessor_bounds(lstm) -> None:
    with pytest.raises(IndexError, match=lit("layer must be in [0, 2), got 2")):
        lstm.cell(2)
    with pytest.raises(ValueError, match="needs a bidirectional layer"):
        lstm.cell(0, reverse=True)
