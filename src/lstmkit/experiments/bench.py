"""The speed benchmark (``lstmkit bench``, ``benchmarks/bench.py``): every variant and engine
against torch.nn.LSTM's standard LSTM, measured in the same process.

For each size (T, B, input, hidden) it times each variant on each engine, for inference (a
forward pass without gradients) and training (forward and backward of a sum of the outputs),
beside torch.nn.LSTM with as many layers as the variant stacks (one, or L for a depth-gated LSTM
of L layers and a grid of L blocks). It reports the median time with its min and max, the ratio
to that torch.nn.LSTM in the same mode (each contender timed alternately with it, so that noise
hits both), the fraction of the GEMM-bound limit reached (the time the layer's matrix products
alone would take at the fastest product rate measured here, torch.mm's or oneDNN's), and the
peak memory of a training step (torch's CPU allocations seen by the profiler, at operator
granularity). With onnx and onnxruntime installed it also times onnxruntime's one-layer LSTM for
inference. The results name the CPU, its instruction-set flags and the kernels ATen picked.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lstmkit._errors import LstmkitValueError
from lstmkit._io import write_text
from lstmkit._machine import cpu_info, describe_machine
from lstmkit.engines.registry import select_engine
from lstmkit.experiments.onnx_lstm import onnxruntime_lstm as onnxruntime_lstm
from lstmkit.experiments.onnx_lstm import onnxruntime_times
from lstmkit.experiments.timing import (
    measure,
    measure_pair,
    peak_memory_mb,
    product_rates,
)
from lstmkit.layers import (
    GRU,
    LSTM,
    MUT,
    RNN,
    ClockworkRNN,
    DepthGatedLSTM,
    GridLSTM,
    Recurrent,
)

SIZES: dict[str, tuple[int, int, int, int]] = {
    "S1": (50, 1, 32, 32),
    "S2": (100, 32, 64, 64),
    "S3": (500, 16, 128, 128),
    "S4": (100, 32, 256, 256),
    "S5": (100, 64, 512, 512),
}
"""(T, B, input size, hidden size) of the sizes the issue's targets are stated for."""

VARIANTS: dict[str, Callable[[int, int], Recurrent]] = {
    "lstm": lambda i, h: LSTM(i, h),
    "peepholes": lambda i, h: LSTM(i, h, peepholes="ifo"),
    "CIFG": lambda i, h: LSTM(i, h, variant="CIFG"),
    "NIG": lambda i, h: LSTM(i, h, variant="NIG"),
    "NFG": lambda i, h: LSTM(i, h, variant="NFG"),
    "NOG": lambda i, h: LSTM(i, h, variant="NOG"),
    "NIAF": lambda i, h: LSTM(i, h, variant="NIAF"),
    "NOAF": lambda i, h: LSTM(i, h, variant="NOAF"),
    "FGR": lambda i, h: LSTM(i, h, variant="FGR"),
    "proj": lambda i, h: LSTM(i, h, proj_size=h // 2),
    "rec_dropout": lambda i, h: LSTM(i, h, recurrent_dropout=0.25),
    "zoneout": lambda i, h: LSTM(i, h, zoneout_hidden=0.1, zoneout_cell=0.1),
    "gru": lambda i, h: GRU(i, h),
    "gru_cho": lambda i, h: GRU(i, h, reset_after=False),
    "rnn": lambda i, h: RNN(i, h),
    "layer_norm": lambda i, h: LSTM(i, h, layer_norm=True),
    "gru_layer_norm": lambda i, h: GRU(i, h, layer_norm=True),
    "MUT1": lambda i, h: MUT(i, h, kind=1),
    "MUT2": lambda i, h: MUT(i, h, kind=2),
    "MUT3": lambda i, h: MUT(i, h, kind=3),
    "clockwork": lambda i, h: ClockworkRNN(i, h, periods=(1, 2, 4, 8)),
    "depth_gated_2": lambda i, h: DepthGatedLSTM(i, h, num_layers=2),
    "grid_2": lambda i, h: GridLSTM(i, h, depth=2),
}
"""The layers the benchmark knows, by name."""

REQUIRES: dict[str, tuple[str, Callable[[int, int], bool]]] = {
    "MUT1": ("input size == hidden size", lambda i, h: i == h),
    "MUT2": ("input size == hidden size", lambda i, h: i == h),
    "clockwork": ("hidden size >= 4, a unit for each of its 4 periods", lambda i, h: h >= 4),
}
"""What a variant needs of (input size, hidden size); at a size without it, it is not timed."""

MODES = ("inference", "training")


@dataclass(frozen=True)
class BenchConfig:
    sizes: tuple[str, ...] = tuple(SIZES)  # names from SIZES, or "T,B,I,H"
    variants: tuple[str, ...] = tuple(VARIANTS)
    engines: tuple[str, ...] = ("auto",)
    modes: tuple[str, ...] = MODES
    min_repeats: int = 5  # at least this many timed calls ...
    min_seconds: float = 0.5  # ... and at least this long, per measurement
    memory: bool = True  # measure the peak memory of a training step
    onnxruntime: bool = True  # time onnxruntime's LSTM too, when it is installed
    step_sizes: tuple[int, ...] = (32, 256)  # hidden sizes of the one-step latency rows
    seed: int = 0


@dataclass
class Row:
    size: str
    shape: tuple[int, int, int, int]
    variant: str
    engine: str  # the engine asked for; "torch.nn" and "onnxruntime" for the baselines
    ran_on: str  # the engine that ran it (auto's choice)
    mode: str
    median_ms: float
    min_ms: float
    max_ms: float
    ratio: float  # median / torch.nn.LSTM's median, same size, depth and mode
    gemm_fraction: float  # GEMM-bound limit / median
    peak_mb: float | None = None  # training only
    memory_ratio: float | None = None  # / torch.nn.LSTM's
    baseline_layers: int = 1  # layers of that torch.nn.LSTM: as many as the layer stacks
    extra: dict[str, Any] = field(default_factory=dict)


def parse_size(text: str) -> tuple[str, tuple[int, int, int, int]]:
    if text in SIZES:
        return text, SIZES[text]
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise LstmkitValueError(
            f"a size is one of {', '.join(SIZES)} or 'T,B,I,H' with positive ints, got {text!r}"
        )
    t, b, i, h = (int(p) for p in parts)
    return text, (t, b, i, h)


def gemm_flops(layer: nn.Module, steps: int, batch: int) -> float:
    """Floating-point operations of the layer's matrix products over a sequence: every weight
    matrix (W_ih, W_hh, W_hr, W_gg) is one multiply-add per element, per step and sequence."""
    matrices = sum(p.numel() for p in layer.parameters() if p.dim() == 2)
    return 2.0 * matrices * steps * batch


def _workloads(layer: nn.Module, x: torch.Tensor) -> dict[str, Callable[[], object]]:
    def inference() -> None:
        with torch.no_grad():
            layer(x)

    def training() -> None:
        out, _ = layer(x)
        out.sum().backward()

    return {"inference": inference, "training": training}


def run_bench(
    config: BenchConfig, *, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Runs the benchmark and returns its results: the machine, the peak rate, the rows and the
    variants a size did not suit (each with the reason)."""
    torch.manual_seed(config.seed)
    for variant in config.variants:
        if variant not in VARIANTS:
            raise LstmkitValueError(
                f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}"
            )
    for mode in config.modes:
        if mode not in MODES:
            raise LstmkitValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    rates = product_rates()
    peak = max(rates.values())
    rows: list[Row] = []
    skipped: list[dict[str, str]] = []
    for size_text in config.sizes:
        rows += _bench_size(config, parse_size(size_text), peak, skipped, progress)
    return {
        "machine": describe_machine(),
        "cpu": asdict(cpu_info()),
        "threads": torch.get_num_threads(),
        "peak_gflops": peak,
        "product_gflops": rates,
        "config": asdict(config),
        "rows": [asdict(r) for r in rows],
        "skipped": skipped,
        "steps": step_latency(config),
    }


def _bench_size(
    config: BenchConfig,
    size: tuple[str, tuple[int, int, int, int]],
    peak: float,
    skipped: list[dict[str, str]],
    progress: Callable[[str], None] | None,
) -> list[Row]:
    """The rows of one size: every variant on every engine that can run it, each after the
    rows of the torch.nn.LSTM it is compared with (one per depth, measured when first needed);
    appends to ``skipped`` the variants this size does not suit."""
    name, shape = size
    T, B, I, H = shape
    x = torch.randn(T, B, I)
    baselines: dict[int, _Baseline] = {}  # by number of layers
    rows: list[Row] = []
    for variant in config.variants:
        need = REQUIRES.get(variant)
        if need is not None and not need[1](I, H):
            skipped.append({"size": name, "variant": variant, "reason": f"needs {need[0]}"})
            continue
        layer = VARIANTS[variant](I, H)
        depth = torch_nn_depth(layer)
        for engine in config.engines:
            try:
                select_engine(engine, layer)
            except ValueError:
                continue  # e.g. native on a variant: nothing to measure
            if depth not in baselines:
                baselines[depth] = _Baseline(name, shape, nn.LSTM(I, H, num_layers=depth), peak)
                rows += baselines[depth].measure(config, x)
            layer.engine = engine
            if progress is not None:
                progress(f"{name} {variant} {engine}")
            rows += baselines[depth].compare(config, x, layer, variant, engine)
    return rows


def torch_nn_depth(layer: Recurrent) -> int:
    """The layers of the torch.nn.LSTM ``layer`` is compared with: as many as it stacks. A
    depth-gated LSTM advances its L layers in one cell, and a grid LSTM's K blocks are its
    layers along depth, so each counts those."""
    if isinstance(layer, DepthGatedLSTM):
        return layer.depth
    if isinstance(layer, GridLSTM):
        return layer.depth * layer.num_layers
    return layer.num_layers


STEP_FAMILIES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "LSTM": (nn.LSTMCell, nn.LSTM),
    "GRU": (nn.GRUCell, nn.GRU),
    "RNN": (nn.RNNCell, nn.RNN),
}
"""torch.nn's cell and layer of each family, whose lstmkit twins the step rows time."""


def step_latency(config: BenchConfig) -> list[dict[str, Any]]:
    """One step at batch 1, as streaming inference and reinforcement learning take it: each
    family's cell call and its layer on T = 1, given the state the step before left (random
    here), without gradients, timed alternately with torch.nn's (the same weights, through
    from_torch), in ms."""
    from lstmkit.interop import from_torch

    rows = []
    for H in config.step_sizes:
        for family, (cell_kind, layer_kind) in STEP_FAMILIES.items():
            h = torch.randn(1, H)
            for what, theirs, x, hx in (
                (f"{family}Cell", cell_kind(H, H), torch.randn(1, H), h),
                (f"{family}, T = 1", layer_kind(H, H), torch.randn(1, 1, H), h[None]),
            ):
                state = (hx, torch.randn_like(hx)) if family == "LSTM" else hx
                ours = from_torch(theirs)
                with torch.no_grad():
                    times, base = measure_pair(
                        partial(ours, x, state),
                        partial(theirs, x, state),
                        min_repeats=max(config.min_repeats, 20),
                        min_seconds=config.min_seconds,
                    )
                mine, torch_nn = statistics.median(times), statistics.median(base)
                rows.append(
                    {
                        "what": what,
                        "hidden": H,
                        "ms": mine,
                        "torch_nn_ms": torch_nn,
                        "ratio": mine / torch_nn,
                    }
                )
    return rows


def format_steps(results: dict[str, Any]) -> str:
    """The one-step rows as a markdown table."""
    lines = [
        "| one step, batch 1 | hidden | lstmkit ms | torch.nn ms | ratio |",
        "|---|---|---|---|---|",
    ]
    for r in results.get("steps", []):
        lines.append(
            f"| {r['what']} | {r['hidden']} | {r['ms']:.3f} | {r['torch_nn_ms']:.3f} | "
            f"{r['ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class _Baseline:
    """torch.nn.LSTM at one size and depth: its rows, and the times and memory every layer of
    that depth is compared with."""

    name: str
    shape: tuple[int, int, int, int]
    layer: nn.LSTM
    peak: float
    times: dict[str, float] = field(default_factory=dict)  # median ms per mode
    memory: float | None = None  # peak MB of a training step
    works: dict[str, Callable[[], object]] = field(default_factory=dict)  # its workloads

    @property
    def variant(self) -> str:
        """The name of its rows: ``"lstm"``, or ``"lstm_2_layers"`` for a deeper one."""
        layers = self.layer.num_layers
        return "lstm" if layers == 1 else f"lstm_{layers}_layers"

    def measure(self, config: BenchConfig, x: Tensor) -> list[Row]:
        """torch.nn's rows (and onnxruntime's one-layer LSTM's, when asked: ONNX's LSTM operator
        is one layer); sets the times and memory."""
        base = self.layer
        self.works = _workloads(base, x)
        self.memory = peak_memory_mb(self.works["training"]) if config.memory else None
        rows = []
        for mode, work in self.works.items():
            if mode not in config.modes:
                continue
            times = measure(work, min_repeats=config.min_repeats, min_seconds=config.min_seconds)
            self.times[mode] = statistics.median(times)
            memory = self.memory if mode == "training" else None
            rows.append(self._row(self.variant, "torch.nn", "torch.nn", mode, times, base, memory))
        if "inference" in config.modes and config.onnxruntime and base.num_layers == 1:
            ort_times = onnxruntime_times(
                base, x, min_repeats=config.min_repeats, min_seconds=config.min_seconds
            )
            if ort_times is not None:
                rows.append(
                    self._row(
                        "lstm", "onnxruntime", "onnxruntime", "inference", ort_times, base, None
                    )
                )
        return rows

    def compare(
        self, config: BenchConfig, x: Tensor, layer: Recurrent, variant: str, engine: str
    ) -> list[Row]:
        """The rows of ``layer`` on ``engine``, one per mode, each timed alternately with
        torch.nn.LSTM, whose median in that pairing the ratio divides by."""
        works = _workloads(layer, x)
        for mode in config.modes:
            works[mode]()  # "auto" measures on its first call: not part of the step's memory
        memory = (
            peak_memory_mb(works["training"])
            if config.memory and "training" in config.modes
            else None
        )
        rows = []
        for mode in config.modes:
            times, base_times = measure_pair(
                works[mode],
                self.works[mode],
                min_repeats=config.min_repeats,
                min_seconds=config.min_seconds,
            )
            ran_on = layer.last_engine or engine  # what "auto" chose, measured or ranked
            row_memory = memory if mode == "training" else None
            row = self._row(variant, engine, ran_on, mode, times, layer, row_memory)
            paired = statistics.median(base_times)
            row.ratio = row.median_ms / paired
            row.extra["torch_nn_ms"] = paired  # torch.nn.LSTM's median, timed alongside
            rows.append(row)
        return rows

    def _row(
        self,
        variant: str,
        engine: str,
        ran_on: str,
        mode: str,
        times: list[float],
        layer: nn.Module,
        memory: float | None,
    ) -> Row:
        row = _row(
            self.name,
            self.shape,
            variant,
            engine,
            ran_on,
            mode,
            times,
            self.times[mode],
            layer,
            self.peak,
            memory,
            self.memory,
        )
        row.baseline_layers = self.layer.num_layers
        return row


def _row(
    size: str,
    shape: tuple[int, int, int, int],
    variant: str,
    engine: str,
    ran_on: str,
    mode: str,
    times: list[float],
    base: float,
    layer: nn.Module,
    peak: float,
    memory: float | None,
    base_memory: float | None,
) -> Row:
    T, B, _, _ = shape
    median = statistics.median(times)
    limit_ms = gemm_flops(layer, T, B) * (3 if mode == "training" else 1) / (peak * 1e9) * 1e3
    return Row(
        size=size,
        shape=shape,
        variant=variant,
        engine=engine,
        ran_on=ran_on,
        mode=mode,
        median_ms=median,
        min_ms=min(times),
        max_ms=max(times),
        ratio=median / base,
        gemm_fraction=limit_ms / median,
        peak_mb=memory,
        memory_ratio=None if memory is None or not base_memory else memory / base_memory,
    )


def peak_line(results: dict[str, Any]) -> str:
    """``"matrix products: torch.mm 190, oneDNN 426 GFLOP/s (the limit uses 426)"``."""
    rates = results.get("product_gflops") or {"torch.mm": results["peak_gflops"]}
    each = ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items())
    return f"matrix products: {each} GFLOP/s (the limit uses {results['peak_gflops']:.0f})"


def format_table(results: dict[str, Any]) -> str:
    """A markdown table of the results, one row per size, variant, engine and mode."""
    lines = [
        f"Machine: {results['machine']}; {peak_line(results)}.",
        "Times are medians in ms (min-max); ratio is the median / torch.nn.LSTM's median with the "
        "same size, depth and mode, timed alongside (a layer that stacks L > 1 layers, as a "
        "depth-gated LSTM or a grid of L blocks, is compared with an L-layer torch.nn.LSTM: "
        "'vs L layers'); GEMM % is the share of the time the matrix products alone would take at "
        "that peak; memory is the training step's peak of torch's CPU allocations.",
        "",
        "| size | variant | engine (ran on) | mode | ms (min-max) | ratio | GEMM % "
        "| memory MB (ratio) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        engine = r["engine"] if r["engine"] == r["ran_on"] else f"{r['engine']} ({r['ran_on']})"
        memory = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.1f}"
        if r["memory_ratio"] is not None:
            memory += f" ({r['memory_ratio']:.2f}x)"
        layers = r.get("baseline_layers", 1)
        ratio = f"{r['ratio']:.2f}x" + (f" (vs {layers} layers)" if layers > 1 else "")
        T, B, I, H = r["shape"]
        lines.append(
            f"| {r['size']} ({T}, {B}, {I}, {H}) | {r['variant']} | {engine} | {r['mode']} | "
            f"{r['median_ms']:.2f} ({r['min_ms']:.2f}-{r['max_ms']:.2f}) | {ratio} | "
            f"{100 * r['gemm_fraction']:.0f} | {memory} |"
        )
    skipped = results.get("skipped", [])
    if skipped:
        lines.append("")
        lines += [f"Not timed: {s['variant']} at {s['size']}, {s['reason']}." for s in skipped]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], json_path: Path | None, table_path: Path | None) -> None:
    if json_path is not None:
        write_text(json_path, json.dumps(results, indent=2) + "\n")
    if table_path is not None:
        write_text(table_path, format_table(results) + "\n" + format_steps(results))


def ratio_matrix(results: dict[str, Any], engine: str = "auto") -> str:
    """Variants down, sizes across: the inference and training ratios to torch.nn.LSTM of one
    engine, and the training step's memory ratio, as a markdown table."""
    rows = [r for r in results["rows"] if r["engine"] == engine]
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    lines = [
        f"Ratio to torch.nn.LSTM of the same depth (engine {engine!r}): inference / training, "
        "then the training step's peak memory.",
        "",
        "| variant | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        cells = []
        for size in sizes:
            found = {r["mode"]: r for r in rows if r["variant"] == variant and r["size"] == size}
            inf, tr = found.get("inference"), found.get("training")
            text = " / ".join(f"{r['ratio']:.2f}x" if r else "-" for r in (inf, tr))
            if tr is not None and tr["memory_ratio"] is not None:
                text += f", mem {tr['memory_ratio']:.2f}x"
            cells.append(text)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary(results: dict[str, Any], variants: Iterable[str] | None = None) -> str:
    """The worst ratio per mode and size over the variants (the figure the targets speak of)."""
    rows = [r for r in results["rows"] if r["engine"] not in ("torch.nn", "onnxruntime")]
    if variants is not None:
        keep = set(variants)
        rows = [r for r in rows if r["variant"] in keep]
    lines = [
        "| size | worst inference ratio | worst training ratio | worst memory ratio |",
        "|---|---|---|---|",
    ]
    for size in dict.fromkeys(r["size"] for r in rows):

        def worst(key: str, mode: str | None = None, size: str = size) -> str:
            values = [
                r[key]
                for r in rows
                if r["size"] == size and (mode is None or r["mode"] == mode) and r[key] is not None
            ]
            if not values:
                return "-"
            top = max(values)
            who = next(r["variant"] for r in rows if r["size"] == size and r[key] == top)
            return f"{top:.2f}x ({who})"

        cells = [worst("ratio", "inference"), worst("ratio", "training"), worst("memory_ratio")]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
