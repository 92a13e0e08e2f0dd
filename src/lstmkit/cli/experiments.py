"""The experiments: ``lstmkit gap``, ``compare``, ``chung``, ``bench``, ``cells``, ``tasks``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lstmkit._errors import LstmkitValueError
from lstmkit.cli._args import (
    check_specs,
    common,
    folder_path,
    positive_float,
    positive_int,
    run_options,
)

if TYPE_CHECKING:
    from lstmkit.cli._args import Commands


def add_gap(commands: Commands) -> None:
    from lstmkit.experiments.gap import GapExperiment

    gap = commands.add_parser(
        "gap",
        help="the post's claim: RNN, GRU and LSTM against the gap between a cue and its use",
        description="Trains every cell on the gap task at every gap length and seed, each run to "
        "success or the step budget, then writes results.json, results.md and gap.png.",
    )
    gap.set_defaults(handler=gap_command)
    g = GapExperiment()
    gap.add_argument(
        "--cells",
        nargs="+",
        default=list(g.cells),
        metavar="SPEC",
        help="layers to compare, as name:key=value,... (default: %(default)s)",
    )
    gap.add_argument(
        "--gaps",
        nargs="+",
        type=positive_int,
        default=list(g.gaps),
        metavar="N",
        help="gap lengths (default: %(default)s)",
    )
    gap.add_argument(
        "--seeds",
        type=positive_int,
        default=g.seeds,
        help="runs per cell and gap (default: %(default)s)",
    )
    gap.add_argument(
        "--steps",
        type=positive_int,
        default=g.steps,
        help="step budget per run (default: %(default)s)",
    )
    _training_sizes(gap, g.hidden_size, g.batch_size, g.lr)
    gap.add_argument(
        "--classes",
        type=positive_int,
        default=g.classes,
        help="cues to tell apart; chance is 1/classes (default: %(default)s)",
    )
    gap.add_argument(
        "--quick",
        action="store_true",
        help="a one-minute preset: rnn and lstm:chrono=200 at gaps 5, 20, 100, one seed, 800 steps",
    )
    gap.add_argument(
        "--out",
        type=folder_path,
        default=Path("results/gap"),
        help="output folder (default: %(default)s)",
    )
    run_options(gap)
    common(gap)


def gap_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.gap import QUICK, GapExperiment, run_gap_experiment

    if args.quick:
        experiment = QUICK
    else:
        experiment = GapExperiment(
            cells=tuple(args.cells),
            gaps=tuple(args.gaps),
            seeds=args.seeds,
            steps=args.steps,
            hidden_size=args.hidden_size,
            batch_size=args.batch_size,
            lr=args.lr,
            classes=args.classes,
        )
    check_specs(experiment.cells)
    start = time.perf_counter()
    run_gap_experiment(experiment, args.out, resume=args.resume, progress=args.progress)
    _print_results(args.out, start, "gap.png")
    return 0


def add_compare(commands: Commands) -> None:
    from lstmkit.cells.lstm import VARIANTS
    from lstmkit.experiments.compare import CompareExperiment

    c = CompareExperiment()
    compare = commands.add_parser(
        "compare",
        help="Greff et al. 2015 in small: every LSTM variant on one task, several seeds",
        description="Trains every variant preset on one task with several seeds, then writes "
        "results.json, results.md and compare.png with the spread across seeds.",
    )
    compare.set_defaults(handler=compare_command)
    compare.add_argument(
        "--task",
        default=c.task,
        metavar="SPEC",
        help="task as name:key=value,... (default: %(default)s)",
    )
    compare.add_argument(
        "--variants",
        nargs="+",
        default=list(c.variants),
        choices=list(VARIANTS),
        metavar="NAME",
        help="variants to compare (default: all)",
    )
    compare.add_argument(
        "--seeds",
        type=positive_int,
        default=c.seeds,
        help="runs per variant (default: %(default)s)",
    )
    compare.add_argument(
        "--steps", type=positive_int, default=c.steps, help="steps per run (default: %(default)s)"
    )
    _training_sizes(compare, c.hidden_size, c.batch_size, c.lr)
    compare.add_argument(
        "--out",
        type=folder_path,
        default=Path("results/compare"),
        help="output folder (default: %(default)s)",
    )
    run_options(compare)
    common(compare)


def compare_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.compare import CompareExperiment, run_compare_experiment

    experiment = CompareExperiment(
        task=args.task,
        variants=tuple(args.variants),
        seeds=args.seeds,
        steps=args.steps,
        hidden_size=args.hidden_size,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    start = time.perf_counter()
    run_compare_experiment(experiment, args.out, resume=args.resume, progress=args.progress)
    _print_results(args.out, start, "compare.png")
    return 0


def add_chung(commands: Commands) -> None:
    from lstmkit.experiments.chung import ChungExperiment

    c = ChungExperiment()
    chung = commands.add_parser(
        "chung",
        help="Chung et al. 2014 in small: tanh RNN, GRU and LSTM of equal size on JSB Chorales",
        description="Sizes each cell to the same parameter count, trains it on the chorales task "
        "with several seeds, and writes results.json, results.md and chung.png with Chung et "
        "al.'s Table 2 and the memoryless baseline beside.",
    )
    chung.set_defaults(handler=chung_command)
    chung.add_argument(
        "--task",
        default=c.task,
        metavar="SPEC",
        help="task as name:key=value,... (default: %(default)s)",
    )
    chung.add_argument(
        "--cells",
        nargs="+",
        default=list(c.cells),
        metavar="SPEC",
        help="layers to compare, as name:key=value,... (default: %(default)s)",
    )
    chung.add_argument(
        "--parameters",
        type=positive_int,
        default=c.parameters,
        help="parameters of each model, layer and head (default: %(default)s)",
    )
    chung.add_argument(
        "--seeds", type=positive_int, default=c.seeds, help="runs per cell (default: %(default)s)"
    )
    chung.add_argument(
        "--steps", type=positive_int, default=c.steps, help="steps per run (default: %(default)s)"
    )
    chung.add_argument(
        "--batch-size",
        type=positive_int,
        default=c.batch_size,
        help="pieces per step (default: %(default)s)",
    )
    chung.add_argument(
        "--lr", type=positive_float, default=c.lr, help="AdamW learning rate (default: %(default)s)"
    )
    chung.add_argument(
        "--out",
        type=folder_path,
        default=Path("results/chung"),
        help="output folder (default: %(default)s)",
    )
    run_options(chung)
    common(chung)


def chung_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.chung import ChungExperiment, run_chung_experiment

    experiment = ChungExperiment(
        task=args.task,
        cells=tuple(args.cells),
        parameters=args.parameters,
        seeds=args.seeds,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    check_specs(experiment.cells)
    start = time.perf_counter()
    run_chung_experiment(experiment, args.out, resume=args.resume, progress=args.progress)
    _print_results(args.out, start, "chung.png")
    return 0


def _training_sizes(
    parser: argparse.ArgumentParser, hidden_size: int, batch_size: int, lr: float
) -> None:
    """--hidden-size, --batch-size and --lr of every run of an experiment."""
    parser.add_argument(
        "--hidden-size",
        type=positive_int,
        default=hidden_size,
        help="hidden units (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=batch_size,
        help="sequences per step (default: %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=lr,
        help="AdamW learning rate (default: %(default)s)",
    )


def _print_results(out: Path, start: float, plot: str) -> None:
    print()
    print((out / "results.md").read_text(encoding="utf-8"))
    print(
        f"{time.perf_counter() - start:.0f} s; results in {out}/ (results.json, results.md, {plot})"
    )


def add_bench(commands: Commands) -> None:
    from lstmkit.experiments.bench import BenchConfig

    b = BenchConfig()
    bench = commands.add_parser(
        "bench",
        help="time every variant and engine against torch.nn.LSTM",
        description="Times every variant on every engine asked for, for inference and training, "
        "beside torch.nn.LSTM (and onnxruntime when installed) in the same process; prints a "
        "table and writes JSON.",
    )
    bench.set_defaults(handler=bench_command)
    _workload_options(bench, b.sizes, b.variants, b.modes, variants_default="all")
    bench.add_argument(
        "--engines",
        nargs="+",
        default=list(b.engines),
        metavar="ENGINE",
        help="engines to time: auto, fused, native, reference (default: %(default)s)",
    )
    bench.add_argument(
        "--repeats",
        type=positive_int,
        default=b.min_repeats,
        help="at least this many timed calls per measurement (default: %(default)s)",
    )
    bench.add_argument(
        "--seconds",
        type=positive_float,
        default=b.min_seconds,
        help="and at least this long per measurement (default: %(default)s)",
    )
    bench.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    bench.add_argument(
        "--json",
        type=Path,
        default=Path("results/bench.json"),
        help="where the JSON goes (default: %(default)s)",
    )
    bench.add_argument(
        "--table",
        type=Path,
        default=Path("results/bench.md"),
        help="where the markdown table goes (default: %(default)s)",
    )
    common(bench)


def bench_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.bench import (
        BenchConfig,
        format_steps,
        peak_line,
        ratio_matrix,
        run_bench,
        summary,
        write_results,
    )

    config = BenchConfig(
        sizes=tuple(args.sizes),
        variants=tuple(args.variants),
        engines=tuple(args.engines),
        modes=tuple(args.modes),
        min_repeats=args.repeats,
        min_seconds=args.seconds,
        memory=not args.no_memory,
    )
    results = run_bench(config, progress=lambda what: print(f"  timing {what}", file=sys.stderr))
    write_results(results, args.json, args.table)
    print(f"Machine: {results['machine']}; {peak_line(results)}.\n")
    for engine in args.engines:
        print(ratio_matrix(results, engine))
    print(summary(results))
    print(format_steps(results))
    print(f"results in {args.json} and {args.table}")
    return 0


def add_tasks(commands: Commands) -> None:
    tasks = commands.add_parser(
        "tasks", help="list the tasks with their metric, baseline and source"
    )
    tasks.set_defaults(handler=tasks_command)
    common(tasks)


def tasks_command(args: argparse.Namespace) -> int:
    """Lists every task; a task on real data is described from its class, without reading the
    data (which for some takes a minute the first time)."""
    from lstmkit.tasks import TASKS, Task

    for name, cls in TASKS.items():
        if cls.needs_data:
            task: Task | type[Task] = cls
            baseline = cls.baseline_summary
        else:
            task = built = cls()
            baseline = f"{built.baseline:.3f}, {built.baseline_note}"
        better = "higher" if task.higher_is_better else "lower"
        print(f"{name}: {task.citation}")
        print(f"    metric {task.metric} ({better} is better); baseline {baseline}")
        print(f"    data: {task.source}")
        if task.published:
            print(f"    published: {task.published}")
    return 0


def add_cells(commands: Commands) -> None:
    from lstmkit.experiments.cell_table import DemoConfig

    cells = commands.add_parser(
        "cells",
        help="build every cell, run a batch through each and print a table",
        description="Builds every cell and variant, runs one batch of random sequences through "
        "each, and prints its size, engine, speed and agreement with the reference engine and "
        "torch.nn.",
    )
    cells.set_defaults(handler=cells_command)
    d = DemoConfig()
    sizes = [
        ("--steps", d.steps, "time steps T per sequence"),
        ("--batch", d.batch, "sequences per batch"),
        ("--input-size", d.input_size, "input features"),
        ("--hidden-size", d.hidden_size, "hidden units, at least 2"),
        ("--repeats", d.repeats, "timed runs per cell"),
    ]
    for flag, default, text in sizes:
        cells.add_argument(
            flag, type=positive_int, default=default, help=f"{text} (default: %(default)s)"
        )
    cells.add_argument(
        "--seed", type=int, default=d.seed, help="random seed (default: %(default)s)"
    )
    common(cells)


def cells_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.cell_table import DemoConfig, format_table, run_demo

    if args.hidden_size < 2:
        raise LstmkitValueError("--hidden-size must be at least 2 (the projection row halves it)")
    config = DemoConfig(
        steps=args.steps,
        batch=args.batch,
        input_size=args.input_size,
        hidden_size=args.hidden_size,
        repeats=args.repeats,
        seed=args.seed,
    )
    print(format_table(run_demo(config), config))
    return 0


def _workload_options(
    parser: argparse.ArgumentParser,
    sizes: Sequence[str],
    variants: Sequence[str],
    modes: Sequence[str],
    *,
    variants_default: str,
) -> None:
    """--sizes, --variants and --modes, as bench and tune take them."""
    from lstmkit.experiments.bench import MODES, REQUIRES, SIZES, VARIANTS

    parser.add_argument(
        "--sizes",
        nargs="+",
        default=list(sizes),
        metavar="SIZE",
        help=f"sizes: {', '.join(f'{k}={v}' for k, v in SIZES.items())} as (T, B, I, H), "
        "or T,B,I,H (default: all)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(variants),
        choices=list(VARIANTS),
        metavar="NAME",
        help=f"layers: {', '.join(VARIANTS)} (default: {variants_default}); "
        + "; ".join(f"{name} needs {need}" for name, (need, _) in REQUIRES.items()),
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=list(modes),
        choices=list(MODES),
        help="inference, training (default: both)",
    )


def add_tune(commands: Commands) -> None:
    from lstmkit.experiments.tune import TuneConfig

    t = TuneConfig()
    tune = commands.add_parser(
        "tune",
        help="measure the engines now and keep auto's choices for this machine",
        description="Times every engine that can run each layer, at each size and mode, keeps "
        "the fastest in the engine cache (one file per machine, in ~/.cache/lstmkit or "
        "LSTMKIT_CACHE_DIR) so that engine='auto' starts with it, and prints the table it "
        "chose from. LSTMKIT_AUTOTUNE=0 makes auto use the static ranking instead.",
    )
    tune.set_defaults(handler=tune_command)
    _workload_options(tune, t.sizes, t.variants, t.modes, variants_default="%(default)s")
    tune.add_argument(
        "--repeats",
        type=positive_int,
        default=t.repeats,
        help="timed runs per engine (default: %(default)s)",
    )
    common(tune)


def tune_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.tune import TuneConfig, format_tune_table, run_tune

    config = TuneConfig(
        sizes=tuple(args.sizes),
        variants=tuple(args.variants),
        modes=tuple(args.modes),
        repeats=args.repeats,
    )
    rows = run_tune(config, progress=lambda what: print(f"  timing {what}", file=sys.stderr))
    print(format_tune_table(rows))
    return 0
