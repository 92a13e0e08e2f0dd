"""A cell family that lstmkit does not ship, declaring names nobody else records: plots and the
explain page must label and scale them from the declaration alone."""

from __future__ import annotations

import pytest

from lstmkit import _recording
from lstmkit._recording import Quantity

ZETA = Quantity("zeta gate of a made-up cell", r"$\zeta_t$", "gate")
ETA = Quantity("share of a made-up mixture", r"$\eta_t$", "fraction")


@pytest.fixture
def made_up_cell(monkeypatch: pytest.MonkeyPatch) -> dict[str, Quantity]:
    """Declares ``zeta_t`` (a gate) and ``eta_t`` (a fraction) as a new cell module would, and
    returns the declarations; they are gone from :data:`lstmkit._recording.QUANTITIES` again after
    the test (or after ``monkeypatch.undo()``)."""
    declared = {"zeta_t": ZETA, "eta_t": ETA}
    assert not declared.keys() & _recording.QUANTITIES.keys()
    monkeypatch.setattr(_recording, "QUANTITIES", dict(_recording.QUANTITIES))
    _recording.declare(**declared)
    return declared
