"""Seeing inside a model: ``lstmkit trace``, ``gradient-flow``, ``explain`` and ``plot``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit._errors import LstmkitValueError
from lstmkit.cli._args import (
    check_specs,
    common,
    file_path,
    folder_path,
    positive_int,
    unit_list,
)

if TYPE_CHECKING:
    from lstmkit.cli._args import Commands


def _batch_options(parser: argparse.ArgumentParser) -> None:
    """--batch-size and --seed of the task batch a checkpoint runs on when no text is given."""
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=1,
        help="sequences drawn from the run's task when no text is given (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of that batch (default: 0)")


def _trace_checkpoint(checkpoint: Path, text: str | None, batch_size: int, seed: int) -> Any:
    """The trace of a trained model on ``text`` (charlm) or on a batch of its task."""
    import torch

    from lstmkit.analysis.trace import trace
    from lstmkit.tasks.charlm import CharLMTask
    from lstmkit.train.trainer import load_run

    model, task = load_run(checkpoint)
    if text is not None:
        if not isinstance(task, CharLMTask):
            raise LstmkitValueError(
                f"--text needs a charlm checkpoint; {checkpoint} is {task.name}"
            )
        if not text:
            raise LstmkitValueError("--text must have at least one character")
        return trace(model, task.encode(text)[None])  # (1, T)
    batch = task.batch(batch_size, torch.Generator().manual_seed(seed))
    return trace(model, (batch.inputs, batch.lengths))  # NaN past each sequence's length


def add_trace(commands: Commands) -> None:
    trace = commands.add_parser(
        "trace",
        help="record every gate and state of a trained model",
        description="Runs a trained model once and records every named intermediate of every "
        "cell at every step (f_t, i_t, C_t, ... for an LSTM) to .npz or .safetensors.",
    )
    trace.set_defaults(handler=trace_command)
    trace.add_argument("checkpoint", type=Path, help="checkpoint.pt of a training run")
    trace.add_argument(
        "--text", help="for a charlm model: the text to run it on (default: a task batch)"
    )
    _batch_options(trace)
    trace.add_argument(
        "-o", "--out", type=file_path, default=Path("trace.npz"), help="(default: %(default)s)"
    )
    common(trace)


def trace_command(args: argparse.Namespace) -> int:
    recorded = _trace_checkpoint(args.checkpoint, args.text, args.batch_size, args.seed)
    path = recorded.save(args.out)
    for cell in recorded.cells:
        names = recorded.names(cell)
        shape = tuple(recorded[f"{cell}.{names[0]}"].shape)
        print(f"{cell}: {', '.join(names)}  {shape}")
    print(f"trace in {path}")
    return 0


def add_gradient_flow(commands: Commands) -> None:
    flow = commands.add_parser(
        "gradient-flow",
        help="measure how the loss's gradient fades with distance, per cell",
        description="Measures ||dL/dh_t|| (and ||dL/dC_t||) against the number of steps between "
        "h_t and the loss, for fresh models of the given cells or for trained checkpoints, and "
        "plots them together: the vanishing gradient of Hochreiter 1991 and Bengio et al. 1994.",
    )
    flow.set_defaults(handler=gradient_flow_command)
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
        "--hidden-size", type=positive_int, default=64, help="for --cell (default: 64)"
    )
    flow.add_argument("--batch-size", type=positive_int, default=32, help="(default: %(default)s)")
    flow.add_argument("--seed", type=int, default=0, help="model and batch seed (default: 0)")
    flow.add_argument(
        "-o",
        "--out",
        type=file_path,
        default=Path("gradient_flow.png"),
        help="the plot, .png or .svg; the numbers go beside it as .json (default: %(default)s)",
    )
    common(flow)


def gradient_flow_command(args: argparse.Namespace) -> int:
    import json

    import torch

    from lstmkit._io import write_text
    from lstmkit._spec import Spec
    from lstmkit.analysis.gradient_flow import gradient_flow
    from lstmkit.analysis.plots import gradient_flow as plot_gradient_flow
    from lstmkit.tasks import make_task
    from lstmkit.train.config import ModelConfig, TaskConfig, TrainConfig
    from lstmkit.train.trainer import build_model, load_run

    if not args.cell and not args.checkpoint:
        raise LstmkitValueError("give at least one --cell or --checkpoint to measure")
    check_specs(args.cell)
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
    write_text(args.out.with_suffix(".json"), json.dumps(numbers, indent=1) + "\n")
    for f in flows:
        far, near = f.h_norm[0], f.h_norm[-1]
        print(
            f"{f.label}: ||dL/dh_t|| {near:.2e} next to the loss, {far:.2e} at "
            f"{int(f.distance[0])} steps away (ratio {far / near:.1e})"
        )
    print(f"plot in {args.out}, numbers in {args.out.with_suffix('.json')}")
    return 0


def add_explain(commands: Commands) -> None:
    explain = commands.add_parser(
        "explain",
        help="write an HTML page showing what a charlm model's units do on a text",
        description="Writes one self-contained HTML page: the text coloured by a chosen unit, "
        "the most interpretable units, and a step-through of the LSTM equations at any position.",
    )
    explain.set_defaults(handler=explain_command)
    explain.add_argument("checkpoint", type=Path, help="checkpoint.pt of a run on the charlm task")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text the model reads")
    source.add_argument("--text-file", type=Path, help="read the text from this UTF-8 file")
    explain.add_argument(
        "-o",
        "--out",
        type=file_path,
        default=Path("explain.html"),
        help="the HTML file to write (default: %(default)s)",
    )
    explain.add_argument(
        "--title", help="the page's heading (default: the checkpoint's folder and file name)"
    )
    common(explain)


def explain_command(args: argparse.Namespace) -> int:
    from lstmkit.analysis.explain import explain_checkpoint

    text = args.text if args.text is not None else args.text_file.read_text(encoding="utf-8")
    path = explain_checkpoint(args.checkpoint, text, args.out, title=args.title)
    print(f"wrote {path}")
    return 0


def add_plot(commands: Commands) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw the gates and states of a trained model, or of a saved trace",
        description="Draws every gate and state of every cell over time as heatmaps, "
        "single-unit traces, the gate saturation plot of Karpathy et al. 2015 and, for "
        "attention, the weights over the annotations: one .png or .svg file each in a folder.",
    )
    plot.set_defaults(handler=plot_command)
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
    _batch_options(plot)
    plot.add_argument(
        "--sample", type=int, default=0, help="which sequence of the batch to draw (default: 0)"
    )
    plot.add_argument(
        "--units",
        type=unit_list,
        default=None,
        metavar="U,U,...",
        help="units for the single-unit traces (default: the four whose h_t varies most)",
    )
    plot.add_argument(
        "--format", choices=["png", "svg"], default="png", help="file format (default: png)"
    )
    plot.add_argument(
        "-o", "--out", type=folder_path, default=Path("plots"), help="folder (default: %(default)s)"
    )
    common(plot)


def plot_command(args: argparse.Namespace) -> int:
    from lstmkit.analysis.plots import plot_trace
    from lstmkit.analysis.trace import Trace

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
