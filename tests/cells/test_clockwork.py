"""The Clockwork RNN against the paper's equations, its clock and block structure, gradcheck, the
sequence layer, saving, bad input, and two tasks it learns."""

from __future__ import annotations

import io
import math
import re
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_sequence

from lstmkit import ClockworkCell, ClockworkRNN, ClockworkState
from lstmkit.modules.sequence import SequenceModel
from lstmkit.tasks import GapTask
from tests.helpers import assert_step_gradients, load_example
from tests.references import clockwork, np64

B, I = 3, 4
PERIODS, SIZES = (1, 3, 5), (2, 4, 3)  # non-default: uneven modules, periods not powers of 2
H = sum(SIZES)

# the reference run with this file's modules
clockwork_sequence = partial(clockwork.clockwork_sequence, periods=PERIODS, sizes=SIZES)


def make(input_size: int = I, **options: object) -> ClockworkCell:
    options = {"periods": PERIODS, "module_sizes": SIZES, **options}
    cell = ClockworkCell(input_size, H, dtype=torch.float64, **options)  # type: ignore[arg-type]
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, 0.7)  # masked entries of W_hh too: they must have no effect
    return cell


def random_state(batch: int = B, t: list[int] | None = None) -> ClockworkState:
    t = [0, 2, 7][:batch] if t is None else t
    return ClockworkState(
        torch.randn(batch, H, dtype=torch.float64),
        torch.tensor(t, dtype=torch.float64)[:, None],
    )


@pytest.mark.parametrize(
    "options", [{}, {"nonlinearity": "relu"}, {"bias": False}], ids=["tanh", "relu", "no-bias"]
)
def test_steps_match_the_equations(options: dict[str, object]) -> None:
    cell = make(**options)
    xs = torch.randn(17, B, I, dtype=torch.float64)  # 7 + 17 > 15: the clock wraps its cycle
    state = random_state()
    t0 = np.array([0, 2, 7])
    hs_ref, _, _ = clockwork_sequence(
        np64(xs), np64(state.h), t0, cell.state_dict(), relu=options.get("nonlinearity") == "relu"
    )
    for step, x in enumerate(xs):
        state = cell(x, state)
        np.testing.assert_allclose(np64(state.h), hs_ref[step], rtol=0, atol=1e-10)
        expected_t = (t0 + step + 1) % math.lcm(*PERIODS)
        np.testing.assert_array_equal(np64(state.t[:, 0]), expected_t)


def test_default_modules_are_equal_with_exponential_periods() -> None:
    cell = ClockworkCell(I, 8)
    assert cell.periods == (1, 2, 4, 8)
    assert cell.module_sizes == (2, 2, 2, 2)
    uneven = ClockworkCell(I, 10, num_modules=3)
    assert uneven.periods == (1, 2, 4)
    assert uneven.module_sizes == (4, 3, 3)  # the fastest module takes the remainder
    assert ClockworkCell(I, 9, periods=[2, 3, 10]).module_sizes == (3, 3, 3)
    assert ClockworkCell(I, 9, module_sizes=[5, 4]).periods == (1, 2)


def test_time_starts_at_zero_so_every_module_updates_first() -> None:
    cell = make()
    x = torch.randn(B, I, dtype=torch.float64)
    state = cell(x)  # the zero state: h = 0, t = 0
    expected = torch.tanh(x @ cell.weight_ih.T + cell.bias)  # every row of eq. (1), h_0 = 0
    torch.testing.assert_close(state.h, expected, rtol=0, atol=1e-12)
    assert torch.equal(state.t, torch.ones(B, 1, dtype=torch.float64))
    # at t = 1 only the module of period 1 (units 0, 1) updates; the rest keep their value
    after = cell(torch.randn(B, I, dtype=torch.float64), state)
    assert torch.equal(after.h[:, 2:], state.h[:, 2:])
    assert bool((after.h[:, :2] != state.h[:, :2]).all())


def test_inactive_modules_keep_their_values_exactly() -> None:
    cell = make()
    state = random_state(4, t=[1, 3, 5, 15])  # 1: only T=1; 3: T=1, 3; 5: T=1, 5; 15: all
    new = cell(torch.randn(4, I, dtype=torch.float64), state)
    active = np.array(
        [
            [t % T == 0 for T, k in zip(PERIODS, SIZES, strict=True) for _ in range(k)]
            for t in (1, 3, 5, 15)
        ]
    )
    assert np.array_equal(cell.active(state.t).numpy(), active)
    kept = ~torch.from_numpy(active)
    assert torch.equal(new.h[kept], state.h[kept])
    assert bool((new.h[~kept] != state.h[~kept]).all())


def test_slow_modules_feed_fast_ones_and_not_the_reverse() -> None:
    cell = make()
    x = torch.randn(1, I, dtype=torch.float64)
    base = random_state(1, t=[0])  # t = 0: every module updates
    starts = np.cumsum([0, *SIZES])
    reference = cell(x, base).h
    for i in range(len(SIZES)):
        h = base.h.clone()
        h[:, starts[i] : starts[i + 1]] += 0.5  # perturb module i at t - 1
        moved = cell(x, ClockworkState(h, base.t)).h
        slower = slice(starts[i + 1], H)
        assert torch.equal(moved[:, slower], reference[:, slower])  # nothing reaches them
        same_or_faster = slice(0, starts[i + 1])
        assert bool((moved[:, same_or_faster] != reference[:, same_or_faster]).all())


def test_masked_weights_get_no_gradient() -> None:
    cell = make()
    state = random_state()
    for x in torch.randn(6, B, I, dtype=torch.float64):
        state = cell(x, state)
    state.h.square().sum().backward()
    assert cell.weight_hh.grad is not None
    mask = cell.recurrent_mask
    assert torch.count_nonzero(cell.weight_hh.grad[~mask]) == 0
    assert bool((cell.weight_hh.grad[mask] != 0).all())


def test_masked_weights_start_at_zero() -> None:
    cell = ClockworkCell(I, H, periods=PERIODS, module_sizes=SIZES)
    assert torch.count_nonzero(cell.weight_hh.detach()[~cell.recurrent_mask]) == 0
    assert bool((cell.weight_hh.detach()[cell.recurrent_mask] != 0).all())


@pytest.mark.parametrize("options", [{}, {"nonlinearity": "relu"}], ids=["tanh", "relu"])
def test_gradients(options: dict[str, object]) -> None:
    cell = make(**options)
    assert_step_gradients(cell, torch.randn(4, B, I, dtype=torch.float64), random_state())


def test_recurrent_dropout_masks_only_the_product() -> None:
    cell = make()
    x, state = torch.randn(B, I, dtype=torch.float64), random_state()
    xp = cell.project_input(x)
    ones = torch.ones(B, H, dtype=torch.float64)
    assert torch.equal(cell.step(xp, state, h_mask=ones).h, cell.step(xp, state).h)
    h_mask = 2.0 * torch.randint(0, 2, (B, H), dtype=torch.float64)  # dropout 1/2: 0 or 2
    dropped = cell.step(xp, state, h_mask=h_mask).h
    # active units see the dropped h_{t-1} in the product; inactive ones keep the undropped one
    t0 = np.array([0, 2, 7])
    through, _, _ = clockwork_sequence(np64(x[None]), np64(state.h * h_mask), t0, cell.state_dict())
    active = cell.active(state.t).numpy()
    expected = np.where(active, through[0], np64(state.h))
    np.testing.assert_allclose(np64(dropped), expected, rtol=0, atol=1e-10)


def test_layer_runs_the_cells_layer_by_layer() -> None:
    layer = ClockworkRNN(
        I, H, periods=PERIODS, module_sizes=SIZES, num_layers=2, batch_first=True
    ).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.7)
    x = torch.randn(B, 9, I, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    t0 = torch.tensor([[1.0, 4.0, 9.0], [0.0, 2.0, 3.0]], dtype=torch.float64)[..., None]
    out, (h_n, t_n) = layer(x, (h0, t0))
    state = layer.state_dict()
    ticks = np64(t0[..., 0]).astype(int)
    hs0, last0, _ = clockwork_sequence(
        np64(x.transpose(0, 1)), np64(h0[0]), ticks[0], state, suffix="_l0"
    )
    hs1, last1, _ = clockwork_sequence(hs0, np64(h0[1]), ticks[1], state, suffix="_l1")
    np.testing.assert_allclose(np64(out.transpose(0, 1)), hs1, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n), np.stack([last0, last1]), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(np64(t_n[..., 0]), (ticks + 9) % 15)


def test_reverse_direction_counts_its_own_steps_from_zero() -> None:
    layer = ClockworkRNN(I, H, periods=PERIODS, module_sizes=SIZES, bidirectional=True).double()
    x = torch.randn(7, B, I, dtype=torch.float64)
    out, (h_n, _) = layer(x)
    state = layer.state_dict()
    zeros, t0 = np.zeros((B, H)), np.zeros(B, dtype=int)
    forward, _, _ = clockwork_sequence(np64(x), zeros, t0, state, suffix="_l0")
    backward, last, _ = clockwork_sequence(np64(x.flip(0)), zeros, t0, state, suffix="_l0_reverse")
    np.testing.assert_allclose(np64(out[..., :H]), forward, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(out[..., H:]), backward[::-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np64(h_n[1]), last, rtol=0, atol=1e-10)


def test_sequences_of_different_lengths_run_as_if_alone() -> None:
    layer = ClockworkRNN(
        I,
        H,
        periods=PERIODS,
        module_sizes=SIZES,
        num_layers=2,
        bidirectional=True,
        batch_first=True,
    ).double()
    lengths = [5, 9, 2]
    x = torch.randn(B, 9, I, dtype=torch.float64)
    padded_out, padded_state = layer(x, lengths=lengths)
    packed = pack_sequence([x[b, :n] for b, n in enumerate(lengths)], enforce_sorted=False)
    packed_out, packed_state = layer(packed)
    for b, n in enumerate(lengths):
        out, (h, t) = layer(x[b : b + 1, :n])
        torch.testing.assert_close(padded_out[b, :n], out[0], rtol=0, atol=1e-12)
        assert torch.count_nonzero(padded_out[b, n:]) == 0
        for got in (padded_state, packed_state):
            torch.testing.assert_close(got.h[:, b], h[:, 0], rtol=0, atol=1e-12)
            assert torch.equal(got.t[:, b], t[:, 0])
        assert torch.equal(t[:, 0, 0], torch.full((4,), float(n % 15), dtype=torch.float64))
    unpacked = torch.nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True)[0]
    torch.testing.assert_close(unpacked, padded_out, rtol=0, atol=1e-12)


def test_unbatched_input_is_one_sequence() -> None:
    layer = ClockworkRNN(I, H, periods=PERIODS, module_sizes=SIZES).double()
    x = torch.randn(6, I, dtype=torch.float64)
    out, (h_n, t_n) = layer(x)
    batched, (h_b, t_b) = layer(x[:, None])
    assert torch.equal(t_n, t_b[:, 0])
    assert torch.equal(out, batched[:, 0])
    assert torch.equal(h_n, h_b[:, 0])
    assert t_n.shape == (1, 1)
    assert t_n.item() == 6


def test_the_fused_engine_runs_it_and_torch_nn_cannot() -> None:
    with pytest.raises(ValueError, match="cannot run this layer: its cell is a ClockworkCell"):
        ClockworkRNN(I, H, engine="native")
    layer = ClockworkRNN(I, H, engine="fused")
    reference = ClockworkRNN(I, H, engine="reference")
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(5, 2, I)
    torch.testing.assert_close(layer(x)[0], reference(x)[0], rtol=1.3e-6, atol=1e-6)


def test_saves_and_loads_only_weights() -> None:
    options = {"periods": (1, 4), "module_sizes": (5, 3), "num_layers": 2, "bidirectional": True}
    layer = ClockworkRNN(I, 8, **options)  # type: ignore[arg-type]
    keys = {
        f"{n}_l{k}{d}"
        for n in ("weight_ih", "weight_hh", "bias")
        for k in (0, 1)
        for d in ("", "_reverse")
    }
    assert set(layer.state_dict()) == keys  # the mask and the periods are not saved
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    other = ClockworkRNN(I, 8, **options)  # type: ignore[arg-type]
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(6, B, I)
    out, (h_n, t_n) = layer(x)
    out2, (h_n2, t_n2) = other(x)
    assert torch.equal(out2, out)
    assert torch.equal(h_n2, h_n)
    assert torch.equal(t_n2, t_n)


def test_the_clock_stays_exact_in_low_precision() -> None:
    # bfloat16 counts integers exactly only to 256; the clock runs modulo its cycle (8 here)
    layer = ClockworkRNN(I, 8, dtype=torch.bfloat16)  # periods 1, 2, 4, 8 of 2 units each
    out, (_, t_n) = layer(torch.randn(601, 1, I, dtype=torch.bfloat16))
    assert t_n.item() == 601 % 8
    for step in range(585, 601):
        active = torch.tensor([step % T == 0 for T in (1, 2, 4, 8) for _ in range(2)])
        assert torch.equal(out[step, 0, ~active], out[step - 1, 0, ~active])
        if step % 8 == 0:  # the slowest module updates
            assert bool((out[step, 0, 6:] != out[step - 1, 0, 6:]).any())


def test_layer_reports_its_configuration() -> None:
    layer = ClockworkRNN(I, 6, periods=[2, 5], bias=False, nonlinearity="relu", num_layers=2)
    assert layer.periods == (2, 5)
    assert layer.module_sizes == (3, 3)
    assert layer.bias is False
    assert layer.nonlinearity == "relu"
    assert all(c.periods == (2, 5) and c.bias is None for c in layer.iter_cells())  # type: ignore[attr-defined]
    assert "periods=(2, 5)" in repr(layer)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"periods": [1, 4, 4]}, ValueError, "periods must be strictly increasing, got [1, 4, 4]"),
        ({"periods": [0, 2]}, ValueError, "every entry of periods must be positive, got 0"),
        ({"periods": [1, 2.5]}, TypeError, "every entry of periods must be an int, got float 2.5"),
        ({"periods": [True, 2]}, TypeError, "every entry of periods must be an int, got bool True"),
        (
            {"periods": "124"},
            TypeError,
            "periods must be a list or tuple of ints, got str '124'",
        ),
        (
            {"module_sizes": ()},
            ValueError,
            "module_sizes must have an entry per module, at least one; got ()",
        ),
        (
            {"module_sizes": [4, 4]},
            ValueError,
            "module_sizes must sum to hidden_size=9, got [4, 4] (sum 8)",
        ),
        (
            {"module_sizes": [3, 3, 3], "periods": [1, 2]},
            ValueError,
            "disagree on the number of modules: len(periods)=2, len(module_sizes)=3",
        ),
        (
            {"num_modules": 10},
            ValueError,
            "10 modules need at least 10 hidden units, got hidden_size=9",
        ),
        ({"num_modules": 0}, ValueError, "num_modules must be positive, got 0"),
        ({"nonlinearity": "sigmoid"}, ValueError, "unknown nonlinearity 'sigmoid'"),
        ({"bias": 1}, TypeError, "bias must be a bool, got int 1"),
    ],
)
def test_bad_options(options: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        ClockworkCell(I, 9, **options)  # type: ignore[arg-type]


def test_the_default_needs_four_units() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "4 modules need at least 4 hidden units, got hidden_size=3; pass num_modules="
        ),
    ):
        ClockworkCell(I, 3)
    assert ClockworkCell(I, 3, num_modules=3).module_sizes == (1, 1, 1)


def test_bad_states() -> None:
    cell = ClockworkCell(I, H, periods=PERIODS, module_sizes=SIZES)
    x = torch.randn(B, I)
    with pytest.raises(TypeError, match=re.escape("hx: expected a tuple (h, t) of Tensors")):
        cell(x, torch.zeros(B, H))
    with pytest.raises(ValueError, match=re.escape("hx.t: expected shape (3, 1), got (3,)")):
        cell(x, (torch.zeros(B, H), torch.zeros(B)))
    layer = ClockworkRNN(I, H, num_modules=3, num_layers=2)
    with pytest.raises(ValueError, match=re.escape("hx.t: expected shape (2, 3, 1), got (3, 1)")):
        layer(torch.randn(5, B, I), (torch.zeros(2, B, H), torch.zeros(B, 1)))


def test_learns_a_gap_in_its_slow_module() -> None:
    # The sequence has 32 steps and the slowest module (period 32) updates only at t = 0, where it
    # reads the cue, so it holds it to the end; a memoryless answer gets chance, 1/4.
    torch.manual_seed(0)
    task = GapTask(gap=30, classes=4, distractors=8)
    layer = ClockworkRNN(16, 24, num_modules=6, batch_first=True)
    model = SequenceModel(layer, vocab_size=task.vocab_size, output_size=4, readout="last")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(80):
        batch = task.batch(64, generator)
        loss = F.cross_entropy(model(batch.inputs), batch.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    held_out = task.batch(500, torch.Generator().manual_seed(1))
    with torch.no_grad():
        accuracy = task.metrics(model(held_out.inputs), held_out)["accuracy"]
    assert accuracy > 0.9  # chance is 0.25


def test_generates_a_waveform_from_no_input() -> None:
    results = load_example("clockwork_sequence").main(steps=200, length=128)
    assert results["Clockwork RNN"] < 0.1  # normalised error; always answering the mean gives 1
    assert results["Clockwork RNN"] < results["vanilla RNN"] / 5
