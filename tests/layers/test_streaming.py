"""Streams: ``resets=`` against running each sequence's pieces on their own, and
``return_cell_states=True`` against the reference engine and a hand loop over the cell, on every
engine that runs the layer, forward and backward (float64)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit
from lstmkit import LstmkitError
from lstmkit._state import State, map_state
from lstmkit.engines import Engine, register_engine, unregister_engine
from lstmkit.engines.reference import ReferenceEngine
from tests.helpers import load_example

T, B, I, H = 7, 3, 4, 5
F64 = torch.float64
TOL = 1e-10
ALL = ("reference", "native", "fused")
OURS = ("reference", "fused")

Maker = Callable[..., lstmkit.Recurrent]
KINDS: dict[str, tuple[Maker, tuple[str, ...]]] = {
    "lstm": (lambda **kw: lstmkit.LSTM(I, H, **kw), ALL),
    "lstm-peepholes": (lambda **kw: lstmkit.LSTM(I, H, peepholes="ifo", **kw), OURS),
    "lstm-cifg": (lambda **kw: lstmkit.LSTM(I, H, variant="CIFG", **kw), OURS),
    "lstm-layer-norm": (lambda **kw: lstmkit.LSTM(I, H, layer_norm=True, **kw), OURS),
    "lstm-projection": (lambda **kw: lstmkit.LSTM(I, H, proj_size=3, **kw), ALL),
    "lstm-fgr": (lambda **kw: lstmkit.LSTM(I, H, variant="FGR", **kw), OURS),
    "gru": (lambda **kw: lstmkit.GRU(I, H, **kw), ALL),
    "gru-reset-before": (lambda **kw: lstmkit.GRU(I, H, reset_after=False, **kw), OURS),
    "rnn": (lambda **kw: lstmkit.RNN(I, H, **kw), ALL),
    "mut": (lambda **kw: lstmkit.MUT(I, H, kind=3, **kw), OURS),
    "clockwork": (
        lambda **kw: lstmkit.ClockworkRNN(I, 6, periods=[1, 2, 3], module_sizes=[2, 2, 2], **kw),
        OURS,
    ),
    "depth-gated": (lambda **kw: lstmkit.DepthGatedLSTM(I, H, peepholes=True, **kw), OURS),
    "grid": (lambda **kw: lstmkit.GridLSTM(I, H, depth=2, **kw), OURS),
}
WITH_C = ("lstm", "lstm-peepholes", "lstm-cifg", "lstm-layer-norm", "lstm-projection")
WITH_C += ("lstm-fgr", "depth-gated")


def make(kind: str, **options: Any) -> lstmkit.Recurrent:
    return KINDS[kind][0](dtype=F64, **options)


def random_state(layer: lstmkit.Recurrent, batch: int) -> Any:
    """A state of random values (a Clockwork clock: whole numbers) that asks for gradients."""
    zero = layer.initial_state(batch, dtype=F64, device=torch.device("cpu"))
    if isinstance(zero, Tensor):
        return torch.randn_like(zero).requires_grad_()
    return type(zero)(
        *(
            torch.randint_like(t, 9) if name == "t" else torch.randn_like(t).requires_grad_()
            for name, t in zip(zero._fields, zero, strict=True)
        )
    )


def pattern(name: str) -> Tensor:
    """Where sequences start over, ``(T, B)``."""
    r = torch.zeros(T, B, dtype=torch.bool)
    if name == "middle":
        r[3, 1] = True
    elif name == "several":  # several in a row, one at step 0, one at the last step
        r[2, 0] = r[5, 0] = True
        r[0, 1] = r[4, 1] = True
        r[6, 2] = True
    elif name == "all":  # every row at once, and one row at step 0 too
        r[4] = True
        r[0, 2] = True
    return r


def _fields(state: State) -> list[Tensor]:
    return [state] if isinstance(state, Tensor) else list(state)


def _rebuild(template: State, fields: list[Tensor]) -> State:
    return fields[0] if isinstance(template, Tensor) else type(template)(*fields)


def _compose(forward: State, reverse: State, D: int) -> State:
    """Stacked states ``(L·D, B, *)``: direction 0's rows from ``forward``, direction 1's from
    ``reverse``."""
    fields = [
        torch.stack([(f if i % D == 0 else r)[i] for i in range(len(f))])
        for f, r in zip(_fields(forward), _fields(reverse), strict=True)
    ]
    return _rebuild(forward, fields)


def _row(state: State, b: int) -> State:
    return map_state(lambda t: t[:, b : b + 1], state)


def _call(layer: lstmkit.Recurrent, x: Tensor, hx: Any, **kw: Any) -> tuple[Any, ...]:
    """The layer over time-major ``x``, its output time-major again."""
    out, *rest = layer(x.transpose(0, 1) if layer.batch_first else x, hx, **kw)
    return (out.transpose(0, 1) if layer.batch_first else out, *rest)


def pieces_truth(
    layer: lstmkit.Recurrent, x: Tensor, hx: State, start: State, resets: Tensor
) -> tuple[Tensor, State]:
    """Each sequence split at its resets, each piece run on its own through ``layer`` on the
    reference engine: forward from hx (the first piece, unless it resets at step 0) or from
    ``start``; in reverse from hx (the last piece) or from ``start``. ``x`` ``(T, B, F)``."""
    layer.engine = "reference"
    D, steps = layer.num_directions, x.shape[0]
    outs, finals = [], []
    for b in range(x.shape[1]):
        edges = [0, *(t for t in range(1, steps) if resets[t, b]), steps]
        pieces = list(itertools.pairwise(edges))
        ys, ends = [], []
        for j, (s, e) in enumerate(pieces):
            forward = hx if j == 0 and not resets[0, b] else start
            reverse = hx if j == len(pieces) - 1 else start
            y, h_n = _call(layer, x[s:e, b : b + 1], _row(_compose(forward, reverse, D), b))
            ys.append(y)
            ends.append(h_n)
        outs.append(torch.cat(ys))
        finals.append(_compose(ends[-1], ends[0], D))  # forward's last piece, reverse's first
    fields = [torch.cat(parts, 1) for parts in zip(*map(_fields, finals), strict=True)]
    return torch.cat(outs, 1), _rebuild(finals[0], fields)


def _close(ours: Any, truth: Any) -> None:
    for a, b in zip(_fields(ours), _fields(truth), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL)


CASES = [  # num_layers, bidirectional, batch_first, hx, where, reset_state
    (1, False, False, "zeros", "middle", "zeros"),
    (2, True, True, "given", "several", "zeros"),
    (1, True, False, "given", "all", "hx"),
    (2, False, True, "zeros", "several", "given"),
]


@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "hx", "where", "start"), CASES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_resets_equal_each_piece_run_on_its_own(
    kind: str, layers: int, bidirectional: bool, batch_first: bool, hx: str, where: str, start: str
) -> None:
    if kind == "depth-gated":  # its num_layers is the depth of one stack
        layers = 2
    layer = make(kind, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn(T, B, layer.input_size, dtype=F64)
    zeros = layer.initial_state(B, dtype=F64, device=torch.device("cpu"))
    given = random_state(layer, B) if hx == "given" else None
    reset_state = {"zeros": None, "hx": given, "given": random_state(layer, B)}[start]
    resets = pattern(where)
    truth = pieces_truth(
        layer, x, zeros if given is None else given, zeros if reset_state is None else reset_state,
        resets,
    )  # fmt: skip
    flags = resets.T if batch_first else resets
    for engine in KINDS[kind][1]:
        layer.engine = engine
        out, h_n = _call(layer, x, given, resets=flags, reset_state=reset_state)
        assert layer.last_engine == engine
        _close(out, truth[0])
        _close(h_n, truth[1])


@given(
    kind=st.sampled_from(["lstm", "lstm-projection", "gru", "clockwork", "depth-gated"]),
    steps=st.integers(1, 6),
    bits=st.lists(st.booleans(), min_size=6 * 2, max_size=6 * 2),
    given_hx=st.booleans(),
)
def test_any_resets_equal_each_piece_run_on_its_own(
    kind: str, steps: int, bits: list[bool], given_hx: bool
) -> None:
    layer = make(kind, bidirectional=True)
    resets = torch.tensor(bits).view(6, 2)[:steps]
    x = torch.randn(steps, 2, layer.input_size, dtype=F64)
    zeros = layer.initial_state(2, dtype=F64, device=torch.device("cpu"))
    hx = random_state(layer, 2) if given_hx else None
    truth = pieces_truth(layer, x, zeros if hx is None else hx, zeros, resets)
    for engine in KINDS[kind][1]:
        layer.engine = engine
        out, h_n = layer(x, hx, resets=resets)
        _close(out, truth[0])
        _close(h_n, truth[1])


@pytest.mark.parametrize("kind", ["lstm", "gru", "clockwork", "depth-gated", "grid"])
def test_resets_nowhere_change_nothing_and_step_0_resets_start_from_the_reset_state(
    kind: str,
) -> None:
    layer = make(kind, bidirectional=True)
    x = torch.randn(T, B, layer.input_size, dtype=F64)
    hx, start = random_state(layer, B), random_state(layer, B)
    for engine in KINDS[kind][1]:
        layer.engine = engine
        plain = layer(x, hx)
        none = torch.zeros(T, B, dtype=torch.bool)
        _close(layer(x, hx, resets=none, reset_state=start)[0], plain[0])
        at_0 = none.clone()
        at_0[0] = True
        # with reset_state=hx a reset at step 0 changes nothing; otherwise the forward
        # direction starts from the reset state and the reverse one still from hx
        _close(layer(x, hx, resets=at_0, reset_state=hx)[0], plain[0])
        out = layer(x, hx, resets=at_0, reset_state=start)[0]
        _close(out, layer(x, _compose(start, hx, 2))[0])
        assert not torch.allclose(out[..., : layer.output_size], plain[0][..., : layer.output_size])


def test_a_reset_at_every_step_runs_every_step_from_the_reset_state() -> None:
    layer = make("lstm", num_layers=2, engine="fused")
    x = torch.randn(T, B, I, dtype=F64)
    start = random_state(layer, B)
    everywhere = torch.ones(T, B, dtype=torch.bool)
    out, _ = layer(x, random_state(layer, B), resets=everywhere, reset_state=start)
    for t in range(T):
        _close(out[t : t + 1], layer(x[t : t + 1], start)[0])


def _loss_grads(outputs: list[Tensor], leaves: list[Tensor]) -> list[Tensor]:
    generator = torch.Generator().manual_seed(7)
    weights = [torch.randn(t.shape, generator=generator, dtype=t.dtype) for t in outputs]
    loss = sum((w * t).sum() for w, t in zip(weights, outputs, strict=True))
    return list(torch.autograd.grad(loss, leaves, allow_unused=True))


@pytest.mark.parametrize("kind", ["lstm", "lstm-layer-norm", "gru", "clockwork", "depth-gated"])
def test_gradients_with_resets_equal_the_reference_engines(kind: str) -> None:
    layer = make(kind, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, layer.input_size, dtype=F64, requires_grad=True)
    hx, start = random_state(layer, B), random_state(layer, B)
    leaves = [x, *[t for t in _fields(hx) + _fields(start) if t.requires_grad], *layer.parameters()]
    results = {}
    for engine in KINDS[kind][1]:
        layer.engine = engine
        out, h_n = layer(x, hx, resets=pattern("several"), reset_state=start)
        results[engine] = [out, *_fields(h_n), *_loss_grads([out, *_fields(h_n)], leaves)]
    for engine in KINDS[kind][1]:
        for a, b in zip(results[engine], results["reference"], strict=True):
            assert a is not None
            assert b is not None
            torch.testing.assert_close(a, b, rtol=0, atol=TOL)


@pytest.mark.parametrize("kind", ["lstm", "gru", "depth-gated"])
def test_regularisers_in_training_draw_alike_on_both_engines_with_resets(kind: str) -> None:
    # the masks are drawn for each piece, in the same order by both engines
    reg = {"input_dropout": 0.3, "recurrent_dropout": 0.3, "zoneout_hidden": 0.2}
    if kind != "gru":
        reg["zoneout_cell"] = 0.4
    layer = make(kind, num_layers=2, bidirectional=True, **reg).train()
    x = torch.randn(T, B, layer.input_size, dtype=F64)
    results = {}
    for engine in OURS:
        layer.engine = engine
        torch.manual_seed(11)
        results[engine] = layer(x, resets=pattern("several"))
    _close(results["fused"][0], results["reference"][0])
    _close(results["fused"][1], results["reference"][1])
    layer.engine = "reference"
    torch.manual_seed(11)
    assert not torch.allclose(layer(x)[0], results["reference"][0])  # the resets mattered


@pytest.mark.parametrize("engine", OURS)
def test_resets_and_cell_states_pass_gradcheck(engine: str) -> None:
    layer = lstmkit.LSTM(2, 3, bidirectional=True, dtype=F64, engine=engine)
    resets = torch.tensor([[0, 1], [0, 0], [1, 0], [0, 1], [0, 0]], dtype=torch.bool)
    shapes = [(5, 2, 2), (2, 2, 3), (2, 2, 3), (2, 2, 3), (2, 2, 3)]
    inputs = [torch.randn(s, dtype=F64, requires_grad=True) for s in shapes]

    def run(x: Tensor, h0: Tensor, c0: Tensor, h_s: Tensor, c_s: Tensor) -> tuple[Tensor, ...]:
        out, (h, c), cells = layer(
            x, (h0, c0), resets=resets, reset_state=(h_s, c_s), return_cell_states=True
        )
        return out, h, c, cells

    assert torch.autograd.gradcheck(run, inputs)


# --- cell states ---------------------------------------------------------------------------


def _zoned(old: State, new: State, z: tuple[float, float]) -> State:
    """Zoneout in evaluation: ``z * old + (1 - z) * new`` on h and on c."""
    assert isinstance(old, tuple)
    assert isinstance(new, tuple)
    fields = list(new)
    for j in (0, 1):
        fields[j] = z[j] * old[j] + (1 - z[j]) * new[j]
    return type(new)(*fields)


def hand_cells(layer: lstmkit.Recurrent, x: Tensor, z: tuple[float, float]) -> Tensor:
    """The c of every step of every layer, one sequence ``x`` ``(n, F)``, calling the cells a
    step at a time: ``(L, n, D·H)`` (a Depth-Gated stack: its layers' c side by side in one
    cell's state, split here)."""
    D, n = layer.num_directions, x.shape[0]
    per_layer = []
    for k in range(layer.num_layers):
        outputs, cells = [], []
        for d in range(D):
            cell = layer.cell(k, reverse=bool(d))
            state = cell.initial_state(1, dtype=F64, device=torch.device("cpu"))
            ys, cs = [x[:0, :0]] * n, [x[:0, :0]] * n
            for t in reversed(range(n)) if d else range(n):
                state = _zoned(state, cell(x[t : t + 1], state), z)
                ys[t], cs[t] = cell.output(state)[0], state.c[0]  # type: ignore[union-attr]
            outputs.append(torch.stack(ys))
            cells.append(torch.stack(cs))
        x = torch.cat(outputs, -1)  # (n, D·O): the next layer's input
        per_layer.append(cells)
    if isinstance(layer, lstmkit.DepthGatedLSTM):  # one cell per direction: (n, L·H) each
        L = layer.depth
        split = [c.reshape(n, L, H).movedim(1, 0) for c in per_layer[0]]  # D × (L, n, H)
        return torch.cat(split, -1)
    return torch.stack([torch.cat(cells, -1) for cells in per_layer])


@pytest.mark.parametrize("zoneout", [(0.0, 0.0), (0.3, 0.6)])
@pytest.mark.parametrize("kind", WITH_C)
def test_reference_cell_states_follow_a_hand_loop_over_the_cell(
    kind: str, zoneout: tuple[float, float]
) -> None:
    reg = {"zoneout_hidden": zoneout[0], "zoneout_cell": zoneout[1]}
    options = {"num_layers": 2, "bidirectional": True, "batch_first": True, **reg}
    layer = make(kind, engine="reference", **options)
    layer.eval()
    x = torch.randn(B, T, layer.input_size, dtype=F64)
    lengths = torch.tensor([5, T, 2])
    out, _, cells = layer(x, lengths=lengths, return_cell_states=True)
    L = layer.depth if isinstance(layer, lstmkit.DepthGatedLSTM) else layer.num_layers
    assert cells.shape == (L, B, T, 2 * H)
    assert out.shape[:2] == cells.shape[1:3]
    for b, n in enumerate(lengths.tolist()):
        expected = hand_cells(layer, x[b, :n], zoneout)  # (L, n, D·H)
        torch.testing.assert_close(cells[:, b, :n], expected, rtol=0, atol=TOL)
        assert bool((cells[:, b, n:] == 0).all())  # past the length, as the output


CELL_CASES = [  # num_layers, bidirectional, layout, resets, zoneout
    (2, True, "batch_first", False, False),
    (1, False, "lengths", False, False),
    (2, True, "packed", False, False),
    (1, True, "unbatched", False, False),
    (2, False, "time_major", True, False),
    (2, True, "lengths", False, True),
    (1, True, "time_major", True, True),
]


def _cell_input(
    layer: lstmkit.Recurrent, layout: str
) -> tuple[Callable[[], Any], dict[str, Any], Tensor]:
    """What makes the layer's input for a layout (afresh for each run: packing is part of the
    graph), the keywords it needs, and the padded ``x`` it holds."""
    if layout == "unbatched":
        x = torch.randn(T, layer.input_size, dtype=F64, requires_grad=True)
        return lambda: x, {}, x
    shape = (B, T) if layer.batch_first else (T, B)
    x = torch.randn(*shape, layer.input_size, dtype=F64, requires_grad=True)
    lengths = torch.tensor([5, T, 2])
    if layout == "lengths":
        return lambda: x, {"lengths": lengths}, x
    if layout == "packed":
        first = layer.batch_first
        return lambda: pack_padded_sequence(x, lengths, first, enforce_sorted=False), {}, x
    return lambda: x, {}, x


@pytest.mark.parametrize(("layers", "bidirectional", "layout", "resets", "zoneout"), CELL_CASES)
@pytest.mark.parametrize("kind", WITH_C)
def test_every_engine_returns_the_reference_engines_cell_states(
    kind: str, layers: int, bidirectional: bool, layout: str, resets: bool, zoneout: bool
) -> None:
    reg = {"zoneout_hidden": 0.2, "zoneout_cell": 0.4} if zoneout else {}
    batch_first = layout in ("batch_first", "packed")
    options = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
    layer = make(kind, **options, **reg)
    layer.eval()  # zoneout as its expectation
    make_input, kw, x = _cell_input(layer, layout)
    if resets:
        kw["resets"] = pattern("several")
    engines = KINDS[kind][1] if not zoneout else OURS
    results = {}
    for engine in engines:
        layer.engine = engine
        out, h_n, cells = layer(make_input(), **kw, return_cell_states=True)
        assert layer.last_engine == engine
        out = out.data if layout == "packed" else out
        produced = [out, *_fields(h_n), cells]
        results[engine] = [*produced, *_loss_grads(produced, [x, *layer.parameters()])]
    D = 2 if bidirectional else 1
    L = layer.depth if isinstance(layer, lstmkit.DepthGatedLSTM) else layers
    batch = {"unbatched": (T,), "batch_first": (B, T), "packed": (B, T)}.get(layout, (T, B))
    cells = results["reference"][1 + len(_fields(h_n))]
    assert cells.shape == (L, *batch, D * H)
    for engine in engines:
        for a, b in zip(results[engine], results["reference"], strict=True):
            assert a is not None
            assert b is not None
            torch.testing.assert_close(a, b, rtol=0, atol=TOL)


def test_the_top_layers_cell_states_line_up_with_the_output() -> None:
    # h_t = o_t * tanh(C_t): the output and the top layer's cells give back o_t in (0, 1)
    layer = make("lstm", num_layers=2, bidirectional=True, engine="fused")
    x = torch.randn(T, B, I, dtype=F64)
    out, (_, c_n), cells = layer(x, return_cell_states=True)
    o = out / torch.tanh(cells[-1])
    assert bool(((o > 0) & (o < 1)).all())
    torch.testing.assert_close(cells[-1, -1, :, :H], c_n[-2], rtol=0, atol=0)  # forward's last
    torch.testing.assert_close(cells[-1, 0, :, H:], c_n[-1], rtol=0, atol=0)  # reverse's first
    torch.testing.assert_close(cells[0, -1, :, :H], c_n[0], rtol=0, atol=0)


# --- one step ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_one_step_with_resets_takes_torchs_cell_and_follows_the_reference(
    kind: str, batch_first: bool
) -> None:
    layer = make(kind, batch_first=batch_first)
    x = torch.randn(1, B, I, dtype=F64)
    hx, start = random_state(layer, B), random_state(layer, B)
    flags = torch.tensor([[True, False, True]])
    flags = flags.T if batch_first else flags
    step = x.transpose(0, 1) if batch_first else x
    for reset_state in (None, start):
        fast = layer(step, hx, resets=flags, reset_state=reset_state)
        assert layer.last_engine == "native"  # torch's one-step cell
        layer.engine = "reference"
        full = layer(step, hx, resets=flags, reset_state=reset_state)
        layer.engine = "auto"
        _close(fast[0], full[0])
        _close(fast[1], full[1])
    plain = layer(step, hx)
    _close(layer(step, hx, resets=flags, reset_state=hx)[0], plain[0])  # a no-op with hx
    changed = layer(step, hx, resets=flags)[0]
    assert not torch.allclose(changed, plain[0])
    if kind == "lstm":
        _, (_, c), cells = layer(step, hx, return_cell_states=True)
        assert layer.last_engine == "native"
        assert cells.shape == ((1, B, 1, H) if batch_first else (1, 1, B, H))
        torch.testing.assert_close(cells.flatten(0, 2), c[0], rtol=0, atol=0)


# --- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resets", "batch_first", "error", "message"),
    [
        (torch.zeros(B, T, dtype=torch.bool), False, ValueError,
         r"expected shape \(7, 3\), got \(3, 7\)"),
        (torch.zeros(T, B, dtype=torch.bool), True, ValueError,
         r"\(B, T\) with batch_first: expected shape \(3, 7\), got \(7, 3\)"),
        (torch.zeros(T, B), False, TypeError, "expected dtype torch.bool, got torch.float32"),
        ([[False] * B] * T, False, TypeError,
         r"resets must be a bool Tensor of shape \(T, B\) = \(7, 3\), got a list of 7"),
        (torch.zeros(T, dtype=torch.bool), False, ValueError,
         r"expected shape \(7, 3\), got \(7,\)"),
    ],
)  # fmt: skip
def test_bad_resets_are_refused_naming_expected_and_got(
    resets: Any, batch_first: bool, error: type, message: str
) -> None:
    layer = lstmkit.LSTM(I, H, batch_first=batch_first)
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    with pytest.raises(error, match=message) as raised:
        layer(x, resets=resets)
    assert isinstance(raised.value, LstmkitError)


def test_unbatched_resets_have_one_flag_per_step() -> None:
    layer = make("lstm", bidirectional=True)
    x = torch.randn(T, I, dtype=F64)
    flags = pattern("middle")[:, 1]
    out, (h, c) = layer(x, resets=flags)
    batched, (h_b, c_b) = layer(x[:, None], resets=flags[:, None])
    _close(out, batched[:, 0])
    _close((h, c), (h_b[:, 0], c_b[:, 0]))
    message = r"\(T,\) for unbatched input: expected shape \(7,\), got \(7, 1\)"
    with pytest.raises(ValueError, match=message):
        layer(x, resets=flags[:, None])


@pytest.mark.parametrize(
    ("kind", "got"),
    [
        ("gru", "GRUCell's state has a single tensor h"),
        ("rnn", "RNNCell's state has a single tensor h"),
        ("mut", "MUTCell's state has a single tensor h"),
        ("clockwork", r"ClockworkCell's state has the fields \(h, t\)"),
        ("grid", r"GridLSTMCell's state has the fields \(h, h_time, m_time\)"),
    ],
)
def test_cell_states_of_a_state_without_c_are_refused(kind: str, got: str) -> None:
    layer = make(kind)
    with pytest.raises(ValueError, match=r"expected a state with a field 'c'.*" + got) as raised:
        layer(torch.randn(T, B, layer.input_size, dtype=F64), return_cell_states=True)
    assert isinstance(raised.value, LstmkitError)


def test_resets_with_lengths_or_packed_input_are_refused_saying_what_to_do() -> None:
    layer = lstmkit.LSTM(I, H)
    x, flags = torch.randn(T, B, I), pattern("middle")
    with pytest.raises(ValueError, match=r"resets= runs padded input only, not lengths=.*without"):
        layer(x, lengths=[T, 3, 2], resets=flags)
    packed = pack_padded_sequence(x, [T, 3, 2])
    with pytest.raises(ValueError, match="not a PackedSequence"):
        layer(packed, resets=flags)


def test_other_bad_requests_are_refused() -> None:
    layer = lstmkit.LSTM(I, H)
    x = torch.randn(T, B, I)
    with pytest.raises(ValueError, match="pass resets= as well"):
        layer(x, reset_state=layer.initial_state(B, dtype=x.dtype, device=x.device))
    with pytest.raises(TypeError, match="return_cell_states must be a bool, got int 1"):
        layer(x, return_cell_states=1)
    narrow = (torch.zeros(1, 2, H), torch.zeros(1, 2, H))
    with pytest.raises(
        ValueError, match=r"reset_state.h: expected shape \(1, 3, 5\), got \(1, 2, 5\)"
    ):
        layer(x, resets=pattern("middle"), reset_state=narrow)
    flags = pattern("middle").to("meta")
    with pytest.raises(ValueError, match="expected cpu, got meta"):
        layer(x, resets=flags)


class _Plain(ReferenceEngine):
    """An engine of one's own that offers only ``run``."""

    name = "plain-streaming-test"
    supports = "every cell, without resets"
    run_stream = Engine.run_stream


def test_an_engine_without_run_stream_says_so_and_auto_passes_it_by() -> None:
    register_engine(_Plain(), priority=1000)
    try:
        assert not _Plain().streams
        layer = make("lstm")
        x = torch.randn(T, B, I, dtype=F64)
        layer(x)
        assert layer.last_engine == "plain-streaming-test"
        out = layer(x, resets=pattern("middle"))[0]
        assert layer.last_engine != "plain-streaming-test"
        layer.engine = "reference"
        _close(out, layer(x, resets=pattern("middle"))[0])
        layer.engine = "plain-streaming-test"
        with pytest.raises(ValueError, match="'plain-streaming-test' does not run resets="):
            layer(x, return_cell_states=True)
    finally:
        unregister_engine("plain-streaming-test")


# --- the example ------------------------------------------------------------------------------


def test_the_streaming_example_learns_across_chunks_and_resets_its_cells() -> None:
    results = load_example("streaming_tbptt").main(steps=200)
    assert results["accuracy"] > 0.6  # chance 0.25
    assert results["reset_gap"] < 1e-5
