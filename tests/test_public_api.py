"""The public API is what lstmkit/__init__.py re-exports, and all of it resolves."""

from __future__ import annotations

import importlib
import inspect
import re
import sys

import pytest

import lstmkit
from lstmkit import _moved
from lstmkit.modules import SequenceModel


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


def test_the_old_gradient_flow_path_leaves_the_function_callable() -> None:
    sys.modules.pop("lstmkit.gradient_flow", None)
    with pytest.warns(DeprecationWarning, match="lstmkit.gradient_flow has moved"):
        importlib.import_module("lstmkit.gradient_flow")
    # importing a submodule sets it on its package, where the function of that name lives
    layer = lstmkit.RNN(2, 4, batch_first=True)
    model = SequenceModel(layer, vocab_size=None, output_size=1, readout="last")
    flow = lstmkit.gradient_flow(model, "adding:length=5")
    assert isinstance(flow, lstmkit.GradientFlow)


def test_a_star_import_of_an_old_path_gives_its_names() -> None:
    sys.modules.pop("lstmkit.grid", None)
    names: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match="lstmkit.grid has moved"):
        exec("from lstmkit.grid import *", names)
    assert names["GridLSTM2d"] is lstmkit.GridLSTM2d
    assert names["lstm_transform"] is lstmkit.lstm_transform


@pytest.mark.parametrize(
    ("module", "name", "home"),
    [
        ("lstmkit.layers", "stack_states", "lstmkit._state"),
        ("lstmkit.cells.base", "init_uniform_", "lstmkit.cells.functional"),
        ("lstmkit.cells.base", "add_torch_weights", "lstmkit.cells.functional"),
    ],
)
def test_helpers_that_moved_out_of_a_module_still_resolve(
    module: str, name: str, home: str
) -> None:
    with pytest.warns(DeprecationWarning, match=f"{module}.{name} has moved to {home}"):
        found = getattr(importlib.import_module(module), name)
    assert found is getattr(importlib.import_module(home), name)


def test_analysis_modules_are_modules_not_the_functions_they_define() -> None:
    import lstmkit.analysis.gradient_flow as flow_module
    import lstmkit.analysis.trace as trace_module

    assert inspect.ismodule(trace_module)
    assert inspect.ismodule(flow_module)
    assert trace_module.trace is lstmkit.trace
