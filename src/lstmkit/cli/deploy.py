"""``lstmkit export`` and ``lstmkit bench-onnx``: a trained model as an ONNX file (and its int8
copy), and what running that file in onnxruntime gains and costs against lstmkit's engine."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit._errors import LstmkitError, LstmkitRuntimeError, one_line
from lstmkit.cli._args import common, file_path, positive_float, positive_int

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lstmkit.cli._args import Commands
    from lstmkit.interop.onnx_export import ExportReport

ONNX_EXTRA = "pip install 'lstmkit[onnx]'"


def add_export(commands: Commands) -> None:
    export = commands.add_parser(
        "export",
        help="write a checkpoint's model as ONNX (and an int8 copy)",
        description="Builds the model of a training checkpoint (read without running code from "
        "it) and writes it as ONNX, each lstmkit layer as ONNX's own LSTM, GRU or RNN node where "
        "that operator expresses it and as a Scan of its cell's step otherwise; then runs the "
        "file in onnxruntime on an example and compares with PyTorch. A charlm checkpoint "
        "becomes a step model: inputs tokens (T, B) int64 and the recurrent state (h, c for an "
        "LSTM, each (layers x directions, B, hidden)), outputs logits (T, B, V) and the new "
        "state (h_n, c_n), with the vocabulary in the file's metadata, so that "
        "`lstmkit sample --onnx FILE` needs nothing else. Any other task's model takes what "
        "training fed it: inputs (B, T) tokens or (B, T, F) features, and lengths (B,) where "
        f"the task's sequences differ in length. Needs onnx, onnxscript and onnxruntime: "
        f"{ONNX_EXTRA}.",
    )
    export.set_defaults(handler=export_command)
    export.add_argument("checkpoint", type=Path, help="checkpoint.pt of a training run")
    export.add_argument(
        "-o",
        "--out",
        type=file_path,
        default=Path("model.onnx"),
        help="the ONNX file to write, float32 (default: %(default)s)",
    )
    export.add_argument(
        "--int8",
        action="store_true",
        help="also write an int8 copy beside it, named with .int8 before the suffix (-o "
        "model.onnx writes model.int8.onnx too; --out stays float32): onnxruntime's dynamic "
        "quantisation of the LSTM nodes, the input projections, the head and the embedding; "
        "GRU and RNN nodes and the recurrent products inside a Scan stay float32",
    )
    export.add_argument(
        "--per-channel",
        action="store_true",
        help="with --int8: a scale for each output row of a weight (more accurate, slower)",
    )
    common(export)


def int8_path(path: Path) -> Path:
    """Where ``--int8`` writes: ``model.onnx`` → ``model.int8.onnx``, ``model`` → ``model.int8``."""
    return path.with_name(f"{path.stem}.int8{path.suffix}")


def export_command(args: argparse.Namespace) -> int:
    from lstmkit.interop.onnx_int8 import quantize
    from lstmkit.train.checkpoint import load_latest

    require(["onnx", "onnxscript"], "lstmkit export")
    if args.int8:
        require(["onnxruntime"], "--int8")
    state, read = load_latest(args.checkpoint)
    model, example, report = _export(state, read, args.out)
    kb = report.path.stat().st_size / 1024
    print(f"{report.path}: {kb:.1f} kB, float32, from {read} (step {state['step']})")
    for name, operator in report.operators.items():
        layer = type(model.get_submodule(name)).__name__
        how = "a Scan of its cell's step" if operator == "Scan" else f"ONNX {operator}"
        print(f"  {name or 'the model'} ({layer}): {how}")
    if report.largest_difference is None:
        print("  not checked: onnxruntime is not installed")
    else:
        print(f"  onnxruntime against PyTorch on an example: {report.largest_difference:.1e}")
    if args.int8:
        try:
            int8 = quantize(report.path, int8_path(report.path), per_channel=args.per_channel)
        except LstmkitError:
            raise
        except Exception as error:  # onnxruntime's and onnx's own classes
            raise LstmkitRuntimeError(
                f"{report.path} is written; its int8 copy failed in onnxruntime's quantiser: "
                f"{type(error).__name__}: {one_line(error)}"
            ) from error
        kb = int8.stat().st_size / 1024
        difference = onnx_difference(int8, model, example)
        print(
            f"{int8}: {kb:.1f} kB, int8 weights; against PyTorch on the example: {difference:.1e}"
        )
    return 0


def require(modules: list[str], what: str) -> None:
    """Fails, naming what to install, where any of ``modules`` cannot be imported."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise LstmkitRuntimeError(f"{what} needs {' and '.join(missing)}: {ONNX_EXTRA}")


def _export(
    state: dict[str, Any], read: Path, out: Path
) -> tuple[nn.Module, tuple[torch.Tensor, ...], ExportReport]:
    """The checkpoint's model as exported (the step model of a charlm run), the example it was
    checked on, and the export's report."""
    import torch

    from lstmkit._version import __version__
    from lstmkit.interop.onnx_export import export
    from lstmkit.tasks import make_task
    from lstmkit.train.config import TrainConfig
    from lstmkit.train.sample import (
        CharStepModel,
        charlm_of,
        export_charlm,
        step_example,
    )
    from lstmkit.train.trainer import model_from_checkpoint

    config = TrainConfig.from_dict(state["config"])
    about = {
        "lstmkit.version": __version__,
        "lstmkit.task": config.task.name,
        "lstmkit.cell": config.model.cell,
        "lstmkit.trained_steps": str(state["step"]),
    }
    if config.task.name == "charlm":
        model, vocabulary = charlm_of(state, read)
        report = export_charlm(model, vocabulary, out, about=about)
        step_model = CharStepModel(model).eval()
        return step_model, step_example(step_model), report
    sequence_model = model_from_checkpoint(state, read)
    task = make_task(config.task.name, **{**config.task.options, **state["task"]["state"]})
    batch = task.batch(2, torch.Generator().manual_seed(0))
    example = (batch.inputs,) if batch.lengths is None else (batch.inputs, batch.lengths)
    names = ["inputs", "lengths"][: len(example)]
    metadata = {**about, "lstmkit.model": "sequence", "lstmkit.readout": task.readout}
    report = export(
        sequence_model,
        example,
        out,
        input_names=names,
        output_names=["outputs"],
        metadata=metadata,
    )
    return sequence_model, example, report


def onnx_difference(path: Path, model: nn.Module, example: tuple[torch.Tensor, ...]) -> float:
    """The largest difference between onnxruntime's outputs for ``example`` from the model at
    ``path`` and ``model``'s own."""
    import torch

    from lstmkit.train.sample import onnx_session

    session = onnx_session(path)
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), example, strict=True)}
    got = session.run(None, feeds)
    with torch.no_grad():
        want = model(*example)
    want = want if isinstance(want, tuple) else (want,)
    pairs = zip(got, want, strict=True)
    return max(float((torch.from_numpy(g) - w).abs().max()) for g, w in pairs)


def add_bench_onnx(commands: Commands) -> None:
    from lstmkit.experiments.onnx_charlm import DeployBenchConfig

    d = DeployBenchConfig(checkpoint="")
    bench = commands.add_parser(
        "bench-onnx",
        help="a character model in lstmkit against onnxruntime, float32 and int8",
        description="Exports a charlm checkpoint's model (float32 and int8, to a temporary "
        "folder) and measures, in one process: held-out bits per character of lstmkit "
        "(PyTorch), onnxruntime float32 and onnxruntime int8, and the time per character of "
        "streaming (1 character a call, batch 1), scoring (a batch of held-out windows a call) "
        "and sampling (lstmkit sample's loop). Prints a markdown table and writes it and the "
        f"JSON. Needs onnx, onnxscript and onnxruntime: {ONNX_EXTRA}.",
    )
    bench.set_defaults(handler=bench_onnx_command)
    bench.add_argument("checkpoint", type=Path, help="checkpoint.pt of a run on the charlm task")
    bench.add_argument(
        "--batch",
        type=positive_int,
        default=d.batch,
        help="sequences a call when scoring (default: %(default)s)",
    )
    bench.add_argument(
        "--sample-length",
        type=positive_int,
        default=d.sample_length,
        help="characters a sampling call draws (default: %(default)s)",
    )
    bench.add_argument(
        "--repeats",
        type=positive_int,
        default=d.min_repeats,
        help="at least this many timed calls of each runtime (default: %(default)s)",
    )
    bench.add_argument(
        "--seconds",
        type=positive_float,
        default=d.min_seconds,
        help="and at least this long per workload (default: %(default)s)",
    )
    bench.add_argument(
        "--per-channel", action="store_true", help="int8 with a scale for each output row"
    )
    bench.add_argument(
        "--table",
        type=file_path,
        default=Path("results/bench-onnx.md"),
        help="where the markdown goes (default: %(default)s)",
    )
    bench.add_argument(
        "--json",
        type=file_path,
        default=Path("results/bench-onnx.json"),
        help="where the JSON goes (default: %(default)s)",
    )
    common(bench)


def bench_onnx_command(args: argparse.Namespace) -> int:
    import json

    from lstmkit._io import write_text
    from lstmkit.experiments.onnx_charlm import (
        DeployBenchConfig,
        format_deploy,
        run_deploy_bench,
    )

    require(["onnx", "onnxscript", "onnxruntime"], "lstmkit bench-onnx")
    config = DeployBenchConfig(
        checkpoint=str(args.checkpoint),
        batch=args.batch,
        sample_length=args.sample_length,
        min_repeats=args.repeats,
        min_seconds=args.seconds,
        per_channel=args.per_channel,
    )
    results = run_deploy_bench(config, progress=lambda what: print(f"  {what}", file=sys.stderr))
    table = format_deploy(results)
    write_text(args.table, table)
    write_text(args.json, json.dumps(results, indent=2) + "\n")
    print(table)
    return 0
