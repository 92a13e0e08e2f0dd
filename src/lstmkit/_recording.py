"""The hook through which cells report what they compute, for traces.

Cells call it at every step, ``if _recording.RECORDING is not None: _recording.record(self,
f_t=f_t, ...)``; with no trace running :data:`RECORDING` is None and that test is all the work
they do. :func:`lstmkit.trace` (in :mod:`lstmkit.analysis.trace`) installs a recorder for one
forward pass. This module imports only torch, so that the cells, at the bottom of lstmkit, can
call it without depending on the analysis code above them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple, Protocol

from torch import Tensor, nn

from lstmkit._errors import LstmkitValueError


class Recorder(Protocol):
    """What a running trace offers the code it watches."""

    def add(self, module: nn.Module, values: dict[str, Tensor | float]) -> None:
        """One step's named values of ``module``."""

    def layout(self, cells: Iterable[nn.Module], sorted_indices: Tensor | None) -> None:
        """``cells`` run over a packed batch sorted by ``sorted_indices`` (None: unsorted)."""


RECORDING: Recorder | None = None
"""The recorder of the trace now running, or None (always, outside :func:`lstmkit.trace`)."""


def record(cell: nn.Module, **values: Tensor | float) -> None:
    """Reports one step's intermediates of ``cell``. Cells call it only when
    ``RECORDING is not None``; values that are not tensors (a gate a variant removed, fixed at
    1.0) are left out by the recorder."""
    if RECORDING is not None:
        RECORDING.add(cell, values)


class Quantity(NamedTuple):
    """What a recorded name means, for titles, legends and colour scales."""

    what: str  # in words: "forget gate"
    symbol: str  # the post's symbol in matplotlib's mathtext: r"$f_t$" ("" for none)
    kind: Literal["gate", "fraction", "value"]  # a gate in [0, 1]; another [0, 1]; any real


QUANTITIES: dict[str, Quantity] = {}
"""Every name a cell or module records, with its meaning: filled by :func:`declare`."""


def declare(**quantities: Quantity) -> None:
    """Says what the names a cell records mean (its module calls it once), so that plots and
    pages can label and scale them. A name declared twice must mean the same thing."""
    for name, quantity in quantities.items():
        known = QUANTITIES.get(name)
        if known is not None and known != quantity:
            raise LstmkitValueError(f"{name!r} is declared as {known} already, not as {quantity}")
        QUANTITIES[name] = quantity
