"""The recording hook's catalog of what recorded names mean."""

from __future__ import annotations

import pytest

import lstmkit
from lstmkit import _recording
from lstmkit._recording import Quantity


def test_every_built_in_cell_declares_what_it_records() -> None:
    catalog = _recording.QUANTITIES
    for name in ("i_t", "f_t", "C_tilde", "C_t", "o_t", "h_t", "r_t", "z_t", "n_t", "d_t"):
        assert name in catalog, name
    assert catalog["f_t"] == Quantity("forget gate", r"$f_t$", "gate")
    assert catalog["alpha_t"].kind == "fraction"
    assert lstmkit.AttentionDecoder is not None  # the module that declared alpha_t is loaded


def test_a_name_declared_twice_must_mean_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_recording, "QUANTITIES", dict(_recording.QUANTITIES))
    _recording.declare(q_t=Quantity("a test quantity", r"$q_t$", "value"))
    _recording.declare(q_t=Quantity("a test quantity", r"$q_t$", "value"))  # the same: fine
    with pytest.raises(ValueError, match="'q_t' is declared as"):
        _recording.declare(q_t=Quantity("something else", r"$q_t$", "gate"))
