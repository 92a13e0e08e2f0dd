"""The public API is what lstmkit/__init__.py re-exports, and all of it resolves."""

from __future__ import annotations

import inspect

import lstmkit


def test_everything_in_all_exists() -> None:
    for name in lstmkit.__all__:
        assert hasattr(lstmkit, name), name


def test_public_constructors_take_options_by_keyword_only() -> None:
    for cls in (
        lstmkit.LSTM,
        lstmkit.GRU,
        lstmkit.RNN,
        lstmkit.LSTMCell,
        lstmkit.GRUCell,
        lstmkit.RNNCell,
    ):
        params = list(inspect.signature(cls).parameters.values())
        positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional == ["input_size", "hidden_size"], cls
    params = inspect.signature(lstmkit.Recurrent).parameters
    assert [p for p in params if params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == [
        "cell"
    ]
