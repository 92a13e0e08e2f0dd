"""Which engine runs which layer. An engine executes a whole :class:`lstmkit.Recurrent` (all
layers and directions) and says for itself what it supports, so adding one touches no cell."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from torch import Tensor
from torch.nn import Parameter

from lstmkit._errors import LstmkitValueError
from lstmkit._state import State
from lstmkit.cells.base import RecurrentCell
from lstmkit.engines.regularizers import Regularizers


class Layer(Protocol):
    """What an engine needs of the layer it runs (:class:`lstmkit.Recurrent` is one): its
    cells, how they are stacked, and its settings. Engines sit below the layers and know them
    only through this."""

    num_layers: int
    dropout: float
    training: bool
    regularizers: Regularizers

    @property
    def engine(self) -> str: ...

    @property
    def num_directions(self) -> int: ...

    def cell(self, layer: int, *, reverse: bool = False) -> RecurrentCell[Any]: ...

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]: ...

    def iter_cells(self) -> Iterator[RecurrentCell[Any]]:
        """The cells in torch.nn's order: l0, l0_reverse, l1, ..."""
        ...


class Resets(NamedTuple):
    """Where sequences start over, for :meth:`Engine.run_stream`: where ``mask[t, b]`` is true,
    sequence b's state before step t is ``state``'s row b instead of the state carried from
    step t - 1 (from ``hx`` at t = 0), in every layer. In reverse, a sequence that starts over
    at step t ends at t - 1, so the reverse pass from t - 1 down starts from ``state`` (and a
    reset at step 0 leaves the reverse direction alone)."""

    mask: Tensor
    """``(T, B)`` bool, on the input's device."""
    state: State
    """The state a reset sequence starts from, stacked like hx: ``(L·D, B, *)``."""


class Engine(ABC):
    """Executes the recurrence of a layer.

    ``run(layer, x, batch_sizes, hx)`` receives time-major input, already validated: either a
    padded tensor ``x`` of shape ``(T, B, F)`` with ``batch_sizes=None``, or the ``data`` of a
    PackedSequence ``(N, F)`` with its ``batch_sizes`` (a CPU int64 tensor of length T, sorted
    batch order). ``hx`` is the layer's state, every tensor ``(L·D, B, *)``. It returns the
    output in the input's layout, ``(T, B, D·O)`` or ``(N, D·O)``, and the final state like hx.

    :meth:`run_stream` is ``run`` with resets inside the sequence and the cell state of every
    step; an engine offers it by overriding it (the built-in engines all do).
    """

    name: str
    supports: str
    """What the engine can run, in words, for error messages."""

    @abstractmethod
    def unsupported(self, layer: Layer) -> str | None:
        """None if this engine can run ``layer``, else the reason it cannot."""

    def auto_priority(self, layer: Layer, *, training: bool, priority: int) -> float:
        """Where "auto" ranks this engine for ``layer`` (higher first); by default the priority
        it was registered with. ``training`` says whether gradients will be needed."""
        return priority

    @abstractmethod
    def run(
        self, layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State
    ) -> tuple[Tensor, State]: ...

    def run_stream(
        self,
        layer: Layer,
        x: Tensor,
        batch_sizes: Tensor | None,
        hx: State,
        *,
        resets: Resets | None = None,
        cell_states: bool = False,
    ) -> tuple[Tensor, State, Tensor | None]:
        """:meth:`run`, with sequences that start over where ``resets`` says (padded input
        only: ``batch_sizes`` is then None) and, with ``cell_states``, also the cell state c of
        every step (the layer's cells have a state with a field ``c``): ``(L, T, B, D·H)``, or
        ``(L, N, D·H)`` for packed data, per layer the directions side by side as in the output.
        Returns the output, the final state and the cell states (None unless asked). By default
        an engine offers neither, and says so."""
        raise LstmkitValueError(
            f"engine {self.name!r} does not run resets= or return_cell_states=True; the "
            "built-in engines ('reference', 'native', 'fused') do"
        )

    @property
    def streams(self) -> bool:
        """Whether this engine offers :meth:`run_stream`."""
        return type(self).run_stream is not Engine.run_stream


_ENGINES: dict[str, tuple[int, Engine]] = {}
_VERSION = [0]  # bumped by every change of the registry, so layers know to choose again


def registry_version() -> int:
    return _VERSION[0]


def register_engine(engine: Engine, *, priority: int) -> None:
    """Makes ``engine`` available by name; ``engine="auto"`` tries engines by falling priority
    and takes the first that supports the layer."""
    if engine.name == "auto":
        raise LstmkitValueError("'auto' is reserved for choosing among the registered engines")
    _ENGINES[engine.name] = (priority, engine)
    _VERSION[0] += 1


def unregister_engine(name: str) -> None:
    """Removes an engine that :func:`register_engine` added."""
    if name not in _ENGINES:
        check_engine_name(name)
        raise LstmkitValueError(f"{name!r} is not a registered engine")
    del _ENGINES[name]
    _VERSION[0] += 1


def engine_names() -> list[str]:
    """Registered engines, in the order "auto" tries them."""
    return [name for name, _ in sorted(_ENGINES.items(), key=lambda item: -item[1][0])]


def check_engine_name(name: object) -> None:
    if name != "auto" and name not in _ENGINES:
        valid = ", ".join(repr(n) for n in ["auto", *engine_names()])
        raise LstmkitValueError(f"unknown engine {name!r}; expected one of {valid}")


def get_engine(name: str) -> Engine:
    check_engine_name(name)
    return _ENGINES[name][1]


def supporting_engines(layer: Layer, *, training: bool = True) -> list[Engine]:
    """The engines that can run ``layer``, best first by their static ranking
    (:meth:`Engine.auto_priority`); empty if none can."""
    ranked = []
    for candidate, (priority, engine) in _ENGINES.items():
        if engine.unsupported(layer) is None:
            rank = engine.auto_priority(layer, training=training, priority=priority)
            ranked.append((-rank, candidate, engine))
    return [engine for *_, engine in sorted(ranked, key=lambda item: item[:2])]


def select_engine(name: str, layer: Layer, *, training: bool = True) -> Engine:
    """The engine that will run ``layer``: the named one, or for "auto" the highest-ranked one
    that can (see :meth:`Engine.auto_priority`). This is the static ranking; a layer's "auto"
    measures instead where it may (:mod:`lstmkit.engines.tuning`)."""
    if name == "auto":
        ranked = supporting_engines(layer, training=training)
        if ranked:
            return ranked[0]
        reasons = [f"{n}: {e.unsupported(layer)}" for n, (_, e) in _ENGINES.items()]
        raise LstmkitValueError("no engine can run this layer (" + "; ".join(reasons) + ")")
    engine = get_engine(name)
    reason = engine.unsupported(layer)
    if reason is not None:
        raise LstmkitValueError(
            f"engine {name!r} cannot run this layer: {reason}. It supports {engine.supports}"
        )
    return engine
