"""Traces: every named intermediate of every cell at every step of a real forward pass.

``lstmkit.trace(model, inputs)`` runs ``model(*inputs)`` once with every lstmkit layer on the
reference engine and records what each cell computes at each step, under keys
``"<cell>.<name>"``: ``<cell>`` is the cell's place in the model (``rnn.l0``,
``rnn.l1_reverse``, ``decoder.cell``), ``<name>`` the post's symbol for the quantity::

    LSTM family   i_t, f_t, C_tilde, C_t, o_t, h_t   (a gate that a variant removes is absent;
                  with a projection h_t is the projected output, m_t the hidden state before it)
    GRU           r_t, z_t, n_t, h_t   (z_t as torch.nn's: h_t = (1 - z_t)·n_t + z_t·h_{t-1})
    RNN           h_t
    MUT1-3        z_t, r_t, h_t
    Clockwork     active (1.0 where a unit's module updated), h_t
    Depth-Gated   i_t, f_t, C_tilde, d_t (the depth gate), C_t, o_t, h_t: every layer side by
                  side, (B, L·H) ((B, (L-1)·H) for d_t), as in the cell's state
    Grid (time)   h_time, m_time (every block's time vectors side by side), h_t (the output)
    attention     alpha_t (the weights over the annotations), beta_t (the context gate)

Every traced tensor is time-major, ``(T, B, ...)``, one entry per step in the order of the input
(a reverse direction's steps are put back in input order). Recording is a module-level switch
that the cells test once per step; with no trace running it is never on, so a forward pass
that is not traced does no recording work at all (cells test
``lstmkit._recording.RECORDING is not None`` and nothing more).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstmkit import _recording
from lstmkit._checks import describe
from lstmkit._errors import (
    LstmkitFileNotFoundError,
    LstmkitKeyError,
    LstmkitRuntimeError,
    LstmkitTypeError,
    LstmkitValueError,
    one_line,
)
from lstmkit._io import atomic_write
from lstmkit.cells.base import RecurrentCell
from lstmkit.layers.recurrent import Recurrent


class Recorder:
    """Collects what the cells report during one traced forward pass."""

    def __init__(self, places: dict[int, str], *, keep_graph: bool) -> None:
        self.places = places  # id(module) -> its key in the trace
        self.keep_graph = keep_graph
        self.steps: dict[str, list[dict[str, Tensor]]] = {}
        self.layouts: dict[str, Tensor | None] = {}  # key -> a packed batch's sorted_indices

    def layout(self, cells: Iterable[nn.Module], sorted_indices: Tensor | None) -> None:
        """Notes that ``cells`` run over a packed batch: their step t holds the first n_t
        sequences of the batch sorted by length, ``sorted_indices`` (None: unsorted)."""
        for cell in cells:
            key = self.places.get(id(cell))
            if key is not None:
                self.layouts[key] = sorted_indices

    def add(self, module: nn.Module, values: dict[str, Tensor | float]) -> None:
        place = self.places.get(id(module))
        if place is None:
            return  # a module outside the traced model
        kept = {
            name: (v if self.keep_graph else v.detach())
            for name, v in values.items()
            if isinstance(v, Tensor)
        }
        self.steps.setdefault(place, []).append(kept)


@dataclass
class Trace:
    """The recorded intermediates of one forward pass: ``values["rnn.l0.f_t"]`` is ``(T, B, H)``.

    ``outputs`` is what the model returned (not saved with the trace); ``meta`` holds plain
    JSON-able facts: for each traced cell its class and whether it runs in reverse.
    """

    values: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None

    def __getitem__(self, key: str) -> Tensor:
        try:
            return self.values[key]
        except KeyError:
            raise LstmkitKeyError(
                f"no {key!r} in this trace; it has {', '.join(sorted(self.values))}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def keys(self) -> list[str]:
        return sorted(self.values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @property
    def cells(self) -> list[str]:
        """The traced cells' keys (``rnn.l0``, ...), in the order they ran."""
        return list(self.meta.get("cells", {}))

    def names(self, cell: str) -> list[str]:
        """The quantities recorded for ``cell`` (``["C_t", "C_tilde", "f_t", ...]``)."""
        prefix = cell + "."
        found = sorted(k[len(prefix) :] for k in self.values if k.startswith(prefix))
        if not found:
            raise LstmkitKeyError(f"no cell {cell!r} in this trace; it has {', '.join(self.cells)}")
        return found

    def save(self, path: str | Path) -> Path:
        """Writes the trace to ``.npz`` (NumPy) or ``.safetensors``, chosen by the suffix.

        The file is written beside ``path`` and renamed over it (:func:`lstmkit._io.atomic_write`),
        so a crash never leaves a torn trace."""
        target = Path(path)
        arrays = {k: v.detach().cpu().contiguous() for k, v in self.values.items()}
        meta = json.dumps(self.meta)
        write: Callable[[IO[Any]], object]
        if target.suffix == ".npz":
            entries = {k: _to_numpy(v) for k, v in arrays.items()}
            entries["__meta__"] = np.array(meta)

            def write(f: IO[Any]) -> None:
                np.savez_compressed(f, **entries)  # type: ignore[arg-type]

        elif target.suffix == ".safetensors":
            from safetensors.torch import save

            data = save(arrays, metadata={"lstmkit": meta})

            def write(f: IO[Any]) -> None:
                f.write(data)

        else:
            raise LstmkitValueError(
                f"a trace is saved as .npz or .safetensors, got {target.name!r}"
            )
        return atomic_write(target, write, binary=True)

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Reads a trace that :meth:`save` wrote; never runs code from the file."""
        source = Path(path)
        if not source.is_file():
            raise LstmkitFileNotFoundError(f"no trace at {source}")
        if source.suffix not in (".npz", ".safetensors"):
            raise LstmkitValueError(
                f"a trace is read from .npz or .safetensors, got {source.name!r}"
            )
        try:
            values, meta = _read(source)
        except LstmkitValueError:
            raise
        except Exception as error:  # a damaged file: zip, safetensors, JSON or array errors
            raise LstmkitValueError(
                f"{source} is not a readable lstmkit trace: {type(error).__name__}: "
                f"{one_line(error)}"
            ) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("cells", {}), dict):
            raise LstmkitValueError(f"{source} is not an lstmkit trace (its metadata is damaged)")
        return cls(values, meta)


def _read(source: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """A trace file's values and metadata; raises whatever its reader raises."""
    if source.suffix == ".npz":
        # opened here, so that a damaged archive that np.load gives up on is closed too
        with open(source, "rb") as file, np.load(file, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                raise LstmkitValueError(f"{source} is not an lstmkit trace (no __meta__ entry)")
            meta = json.loads(str(data["__meta__"]))
            values = {k: torch.from_numpy(data[k]) for k in data.files if k != "__meta__"}
        return values, meta
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as f:
        header = f.metadata() or {}
        if "lstmkit" not in header:
            raise LstmkitValueError(f"{source} is not an lstmkit trace (no lstmkit metadata)")
        meta = json.loads(header["lstmkit"])
        values = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    return values, meta


def _to_numpy(t: Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def trace(
    model: nn.Module,
    inputs: Tensor | PackedSequence | Sequence[Any],
    *,
    keep_graph: bool = False,
    **kwargs: Any,
) -> Trace:
    """Runs ``model(*inputs, **kwargs)`` (``model(inputs, **kwargs)`` for one tensor or packed
    batch) once and records every intermediate of every lstmkit cell in it; see the module's
    docstring for the names. ``kwargs`` go to the model (``lengths=`` for instance).

    The layers run on the reference engine for the pass (their engine setting is put back
    after), so the outputs equal an untraced pass on the reference engine exactly and the
    faster engines' within their tested tolerance. The model runs as it is: call ``.eval()``
    first for evaluation behaviour. Without ``keep_graph`` the pass runs under
    ``torch.no_grad()``; with it, the recorded tensors stay in the autograd graph (as
    :func:`lstmkit.analysis.gradient_flow` needs).

    Sequences of different lengths (a packed batch, or ``lengths=``) are traced too: each
    traced tensor is still ``(T, B, ...)`` in the batch's order, NaN past a sequence's length.
    """
    outputs, recorder, cells = run_recorded(model, inputs, keep_graph=keep_graph, **kwargs)
    values: dict[str, Tensor] = {}
    for key, steps in recorder.steps.items():
        reverse = key in cells and cells[key][1]
        ordered = steps[::-1] if reverse else steps
        for name in ordered[0]:
            per_step = [s[name] for s in ordered]
            if key in recorder.layouts:
                values[f"{key}.{name}"] = _unpack(per_step, recorder.layouts[key])
            else:
                values[f"{key}.{name}"] = torch.stack(per_step)
    classes = {path or type(m).__name__: type(m).__name__ for path, m in model.named_modules()}
    meta = {
        "cells": {
            key: {
                "class": type(cells[key][0]).__name__ if key in cells else classes[key],
                "reverse": key in cells and cells[key][1],
            }
            for key in recorder.steps
        }
    }
    return Trace(values, meta, outputs)


def _unpack(per_step: list[Tensor], sorted_indices: Tensor | None) -> Tensor:
    """Steps of a packed batch, ``(n_t, ...)`` each in input order, as ``(T, B, ...)`` in the
    batch's own order, NaN past each sequence's length."""
    first = per_step[0]  # the longest step: every sequence takes part
    full = first.new_full((len(per_step), *first.shape), float("nan"))
    rows = torch.arange(first.shape[0]) if sorted_indices is None else sorted_indices.cpu()
    for t, value in enumerate(per_step):
        full[t, rows[: value.shape[0]].to(full.device)] = value
    return full


def run_recorded(
    model: nn.Module,
    inputs: Tensor | PackedSequence | Sequence[Any],
    *,
    keep_graph: bool,
    **kwargs: Any,
) -> tuple[Any, Recorder, dict[str, tuple[nn.Module, bool]]]:
    """Runs ``model`` once with recording on: its outputs, the recorder with every step's
    values (in the order the steps ran), and the traced cells by key with their direction."""
    if not isinstance(model, nn.Module):
        raise LstmkitTypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    one = isinstance(inputs, (Tensor, PackedSequence))  # a PackedSequence is a tuple too
    args = (inputs,) if one else tuple(inputs)
    cells = _traced_cells(model)
    if not cells:
        raise LstmkitValueError(f"{type(model).__name__} has no lstmkit cell to trace")
    if _recording.RECORDING is not None:
        raise LstmkitRuntimeError("a trace is already running; traces do not nest")
    places = {id(m): path or type(m).__name__ for path, m in model.named_modules()}
    places |= {id(cell): key for key, (cell, _) in cells.items()}
    recorder = Recorder(places, keep_graph=keep_graph)
    with _reference_engines(model), torch.enable_grad() if keep_graph else torch.no_grad():
        _recording.RECORDING = recorder
        try:
            outputs = model(*args, **kwargs)
        finally:
            _recording.RECORDING = None
    return outputs, recorder, cells


def _traced_cells(model: nn.Module) -> dict[str, tuple[nn.Module, bool]]:
    """The cells of ``model``'s lstmkit layers by key (``rnn.l0_reverse``), with whether each runs
    in reverse; a cell used on its own is traced under its module path."""
    found: dict[str, tuple[nn.Module, bool]] = {}
    for path, module in model.named_modules():
        if isinstance(module, Recurrent):
            for key, cell in module.cells.items():
                found[f"{path}.{key}" if path else key] = (cell, key.endswith("_reverse"))
    inside = {id(cell) for cell, _ in found.values()}
    for path, module in model.named_modules():
        if isinstance(module, RecurrentCell) and id(module) not in inside:
            found[path or type(module).__name__] = (module, False)
    return found


@contextmanager
def _reference_engines(model: nn.Module) -> Iterator[None]:
    layers = [m for m in model.modules() if isinstance(m, Recurrent)]
    before = [layer.engine for layer in layers]
    try:
        for layer in layers:
            layer.engine = "reference"
        yield
    finally:
        for layer, engine in zip(layers, before, strict=True):
            layer.engine = engine
