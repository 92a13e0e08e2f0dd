"""Files that are never half-written, and names safe for files.

:func:`atomic_write` is the one way lstmkit writes a file it may overwrite (checkpoints, configs,
results, pages): the data goes to a temporary file in the same folder, is flushed to disk, and
replaces the target with one rename, after which the folder itself is synced. A crash at any
moment leaves the previous file or the new one, never a torn one. The new file gets the mode an
ordinary ``open(path, "w")`` would give it (0644 under the usual umask), not the temporary
file's 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(
    path: str | Path,
    write: Callable[[IO[Any]], object],
    *,
    binary: bool,
    before_replace: Callable[[], object] | None = None,
) -> Path:
    """Calls ``write(file)`` on a temporary file beside ``path`` and puts it in place atomically.

    ``binary`` opens the file in bytes mode (else UTF-8 text). Creates missing folders. On any
    error, or Ctrl-C, the temporary file is removed and ``path`` is left as it was.
    ``before_replace`` runs once the new content is safely on disk, just before it replaces
    ``path`` (a checkpoint keeps the file it replaces there).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; elsewhere the temporary file's mode is ordinary
            os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)
    return target


def remove_temporaries(*paths: str | Path) -> list[Path]:
    """Removes the temporary files that :func:`atomic_write` left beside these paths when a
    process was killed mid-write (``.NAME.*.tmp``); returns them. Call it where no other process
    is writing those paths."""
    removed = []
    for path in map(Path, paths):
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text), binary=False)


def cache_dir() -> Path:
    """Where lstmkit keeps what it can rebuild (engine choices, prepared datasets):
    ``LSTMKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/lstmkit``, else ``~/.cache/lstmkit``."""
    own = os.environ.get("LSTMKIT_CACHE_DIR")
    if own:
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home folder to be found
            base = tempfile.gettempdir()
    return Path(base) / "lstmkit"


def _default_mode() -> int:
    umask = os.umask(0)  # reading the umask means setting it: done once, at import
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _default_mode()


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


def slug(text: str, *, keep: str = "-_") -> str:
    """``text`` as a file name: letters, digits and the characters in ``keep`` kept, anything
    else ``_`` (``"lstm:chrono=200"`` → ``"lstm_chrono_200"``). Run folders keep the default;
    plots keep ``.`` as well, which separates a cell's place (``rnn.l0``) from its quantity."""
    return "".join(c if c.isalnum() or c in keep else "_" for c in text)
