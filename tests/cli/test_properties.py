"""Property-based tests (Hypothesis) of what a user types and the config files they write: any
layer or task spec, any set of train flags and any config file either gives a working
configuration or an lstmkit error (argparse's usage error for a malformed flag), never another
exception."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lstmkit
from lstmkit._spec import Spec
from lstmkit.cli import build_parser
from lstmkit.cli.train import train_config
from lstmkit.layers.registry import LAYERS, build_layer
from lstmkit.tasks import TASKS, make_task
from lstmkit.train.config import TrainConfig

VALUES = st.one_of(
    st.integers(-3, 300).map(str),
    st.floats(-2, 2).map(str),
    st.sampled_from(["true", "false", "none", "", "x", "ifo", "cosine", "1e9", "-0", "nan"]),
)
KEYS = st.sampled_from(
    ["gap", "length", "kind", "peepholes", "variant", "depth", "periods", "priority",
     "reset_after", "layer_norm", "chrono", "forget_bias", "classes", "form", "bogus", ""]
)  # fmt: skip


@st.composite
def specs(draw: Any, names: list[str]) -> str:
    name = draw(st.one_of(st.sampled_from(names), st.sampled_from(["", "nope", "lstm "])))
    options = draw(st.lists(st.tuples(KEYS, VALUES), max_size=3))
    if not options and draw(st.booleans()):
        return name
    return name + ":" + ",".join(f"{k}={v}" for k, v in options)


def _refused_cleanly(call: Any) -> None:
    """Runs ``call``, which may raise an lstmkit error and nothing else."""
    with contextlib.suppress(lstmkit.LstmkitError):
        call()


@given(spec=specs(sorted(LAYERS)))
def test_any_layer_spec_builds_or_says_why(spec: str) -> None:
    _refused_cleanly(lambda: build_layer(Spec.parse(spec), 3, 4))


@given(spec=specs(sorted(TASKS)))
def test_any_task_spec_builds_or_says_why(spec: str) -> None:
    def build() -> None:
        parsed = Spec.parse(spec)
        if parsed.name == "charlm":  # no corpus of the standard library's size in a test
            parsed.options["max_chars"] = 5000
        make_task(parsed.name, **parsed.options)

    _refused_cleanly(build)


FLAGS = st.sampled_from(
    ["--hidden-size", "--num-layers", "--lr", "--steps", "--batch-size", "--schedule", "--warmup",
     "--clip", "--dropout", "--eval-every", "--seed", "--cell", "--embedding-size"]
)  # fmt: skip


@given(flags=st.lists(st.tuples(FLAGS, VALUES), max_size=4), cell=specs(sorted(LAYERS)))
def test_any_train_flags_give_a_config_or_a_usage_error(
    flags: list[tuple[str, str]], cell: str
) -> None:
    argv = ["train", "--cell", cell, "--task", "gap:gap=3"]
    for flag, value in flags:
        argv += [flag, value]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        status = stop.code  # argparse's usage error
    else:
        status = 0
        _refused_cleanly(lambda: train_config(args))
    assert status in (0, 2)


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.floats(allow_nan=False),
              st.sampled_from(["lstm", "gap", "cosine", "x"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["model", "task", "optim", "run", "cell", "name",
                                         "options", "steps", "lr", "hidden_size", "gap", "x"]),
                        inner, max_size=4),
    ),
    max_leaves=12,
)  # fmt: skip


@given(content=st.one_of(JSON.map(json.dumps), st.binary(max_size=200).map(repr)), data=st.data())
def test_any_config_file_loads_or_says_why(
    tmp_path_factory: pytest.TempPathFactory, content: str, data: Any
) -> None:
    suffix = data.draw(st.sampled_from([".json", ".toml"]))
    path = tmp_path_factory.mktemp("config") / f"config{suffix}"
    if data.draw(st.booleans()):
        path.write_bytes(data.draw(st.binary(max_size=100)))  # not even text, perhaps
    else:
        path.write_text(content, encoding="utf-8")
    try:
        config = TrainConfig.load(path)
    except lstmkit.LstmkitError:
        return
    assert isinstance(config, TrainConfig)


def test_a_config_that_is_not_a_table_says_so(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(lstmkit.LstmkitValueError, match="a config is a table of sections, got"):
        TrainConfig.load(path)
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(lstmkit.LstmkitValueError, match="is not valid UTF-8 JSON"):
        TrainConfig.load(path)


def test_an_unknown_layer_option_names_the_valid_ones() -> None:
    # found by the spec property: GridLSTM took no **options, so Python's own TypeError came out
    with pytest.raises(lstmkit.LstmkitTypeError, match=r"cell 'grid': .*'gap'; its options are d"):
        build_layer("grid:gap=0", 3, 4)
    with pytest.raises(lstmkit.LstmkitTypeError, match=r"its options are num_layers, bias"):
        build_layer("gru:gap=0", 3, 4)
