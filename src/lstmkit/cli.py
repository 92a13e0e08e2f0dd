"""The ``lstmkit`` command: a thin layer of functions over the library."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_INTERRUPTED = 130  # what shells report for a process stopped by Ctrl-C


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _unit_list(text: str) -> list[int]:
    try:
        units = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated unit numbers such as 0,3,7, got {text!r}"
        ) from None
    if any(u < 0 for u in units):
        raise argparse.ArgumentTypeError(f"unit numbers must be >= 0, got {text!r}")
    return units


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="CPU threads for torch (default: torch's choice)",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs already in --out instead of refusing to overwrite them",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress bars (default: when stderr is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmkit",
        description="LSTM networks and their variants, from 'Understanding LSTM Networks'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # lstmkit gap
    gap = commands.add_parser(
        "gap",
        help="the post's claim: RNN, GRU and LSTM against the gap between a cue and its use",
        description="Trains every cell on the gap task at every gap length and seed, each run to "
        "success or the step budget, then writes results.json, results.md and gap.png.",
    )
    from lstmkit.experiments.gap import GapExperiment

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
        type=_positive_int,
        default=list(g.gaps),
        metavar="N",
        help="gap lengths (default: %(default)s)",
    )
    gap.add_argument(
        "--seeds",
        type=_positive_int,
        default=g.seeds,
        help="runs per cell and gap (default: %(default)s)",
    )
    gap.add_argument(
        "--steps",
        type=_positive_int,
        default=g.steps,
        help="step budget per run (default: %(default)s)",
    )
    gap.add_argument(
        "--hidden-size",
        type=_positive_int,
        default=g.hidden_size,
        help="hidden units (default: %(default)s)",
    )
    gap.add_argument(
        "--batch-size",
        type=_positive_int,
        default=g.batch_size,
        help="sequences per step (default: %(default)s)",
    )
    gap.add_argument(
        "--lr",
        type=_positive_float,
        default=g.lr,
        help="AdamW learning rate (default: %(default)s)",
    )
    gap.add_argument(
        "--classes",
        type=_positive_int,
        default=g.classes,
        help="cues to tell apart; chance is 1/classes (default: %(default)s)",
    )
    gap.add_argument(
        "--quick",
        action="store_true",
        help="a one-minute preset: rnn and lstm:chrono=200 at gaps 5, 20, 100, one seed, 800 steps",
    )
    gap.add_argument(
        "--out", type=Path, default=Path("results/gap"), help="output folder (default: %(default)s)"
    )
    _run_options(gap)
    _common(gap)

    # lstmkit compare
    from lstmkit.cells.lstm import VARIANTS
    from lstmkit.experiments.compare import CompareExperiment

    c = CompareExperiment()
    compare = commands.add_parser(
        "compare",
        help="Greff et al. 2015 in small: every LSTM variant on one task, several seeds",
        description="Trains every variant preset on one task with several seeds, then writes "
        "results.json, results.md and compare.png with the spread across seeds.",
    )
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
        type=_positive_int,
        default=c.seeds,
        help="runs per variant (default: %(default)s)",
    )
    compare.add_argument(
        "--steps", type=_positive_int, default=c.steps, help="steps per run (default: %(default)s)"
    )
    compare.add_argument(
        "--hidden-size",
        type=_positive_int,
        default=c.hidden_size,
        help="hidden units (default: %(default)s)",
    )
    compare.add_argument(
        "--batch-size",
        type=_positive_int,
        default=c.batch_size,
        help="sequences per step (default: %(default)s)",
    )
    compare.add_argument(
        "--lr",
        type=_positive_float,
        default=c.lr,
        help="AdamW learning rate (default: %(default)s)",
    )
    compare.add_argument(
        "--out",
        type=Path,
        default=Path("results/compare"),
        help="output folder (default: %(default)s)",
    )
    _run_options(compare)
    _common(compare)

    # lstmkit train
    train = commands.add_parser(
        "train",
        help="train any cell on any task",
        description="Trains one model. Settings come from the defaults, then --config, then the "
        "flags given. Writes config.json, metrics.jsonl, checkpoint.pt and result.json to --out. "
        "Works under torchrun for data parallelism.",
    )
    train.add_argument(
        "--config",
        type=Path,
        help="a .toml or .json file with [model], [task], [optim], [run] tables",
    )
    train.add_argument(
        "--task",
        metavar="SPEC",
        help="task as name:key=value,... e.g. gap:gap=100 or charlm:path=book.txt (default: gap)",
    )
    train.add_argument(
        "--cell",
        metavar="SPEC",
        help="layer as name:key=value,... e.g. lstm:chrono=200 or gru:reset_after=false "
        "(default: lstm)",
    )
    train.add_argument("--hidden-size", type=_positive_int, help="hidden units (default: 64)")
    train.add_argument("--num-layers", type=_positive_int, help="stacked layers (default: 1)")
    train.add_argument(
        "--embedding-size", type=_positive_int, help="embedding size for token inputs (default: 16)"
    )
    train.add_argument("--dropout", type=float, help="dropout between layers (default: 0)")
    train.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run each layer both ways (default: no)",
    )
    train.add_argument("--engine", help="engine: auto, reference, native, ... (default: auto)")
    train.add_argument("--lr", type=_positive_float, help="AdamW learning rate (default: 0.003)")
    train.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: 0.01)")
    train.add_argument(
        "--clip", type=float, help="largest gradient norm, 0 for none (default: 1.0)"
    )
    train.add_argument(
        "--schedule",
        choices=["constant", "cosine", "linear"],
        help="learning rate after warm-up (default: constant)",
    )
    train.add_argument("--warmup", type=int, help="steps of linear warm-up (default: 0)")
    train.add_argument("--steps", type=_positive_int, help="step budget (default: 2000)")
    train.add_argument("--batch-size", type=_positive_int, help="global batch size (default: 64)")
    train.add_argument(
        "--eval-every", type=_positive_int, help="steps between evaluations (default: 100)"
    )
    train.add_argument(
        "--eval-size", type=_positive_int, help="held-out sequences per evaluation (default: 512)"
    )
    train.add_argument(
        "--checkpoint-every", type=_positive_int, help="steps between checkpoints (default: 500)"
    )
    train.add_argument(
        "--log-every", type=_positive_int, help="steps between log lines (default: 10)"
    )
    train.add_argument(
        "--early-stop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop once solved (default: yes)",
    )
    train.add_argument("--seed", type=int, help="seed of the weights and the data (default: 0)")
    train.add_argument(
        "--out", type=Path, help="output folder (default: runs/<task>-<cell>-<time>)"
    )
    train.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if there is one)")
    _run_options(train)
    _common(train)

    # lstmkit sample
    sample = commands.add_parser(
        "sample",
        help="generate text from a charlm checkpoint",
        description="Continues a prompt with characters drawn from a character-level model.",
    )
    sample.add_argument("checkpoint", type=Path, help="checkpoint.pt of a run on the charlm task")
    sample.add_argument("--prompt", default="def ", help="text to continue (default: %(default)r)")
    sample.add_argument(
        "--length", type=int, default=300, help="characters to generate (default: %(default)s)"
    )
    sample.add_argument(
        "--temperature",
        type=_positive_float,
        default=0.8,
        help="softmax temperature; lower is more conservative (default: %(default)s)",
    )
    sample.add_argument(
        "--top-k",
        type=_positive_int,
        default=None,
        help="draw only among the k most likely characters (default: all)",
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    _common(sample)

    # lstmkit bench
    from lstmkit.bench import MODES, SIZES, BenchConfig
    from lstmkit.bench import VARIANTS as BENCH_VARIANTS

    b = BenchConfig()
    bench = commands.add_parser(
        "bench",
        help="time every variant and engine against torch.nn.LSTM",
        description="Times every variant on every engine asked for, for inference and training, "
        "beside torch.nn.LSTM (and onnxruntime when installed) in the same process; prints a "
        "table and writes JSON.",
    )
    bench.add_argument(
        "--sizes",
        nargs="+",
        default=list(b.sizes),
        metavar="SIZE",
        help=f"sizes: {', '.join(f'{k}={v}' for k, v in SIZES.items())} as (T, B, I, H), "
        "or T,B,I,H (default: all)",
    )
    bench.add_argument(
        "--variants",
        nargs="+",
        default=list(b.variants),
        choices=list(BENCH_VARIANTS),
        metavar="NAME",
        help=f"layers: {', '.join(BENCH_VARIANTS)} (default: all)",
    )
    bench.add_argument(
        "--engines",
        nargs="+",
        default=list(b.engines),
        metavar="ENGINE",
        help="engines to time: auto, fused, native, reference (default: %(default)s)",
    )
    bench.add_argument(
        "--modes",
        nargs="+",
        default=list(b.modes),
        choices=list(MODES),
        help="inference, training (default: both)",
    )
    bench.add_argument(
        "--repeats",
        type=_positive_int,
        default=b.min_repeats,
        help="at least this many timed calls per measurement (default: %(default)s)",
    )
    bench.add_argument(
        "--seconds",
        type=_positive_float,
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
    _common(bench)

    # lstmkit tasks
    tasks = commands.add_parser(
        "tasks", help="list the tasks with their metric, baseline and source"
    )
    _common(tasks)

    # lstmkit cells
    cells = commands.add_parser(
        "cells",
        help="build every cell, run a batch through each and print a table",
        description="Builds every cell and variant, runs one batch of random sequences through "
        "each, and prints its size, engine, speed and agreement with the reference engine and "
        "torch.nn.",
    )
    from lstmkit.cell_table import DemoConfig

    d = DemoConfig()
    cells.add_argument(
        "--steps",
        type=_positive_int,
        default=d.steps,
        help="time steps T per sequence (default: %(default)s)",
    )
    cells.add_argument(
        "--batch",
        type=_positive_int,
        default=d.batch,
        help="sequences per batch (default: %(default)s)",
    )
    cells.add_argument(
        "--input-size",
        type=_positive_int,
        default=d.input_size,
        help="input features (default: %(default)s)",
    )
    cells.add_argument(
        "--hidden-size",
        type=_positive_int,
        default=d.hidden_size,
        help="hidden units, at least 2 (default: %(default)s)",
    )
    cells.add_argument(
        "--repeats",
        type=_positive_int,
        default=d.repeats,
        help="timed runs per cell (default: %(default)s)",
    )
    cells.add_argument(
        "--seed", type=int, default=d.seed, help="random seed (default: %(default)s)"
    )
    _common(cells)

    # lstmkit trace
    trace = commands.add_parser(
        "trace",
        help="record every gate and state of a trained model",
        description="Runs a trained model once and records every named intermediate of every "
        "cell at every step (f_t, i_t, C_t, ... for an LSTM) to .npz or .safetensors.",
    )
    trace.add_argument("checkpoint", type=Path, help="checkpoint.pt of a training run")
    trace.add_argument(
        "--text", help="for a charlm model: the text to run it on (default: a task batch)"
    )
    trace.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1,
        help="sequences drawn from the run's task when no text is given (default: %(default)s)",
    )
    trace.add_argument("--seed", type=int, default=0, help="seed of that batch (default: 0)")
    trace.add_argument(
        "-o", "--out", type=Path, default=Path("trace.npz"), help="(default: %(default)s)"
    )
    _common(trace)

    # lstmkit gradient-flow
    flow = commands.add_parser(
        "gradient-flow",
        help="measure how the loss's gradient fades with distance, per cell",
        description="Measures ||dL/dh_t|| (and ||dL/dC_t||) against the number of steps between "
        "h_t and the loss, for fresh models of the given cells or for trained checkpoints, and "
        "plots them together: the vanishing gradient of Hochreiter 1991 and Bengio et al. 1994.",
    )
    flow.add_argument(
        "--cell",
        action="append",
        default=[],
        metavar="SPEC",
        help="a freshly initialised layer to measure; repeat for several (e.g. rnn, lstm)",
    )
    flow.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=Path,
        help="a trained run's checkpoint.pt to measure on its own task; repeat for several",
    )
    flow.add_argument(
        "--task",
        default="gap:gap=50",
        metavar="SPEC",
        help="task of the batch for --cell models, with one sequence length (default: %(default)s)",
    )
    flow.add_argument(
        "--hidden-size", type=_positive_int, default=64, help="for --cell (default: 64)"
    )
    flow.add_argument("--batch-size", type=_positive_int, default=32, help="(default: %(default)s)")
    flow.add_argument("--seed", type=int, default=0, help="model and batch seed (default: 0)")
    flow.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("gradient_flow.png"),
        help="the plot, .png or .svg; the numbers go beside it as .json (default: %(default)s)",
    )
    _common(flow)

    # lstmkit explain
    explain = commands.add_parser(
        "explain",
        help="write an HTML page showing what a charlm model's units do on a text",
        description="Writes one self-contained HTML page: the text coloured by a chosen unit, "
        "the most interpretable units, and a step-through of the LSTM equations at any position.",
    )
    explain.add_argument("checkpoint", type=Path, help="checkpoint.pt of a run on the charlm task")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text the model reads")
    source.add_argument("--text-file", type=Path, help="read the text from this UTF-8 file")
    explain.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("explain.html"),
        help="the HTML file to write (default: %(default)s)",
    )
    explain.add_argument(
        "--title", help="the page's heading (default: the checkpoint's folder and file name)"
    )
    _common(explain)

    # lstmkit plot
    plot = commands.add_parser(
        "plot",
        help="draw the gates and states of a trained model, or of a saved trace",
        description="Draws every gate and state of every cell over time as heatmaps, "
        "single-unit traces, the gate saturation plot of Karpathy et al. 2015 and, for "
        "attention, the weights over the annotations: one .png or .svg file each in a folder.",
    )
    plot.add_argument(
        "source",
        type=Path,
        help="checkpoint.pt of a training run, or a trace (.npz, .safetensors) from lstmkit trace",
    )
    plot.add_argument(
        "--text",
        help="for a charlm checkpoint: the text to run it on; its characters label the steps "
        "(with a trace: the text it was recorded on, for the labels only)",
    )
    plot.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1,
        help="sequences drawn from the run's task when no text is given (default: %(default)s)",
    )
    plot.add_argument("--seed", type=int, default=0, help="seed of that batch (default: 0)")
    plot.add_argument(
        "--sample", type=int, default=0, help="which sequence of the batch to draw (default: 0)"
    )
    plot.add_argument(
        "--units",
        type=_unit_list,
        default=None,
        metavar="U,U,...",
        help="units for the single-unit traces (default: the four whose h_t varies most)",
    )
    plot.add_argument(
        "--format", choices=["png", "svg"], default="png", help="file format (default: png)"
    )
    plot.add_argument(
        "-o", "--out", type=Path, default=Path("plots"), help="folder (default: %(default)s)"
    )
    _common(plot)
    return parser


# flag -> (config section, field)
_TRAIN_FLAGS = {
    "hidden_size": ("model", "hidden_size"),
    "num_layers": ("model", "num_layers"),
    "embedding_size": ("model", "embedding_size"),
    "dropout": ("model", "dropout"),
    "bidirectional": ("model", "bidirectional"),
    "engine": ("model", "engine"),
    "cell": ("model", "cell"),
    "lr": ("optim", "lr"),
    "weight_decay": ("optim", "weight_decay"),
    "clip": ("optim", "clip"),
    "schedule": ("optim", "schedule"),
    "warmup": ("optim", "warmup"),
    "steps": ("run", "steps"),
    "batch_size": ("run", "batch_size"),
    "eval_every": ("run", "eval_every"),
    "eval_size": ("run", "eval_size"),
    "checkpoint_every": ("run", "checkpoint_every"),
    "log_every": ("run", "log_every"),
    "early_stop": ("run", "early_stop"),
    "seed": ("run", "seed"),
}


def train_config(args: argparse.Namespace) -> Any:
    """The run's config: defaults, then the --config file, then every flag that was given."""
    from lstmkit._spec import Spec
    from lstmkit.train.config import TrainConfig

    data = TrainConfig.load(args.config).to_dict() if args.config else TrainConfig().to_dict()
    for flag, (section, key) in _TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            data[section][key] = value
    if args.task is not None:
        spec = Spec.parse(args.task)
        data["task"] = {"name": spec.name, "options": spec.options}
    return TrainConfig.from_dict(data)


def train_command(args: argparse.Namespace) -> int:
    from lstmkit.experiments.runner import summarise
    from lstmkit.train.trainer import NonFiniteLossError, Trainer

    config = train_config(args)
    main_process = int(os.environ.get("RANK", "0")) == 0
    out = args.out
    if out is None:
        if args.resume:
            raise ValueError("--resume needs --out, the folder of the run to continue")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{config.task.name}-{_slug(config.model.cell)}-{stamp}"
    trainer = Trainer(
        config, out_dir=out, resume=args.resume, progress=args.progress, device=args.device
    )
    try:
        result = trainer.fit()
    except NonFiniteLossError as error:
        print(f"lstmkit train: {error}", file=sys.stderr)
        return 1
    if main_process:
        print(f"{config.model.cell} on {config.task.name}: {summarise(result)}")
        if trainer.task is not None and trainer.task.published:
            print(f"published: {trainer.task.published}")
        print(f"run folder: {out}")
    if result.stopped == "interrupted":
        if main_process:
            print(
                f"interrupted at step {result.steps}; continue with the same command and "
                f"--resume --out {out}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    return 0


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
    _check_specs(experiment.cells)
    start = time.perf_counter()
    run_gap_experiment(experiment, args.out, resume=args.resume, progress=args.progress)
    _print_results(args.out, start, "gap.png")
    return 0


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


def _print_results(out: Path, start: float, plot: str) -> None:
    print()
    print((out / "results.md").read_text(encoding="utf-8"))
    print(
        f"{time.perf_counter() - start:.0f} s; results in {out}/ (results.json, results.md, {plot})"
    )


def bench_command(args: argparse.Namespace) -> int:
    from lstmkit.bench import BenchConfig, ratio_matrix, run_bench, summary, write_results

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
    print(f"Machine: {results['machine']}; torch.mm peak {results['peak_gflops']:.0f} GFLOP/s.\n")
    for engine in args.engines:
        print(ratio_matrix(results, engine))
    print(summary(results))
    print(f"results in {args.json} and {args.table}")
    return 0


def sample_command(args: argparse.Namespace) -> int:
    from lstmkit.sample import sample_text

    print(
        sample_text(
            args.checkpoint,
            prompt=args.prompt,
            length=args.length,
            temperature=args.temperature,
            top_k=args.top_k,
            seed=args.seed,
        )
    )
    return 0


def tasks_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks import TASKS

    for name, cls in TASKS.items():
        task = cls()
        better = "higher" if task.higher_is_better else "lower"
        print(f"{name}: {task.citation}")
        print(
            f"    metric {task.metric} ({better} is better); "
            f"baseline {task.baseline:.3f}, {task.baseline_note}"
        )
        if task.published:
            print(f"    published: {task.published}")
    return 0


def cells_command(args: argparse.Namespace) -> int:
    from lstmkit.cell_table import DemoConfig, format_table, run_demo

    if args.hidden_size < 2:
        raise ValueError("--hidden-size must be at least 2 (the projection row halves it)")
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


def _trace_checkpoint(checkpoint: Path, text: str | None, batch_size: int, seed: int) -> Any:
    """The trace of a trained model on ``text`` (charlm) or on a batch of its task."""
    import torch

    from lstmkit.tasks.charlm import CharLMTask
    from lstmkit.tracing import trace
    from lstmkit.train.trainer import load_run

    model, task = load_run(checkpoint)
    if text is not None:
        if not isinstance(task, CharLMTask):
            raise ValueError(f"--text needs a charlm checkpoint; {checkpoint} is {task.name}")
        if not text:
            raise ValueError("--text must have at least one character")
        return trace(model, task.encode(text)[None])  # (1, T)
    batch = task.batch(batch_size, torch.Generator().manual_seed(seed))
    return trace(model, (batch.inputs, batch.lengths))  # NaN past each sequence's length


def trace_command(args: argparse.Namespace) -> int:
    recorded = _trace_checkpoint(args.checkpoint, args.text, args.batch_size, args.seed)
    path = recorded.save(args.out)
    for cell in recorded.cells:
        names = recorded.names(cell)
        shape = tuple(recorded[f"{cell}.{names[0]}"].shape)
        print(f"{cell}: {', '.join(names)}  {shape}")
    print(f"trace in {path}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    from lstmkit.explain import explain_checkpoint

    text = args.text if args.text is not None else args.text_file.read_text(encoding="utf-8")
    path = explain_checkpoint(args.checkpoint, text, args.out, title=args.title)
    print(f"wrote {path}")
    return 0


def plot_command(args: argparse.Namespace) -> int:
    from lstmkit.plots import plot_trace
    from lstmkit.tracing import Trace

    if args.source.suffix in (".npz", ".safetensors"):
        recorded = Trace.load(args.source)
    else:
        recorded = _trace_checkpoint(args.source, args.text, args.batch_size, args.seed)
    written = plot_trace(
        recorded,
        args.out,
        text=args.text,
        units=args.units,
        sample=args.sample,
        suffix=f".{args.format}",
    )
    for path in written:
        print(path)
    print(f"{len(written)} figures in {args.out}")
    return 0


def gradient_flow_command(args: argparse.Namespace) -> int:
    import json

    import torch

    from lstmkit._spec import Spec
    from lstmkit.gradient_flow import gradient_flow
    from lstmkit.plots import gradient_flow as plot_gradient_flow
    from lstmkit.tasks import make_task
    from lstmkit.train.config import ModelConfig, TaskConfig, TrainConfig
    from lstmkit.train.trainer import build_model, load_run

    if not args.cell and not args.checkpoint:
        raise ValueError("give at least one --cell or --checkpoint to measure")
    _check_specs(args.cell)
    spec = Spec.parse(args.task)
    flows = []
    for cell in args.cell:
        torch.manual_seed(args.seed)
        config = TrainConfig(
            model=ModelConfig(cell=cell, hidden_size=args.hidden_size),
            task=TaskConfig(spec.name, dict(spec.options)),
        )
        task = make_task(spec.name, **spec.options)
        model = build_model(config, task)
        flows.append(
            gradient_flow(model, args.task, batch_size=args.batch_size, seed=args.seed, label=cell)
        )
    for checkpoint in args.checkpoint:
        model, task = load_run(checkpoint)
        label = f"{checkpoint.parent.name} (trained)"
        flows.append(
            gradient_flow(model, task, batch_size=args.batch_size, seed=args.seed, label=label)
        )
    plot_gradient_flow(flows, path=args.out)
    numbers = [
        {
            "label": f.label,
            "task": f.task,
            "distance": f.distance.tolist(),
            "h_norm": f.h_norm.tolist(),
            "c_norm": None if f.c_norm is None else f.c_norm.tolist(),
        }
        for f in flows
    ]
    args.out.with_suffix(".json").write_text(json.dumps(numbers, indent=1) + "\n")
    for f in flows:
        far, near = f.h_norm[0], f.h_norm[-1]
        print(
            f"{f.label}: ||dL/dh_t|| {near:.2e} next to the loss, {far:.2e} at "
            f"{int(f.distance[0])} steps away (ratio {far / near:.1e})"
        )
    print(f"plot in {args.out}, numbers in {args.out.with_suffix('.json')}")
    return 0


def _check_specs(cells: Sequence[str]) -> None:
    from lstmkit._spec import Spec
    from lstmkit.models import LAYERS

    for cell in cells:
        name = Spec.parse(cell).name
        if name not in LAYERS:
            raise ValueError(
                f"unknown cell {name!r} in {cell!r}; expected one of {', '.join(LAYERS)}"
            )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


COMMANDS = {
    "gap": gap_command,
    "compare": compare_command,
    "train": train_command,
    "sample": sample_command,
    "bench": bench_command,
    "tasks": tasks_command,
    "cells": cells_command,
    "trace": trace_command,
    "gradient-flow": gradient_flow_command,
    "plot": plot_command,
    "explain": explain_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import torch

    from lstmkit.experiments.runner import Interrupted

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except Interrupted as stop:
        print(f"lstmkit {args.command}: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"lstmkit {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        if os.environ.get("LSTMKIT_DEBUG"):
            raise
        print(f"lstmkit {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
