"""Sequence layers: torch.nn parity, packing, state, serialisation, dropout and user cells."""

from __future__ import annotations

import copy
import io
import itertools
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import lstmkit
from lstmkit import LSTMState, Recurrent, RecurrentCell
from lstmkit._state import map_state
from lstmkit.engines import register_engine, unregister_engine
from lstmkit.engines.reference import ReferenceEngine
from lstmkit.engines.regularizers import Regularizers

T, B, I, H, P = 6, 4, 5, 7, 3
ENGINES = ["reference", "native", "fused"]


def _tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-10


def _make_input(mode: str, batch_first: bool, dtype: torch.dtype) -> tuple[Any, Any]:
    """(input for the layer, padded view of it used to build hx) for padded/packed/unbatched."""
    if mode == "unbatched":
        return torch.randn(T, I, dtype=dtype, requires_grad=True), None
    x = torch.randn(B, T, I, dtype=dtype) if batch_first else torch.randn(T, B, I, dtype=dtype)
    x.requires_grad_()
    if mode == "padded":
        return x, None
    lengths = torch.tensor([3, T, 1, 5])  # unsorted: exercises sorted/unsorted indices
    return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False), lengths


def _compare(ours: nn.Module, theirs: nn.Module, inp: Any, hx: Any, dtype: torch.dtype) -> None:
    tol = _tol(dtype)
    out_a, h_a = ours(inp, hx)
    out_b, h_b = theirs(inp, hx)
    if isinstance(out_b, PackedSequence):
        assert isinstance(out_a, PackedSequence)
        assert torch.equal(out_a.batch_sizes, out_b.batch_sizes)
        out_a, out_b = out_a.data, out_b.data
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=tol)
    h_a = h_a if isinstance(h_a, tuple) else (h_a,)
    h_b = h_b if isinstance(h_b, tuple) else (h_b,)
    assert len(h_a) == len(h_b)
    for a, b in zip(h_a, h_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)
    # gradients of a loss that touches every output, for the input, hx and every parameter
    weights = [torch.randn_like(t) for t in (out_b, *h_b)]

    def loss(out: torch.Tensor, hs: tuple) -> torch.Tensor:
        return sum((w * t).sum() for w, t in zip(weights, (out, *hs), strict=True))

    leaves = [
        t
        for t in [inp.data if isinstance(inp, PackedSequence) else inp, *_flat(hx)]
        if t.requires_grad
    ]
    named_a = dict(ours.named_parameters())
    named_b = dict(theirs.named_parameters())
    assert named_a.keys() == named_b.keys()
    names = sorted(named_b)
    grads_a = torch.autograd.grad(loss(out_a, h_a), leaves + [named_a[n] for n in names])
    grads_b = torch.autograd.grad(loss(out_b, h_b), leaves + [named_b[n] for n in names])
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, rtol=0, atol=tol)


def _flat(hx: Any) -> list[torch.Tensor]:
    if hx is None:
        return []
    return list(hx) if isinstance(hx, tuple) else [hx]


LAYER_CASES = list(
    itertools.product([1, 2], [False, True], [False, True], ["padded", "packed", "unbatched"])
)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("proj", [0, P])
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "mode"), LAYER_CASES)
def test_lstm_matches_torch(
    num_layers, bidirectional, batch_first, mode, proj, dtype, engine
) -> None:
    theirs = nn.LSTM(
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        proj_size=proj,
        dtype=dtype,
    )
    ours = lstmkit.LSTM(
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        proj_size=proj,
        dtype=dtype,
        engine=engine,
    )
    ours.load_state_dict(theirs.state_dict())
    inp, _ = _make_input(mode, batch_first, dtype)
    D = 2 if bidirectional else 1
    batch = () if mode == "unbatched" else (B,)
    hx = (
        torch.randn(num_layers * D, *batch, proj or H, dtype=dtype, requires_grad=True),
        torch.randn(num_layers * D, *batch, H, dtype=dtype, requires_grad=True),
    )
    _compare(ours, theirs, inp, hx, dtype)
    _compare(ours, theirs, inp, None, dtype)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["GRU", "RNN_tanh", "RNN_relu"])
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "mode"), LAYER_CASES)
def test_gru_and_rnn_match_torch(
    num_layers, bidirectional, batch_first, mode, kind, dtype, engine
) -> None:
    options = {
        "num_layers": num_layers,
        "bidirectional": bidirectional,
        "batch_first": batch_first,
        "dtype": dtype,
    }
    if kind == "GRU":
        theirs: nn.Module = nn.GRU(I, H, **options)
        ours: nn.Module = lstmkit.GRU(I, H, engine=engine, **options)
    else:
        nonlinearity = kind.split("_")[1]
        theirs = nn.RNN(I, H, nonlinearity=nonlinearity, **options)
        ours = lstmkit.RNN(I, H, nonlinearity=nonlinearity, engine=engine, **options)
    ours.load_state_dict(theirs.state_dict())
    inp, _ = _make_input(mode, batch_first, dtype)
    D = 2 if bidirectional else 1
    batch = () if mode == "unbatched" else (B,)
    hx = torch.randn(num_layers * D, *batch, H, dtype=dtype, requires_grad=True)
    _compare(ours, theirs, inp, hx, dtype)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_without_bias_matches_torch(bias: bool) -> None:
    theirs = nn.LSTM(I, H, num_layers=2, bias=bias, dtype=torch.float64)
    ours = lstmkit.LSTM(I, H, num_layers=2, bias=bias, dtype=torch.float64, engine="reference")
    ours.load_state_dict(theirs.state_dict())
    _compare(
        ours,
        theirs,
        torch.randn(T, B, I, dtype=torch.float64, requires_grad=True),
        None,
        torch.float64,
    )


VARIANT_LAYERS = {
    "vanilla": lambda: lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, variant="vanilla"),
    "FGR_proj": lambda: lstmkit.LSTM(
        I, H, num_layers=2, bidirectional=True, variant="FGR", proj_size=P
    ),
    "CIFG": lambda: lstmkit.LSTM(I, H, bidirectional=True, variant="CIFG"),
    "GRU_cho": lambda: lstmkit.GRU(I, H, num_layers=2, bidirectional=True, reset_after=False),
    "RNN": lambda: lstmkit.RNN(I, H, num_layers=2, bidirectional=True),
    "MUT3": lambda: lstmkit.MUT(I, H, kind=3, num_layers=2, bidirectional=True),
    "LN_LSTM_peep_proj": lambda: lstmkit.LSTM(
        I, H, num_layers=2, bidirectional=True, layer_norm=True, peepholes="ifo", proj_size=P
    ),
    "LN_GRU_cho": lambda: lstmkit.GRU(
        I, H, num_layers=2, bidirectional=True, layer_norm=True, reset_after=False
    ),
}


@pytest.mark.parametrize("name", VARIANT_LAYERS)
def test_packed_sequences_equal_running_each_alone(name: str) -> None:
    layer = VARIANT_LAYERS[name]().double()
    lengths = [4, T, 1, 5]
    x = torch.randn(B, T, I, dtype=torch.float64)
    hx = layer.initial_state(B, dtype=torch.float64, device=torch.device("cpu"))
    hx = (
        type(hx)(*(torch.randn_like(t) for t in hx))
        if isinstance(hx, tuple)
        else torch.randn_like(hx)
    )
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, h_n = layer(packed, hx)
    padded, _ = pad_packed_sequence(out, batch_first=True)
    via_lengths, h_n2 = lstmkit.Recurrent.forward(layer, x.transpose(0, 1), hx, lengths=lengths)
    for b, n in enumerate(lengths):
        hx_b = _select(hx, b)
        out_b, h_b = layer(x[b, :n], hx_b)  # unbatched, exactly its own length
        torch.testing.assert_close(padded[b, :n], out_b, rtol=0, atol=1e-12)
        torch.testing.assert_close(via_lengths[:n, b], out_b, rtol=0, atol=1e-12)
        assert torch.count_nonzero(via_lengths[n:, b]) == 0  # zero past the length
        for got, got2, want in zip(
            _fields(_select(h_n, b)), _fields(_select(h_n2, b)), _fields(h_b), strict=True
        ):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
            torch.testing.assert_close(got2, want, rtol=0, atol=1e-12)


def _select(state: Any, b: int) -> Any:
    if isinstance(state, torch.Tensor):
        return state[:, b]
    return type(state)(*(t[:, b] for t in state))


def _fields(state: Any) -> tuple:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


@pytest.mark.parametrize("name", VARIANT_LAYERS)
def test_gradcheck_through_layers(name: str) -> None:
    torch.manual_seed(0)
    layer = VARIANT_LAYERS[name]().double()
    layer.engine = "reference"
    x = torch.randn(3, 2, I, dtype=torch.float64, requires_grad=True)
    packed_x = torch.randn(2, 3, I, dtype=torch.float64, requires_grad=True)

    def padded(x: torch.Tensor) -> torch.Tensor:
        out, _ = layer(x)
        return out

    def packed(x: torch.Tensor) -> torch.Tensor:
        out, _ = layer(
            pack_padded_sequence(x, torch.tensor([2, 3]), batch_first=True, enforce_sorted=False)
        )
        return out.data

    assert torch.autograd.gradcheck(padded, (x,))
    assert torch.autograd.gradcheck(packed, (packed_x,))


def test_state_dict_round_trip_through_a_file(tmp_path) -> None:
    layer = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, variant="FGR", proj_size=P)
    path = tmp_path / "lstm.pt"
    torch.save(layer.state_dict(), path)
    other = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True, variant="FGR", proj_size=P)
    other.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(T, B, I)
    torch.testing.assert_close(other(x)[0], layer(x)[0], rtol=0, atol=0)
    assert set(layer.state_dict()) >= {"weight_gg_l1_reverse", "weight_ci_l0", "weight_hr_l1"}


@pytest.mark.parametrize("name", ["LN_LSTM_peep_proj", "LN_GRU_cho"])
def test_layer_norm_state_dict_round_trip(name: str, tmp_path) -> None:
    layer = VARIANT_LAYERS[name]()
    with torch.no_grad():  # gains and biases away from their initial 1 and 0
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    other = VARIANT_LAYERS[name]()
    other.load_state_dict(torch.load(tmp_path / "layer.pt", weights_only=True))
    x = torch.randn(T, B, I)
    torch.testing.assert_close(other(x)[0], layer(x)[0], rtol=0, atol=0)
    assert any(k.startswith("ln_") for k in layer.state_dict())


@pytest.mark.parametrize("copier", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
def test_modules_pickle_and_copy_and_stay_bound(copier) -> None:
    layer = lstmkit.LSTM(I, H, num_layers=2, variant="vanilla")
    x = torch.randn(T, B, I)
    clone = copier(layer)
    torch.testing.assert_close(clone(x)[0], layer(x)[0], rtol=0, atol=0)
    # the clone's cells read the clone's parameters, not the original's
    assert clone.cell(0).weight_hh is clone.weight_hh_l0
    assert list(clone.iter_cells()) == list(clone.cells.values())  # the clone's cells, in order
    with torch.no_grad():
        clone.weight_hh_l1.add_(0.5)
    assert not torch.allclose(clone(x)[0], layer(x)[0])
    buffer = io.BytesIO()
    torch.save(layer, buffer)  # whole-module saving works too (loading it needs weights_only=False)


def test_conversions_keep_cells_bound() -> None:
    layer = lstmkit.LSTM(I, H, variant="vanilla")
    layer.double()
    assert layer.cell(0).weight_ci.dtype == torch.float64
    out, _ = layer(torch.randn(T, B, I, dtype=torch.float64))
    assert out.dtype == torch.float64
    new = nn.Parameter(torch.randn(4 * H, H, dtype=torch.float64))
    layer.weight_hh_l0 = new
    assert layer.cell(0).weight_hh is new
    state = {k: torch.randn_like(v) for k, v in layer.state_dict().items()}
    layer.load_state_dict(state, assign=True)
    assert torch.equal(layer.cell(0).weight_co, state["weight_co_l0"])


@pytest.mark.parametrize("engine", ENGINES)
def test_parametrizations_reach_the_cells(engine: str) -> None:
    from torch.nn.utils import parametrize

    class Halve(nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return w / 2

    layer = lstmkit.LSTM(I, H, dtype=torch.float64, engine=engine)
    halved = lstmkit.LSTM(I, H, dtype=torch.float64, engine=engine)
    halved.load_state_dict(layer.state_dict())
    with torch.no_grad():
        halved.weight_hh_l0.div_(2)
    parametrize.register_parametrization(layer, "weight_hh_l0", Halve())
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], halved(x)[0], rtol=0, atol=1e-12)


def test_functional_call_reaches_the_cells() -> None:
    # torch.func puts its tensors in the layer's _parameters, where the cells look first
    layer = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True)
    other = lstmkit.LSTM(I, H, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    own = layer(x)[0]
    out, _ = torch.func.functional_call(layer, dict(other.named_parameters()), (x,))
    torch.testing.assert_close(out, other(x)[0], rtol=0, atol=0)
    torch.testing.assert_close(layer(x)[0], own, rtol=0, atol=0)  # its own are back


class Picky(ReferenceEngine):
    """The reference loop under another name, ahead of every engine, for float32 layers
    without regularisers only."""

    name = "picky-test"
    supports = "float32 layers without regularisers"

    def unsupported(self, layer: Any) -> str | None:
        if layer.regularizers.active:
            return "it has regularisers"
        dtype = layer.cell(0).weight_ih.dtype
        return None if dtype == torch.float32 else f"its parameters are {dtype}"


@pytest.fixture
def picky() -> Iterator[None]:
    register_engine(Picky(), priority=1000)
    yield
    unregister_engine("picky-test")


@pytest.mark.usefixtures("picky")
def test_the_remembered_engine_follows_the_dtype() -> None:
    # a layer remembers the engine "auto" chose; a cast must make it choose again
    layer = lstmkit.GRU(I, H)
    x = torch.randn(T, B, I)
    layer(x)
    assert layer.last_engine == "picky-test"
    layer.double()
    layer(x.double())
    assert layer.last_engine != "picky-test"
    layer.float()
    layer(x)
    assert layer.last_engine == "picky-test"


@pytest.mark.usefixtures("picky")
def test_the_remembered_engine_follows_the_regularisers() -> None:
    layer = lstmkit.GRU(I, H)
    x = torch.randn(T, B, I)
    layer(x)
    assert layer.last_engine == "picky-test"
    layer.regularizers = Regularizers(zoneout_hidden=0.5)
    layer(x)
    assert layer.last_engine != "picky-test"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_equal_packing_by_hand_in_torch(engine: str, batch_first: bool) -> None:
    theirs = nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    ours = lstmkit.LSTM(
        I, H, num_layers=2, bidirectional=True, batch_first=batch_first, engine=engine
    )
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    lengths = [2, T, 1, 4]
    packed = pack_padded_sequence(
        x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
    )
    out_packed, (h_t, c_t) = theirs(packed)
    expected, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    out, (h, c) = ours(x, lengths=lengths)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(h, h_t, rtol=0, atol=1e-5)
    torch.testing.assert_close(c, c_t, rtol=0, atol=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
def test_dropout_acts_only_in_training(engine: str) -> None:
    layer = lstmkit.LSTM(I, H, num_layers=3, dropout=0.5, engine=engine)
    plain = lstmkit.LSTM(I, H, num_layers=3, engine=engine)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I)
    layer.train()
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(a, b)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0], rtol=0, atol=0)
    torch.testing.assert_close(layer(x)[0], plain(x)[0], rtol=0, atol=0)


def test_dropout_with_one_layer_warns() -> None:
    with pytest.warns(UserWarning, match="needs num_layers > 1"):
        lstmkit.GRU(I, H, dropout=0.2)


class MinimalGatedCell(RecurrentCell):
    """A user's own cell (the minimal gated unit of Zhou et al. 2016), for Recurrent."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W = nn.Parameter(torch.randn(2 * hidden_size, input_size) * 0.5)
        self.U_f = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.5)
        self.U_h = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.5)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W.T

    def step(self, xp_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        x_f, x_h = xp_t.chunk(2, dim=-1)
        f = torch.sigmoid(x_f + state @ self.U_f.T)
        h_tilde = torch.tanh(x_h + (f * state) @ self.U_h.T)
        return (1 - f) * state + f * h_tilde

    def spawn(self, input_size: int) -> MinimalGatedCell:
        return MinimalGatedCell(input_size, self.hidden_size)


def _mgu_by_hand(params: dict[str, torch.Tensor], suffix: str, xs: torch.Tensor) -> torch.Tensor:
    W, U_f, U_h = (params[n + suffix] for n in ("W", "U_f", "U_h"))
    Hc = U_f.shape[0]
    h = torch.zeros(xs.shape[1], Hc, dtype=xs.dtype)
    out = []
    for x in xs:
        f = torch.sigmoid(x @ W[:Hc].T + h @ U_f.T)
        h = (1 - f) * h + f * torch.tanh(x @ W[Hc:].T + (f * h) @ U_h.T)
        out.append(h)
    return torch.stack(out)


def test_recurrent_runs_a_users_own_cell() -> None:
    layer = Recurrent(MinimalGatedCell(I, H), num_layers=2, bidirectional=True).double()
    assert [n for n, _ in layer.named_parameters()][:3] == ["W_l0", "U_f_l0", "U_h_l0"]
    params = dict(layer.named_parameters())
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, h_n = layer(x)
    fwd = _mgu_by_hand(params, "_l0", x)
    bwd = _mgu_by_hand(params, "_l0_reverse", x.flip(0)).flip(0)
    layer1_in = torch.cat([fwd, bwd], dim=-1)
    fwd1 = _mgu_by_hand(params, "_l1", layer1_in)
    bwd1 = _mgu_by_hand(params, "_l1_reverse", layer1_in.flip(0)).flip(0)
    torch.testing.assert_close(out, torch.cat([fwd1, bwd1], dim=-1), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        h_n, torch.stack([fwd[-1], bwd[0], fwd1[-1], bwd1[0]]), rtol=0, atol=1e-12
    )
    assert lstmkit.engines.select_engine("auto", layer).name == "reference"


def test_a_cell_without_spawn_runs_one_layer_only() -> None:
    class OneOff(MinimalGatedCell):
        spawn = RecurrentCell.spawn  # type: ignore[assignment]

    Recurrent(OneOff(I, H))(torch.randn(T, B, I))
    with pytest.raises(NotImplementedError, match="does not define spawn"):
        Recurrent(OneOff(I, H), num_layers=2)


def test_layers_accept_a_cells_state_type() -> None:
    layer = lstmkit.LSTM(I, H, num_layers=2)
    x = torch.randn(T, B, I)
    h0, c0 = torch.randn(2, B, H), torch.randn(2, B, H)
    out_tuple, _ = layer(x, (h0, c0))
    out_named, state = layer(x, LSTMState(h0, c0))
    assert isinstance(state, LSTMState)
    torch.testing.assert_close(out_tuple, out_named, rtol=0, atol=0)
    # continuing from the returned state is the same as running the whole sequence at once
    first, s = layer(x[:2], (h0, c0))
    second, s = layer(x[2:], s)
    torch.testing.assert_close(torch.cat([first, second]), out_tuple, rtol=0, atol=1e-6)


def test_fgr_layers_carry_the_gates_in_their_state() -> None:
    layer = lstmkit.LSTM(I, H, num_layers=2, variant="FGR", dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, state = layer(x)
    assert isinstance(state, lstmkit.FullGateState)
    first, s = layer(x[:2])
    second, _ = layer(x[2:], s)
    torch.testing.assert_close(torch.cat([first, second]), out, rtol=0, atol=1e-12)


def test_repr_names_the_configuration() -> None:
    text = repr(lstmkit.LSTM(I, H, num_layers=2, variant="CIFG", engine="reference"))
    assert "LSTM(\n  5, 7, num_layers=2, engine='reference'" in text
    assert "coupled=True" in text


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_a_well_formed_state_skips_the_zero_state_and_keeps_its_type(kind: str) -> None:
    layer = getattr(lstmkit, kind)(3, 5, num_layers=2, bidirectional=True)
    x = torch.randn(6, 2, 3)
    zeros = layer.initial_state(2, dtype=x.dtype, device=x.device)
    state = map_state(torch.randn_like, zeros)
    plain = tuple(state) if isinstance(state, tuple) else state
    assert layer._plain_state(plain, 2, x) is not None
    out, h_n = layer(x, plain)
    expected_out, expected_h = layer(x, state)
    assert type(h_n) is type(expected_h)
    torch.testing.assert_close(out, expected_out, rtol=0, atol=0)
    wrong = map_state(lambda s: s.double(), state)  # the full checks name what is wrong
    assert layer._plain_state(wrong, 2, x) is None
    with pytest.raises(TypeError, match=r"expected dtype torch\.float32"):
        layer(x, wrong)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_one_step_with_a_state_takes_torchs_cell_and_equals_the_equations(
    kind: str, batch_first: bool
) -> None:
    layer = getattr(lstmkit, kind)(3, 5, batch_first=batch_first, dtype=torch.float64)
    x = torch.randn((2, 1, 3) if batch_first else (1, 2, 3), dtype=torch.float64)
    zeros = layer.initial_state(2, dtype=torch.float64, device=x.device)
    state = map_state(lambda t: torch.randn_like(t).requires_grad_(), zeros)
    out, h_n = layer(x, state)
    assert layer.last_engine == "native"  # torch's fused cell, no engine dispatch
    layer.engine = "reference"
    expected_out, expected_h = layer(x, state)
    torch.testing.assert_close(out, expected_out, rtol=0, atol=1e-12)
    fields = lambda s: s if isinstance(s, tuple) else (s,)  # noqa: E731
    for a, b in zip(fields(h_n), fields(expected_h), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    leaves = [*fields(state), *layer.parameters()]
    fast = torch.autograd.grad(out.sum(), leaves, retain_graph=True)
    slow = torch.autograd.grad(expected_out.sum(), leaves)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_one_step_keeps_the_full_path_where_its_conditions_fail() -> None:
    x, state = torch.randn(1, 2, 3), (torch.randn(1, 2, 5), torch.randn(1, 2, 5))
    for layer in (
        lstmkit.LSTM(3, 5, engine="fused"),  # an engine asked for by name
        lstmkit.LSTM(3, 5, peepholes="ifo"),  # no torch cell computes it
        lstmkit.LSTM(3, 5, recurrent_dropout=0.3),  # acts between steps
    ):
        layer(x, state)
        assert layer.last_engine != "native"
    with pytest.raises(ValueError, match=r"expected shape \(1, 2, 5\), got \(1, 2, 4\)"):
        lstmkit.LSTM(3, 5)(x, (state[0][..., :4], state[1]))
