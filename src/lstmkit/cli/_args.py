"""What the commands share: argument types, common options, and flags made from dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmkit._errors import LstmkitTypeError, LstmkitValueError

if TYPE_CHECKING:
    from typing import TypeAlias

    # what ``add_subparsers()`` returns: each command's parser is added to it
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_INTERRUPTED = 130  # what shells report for a process stopped by Ctrl-C


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def file_path(text: str) -> Path:
    """A file the command writes: not an existing folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file to write, got the folder {text}")
    return path


def folder_path(text: str) -> Path:
    """A folder the command writes into: new, or an existing folder, not a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder, got the file {text}")
    return path


def device_name(text: str) -> str:
    """A torch device this machine has: cpu, cuda, cuda:1, ..."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected a device such as cpu, cuda or cuda:1, got {text!r}"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU build" if torch.version.cuda is None else "no GPU is visible"
            raise argparse.ArgumentTypeError(f"{text} was asked for, but {why}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise argparse.ArgumentTypeError(f"{text} was asked for; this machine has {count}")
    return text


def unit_list(text: str) -> list[int]:
    try:
        units = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated unit numbers such as 0,3,7, got {text!r}"
        ) from None
    if any(u < 0 for u in units):
        raise argparse.ArgumentTypeError(f"unit numbers must be >= 0, got {text!r}")
    return units


def common(parser: argparse.ArgumentParser) -> None:
    """The options every command takes."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help=(
            "CPU threads for torch, and for onnxruntime where a command runs it "
            "(default: torch's choice)"
        ),
    )


def run_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that train: resuming and progress bars."""
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


def check_specs(cells: Sequence[str]) -> None:
    """Fails on a layer spec whose name is not a registered layer, before any work."""
    from lstmkit._spec import Spec
    from lstmkit.layers.registry import LAYERS

    for cell in cells:
        name = Spec.parse(cell).name
        if name not in LAYERS:
            raise LstmkitValueError(
                f"unknown cell {name!r} in {cell!r}; expected one of {', '.join(LAYERS)}"
            )


# Flags from dataclasses ------------------------------------------------------------------------

_POSITIVE: dict[type, Callable[[str], Any]] = {int: positive_int, float: positive_float}


def add_dataclass_flags(parser: argparse.ArgumentParser, kind: type) -> None:
    """Adds a flag for every field of the dataclass ``kind``, made from the field alone.

    ``hidden_size`` becomes ``--hidden-size`` (destination ``hidden_size``) of the field's type;
    a bool field becomes ``--x/--no-x``. The help is the field's ``metadata["help"]`` followed by
    its default; ``metadata["positive"]`` admits only values > 0; ``metadata["choices"]`` and
    ``metadata["metavar"]`` go to argparse as they are. Every flag defaults to None, so that
    :func:`given_flags` can tell the flags given from those left out.
    """
    hints = typing.get_type_hints(kind)
    for f in dataclasses.fields(kind):
        parser.add_argument(f"--{f.name.replace('_', '-')}", **_flag_options(f, hints[f.name]))


def given_flags(args: argparse.Namespace, kind: type) -> dict[str, Any]:
    """The fields of ``kind`` whose flags (from :func:`add_dataclass_flags`) were given."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(kind)}
    return {name: value for name, value in values.items() if value is not None}


def _flag_options(f: dataclasses.Field[Any], kind: Any) -> dict[str, Any]:
    where = f"config field {f.name!r}"
    text = f.metadata.get("help")
    if not isinstance(text, str):
        raise LstmkitTypeError(f"{where} needs metadata={{'help': ...}} to be a flag")
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        raise LstmkitTypeError(f"{where} needs a default to be a flag")
    shown = ("yes" if default else "no") if kind is bool else str(default)
    options: dict[str, Any] = {
        "default": None,
        "help": f"{text} (default: {shown})".replace("%", "%%"),
    }
    if kind is bool:
        return {**options, "action": argparse.BooleanOptionalAction}
    if kind not in (int, float, str):
        raise LstmkitTypeError(f"{where} is a {kind}; a flag is an int, float, str or bool")
    if f.metadata.get("positive"):
        if kind not in _POSITIVE:
            raise LstmkitTypeError(f"{where}: only an int or float can be positive")
        options["type"] = _POSITIVE[kind]
    elif kind is not str:
        options["type"] = kind
    for key in ("choices", "metavar"):
        if key in f.metadata:
            options[key] = f.metadata[key]
    return options
