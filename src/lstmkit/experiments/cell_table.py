"""The cell table (``lstmkit cells``): builds every cell lstmkit has, runs one batch of
sequences through each and reports its size, the engine "auto" chose, its speed, and its
agreement with the reference engine and, where torch.nn has the same layer, with torch.nn."""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from lstmkit._machine import describe_machine
from lstmkit.engines.native import ONEDNN_PROJECTION_WARNING, torch_nn_unsupported
from lstmkit.engines.registry import select_engine
from lstmkit.interop.torch_nn import to_torch
from lstmkit.layers import EXAMPLES, LAYERS, Example, Recurrent


@dataclass(frozen=True)
class DemoConfig:
    steps: int = 50  # T, time steps per sequence
    batch: int = 32  # B, sequences per batch
    input_size: int = 32
    hidden_size: int = 64
    repeats: int = 5  # timed forward passes per cell; the median is reported
    seed: int = 0


@dataclass(frozen=True)
class DemoRow:
    code: str  # the Python that builds the layer
    what: str
    paper: str
    parameters: int
    engine: str
    milliseconds: float  # median forward time, no_grad
    vs_reference: float  # max |output - reference engine's output|
    vs_torch: float | None  # max |output - torch.nn's output|, where torch.nn has the layer


@dataclass(frozen=True)
class DemoCell:
    name: str  # the layer's registered name
    example: Example
    options: dict[str, Any]  # the example's options at the table's sizes

    def input_size(self, config: DemoConfig) -> int:
        return config.hidden_size if self.example.square else config.input_size

    def build(self, config: DemoConfig) -> Recurrent:
        return LAYERS[self.name](self.input_size(config), config.hidden_size, **self.options)

    def code(self, config: DemoConfig) -> str:
        """The Python that builds this layer."""
        args = [str(self.input_size(config)), str(config.hidden_size)]
        args += [f"{k}={v!r}" for k, v in self.options.items()]
        return f"{getattr(LAYERS[self.name], '__name__', self.name)}({', '.join(args)})"


def demo_cells(config: DemoConfig) -> list[DemoCell]:
    """Every cell and variant, with what it is and where it comes from: the examples each
    layer registered (:func:`lstmkit.layers.register_layer`), at the table's sizes."""
    return [
        DemoCell(name, example, example.options_for(config.hidden_size, config.steps))
        for name, examples in EXAMPLES.items()
        for example in examples
    ]


def run_demo(config: DemoConfig) -> list[DemoRow]:
    torch.manual_seed(config.seed)
    rows = []
    for cell in demo_cells(config):
        x = torch.randn(config.steps, config.batch, cell.input_size(config))
        layer = cell.build(config).eval()
        engine = select_engine("auto", layer).name
        times = []
        with torch.no_grad():
            out, _ = layer(x)
            for _ in range(config.repeats):
                start = time.perf_counter()
                layer(x)
                times.append(time.perf_counter() - start)
            layer.engine = "reference"
            reference, _ = layer(x)
            layer.engine = "auto"
            vs_torch = None
            if torch_nn_unsupported(layer) is None:  # torch.nn has this layer
                with warnings.catch_warnings():  # torch.nn.LSTM says when oneDNN falls back
                    warnings.filterwarnings("ignore", ONEDNN_PROJECTION_WARNING, UserWarning)
                    vs_torch = (to_torch(layer)(x)[0] - out).abs().max().item()
        rows.append(
            DemoRow(
                code=cell.code(config),
                what=cell.example.what,
                paper=cell.example.paper,
                parameters=sum(p.numel() for p in layer.parameters()),
                engine=engine,
                milliseconds=1e3 * statistics.median(times),
                vs_reference=(out - reference).abs().max().item(),
                vs_torch=vs_torch,
            )
        )
    return rows


def format_table(rows: list[DemoRow], config: DemoConfig) -> str:
    header = ("layer", "what", "paper", "params", "engine", "ms", "vs reference", "vs torch.nn")
    body = [
        (
            r.code,
            r.what,
            r.paper,
            f"{r.parameters:,}",
            r.engine,
            f"{r.milliseconds:.2f}",
            f"{r.vs_reference:.1e}",
            "-" if r.vs_torch is None else f"{r.vs_torch:.1e}",
        )
        for r in rows
    ]
    widths = [max(len(row[j]) for row in [header, *body]) for j in range(len(header))]
    lines = [
        f"{len(rows)} cells, one forward pass each over a batch of {config.batch} sequences of "
        f"{config.steps} steps (input {config.input_size}, hidden {config.hidden_size}), "
        f"float32; ms is the median of {config.repeats} runs without gradients; the last "
        "columns are the largest difference from lstmkit's reference engine and from "
        "torch.nn's own layer.",
        f"Machine: {describe_machine()}.",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body
    ]
    return "\n".join(lines)
