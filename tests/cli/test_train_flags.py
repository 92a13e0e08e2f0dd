"""The train flags made from the config dataclasses, and what main shows on stderr."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pytest

from lstmkit.cli import build_parser, main
from lstmkit.cli._args import add_dataclass_flags, given_flags
from lstmkit.cli.train import train_config
from lstmkit.train.config import ModelConfig, OptimConfig, RunConfig, TrainConfig

CONFIG_FLAGS = [(kind, f) for kind in (ModelConfig, OptimConfig, RunConfig) for f in fields(kind)]


def _words(text: str) -> str:
    """``text`` with every run of white space one space, as argparse wraps help at any width."""
    return " ".join(text.split())


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return _words(capsys.readouterr().out)


@pytest.mark.parametrize(("kind", "f"), CONFIG_FLAGS, ids=[f.name for _, f in CONFIG_FLAGS])
def test_every_config_field_is_a_train_flag_with_its_metadata_help(
    kind: type, f: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(["train"], capsys)
    flag = "--" + f.name.replace("_", "-")
    if f.type == "bool":
        expected = f"{flag}, --no-{flag[2:]} {f.metadata['help']}"
    elif "choices" in f.metadata:
        expected = f"{flag} {{{','.join(f.metadata['choices'])}}} {f.metadata['help']}"
    else:
        expected = f"{flag} {f.metadata.get('metavar', f.name.upper())} {f.metadata['help']}"
    assert _words(expected) in text


# The train flags' help as it read when the flags were written out by hand, defaults included.
HAND_WRITTEN = {
    "--cell": "layer as name:key=value,... e.g. lstm:chrono=200 or gru:reset_after=false "
    "(default: lstm)",
    "--hidden-size": "hidden units (default: 64)",
    "--num-layers": "stacked layers (default: 1)",
    "--embedding-size": "embedding size for token inputs (default: 16)",
    "--bidirectional": "run each layer both ways (default: no)",
    "--engine": "engine: auto, reference, native, ... (default: auto)",
    "--lr": "AdamW learning rate (default: 0.003)",
    "--weight-decay": "AdamW weight decay (default: 0.01)",
    "--clip": "largest gradient norm, 0 for none (default: 1.0)",
    "--schedule": "learning rate after warm-up (default: constant)",
    "--warmup": "steps of linear warm-up (default: 0)",
    "--steps": "step budget (default: 2000)",
    "--batch-size": "global batch size (default: 64)",
    "--eval-every": "steps between evaluations (default: 100)",
    "--eval-size": "held-out sequences per evaluation (default: 512)",
    "--checkpoint-every": "steps between checkpoints (default: 500)",
    "--log-every": "steps between log lines (default: 10)",
    "--early-stop": "stop once solved (default: yes)",
    "--seed": "seed of the weights and the data (default: 0)",
    "--dropout": "dropout between layers (default: 0.0)",  # the one change: was "(default: 0)"
}


def test_the_generated_help_reads_as_the_hand_written_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(["train"], capsys)
    for flag, help_text in HAND_WRITTEN.items():
        assert help_text in text, flag
    assert "--schedule {constant,cosine,linear}" in text
    assert "--cell SPEC" in text


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", *argv])


def test_no_flags_and_no_file_give_the_dataclass_defaults() -> None:
    assert train_config(_parse()) == TrainConfig()


def test_a_given_flag_overrides_the_config_file_and_an_omitted_one_does_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[model]\ncell = "gru"\nhidden_size = 12\nbidirectional = true\n'
        "[optim]\nlr = 0.5\nwarmup = 4\n"
        "[run]\nsteps = 7\nearly_stop = false\nflush_denormal = false\n",
        encoding="utf-8",
    )
    config = train_config(
        _parse("--config", str(path), "--steps", "3", "--no-bidirectional", "--lr", "0.25")
    )
    # given on the command line: the flag wins over the file
    assert (config.run.steps, config.model.bidirectional, config.optim.lr) == (3, False, 0.25)
    # left out: the file's value stays
    assert (config.model.cell, config.model.hidden_size, config.optim.warmup) == ("gru", 12, 4)
    assert (config.run.early_stop, config.run.flush_denormal) == (False, False)
    # in neither: the default
    assert (config.optim.weight_decay, config.run.eval_every) == (0.01, 100)
    # --early-stop turns on what the file turned off
    assert train_config(_parse("--config", str(path), "--early-stop")).run.early_stop is True


def test_an_unknown_key_in_the_config_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[run]\nstepz = 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['stepz'\] in \[run\]"):
        train_config(_parse("--config", str(path)))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "lstmkit train: error: unknown key(s) ['stepz']" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@dataclass
class Knobs:
    """A config section that no command has: the flags come from the dataclass alone."""

    width: int = field(default=7, metadata={"help": "how wide", "positive": True})
    rate: float = field(default=0.5, metadata={"help": "share, as a % of the whole"})
    mode: str = field(default="a", metadata={"help": "which way", "choices": ("a", "b")})
    fancy_thing: bool = field(default=False, metadata={"help": "be fancy"})


def _knobs_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="knobs")
    add_dataclass_flags(parser, Knobs)
    return parser


def test_a_new_field_is_a_flag_with_its_type_default_and_help() -> None:
    parser = _knobs_parser()
    text = _words(parser.format_help())
    assert "--width WIDTH how wide (default: 7)" in text
    assert "--rate RATE share, as a % of the whole (default: 0.5)" in text
    assert "--mode {a,b} which way (default: a)" in text
    assert "--fancy-thing, --no-fancy-thing be fancy (default: no)" in text

    assert given_flags(parser.parse_args([]), Knobs) == {}
    args = parser.parse_args(["--width", "3", "--rate", "0.25", "--fancy-thing", "--mode", "b"])
    given = given_flags(args, Knobs)
    assert given == {"width": 3, "rate": 0.25, "mode": "b", "fancy_thing": True}
    assert replace(Knobs(), **given) == Knobs(width=3, rate=0.25, mode="b", fancy_thing=True)
    assert given_flags(parser.parse_args(["--no-fancy-thing"]), Knobs) == {"fancy_thing": False}


@pytest.mark.parametrize("argv", [["--width", "0"], ["--mode", "c"], ["--rate", "x"]])
def test_a_generated_flag_rejects_a_bad_value(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        _knobs_parser().parse_args(argv)
    assert stop.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_a_field_without_help_or_of_another_type_is_not_a_flag() -> None:
    @dataclass
    class NoHelp:
        size: int = 3

    @dataclass
    class Table:
        options: dict[str, int] = field(default_factory=dict, metadata={"help": "options"})

    with pytest.raises(TypeError, match="'size' needs metadata"):
        add_dataclass_flags(argparse.ArgumentParser(), NoHelp)
    with pytest.raises(TypeError, match="'options' is a"):
        add_dataclass_flags(argparse.ArgumentParser(), Table)


@pytest.fixture
def lstmkit_logger() -> Iterator[logging.Logger]:
    """The ``lstmkit`` logger, put back as it was afterwards."""
    logger = logging.getLogger("lstmkit")
    handlers, level = list(logger.handlers), logger.level
    for handler in handlers:
        logger.removeHandler(handler)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)


def test_main_shows_the_library_log_on_stderr(
    lstmkit_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    build_log = logging.getLogger("lstmkit.engines.fused.build")
    build_log.info("building before main")  # not shown: nothing is listening yet
    assert main(["tasks"]) == 0
    build_log.info("building the fused CPU engine")
    assert main(["tasks"]) == 0  # a second run adds no second handler
    build_log.info("loaded")
    err = capsys.readouterr().err
    assert err.splitlines() == ["lstmkit: building the fused CPU engine", "lstmkit: loaded"]


def test_main_leaves_a_programs_own_log_handler_alone(
    lstmkit_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    own = logging.NullHandler()
    lstmkit_logger.addHandler(own)
    lstmkit_logger.setLevel(logging.WARNING)
    assert main(["tasks"]) == 0
    assert lstmkit_logger.handlers == [own]
    assert lstmkit_logger.level == logging.WARNING
    logging.getLogger("lstmkit.engines.fused.build").info("building")
    assert "building" not in capsys.readouterr().err
