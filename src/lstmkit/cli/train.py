"""``lstmkit train`` and ``lstmkit sample``: one model trained on one task, and text from it."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lstmkit._errors import LstmkitValueError
from lstmkit._io import slug
from lstmkit.cli._args import (
    EXIT_INTERRUPTED,
    add_dataclass_flags,
    common,
    device_name,
    folder_path,
    given_flags,
    positive_float,
    positive_int,
    run_options,
)
from lstmkit.cli.generate import GENERATIVE, add_sample_flags
from lstmkit.train.config import ModelConfig, OptimConfig, RunConfig, TrainConfig

if TYPE_CHECKING:
    from lstmkit.cli._args import Commands

# The config sections whose every field is a train flag, in the order of the help.
FLAG_SECTIONS: dict[str, type] = {"model": ModelConfig, "optim": OptimConfig, "run": RunConfig}


def add_train(commands: Commands) -> None:
    train = commands.add_parser(
        "train",
        help="train any cell on any task",
        description="Trains one model. Settings come from the defaults, then --config, then the "
        "flags given. Writes config.json, metrics.jsonl, checkpoint.pt and result.json to --out. "
        "Works under torchrun for data parallelism.",
    )
    train.set_defaults(handler=train_command)
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
    for kind in FLAG_SECTIONS.values():
        add_dataclass_flags(train, kind)
    train.add_argument(
        "--out", type=folder_path, help="output folder (default: runs/<task>-<cell>-<time>)"
    )
    train.add_argument(
        "--device",
        type=device_name,
        help="cpu, cuda, cuda:1, ... (default: cuda if there is one)",
    )
    train.add_argument(
        "--reschedule",
        action="store_true",
        help="with --resume: accept a changed --steps although the learning-rate schedule "
        "decays over them (the rate jumps; refused without this flag)",
    )
    run_options(train)
    common(train)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config: defaults, then the --config file, then every flag that was given."""
    from lstmkit._spec import Spec

    data = TrainConfig.load(args.config).to_dict() if args.config else TrainConfig().to_dict()
    for section, kind in FLAG_SECTIONS.items():
        data[section].update(given_flags(args, kind))
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
            raise LstmkitValueError("--resume needs --out, the folder of the run to continue")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{config.task.name}-{slug(_model_name(config))}-{stamp}"
    trainer = Trainer(
        config,
        out_dir=out,
        resume=args.resume,
        reschedule=args.reschedule,
        progress=args.progress,
        device=args.device,
    )
    try:
        result = trainer.fit()
    except NonFiniteLossError as error:
        print(f"lstmkit train: {error}", file=sys.stderr)
        return 1
    if main_process:
        print(f"{_model_name(config)} on {config.task.name}: {summarise(result)}")
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


def _model_name(config: TrainConfig) -> str:
    """The model in words: its cell for a sequence model, else its kind and its cell."""
    kind = config.model.kind
    return config.model.cell if kind == "sequence" else f"{kind} ({config.model.cell})"


def add_sample(commands: Commands) -> None:
    sample = commands.add_parser(
        "sample",
        help="generate text, digits or music from a checkpoint",
        description="Continues a prompt with characters drawn from a character-level model: a "
        "charlm checkpoint run by lstmkit, or (--onnx) the file `lstmkit export` wrote from one, "
        "run by onnxruntime. Both draw through the same code: the same seed and options give "
        "the same text. From a generative checkpoint (model kind draw, vrnn or storn) it draws "
        "--count digits or pieces of --length frames into --out: pictures of every glimpse "
        "and DRAW's attention windows, MIDI files and piano rolls.",
    )
    sample.set_defaults(handler=sample_command)
    sample.add_argument(
        "checkpoint",
        type=Path,
        nargs="?",
        help="checkpoint.pt of a charlm, draw, vrnn or storn run (or --onnx instead)",
    )
    sample.add_argument(
        "--onnx",
        type=Path,
        metavar="MODEL",
        help="an ONNX character model written by `lstmkit export`, run by onnxruntime, instead "
        "of a checkpoint (its int8 copy too)",
    )
    sample.add_argument("--prompt", default="def ", help="text to continue (default: %(default)r)")
    sample.add_argument(
        "--length",
        type=positive_int,
        default=None,
        help="characters to generate (default: 300), or frames of music (default: 64)",
    )
    sample.add_argument(
        "--temperature",
        type=positive_float,
        default=0.8,
        help="softmax temperature; lower is more conservative (default: %(default)s)",
    )
    sample.add_argument(
        "--top-k",
        type=positive_int,
        default=None,
        help="draw only among the k most likely characters (default: all)",
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add_sample_flags(sample)
    common(sample)


def sample_command(args: argparse.Namespace) -> int:
    from lstmkit.train.sample import sample_onnx, sample_text

    if (args.checkpoint is None) == (args.onnx is None):
        given = "both" if args.onnx is not None else "neither"
        raise LstmkitValueError(f"give a checkpoint or --onnx MODEL, one of them; got {given}")
    if args.checkpoint is not None and _generative(args):
        return 0
    options = {
        "prompt": args.prompt,
        "length": 300 if args.length is None else args.length,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "seed": args.seed,
    }
    if args.onnx is not None:
        print(sample_onnx(args.onnx, **options))
    else:
        print(sample_text(args.checkpoint, **options))
    return 0


def _generative(args: argparse.Namespace) -> bool:
    """Samples from a draw, vrnn or storn checkpoint and says what it wrote; False for any other
    checkpoint (a charlm one is sampled as text)."""
    from lstmkit._spec import Spec
    from lstmkit.cli.generate import sample_generative
    from lstmkit.train.checkpoint import check_entries, load_latest
    from lstmkit.train.trainer import load_model

    state, read = load_latest(args.checkpoint)
    check_entries(state, read)
    kind = Spec.parse(str(state["config"].get("model", {}).get("kind", "sequence"))).name
    if kind == "captioner":
        raise LstmkitValueError(
            f"{args.checkpoint} holds a captioner; lstmkit caption writes its captions (lstmkit "
            "sample reads charlm, draw, vrnn and storn checkpoints)"
        )
    if kind not in GENERATIVE:
        return False
    model, task, _ = load_model(args.checkpoint)
    length = 64 if args.length is None else args.length
    written = sample_generative(
        model, task, kind, count=args.count, length=length, seed=args.seed, out=args.out
    )
    for path in written:
        print(f"wrote {path}")
    return True
