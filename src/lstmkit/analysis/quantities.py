"""What the recorded names mean, for the plots and the explain page.

Every cell family says what the names it records mean when its module is imported
(:func:`lstmkit._recording.declare`); this module reads that catalog,
:data:`lstmkit._recording.QUANTITIES`, each time it is asked, so a cell family added later, with
names of its own, is labelled and scaled without a change here. A name nobody declared is shown
as it is and treated as any real value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Importing these runs the declare(...) of every built-in cell family and module (the attention
# decoder declares alpha_t and beta_t), whatever the caller imported before.
import lstmkit.cells  # the declarations are what this import is for
import lstmkit.modules  # noqa: F401
from lstmkit import _recording
from lstmkit._recording import Quantity


def declared(name: str) -> Quantity | None:
    """What ``name`` means, or None when no cell declared it."""
    return _recording.QUANTITIES.get(name)


def in_unit_interval(name: str) -> bool:
    """Whether every value of ``name`` lies in [0, 1]: a gate or another fraction."""
    quantity = declared(name)
    return quantity is not None and quantity.kind in ("gate", "fraction")


def is_gate(name: str) -> bool:
    """Whether ``name`` is a gate (a sigmoid in [0, 1] that scales another quantity)."""
    quantity = declared(name)
    return quantity is not None and quantity.kind == "gate"


def gates() -> list[str]:
    """Every declared gate, in name order."""
    return sorted(name for name, q in _recording.QUANTITIES.items() if q.kind == "gate")


def in_order(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``names`` with those in ``preferred`` first, in its order; the others after them, in name
    order."""
    rank = {name: k for k, name in enumerate(preferred)}
    return sorted(names, key=lambda n: (rank.get(n, len(preferred)), n))
