"""A cell call takes torch's fused cell where torch.nn computes the same step: it equals the
equations (cell.step), values and gradients, and traces still see every gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import lstmkit
from lstmkit._state import first, map_state

F64 = torch.float64

FAST: dict[str, Callable[[], lstmkit.RecurrentCell]] = {
    "lstm": lambda: lstmkit.LSTMCell(3, 5),
    "lstm, no bias": lambda: lstmkit.LSTMCell(3, 5, bias=False),
    "gru": lambda: lstmkit.GRUCell(3, 5),
    "gru, no bias": lambda: lstmkit.GRUCell(3, 5, bias=False),
    "rnn": lambda: lstmkit.RNNCell(3, 5),
    "rnn relu": lambda: lstmkit.RNNCell(3, 5, nonlinearity="relu"),
}
SLOW: dict[str, Callable[[], lstmkit.RecurrentCell]] = {
    "peepholes": lambda: lstmkit.LSTMCell(3, 5, peepholes="ifo"),
    "projection": lambda: lstmkit.LSTMCell(3, 5, proj_size=2),
    "CIFG": lambda: lstmkit.LSTMCell(3, 5, variant="CIFG"),
    "gru before the product": lambda: lstmkit.GRUCell(3, 5, reset_after=False),
    "layer-normalised gru": lambda: lstmkit.GRUCell(3, 5, layer_norm=True),
}


def as_tuple(state: object) -> tuple[torch.Tensor, ...]:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)  # type: ignore[arg-type]


def by_the_equations(cell: lstmkit.RecurrentCell, x: torch.Tensor, hx: object) -> object:
    return cell.step(cell.project_input(x), hx)


@pytest.mark.parametrize("name", FAST)
def test_a_call_equals_the_equations_and_their_gradients(name: str) -> None:
    cell = FAST[name]().to(F64)
    x = torch.randn(4, 3, dtype=F64)
    zeros = cell.initial_state(4, dtype=F64, device=x.device)
    hx = map_state(torch.randn_like, zeros)  # a random state, not zeros
    assert cell.torch_step(x, hx) is not None
    fast, slow = cell(x, hx), by_the_equations(cell, x, hx)
    for a, b in zip(as_tuple(fast), as_tuple(slow), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    params = list(cell.parameters())
    g_fast = torch.autograd.grad(first(fast).pow(2).sum(), params)
    g_slow = torch.autograd.grad(first(slow).pow(2).sum(), params)
    for a, b in zip(g_fast, g_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", SLOW)
def test_what_torch_has_no_cell_for_runs_the_equations(name: str) -> None:
    cell = SLOW[name]()
    x = torch.randn(4, 3)
    assert cell.torch_step(x, cell.initial_state(4, dtype=x.dtype, device=x.device)) is None


def test_a_trace_of_a_cell_still_sees_every_gate() -> None:
    cell = lstmkit.LSTMCell(3, 5)
    recorded = lstmkit.trace(cell, torch.randn(4, 3))
    assert {"i_t", "f_t", "C_tilde", "C_t", "o_t", "h_t"} <= set(recorded.names("LSTMCell"))


@pytest.mark.parametrize("name", FAST)
def test_a_plain_tuple_state_takes_the_short_path_with_the_same_result(name: str) -> None:
    # a well-formed batched call skips the full checks; a plain tuple becomes the state type
    cell = FAST[name]()
    x = torch.randn(2, 3)
    state = map_state(torch.randn_like, cell.initial_state(2, dtype=x.dtype, device=x.device))
    assert cell._plain_state(x, state) is not None
    plain = tuple(state) if isinstance(state, tuple) else state
    new = cell(x, plain)
    assert type(new) is type(state)
    for a, b in zip(as_tuple(new), as_tuple(by_the_equations(cell, x, state)), strict=True):
        torch.testing.assert_close(a, b, rtol=1.3e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda h, c: (h.double(), c), "expected dtype torch.float32"),
        (lambda h, c: (h[:, :4], c), r"expected shape \(2, 5\), got \(2, 4\)"),
        (lambda h, c: (h,), "expected"),
        (lambda h, c: (h, c.numpy()), "expected a Tensor"),
    ],
)
def test_a_malformed_state_still_gets_the_full_checks(bad: Callable, message: str) -> None:
    cell = lstmkit.LSTMCell(3, 5)
    x = torch.randn(2, 3)
    h, c = torch.randn(2, 5), torch.randn(2, 5)
    assert cell._plain_state(x, bad(h, c)) is None
    with pytest.raises((TypeError, ValueError), match=message):
        cell(x, bad(h, c))


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda x, state: (x[:, :2], state), r"input_size. Expected 3, got 2"),
        (lambda x, state: (x.double(), state), "input has dtype torch.float64 but the param"),
        (lambda x, state: (x, map_state(lambda s: s[:, :4], state)), r"expected shape \(2, 5\)"),
        (lambda x, state: (x, map_state(lambda s: s[:1], state)), r"expected shape \(2, 5\)"),
        (lambda x, state: (x, [*as_tuple(state), as_tuple(state)[0]]), "expected"),
    ],
)
def test_what_torchs_cell_refuses_gets_lstmkits_message(
    name: str, bad: Callable, message: str
) -> None:
    # the short path lets torch's cell check in C++; its refusal falls back to the full checks
    cell = FAST[name]()
    state = map_state(torch.randn_like, cell.initial_state(2, dtype=torch.float32, device="cpu"))
    x, hx = bad(torch.randn(2, 3), state)
    with pytest.raises((TypeError, ValueError), match=message):
        cell(x, hx)


@pytest.mark.parametrize("name", SLOW)
def test_a_well_formed_call_of_a_variant_steps_by_the_equations(name: str) -> None:
    cell = SLOW[name]()
    x = torch.randn(2, 3)
    state = map_state(torch.randn_like, cell.initial_state(2, dtype=x.dtype, device=x.device))
    plain = tuple(state) if isinstance(state, tuple) else state
    new = cell(x, plain)
    assert type(new) is type(state)
    for a, b in zip(as_tuple(new), as_tuple(by_the_equations(cell, x, state)), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _LearnedStart(lstmkit.RecurrentCell):
    """A user's cell whose initial state is a parameter and whose state is a plain tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.input_size, self.hidden_size = 3, 4
        self.weight = torch.nn.Parameter(torch.randn(4, 3))
        self.h0 = torch.nn.Parameter(torch.randn(4))

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T

    def initial_state(self, batch_size: int, *, dtype: torch.dtype, device: torch.device) -> Any:
        h = torch.zeros(batch_size, 4, dtype=dtype, device=device) + self.h0.to(dtype)
        return (h, h.clone())

    def step(self, xp_t: torch.Tensor, state: Any, *, h_mask: Any = None) -> Any:
        h = torch.tanh(xp_t + state[0])
        return (h, state[1] + h)

    def spawn(self, input_size: int) -> _LearnedStart:
        return _LearnedStart()


def test_a_users_cell_with_its_own_state_takes_the_full_checks_and_works() -> None:
    cell = _LearnedStart()
    assert cell.state_layout() is None  # it did not say: no short path
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    new = cell(x, lstmkit.LSTMState(h, h))  # a named tuple where a plain one is expected
    torch.testing.assert_close(new[0], torch.tanh(x @ cell.weight.T + h))
    layer = lstmkit.Recurrent(_LearnedStart())
    xs, h0 = torch.randn(5, 2, 3), torch.randn(1, 2, 4)
    out, _ = layer(xs, (h0, torch.zeros(1, 2, 4)))
    h, W = h0[0], layer.cell(0).weight
    for t in range(5):
        h = torch.tanh(xs[t] @ W.T + h)
        torch.testing.assert_close(out[t], h)
