"""torch.compile and torch.export see lstmkit: every registered family compiles without a graph
break (``fullgraph=True``) and exports, forward and backward, computing what it computes
eagerly. The fused engine reaches them as ``torch.ops.lstmkit`` operators with fake
implementations and registered backwards; the other engines are traced as Python."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch._dynamo

import lstmkit
from lstmkit.engines.fused import grid_ops, ops
from lstmkit.layers.registry import EXAMPLES, LAYERS

T, B, H = 5, 3, 8

CASES = [(name, example) for name, examples in EXAMPLES.items() for example in examples]
FAST = {  # the default run: the fused families' operators and one traced Python loop
    "the standard LSTM",
    "full gate recurrence (gates see i, f, o of t-1)",
    "GRU, the post's form",
    "vanilla RNN, ReLU",
    "layer-normalised GRU",
    "MUT3",
}


def build(name: str, example: Any, seed: int) -> tuple[lstmkit.Recurrent, torch.Tensor]:
    torch.manual_seed(seed)
    I = H if example.square else 4
    layer = LAYERS[name](I, H, **example.options_for(H, T))
    return layer, torch.randn(T, B, I, requires_grad=True)


def outputs_and_grads(layer: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out, state = layer(x)
    states = list(state) if isinstance(state, tuple) else [state]
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() + states[0].square().sum()
    return [out, *states, *torch.autograd.grad(loss, [x, *layer.parameters()])]


def check_compiles(layer: lstmkit.Recurrent, x: torch.Tensor) -> None:
    expected = outputs_and_grads(layer, x)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")  # a break raises
    got = outputs_and_grads(compiled, x)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "example"),
    [c for c in CASES if c[1].what in FAST],
    ids=lambda c: getattr(c, "what", c),
)
def test_families_compile_without_a_graph_break(name: str, example: Any, seed: int) -> None:
    check_compiles(*build(name, example, seed))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "example"), CASES, ids=lambda c: getattr(c, "what", c))
def test_every_family_compiles_without_a_graph_break(name: str, example: Any, seed: int) -> None:
    check_compiles(*build(name, example, seed))


@pytest.mark.parametrize(("name", "example"), CASES, ids=lambda c: getattr(c, "what", c))
def test_every_family_exports(name: str, example: Any, seed: int) -> None:
    check_exports(*build(name, example, seed))


def test_a_grid_with_priority_time_compiles_and_exports(seed: int) -> None:
    # its blocks run an operator of their own (grid_ops), which no registered example uses
    torch.manual_seed(seed)
    for transform in ("lstm", "relu"):
        layer = lstmkit.GridLSTM(4, H, depth=2, priority="time", depth_transform=transform)
        x = torch.randn(T, B, 4, requires_grad=True)
        check_compiles(layer, x)
        check_exports(layer, x)
        assert layer.last_engine == "fused"


def check_exports(layer: lstmkit.Recurrent, x: torch.Tensor) -> None:
    x = x.detach()
    program = torch.export.export(layer, (x,))
    fresh = torch.randn_like(x)  # other values than those traced
    with torch.no_grad():
        expected, _ = layer(fresh)
        got, _ = program.module()(fresh)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    if layer.last_engine == "fused":  # one operator per direction, not a traced loop
        called = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
        assert any(target.startswith("lstmkit.") for target in called), called


def test_fused_regularisers_compile_with_their_masks(seed: int) -> None:
    torch.manual_seed(seed)
    layer = lstmkit.LSTM(4, H, recurrent_dropout=0.3, zoneout_hidden=0.2, zoneout_cell=0.1)
    x = torch.randn(T, B, 4)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.manual_seed(1)
    expected = layer(x)[0]
    torch.manual_seed(1)
    got = compiled(x)[0]
    assert layer.last_engine == "fused"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# inductor imports a torch module that warns about torch.jit; that warning is torch's own
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_the_inductor_backend_compiles_the_fused_operators(seed: int) -> None:
    torch.manual_seed(seed)
    layer = lstmkit.LSTM(4, H, peepholes="ifo", num_layers=2, bidirectional=True)
    x = torch.randn(T, B, 4)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True)  # torch's default backend, with C++ codegen
    with torch.no_grad():
        torch.testing.assert_close(compiled(x)[0], layer(x)[0], rtol=1e-5, atol=1e-6)


def test_operators_check_their_fake_shapes() -> None:
    # torch's own checker: fake and real outputs agree in shape, dtype and strides, the
    # operators do not alias their inputs, and their registered backward works
    from lstmkit.engines.fused.ops import lstm_flags

    cell = lstmkit.LSTM(3, 6, variant="FGR", proj_size=4, layer_norm=True).cell(0)
    N, batch, steps = 8, 2, torch.full((4,), 2)
    xp = torch.randn(N, 4 * 6, requires_grad=True)
    weights = [cell.weight_hh, torch.randn(6), torch.randn(6), torch.randn(6), cell.weight_gg]
    weights = [w.detach().requires_grad_() for w in [*weights, cell.weight_hr]]
    norms = [torch.randn(24), torch.randn(24), torch.randn(6), torch.randn(6)]
    empty = torch.empty(0)
    states = [torch.randn(batch, size) for size in (4, 6, 18)]
    args = (
        xp, torch.randn(24), *states, *weights, empty, empty, empty, *norms, steps,
        lstm_flags(cell.config), False, True, 0, empty, empty,
    )  # fmt: skip
    torch.library.opcheck(torch.ops.lstmkit.lstm_forward, args)
    # a Depth-Gated layer's: peepholes, the depth gate's inputs (N, 2H) and w_cd, padded steps
    peep = [torch.randn(6, requires_grad=True) for _ in range(4)]
    depth = torch.randn(N, 12, requires_grad=True)
    gated = (
        torch.randn(N, 24, requires_grad=True), torch.randn(24), states[1], states[1],
        empty, torch.randn(24, 6, requires_grad=True), *peep[:3], empty, empty, empty, empty,
        empty, *[empty] * 4, steps, lstm_flags(lstmkit.LSTM(3, 6, peepholes="ifo").cell(0).config),
        True, True, 0, depth, peep[3],
    )  # fmt: skip
    torch.library.opcheck(torch.ops.lstmkit.lstm_forward, gated)
    mask = torch.bernoulli(torch.full((batch, 6), 0.5)) * 2
    keep = (torch.rand(N, 6) < 0.3).float()
    gru = (
        torch.randn(N, 18, requires_grad=True), torch.randn(18), torch.randn(batch, 6),
        torch.randn(18, 6, requires_grad=True), torch.randn(18), torch.randn(18), torch.randn(18),
        mask, keep, steps, 0, True, True, 0,
    )  # fmt: skip
    torch.library.opcheck(torch.ops.lstmkit.gru_forward, gru)
    for form in (ops.TANH_Z, ops.NO_Z):  # MUT3's and MUT1's
        mut = (*gru[:5], empty, empty, empty, empty, steps, form, False, True, 0)
        torch.library.opcheck(torch.ops.lstmkit.gru_forward, mut)
    # a Clockwork RNN's: modules of 2 and 4 units, which update row by row as `active` says
    active = (torch.rand(N, 2) < 0.5).float()
    clockwork = (
        torch.randn(N, 6, requires_grad=True), torch.randn(6), torch.randn(batch, 6),
        torch.randn(6, 6, requires_grad=True), empty, empty, steps, False, True, 0, [0, 2, 6],
        active,
    )  # fmt: skip
    torch.library.opcheck(torch.ops.lstmkit.rnn_forward, clockwork)
    # an LSTM that also hands out h~ before zoneout (a Depth-Gated layer below another)
    zoned = (*gated[:12], keep, empty, *gated[14:19], gated[19] | ops.PRE_ZONEOUT, *gated[20:])
    torch.library.opcheck(torch.ops.lstmkit.lstm_forward, zoned)
    # a priority-"time" Grid block, LSTM and relu depth transforms
    for depth, G in ((grid_ops.GRID_LSTM, 24), (grid_ops.GRID_RELU, 6)):
        grid = (
            torch.randn(N, G, requires_grad=True),
            torch.randn(N, 6, requires_grad=True) if depth == grid_ops.GRID_LSTM else empty,
            torch.randn(batch, 6), torch.randn(batch, 6),
            torch.randn(G + 24, 6, requires_grad=True), torch.randn(24, 6, requires_grad=True),
            torch.randn(24, requires_grad=True), steps, depth, True, False, True, 0,
        )  # fmt: skip
        torch.library.opcheck(torch.ops.lstmkit.grid_time_forward, grid)


def test_operators_are_registered() -> None:
    for name in ("lstm", "gru", "rnn", "grid_time"):
        assert hasattr(torch.ops.lstmkit, f"{name}_forward")
        assert hasattr(torch.ops.lstmkit, f"{name}_backward")
    assert ops.traced(torch.empty(0)) is False
