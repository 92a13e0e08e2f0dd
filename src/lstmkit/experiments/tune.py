"""``lstmkit tune``: measures the engines for the layers and sizes given, keeps each choice in
the engine cache (so "auto" starts with them), and prints the table it chose from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lstmkit._errors import LstmkitValueError
from lstmkit._machine import describe_machine
from lstmkit.engines import tuning
from lstmkit.engines.tuning import Tuner, workload_key
from lstmkit.experiments.bench import MODES, SIZES, VARIANTS, parse_size


@dataclass(frozen=True)
class TuneConfig:
    sizes: tuple[str, ...] = tuple(SIZES)  # names of bench.SIZES, or "T,B,I,H"
    variants: tuple[str, ...] = ("lstm", "peepholes", "gru", "rnn")  # names of bench.VARIANTS
    modes: tuple[str, ...] = MODES
    repeats: int = 5  # timed runs per engine
    seed: int = 0


@dataclass(frozen=True)
class TuneRow:
    size: str
    variant: str
    mode: str
    chosen: str
    milliseconds: dict[str, float] = field(default_factory=dict)  # empty: one engine, unmeasured


def run_tune(
    config: TuneConfig,
    *,
    tuner: Tuner | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[TuneRow]:
    """Measures every size, layer and mode again (replacing what the cache held) and returns
    one row each."""
    for variant in config.variants:
        if variant not in VARIANTS:
            raise LstmkitValueError(
                f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}"
            )
    tuner = tuning.TUNER if tuner is None else tuner
    torch.manual_seed(config.seed)
    rows = []
    repeats, tuner.repeats = tuner.repeats, config.repeats
    try:
        for size_text in config.sizes:
            name, (T, B, I, H) = parse_size(size_text)
            x = torch.randn(T, B, I)
            for variant in config.variants:
                layer = VARIANTS[variant](I, H)
                for mode in config.modes:
                    if progress is not None:
                        progress(f"{name} {variant} {mode}")
                    training = mode == "training"
                    hx = layer.initial_state(B, dtype=x.dtype, device=x.device)
                    engine = tuner.choose(layer, x, None, hx, training=training, remeasure=True)
                    choice = tuner.choices.get(workload_key(layer, x, None, training=training))
                    measured = {} if choice is None else dict(choice.milliseconds)
                    rows.append(TuneRow(name, variant, mode, engine.name, measured))
    finally:
        tuner.repeats = repeats
    return rows


def format_tune_table(rows: list[TuneRow], tuner: Tuner | None = None) -> str:
    tuner = tuning.TUNER if tuner is None else tuner
    engines = sorted({e for r in rows for e in r.milliseconds})
    header = ["size", "layer", "mode", *(f"{e} ms" for e in engines), "auto runs"]
    body = [
        [
            r.size,
            r.variant,
            r.mode,
            *(f"{r.milliseconds[e]:.2f}" if e in r.milliseconds else "-" for e in engines),
            r.chosen,
        ]
        for r in rows
    ]
    widths = [max(len(row[j]) for row in [header, *body]) for j in range(len(header))]
    lines = [
        "Median time of one call per engine (forward; training adds the backward pass); "
        "'auto' now runs the fastest, and keeps the choice.",
        f"Machine: {describe_machine()}.",
        f"Cache: {tuner.path}",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body
    ]
    return "\n".join(lines)
