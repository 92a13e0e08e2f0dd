"""The ``lstmkit`` command: a thin layer of functions over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lstmkit.demo import DemoConfig, format_table, run_demo


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmkit",
        description="LSTM networks and their variants, from 'Understanding LSTM Networks'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="build every cell, run a batch through each and print a table",
        description="Builds every cell and variant, runs one batch of random sequences "
        "through each, and prints its size, engine, speed and agreement with the reference "
        "engine and torch.nn.",
    )
    defaults = DemoConfig()
    demo.add_argument(
        "--steps",
        type=_positive_int,
        default=defaults.steps,
        help="time steps T per sequence (default: %(default)s)",
    )
    demo.add_argument(
        "--batch",
        type=_positive_int,
        default=defaults.batch,
        help="sequences per batch (default: %(default)s)",
    )
    demo.add_argument(
        "--input-size",
        type=_positive_int,
        default=defaults.input_size,
        help="input features (default: %(default)s)",
    )
    demo.add_argument(
        "--hidden-size",
        type=_positive_int,
        default=defaults.hidden_size,
        help="hidden units, at least 2 (default: %(default)s)",
    )
    demo.add_argument(
        "--repeats",
        type=_positive_int,
        default=defaults.repeats,
        help="timed runs per cell (default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)"
    )
    return parser


def demo_command(args: argparse.Namespace) -> int:
    if args.hidden_size < 2:
        print(
            "lstmkit demo: --hidden-size must be at least 2 (the projection halves it)",
            file=sys.stderr,
        )
        return 2
    config = DemoConfig(
        steps=args.steps,
        batch=args.batch,
        input_size=args.input_size,
        hidden_size=args.hidden_size,
        repeats=args.repeats,
        seed=args.seed,
    )
    rows = run_demo(config)
    print(format_table(rows, config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return demo_command(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
