"""Checkpoints that are never half-written and never run code: a temporary file, fsync, then an
atomic rename; the previous checkpoint kept beside the new one (``checkpoint.prev.pt``) as a
fallback; read with ``weights_only=True`` and checked entry by entry before anything is built
from them."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lstmkit._errors import (
    LstmkitFileNotFoundError,
    LstmkitOSError,
    LstmkitValueError,
    one_line,
)
from lstmkit._io import atomic_write
from lstmkit._warnings import LstmkitWarning

FORMAT = 1
"""The checkpoint layout this lstmkit writes and reads."""

# every entry a checkpoint holds, and its type
ENTRIES: dict[str, type] = {
    "format": int,
    "step": int,
    "config": dict,
    "model": dict,
    "optimizer": dict,
    "scheduler": dict,
    "rng": dict,
    "task": dict,
    "model_info": dict,
    "progress": dict,
}
# the entries of the tables among them that a run reads
FIELDS: dict[str, tuple[str, ...]] = {
    "rng": ("torch",),
    "task": ("name", "state"),
    "model_info": ("vocab_size", "input_size", "output_size", "readout"),
    "progress": ("solved_step", "last_eval", "seconds"),
}


def previous_of(path: str | Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.pt`` → ``checkpoint.prev.pt``."""
    file = Path(path)
    return file.with_name(f"{file.stem}.prev{file.suffix}")


def save_checkpoint(path: str | Path, state: dict[str, Any], *, keep_previous: bool = True) -> None:
    """Writes ``state`` to ``path`` so that a crash at any moment leaves either the previous file
    or the new one, never a torn one (see :func:`lstmkit._io.atomic_write`); with
    ``keep_previous`` the file it replaces stays as :func:`previous_of` ``path``. A write that
    fails (a full disk) raises an :class:`lstmkit.LstmkitOSError` that says so; the files that
    were there are left as they were."""
    target = Path(path)
    keep = (lambda: _keep_previous(target)) if keep_previous and target.is_file() else None
    try:
        atomic_write(target, lambda f: torch.save(state, f), binary=True, before_replace=keep)
    except OSError as error:
        reason = error.strerror or str(error)
        raise LstmkitOSError(
            f"could not write the checkpoint {target} ({reason}); the last one written is intact, "
            "and --resume continues from it once the problem is solved"
        ) from error


def _keep_previous(target: Path) -> None:
    """Makes ``target``'s content the previous checkpoint, with ``target`` in place throughout:
    a second name for the file (a copy where links are not possible), renamed over the old one."""
    previous = previous_of(target)
    temporary = previous.with_name(f".{previous.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(target, temporary)
    except OSError:
        shutil.copyfile(target, temporary)
    os.replace(temporary, previous)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint without running any code from it (``weights_only=True``) and checks
    that it holds every entry a checkpoint has, of its type; a damaged, empty, foreign or
    incomplete file raises an :class:`lstmkit.LstmkitValueError` that says which."""
    file = Path(path)
    if not file.is_file():
        raise LstmkitFileNotFoundError(f"no checkpoint at {file}")
    if file.stat().st_size == 0:
        raise LstmkitValueError(f"{file} is empty (0 bytes): not a checkpoint")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise LstmkitValueError(f"{file} is not a readable checkpoint: {_why(error)}") from None
    check_entries(state, file)
    return state  # type: ignore[no-any-return]


def load_latest(path: str | Path) -> tuple[dict[str, Any], Path]:
    """The checkpoint at ``path``, or, where that one is damaged or missing, the previous one
    beside it (with an :class:`lstmkit.LstmkitWarning` that says why); and the file read."""
    file, previous = Path(path), previous_of(path)
    try:
        return load_checkpoint(file), file
    except (LstmkitValueError, LstmkitFileNotFoundError) as error:
        if not previous.is_file():
            raise
        reason = error
    state = load_checkpoint(previous)
    warnings.warn(
        f"{reason}; using the previous checkpoint, {previous} (step {state['step']})",
        LstmkitWarning,
        stacklevel=2,
    )
    return state, previous


def _why(error: BaseException) -> str:
    """Why torch could not read a file, in one line, without torch's advice to unpickle it."""
    text = one_line(error)
    if "weights_only" in text or "Unsupported global" in text:
        return (
            "it holds Python objects that only unpickling would read, and unpickling can run "
            "code from the file; lstmkit reads tensors, numbers, strings and containers only"
        )
    return f"{type(error).__name__}: {text}"


def check_entries(state: object, file: str | Path) -> None:
    """Checks that ``state`` holds every entry of a checkpoint, of its type, with the fields a
    run reads, in the format this lstmkit reads; raises an :class:`lstmkit.LstmkitValueError`
    that names what is wrong in ``file``."""
    if not isinstance(state, dict):
        got = type(state).__name__
        raise LstmkitValueError(f"{file} is not an lstmkit checkpoint: expected a dict, got {got}")
    missing = [name for name in ENTRIES if name not in state]
    if missing:
        raise LstmkitValueError(
            f"{file} is not a complete lstmkit checkpoint: it lacks {', '.join(missing)}"
        )
    for name, kind in ENTRIES.items():
        if not isinstance(state[name], kind) or isinstance(state[name], bool):
            raise LstmkitValueError(
                f"{file}: entry {name!r} should be a {kind.__name__}, got "
                f"{type(state[name]).__name__}"
            )
    for name, wanted in FIELDS.items():
        lacking = [key for key in wanted if key not in state[name]]
        if lacking:
            raise LstmkitValueError(f"{file}: entry {name!r} lacks {', '.join(lacking)}")
    if state["format"] != FORMAT:
        raise LstmkitValueError(
            f"{file} has checkpoint format {state['format']}; this lstmkit reads format {FORMAT}"
        )


def check_weights(model: nn.Module, weights: dict[str, Any], file: str | Path) -> None:
    """Checks that ``weights`` fit ``model`` (which may live on the meta device, so that a
    configuration of absurd sizes costs nothing): the same names, tensors of the same shapes; a
    mismatch raises an :class:`lstmkit.LstmkitValueError` that names the first few."""
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in weights]
    problems += [f"unexpected {k}" for k in weights if k not in expected]
    for key, value in weights.items():
        if key not in expected:
            continue
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif value.shape != expected[key].shape:
            shape, want = tuple(value.shape), tuple(expected[key].shape)
            problems.append(f"{key} has shape {shape}, the model's has {want}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise LstmkitValueError(
            f"the weights in {file} do not fit the model its configuration describes: "
            + "; ".join(problems[:3])
            + more
        )
