"""Checkpoints that are never half-written: a temporary file, fsync, then an atomic rename."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lstmkit._errors import LstmkitFileNotFoundError, LstmkitValueError
from lstmkit._io import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Writes ``state`` to ``path`` so that a crash at any moment leaves either the previous file
    or the new one, never a torn one (see :func:`lstmkit._io.atomic_write`)."""
    atomic_write(path, lambda f: torch.save(state, f), binary=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint without running any code from it (``weights_only=True``)."""
    file = Path(path)
    if not file.is_file():
        raise LstmkitFileNotFoundError(f"no checkpoint at {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise LstmkitValueError(f"{file} is not a readable lstmkit checkpoint: {error}") from error
    if not isinstance(state, dict) or "format" not in state:
        raise LstmkitValueError(f"{file} is not an lstmkit checkpoint (no 'format' entry)")
    return state
