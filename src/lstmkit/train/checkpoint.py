"""Checkpoints that are never half-written: a temporary file, fsync, then an atomic rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` so that a crash at any moment leaves either the previous file
    or the new one, never a torn one: the data goes to a temporary file in the same folder, is
    flushed to disk, and replaces ``path`` with one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint without running any code from it (``weights_only=True``)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint at {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{file} is not a readable lstmkit checkpoint: {error}") from error
    if not isinstance(state, dict) or "format" not in state:
        raise ValueError(f"{file} is not an lstmkit checkpoint (no 'format' entry)")
    return state


def _fsync_directory(folder: Path) -> None:
    # makes the rename itself durable; not every platform can open a folder
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
