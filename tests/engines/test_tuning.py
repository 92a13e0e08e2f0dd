""" "auto" by measurement, driven by a fake timer: no test here times anything for real."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.engines import Engine, tuning
from lstmkit.engines.tuning import Tuner, bucket, workload_key
from tests.layers.test_recurrent import MinimalGatedCell


class FakeTimer:
    """Says each engine takes the seconds it was given, and counts the runs it saw."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.runs: list[str] = []

    def __call__(self, engine: Engine, run: Callable[[], None]) -> float:
        run()
        self.runs.append(engine.name)
        return self.seconds[engine.name]


def state_of(layer: lstmkit.Recurrent, x: torch.Tensor) -> object:
    return layer.initial_state(x.shape[1], dtype=x.dtype, device=x.device)


def test_the_fastest_engine_wins_and_every_candidate_was_timed(tmp_path: Path) -> None:
    timer = FakeTimer({"fused": 3.0, "native": 1.0, "reference": 5.0})
    tuner = Tuner(time_engine=timer, repeats=3, path=tmp_path / "cache.json")
    layer = lstmkit.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    chosen = tuner.choose(layer, x, None, state_of(layer, x), training=True)
    assert chosen.name == "native"
    # the reference loop is never the fastest where another engine runs: it is not timed
    assert timer.runs == ["fused", "native"] * 3  # interleaved, not one after the other
    (choice,) = tuner.choices.values()
    assert choice.milliseconds == {"fused": 3000.0, "native": 1000.0}


def test_a_variant_one_fast_engine_runs_is_not_measured(tmp_path: Path) -> None:
    timer = FakeTimer({})
    tuner = Tuner(time_engine=timer, repeats=1, path=tmp_path / "cache.json")
    layer = lstmkit.LSTM(3, 4, peepholes="ifo")  # torch.nn has no peepholes: native cannot
    x = torch.randn(5, 2, 3)
    assert tuner.choose(layer, x, None, state_of(layer, x), training=False).name == "fused"
    assert timer.runs == []


def test_a_layer_only_one_engine_runs_is_not_measured(tmp_path: Path) -> None:
    timer = FakeTimer({})
    tuner = Tuner(time_engine=timer, path=tmp_path / "cache.json")
    layer = lstmkit.Recurrent(MinimalGatedCell(3, 4))  # a user's cell: the reference engine's
    x = torch.randn(5, 2, 3)
    assert tuner.choose(layer, x, None, state_of(layer, x), training=True).name == "reference"
    assert timer.runs == []
    assert not (tmp_path / "cache.json").exists()


def test_equal_times_keep_the_static_ranking(tmp_path: Path) -> None:
    tuner = Tuner(time_engine=FakeTimer({"fused": 1.0, "native": 1.0, "reference": 1.0}))
    tuner._path = tmp_path / "cache.json"
    layer = lstmkit.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    assert tuner.choose(layer, x, None, state_of(layer, x), training=True).name == "fused"


def test_a_choice_is_remembered_per_bucket_and_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    timer = FakeTimer({"fused": 3.0, "native": 1.0, "reference": 5.0})
    layer = lstmkit.LSTM(3, 4)
    tuner = Tuner(time_engine=timer, repeats=1, path=path)
    for steps in (5, 7, 8):  # one bucket: T <= 8
        x = torch.randn(steps, 2, 3)
        tuner.choose(layer, x, None, state_of(layer, x), training=False)
    assert len(timer.runs) == 2  # measured once: fused and native
    x = torch.randn(9, 2, 3)  # the next bucket
    tuner.choose(layer, x, None, state_of(layer, x), training=False)
    assert len(timer.runs) == 4
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["format"] == tuning.FORMAT
    assert saved["machine"]["torch"] == torch.__version__
    assert {c["engine"] for c in saved["choices"].values()} == {"native"}
    later = Tuner(time_engine=FakeTimer({}), path=path)  # a new process: reads the file
    assert later.choose(layer, x, None, state_of(layer, x), training=False).name == "native"


def test_measuring_leaves_the_random_state_and_the_gradients_alone(tmp_path: Path) -> None:
    layer = lstmkit.LSTM(3, 4, num_layers=2, dropout=0.5).train()
    x = torch.randn(5, 2, 3, requires_grad=True)
    before = torch.get_rng_state()
    tuner = Tuner(time_engine=FakeTimer({"fused": 1.0, "native": 2.0, "reference": 3.0}))
    tuner._path = tmp_path / "cache.json"
    tuner.choose(layer, x, None, state_of(layer, x), training=True)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(p.grad is None for p in layer.parameters())


def test_a_layer_on_auto_runs_what_the_tuner_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    timer = FakeTimer({"fused": 3.0, "native": 1.0, "reference": 5.0})
    monkeypatch.setattr(tuning, "TUNER", Tuner(time_engine=timer, path=tmp_path / "c.json"))
    layer = lstmkit.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    out, _ = layer(x)
    assert layer.last_engine == "native"
    layer.engine = "native"
    torch.testing.assert_close(out, layer(x)[0], rtol=0, atol=0)
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")  # the static ranking again
    layer.engine = "auto"
    layer(x)
    assert layer.last_engine == "fused"


def test_a_damaged_cache_is_measured_again_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text('{"format": 1, "choices": {', encoding="utf-8")
    tuner = Tuner(time_engine=FakeTimer({"fused": 1.0, "native": 2.0, "reference": 3.0}))
    tuner._path = path
    layer = lstmkit.RNN(3, 4)
    x = torch.randn(5, 2, 3)
    with pytest.warns(lstmkit.LstmkitWarning, match="ignoring the engine cache"):
        assert tuner.choose(layer, x, None, state_of(layer, x), training=False).name == "fused"
    assert len(json.loads(path.read_text(encoding="utf-8"))["choices"]) == 1


def test_the_key_names_the_kind_of_work() -> None:
    layer = lstmkit.LSTM(3, 4, num_layers=2, bidirectional=True, peepholes="if")
    x = torch.randn(5, 6, 3, dtype=torch.float64)
    key = workload_key(layer, x, None, training=False)
    assert key.startswith("LSTMCell(3, 4, peepholes='if') layers=2x2 ")
    assert f"float64 cpu threads={torch.get_num_threads()} T8 B8 padded inference" in key
    packed = torch.tensor([3, 2, 2])
    key = workload_key(layer, torch.randn(7, 3, dtype=torch.float64), packed, training=True)
    assert key.endswith("T4 B4 packed training")
    assert [bucket(n) for n in (1, 2, 3, 4, 5, 100)] == [1, 2, 4, 4, 8, 128]


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", "/somewhere/else")
    assert tuning.cache_dir() == Path("/somewhere/else")
    monkeypatch.delenv("LSTMKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert tuning.cache_dir() == Path("/xdg/lstmkit")
    assert Tuner().path.parent == Path("/xdg/lstmkit")
    assert Tuner().path.name.startswith("engines-")


def test_a_layer_no_fast_engine_runs_on_a_gpu_says_so_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no GPU here: the layer is told its parameters are on one, and runs on the CPU
    from lstmkit.layers import recurrent

    monkeypatch.setattr(recurrent, "_WARNED_ON_GPU", set())
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(
        recurrent.Recurrent, "_training", lambda self, like: (torch.float32, cuda, False)
    )
    mine = lstmkit.Recurrent(MinimalGatedCell(3, 4))  # a user's cell: only the reference engine's
    x = torch.randn(5, 2, 3)
    with pytest.warns(lstmkit.EngineFallbackWarning, match=r"MinimalGatedCell\(.* on cuda:0"):
        mine(x)
    assert mine.last_engine == "reference"
    other = lstmkit.Recurrent(MinimalGatedCell(3, 4))  # named already: no second warning
    other(x)
    other(torch.randn(50, 2, 3))


@pytest.mark.parametrize(
    "text",
    [
        '{"format": 1, "choices": "x"}',
        '{"format": 1, "choices": 5}',
        '{"format": 1, "choices": {"k": {"engine": 3}}}',
        '{"format": 1, "choices": {"k": {"engine": "fused", "milliseconds": 5}}}',
        '{"format": 1, "choices": {"k": {"engine": "fused", "milliseconds": {"a": "1"}}}}',
        '{"format": 1, "choices": {"k": {"engine": "fused", "milliseconds": {"a": NaN}}}}',
        "[" * 100_000,
    ],
)
def test_a_cache_of_the_wrong_shape_is_ignored_with_a_warning(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cache.json"
    path.write_text(text, encoding="utf-8")
    tuner = Tuner(time_engine=FakeTimer({"fused": 1.0, "native": 2.0}), path=path)
    layer = lstmkit.RNN(3, 4)
    x = torch.randn(5, 2, 3)
    with pytest.warns(lstmkit.LstmkitWarning, match="ignoring the engine cache"):
        assert tuner.choose(layer, x, None, state_of(layer, x), training=False).name == "fused"


def test_a_near_tie_keeps_the_static_ranking_and_a_clear_win_does_not(tmp_path: Path) -> None:
    layer = lstmkit.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    close = Tuner(time_engine=FakeTimer({"fused": 1.04, "native": 1.0}), path=tmp_path / "a")
    assert close.choose(layer, x, None, state_of(layer, x), training=True).name == "fused"
    clear = Tuner(time_engine=FakeTimer({"fused": 1.10, "native": 1.0}), path=tmp_path / "b")
    assert clear.choose(layer, x, None, state_of(layer, x), training=True).name == "native"


def test_a_choice_measured_among_other_engines_is_measured_again(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    layer = lstmkit.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    key = workload_key(layer, x, None, training=False)
    old = {"engine": "native", "milliseconds": {"native": 1.0}}  # before fused could build
    path.write_text(json.dumps({"format": 1, "choices": {key: old}}), encoding="utf-8")
    timer = FakeTimer({"fused": 1.0, "native": 2.0})
    tuner = Tuner(time_engine=timer, repeats=1, path=path)
    assert tuner.choose(layer, x, None, state_of(layer, x), training=False).name == "fused"
    assert timer.runs == ["fused", "native"]


def measured_layer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layer: lstmkit.Recurrent
) -> FakeTimer:
    """Makes ``layer``'s "auto" measure with a fake timer that says native is faster."""
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    timer = FakeTimer({"fused": 3.0, "native": 1.0})
    tuner = Tuner(time_engine=timer, repeats=3, path=tmp_path / "c.json")
    monkeypatch.setattr(tuning, "TUNER", tuner)
    return timer


def test_packed_input_is_measured_per_bucket_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    layer = lstmkit.GRU(3, 4)
    timer = measured_layer(monkeypatch, tmp_path, layer)
    x = torch.randn(6, 3, 3)
    out, _ = layer(x, lengths=[6, 2, 4])
    assert layer.last_engine == "native"
    assert len(timer.runs) == 6  # fused and native, three times each
    layer.engine = "reference"
    torch.testing.assert_close(out, layer(x, lengths=[6, 2, 4])[0], rtol=1e-5, atol=1e-6)


def test_gradient_hooks_and_parametrizations_keep_the_static_ranking(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hooked = lstmkit.LSTM(3, 4)
    timer = measured_layer(monkeypatch, tmp_path, hooked)
    calls: list[int] = []
    hooked.weight_hh_l0.register_hook(lambda grad: calls.append(1))
    hooked(torch.randn(5, 2, 3))
    assert (hooked.last_engine, timer.runs, calls) == ("fused", [], [])

    normed = torch.nn.utils.parametrizations.spectral_norm(lstmkit.LSTM(3, 4), "weight_hh_l0")
    twin = copy.deepcopy(normed)
    x = torch.randn(5, 2, 3)
    normed(x)  # measuring would run the power iteration once per timed run
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")
    twin(x)
    assert normed.last_engine == "fused"
    assert timer.runs == []
    u = normed.parametrizations.weight_hh_l0[0]._u
    torch.testing.assert_close(u, twin.parametrizations.weight_hh_l0[0]._u, rtol=0, atol=0)


def test_a_traced_layer_is_not_measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    layer = lstmkit.LSTM(3, 4)
    timer = measured_layer(monkeypatch, tmp_path, layer)
    x = torch.randn(5, 2, 3)

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)[0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's deprecation and its notes on shapes
        traced = torch.jit.trace(Outputs(), (x,), check_trace=False)
    assert timer.runs == []
    torch.testing.assert_close(traced(x), layer(x)[0].detach(), rtol=1e-5, atol=1e-6)
