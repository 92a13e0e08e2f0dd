"""The benchmark, as a smoke run with a tiny size (it is not timed here, only checked)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from lstmkit._machine import cpu_info
from lstmkit.cli import main
from lstmkit.experiments import bench
from lstmkit.experiments.bench import (
    BenchConfig,
    format_table,
    gemm_flops,
    parse_size,
    run_bench,
)
from lstmkit.experiments.onnx_lstm import onnxruntime_lstm
from lstmkit.layers import LSTM


def test_smoke_run_covers_every_engine_and_the_baselines() -> None:
    config = BenchConfig(
        sizes=("5,2,3,4",),
        variants=("lstm", "FGR", "gru_cho"),
        engines=("auto", "fused", "native", "reference"),
        min_repeats=2,
        min_seconds=0.0,
        step_sizes=(4,),
    )
    results = run_bench(config)
    rows = results["rows"]
    seen = {(r["variant"], r["engine"], r["mode"]) for r in rows}
    assert ("lstm", "torch.nn", "training") in seen
    assert ("lstm", "onnxruntime", "inference") in seen
    assert ("FGR", "fused", "training") in seen
    assert ("FGR", "native", "inference") not in seen  # native cannot run it, so it is not timed
    assert ("gru_cho", "auto", "inference") in seen
    for r in rows:
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["ratio"] > 0
        assert (r["peak_mb"] is None) == (r["mode"] == "inference" or r["engine"] == "onnxruntime")
    base = [r for r in rows if r["engine"] == "torch.nn"]
    assert all(r["ratio"] == 1.0 for r in base)
    for r in rows:  # a contender's ratio is to torch.nn.LSTM timed alongside it
        if r["engine"] not in ("torch.nn", "onnxruntime"):
            assert r["ratio"] == pytest.approx(r["median_ms"] / r["extra"]["torch_nn_ms"])
    assert results["peak_gflops"] == max(results["product_gflops"].values())
    assert "torch.mm" in results["product_gflops"]
    steps = results["steps"]
    assert [(r["what"], r["hidden"]) for r in steps] == [
        (what, 4)
        for family in ("LSTM", "GRU", "RNN")
        for what in (f"{family}Cell", f"{family}, T = 1")
    ]
    assert all(r["ratio"] == pytest.approx(r["ms"] / r["torch_nn_ms"]) for r in steps)
    assert results["threads"] == torch.get_num_threads()


def test_gemm_flops_count_every_weight_matrix() -> None:
    layer = LSTM(3, 4, proj_size=2, variant="FGR")
    # W_ih (16 x 3) + W_hh (16 x 2) + W_hr (2 x 4) + W_gg (12 x 12), times 2 per multiply-add
    assert gemm_flops(layer, 5, 7) == 2 * (48 + 32 + 8 + 144) * 5 * 7


def test_onnxruntime_lstm_computes_what_torch_does() -> None:
    lstm = torch.nn.LSTM(3, 5)
    x = torch.randn(6, 2, 3)
    run = onnxruntime_lstm(lstm, (6, 2, 3))
    assert run is not None
    y = torch.from_numpy(run(x))[:, 0]  # (T, B, H)
    torch.testing.assert_close(y, lstm(x)[0].detach(), rtol=0, atol=1e-5)


def test_sizes_by_name_or_by_shape() -> None:
    assert parse_size("S3") == ("S3", (500, 16, 128, 128))
    assert parse_size("7,2,3,4") == ("7,2,3,4", (7, 2, 3, 4))
    with pytest.raises(ValueError, match="'T,B,I,H' with positive ints, got '7,2,0,4'"):
        parse_size("7,2,0,4")


def test_the_bench_command_writes_json_and_a_table(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = main(
        [
            "bench",
            "--sizes",
            "4,1,2,3",
            "--variants",
            "lstm",
            "peepholes",
            "--repeats",
            "1",
            "--seconds",
            "0.001",
            "--json",
            str(out_json),
            "--table",
            str(out_md),
        ]
    )
    assert code == 0
    data = json.loads(out_json.read_text())
    assert {r["variant"] for r in data["rows"]} == {"lstm", "peepholes"}
    assert "| 4,1,2,3 (4, 1, 2, 3) | peepholes | auto (fused) |" in out_md.read_text()
    printed = capsys.readouterr().out
    assert "worst training ratio" in printed
    assert "| peepholes | " in printed  # the ratio matrix
    assert "| LSTMCell | 32 |" in printed  # one step at batch 1
    assert "matrix products: torch.mm " in printed  # the rates behind the GEMM limit
    assert ("oneDNN" in printed) == torch.backends.mkldnn.is_available()
    assert "| LSTMCell | 32 |" in out_md.read_text()  # the file holds the step rows too


def test_contender_and_baseline_alternate_in_both_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    from lstmkit.experiments import timing

    order: list[str] = []

    def timed(fn: object) -> float:
        fn()  # type: ignore[operator]
        return 0.001

    monkeypatch.setattr(timing, "_timed", timed)
    times, base = timing.measure_pair(
        lambda: order.append("A"), lambda: order.append("B"), min_repeats=4, min_seconds=0.0
    )
    warm_up = ["A", "B", "A", "B"]
    assert order == [*warm_up, "A", "B", "B", "A", "A", "B", "B", "A"]
    assert times == base == [1.0] * 4


FAMILIES = (
    "layer_norm",
    "gru_layer_norm",
    "MUT1",
    "MUT2",
    "MUT3",
    "clockwork",
    "depth_gated_2",
    "grid_2",
)
"""The variants of the other families, beside the LSTM options the first rows cover."""


def test_every_family_is_timed_beside_a_torch_nn_lstm_of_its_depth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench, "product_rates", lambda: {"torch.mm": 100.0})  # not timed here
    config = BenchConfig(
        sizes=("3,2,4,4", "3,2,3,4"),
        variants=("lstm", *FAMILIES),
        min_repeats=1,
        min_seconds=0.0,
        memory=False,
        onnxruntime=False,
        step_sizes=(),
    )
    results = run_bench(config)
    rows = results["rows"]
    square = [r for r in rows if r["size"] == "3,2,4,4"]
    timed = {(r["variant"], r["mode"]): r["baseline_layers"] for r in square}
    for variant in FAMILIES:
        depth = 2 if variant in ("depth_gated_2", "grid_2") else 1
        assert timed[variant, "inference"] == timed[variant, "training"] == depth
    # one torch.nn.LSTM per depth, which the depth-gated and the grid LSTM share
    baselines = [(r["variant"], r["mode"], r["baseline_layers"]) for r in square]
    baselines = [b for b, r in zip(baselines, square, strict=True) if r["engine"] == "torch.nn"]
    assert sorted(baselines) == [
        ("lstm", "inference", 1),
        ("lstm", "training", 1),
        ("lstm_2_layers", "inference", 2),
        ("lstm_2_layers", "training", 2),
    ]
    first_deep = next(i for i, r in enumerate(square) if r["variant"] == "depth_gated_2")
    assert square[first_deep - 1]["variant"] == "lstm_2_layers"  # measured when first needed
    for r in rows:
        if r["engine"] != "torch.nn":
            assert r["ratio"] == pytest.approx(r["median_ms"] / r["extra"]["torch_nn_ms"])
    # MUT1 and MUT2 add x_t to an H-vector: at I = 3, H = 4 they are not timed, and say why
    wide = {r["variant"] for r in rows if r["size"] == "3,2,3,4"}
    assert {"MUT1", "MUT2"}.isdisjoint(wide)
    assert "MUT3" in wide
    assert results["skipped"] == [
        {"size": "3,2,3,4", "variant": name, "reason": "needs input size == hidden size"}
        for name in ("MUT1", "MUT2")
    ]
    table = format_table(results)
    assert re.search(r"\| depth_gated_2 \| auto \((fused|reference)\) \| training \|", table)
    assert "x (vs 2 layers) |" in table
    assert "Not timed: MUT2 at 3,2,3,4, needs input size == hidden size." in table
    cpu = cpu_info()
    assert results["cpu"] == {
        "vendor": cpu.vendor,
        "model": cpu.model,
        "flags": cpu.flags,
        "capability": cpu.capability,
    }
    assert table.startswith(f"Machine: {cpu.describe()}, ")
    assert f"ATen {torch.backends.cpu.get_cpu_capability()}" in table
