"""The public API is what lstmkit/__init__.py re-exports, and all of it resolves."""

from __future__ import annotations

import importlib
import inspect
import re
import sys

import pytest

import lstmkit
from lstmkit import _moved


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


OLD_PATHS = {
    "lstmkit.tracing": {"trace": "lstmkit.analysis.trace", "RECORDING": "lstmkit._recording"},
    "lstmkit.gradient_flow": {"gradient_flow": "lstmkit.analysis.gradient_flow"},
    "lstmkit.plots": {"heatmap": "lstmkit.analysis.plots"},
    "lstmkit.explain": {"explain_page": "lstmkit.analysis.explain"},
    "lstmkit.bench": {"run_bench": "lstmkit.experiments.bench"},
    "lstmkit.cell_table": {"run_demo": "lstmkit.experiments.cell_table"},
    "lstmkit.sample": {"sample_text": "lstmkit.train.sample"},
    "lstmkit.attention": {"AttentionDecoder": "lstmkit.modules.attention"},
    "lstmkit.models": {
        "register_layer": "lstmkit.layers.registry",
        "SequenceModel": "lstmkit.modules.sequence",
    },
    "lstmkit.grid": {
        "lstm_transform": "lstmkit.cells.grid",
        "GridLSTM": "lstmkit.layers.variants",
        "GridLSTM2d": "lstmkit.modules.grid2d",
    },
    "lstmkit.depth_gated": {
        "DepthGatedLSTMCell": "lstmkit.cells.depth_gated",
        "DepthGatedLSTM": "lstmkit.layers.variants",
    },
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_the_first_layouts_paths_still_import_with_a_deprecation_warning(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{re.escape(old)} has moved to lstmkit\."):
        module = importlib.import_module(old)
    for name, home in OLD_PATHS[old].items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), name
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = module.no_such_name


def test_every_moved_path_is_covered_here() -> None:
    assert set(OLD_PATHS) == set(_moved.MOVED)
