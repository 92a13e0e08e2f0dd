"""The ``lstmkit`` command: a thin layer of functions over the library.

Each group of commands is a module with, for every command, the function that adds its parser
beside the function that runs it: :mod:`~lstmkit.cli.experiments` (gap, compare, bench, tasks,
cells), :mod:`~lstmkit.cli.train` (train, sample), :mod:`~lstmkit.cli.generate` (caption, and
sampling from generative checkpoints), :mod:`~lstmkit.cli.deploy` (export, bench-onnx),
:mod:`~lstmkit.cli.forecast` (forecast) and :mod:`~lstmkit.cli.analysis` (trace, gradient-flow,
explain, plot). Here are the parser that gathers them and the error handling they
share.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from lstmkit._errors import LstmkitError, one_line
from lstmkit.cli import analysis, deploy, experiments, forecast, generate, train
from lstmkit.cli._args import EXIT_INTERRUPTED

__all__ = ["EXIT_INTERRUPTED", "build_parser", "main"]

# every command, in the order ``lstmkit --help`` lists them
_ADD_COMMANDS = (
    experiments.add_gap,
    experiments.add_compare,
    experiments.add_chung,
    train.add_train,
    train.add_sample,
    generate.add_caption,
    forecast.add_forecast,
    deploy.add_export,
    experiments.add_bench,
    experiments.add_tasks,
    experiments.add_cells,
    experiments.add_tune,
    deploy.add_bench_onnx,
    analysis.add_trace,
    analysis.add_gradient_flow,
    analysis.add_explain,
    analysis.add_plot,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``handler``, the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="lstmkit",
        description="LSTM networks and their variants, from 'Understanding LSTM Networks'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _ADD_COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``lstmkit ARGS``; returns the exit status: 0, 1 for a failed run, 2 for a bad
    argument or input (every :class:`lstmkit.LstmkitError` and every OSError, said in one line;
    ``LSTMKIT_DEBUG=1`` shows the traceback instead), 130 when stopped by Ctrl-C (with the work so
    far saved)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    import torch

    from lstmkit.experiments.runner import Interrupted

    _show_log_messages()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        status: int = args.handler(args)
        return status
    except Interrupted as stop:
        print(f"lstmkit {args.command}: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"lstmkit {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (LstmkitError, ValueError, TypeError, OSError) as error:
        if os.environ.get("LSTMKIT_DEBUG"):
            raise
        print(f"lstmkit {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: BaseException) -> str:
    """An error as one line: an OSError as its reason and the file it concerns (not its
    errno), anything else as its message."""
    if isinstance(error, OSError) and not isinstance(error, LstmkitError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return one_line(error)


_HANDLER_NAME = "lstmkit.cli"


def _show_log_messages() -> None:
    """Shows the library's INFO messages (such as the fused engine's build) on stderr, as
    ``lstmkit: ...`` lines, unless a program has already given the ``lstmkit`` logger a handler."""
    logger = logging.getLogger("lstmkit")
    for handler in logger.handlers:
        if handler.get_name() == _HANDLER_NAME and isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # main ran before, maybe while stderr was captured
            return
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("lstmkit: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
