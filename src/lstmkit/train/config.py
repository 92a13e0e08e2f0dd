"""A training run's configuration: four small dataclasses, from flags or a TOML/JSON file.

Every field of ModelConfig, OptimConfig and RunConfig is also a ``lstmkit train`` flag of the same
name (``hidden_size`` → ``--hidden-size``, a bool → ``--x/--no-x``), generated from the field: its
type, its default, and its metadata, which holds the flag's ``help`` (required) and optionally
``positive`` (the flag takes only values > 0), ``choices`` and ``metavar``. A new field is a new
flag with no other edit.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lstmkit._errors import LstmkitFileNotFoundError, LstmkitValueError, one_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class ModelConfig:
    # what is trained: a sequence model (a layer with a readout) or one of the models of the
    # post's last section, by name and options: "draw:glimpses=16,attention=false"
    kind: str = field(
        default="sequence",
        metadata={
            "help": "model kind as name:key=value,...: sequence (a layer from --cell with a "
            "readout), vrnn, storn, draw or captioner, e.g. draw:glimpses=16",
            "metavar": "SPEC",
        },
    )
    # a layer by name and options: "lstm", "lstm:chrono=200", "gru:reset_after=false"
    cell: str = field(
        default="lstm",
        metadata={
            "help": "layer as name:key=value,... e.g. lstm:chrono=200 or gru:reset_after=false",
            "metavar": "SPEC",
        },
    )
    hidden_size: int = field(default=64, metadata={"help": "hidden units", "positive": True})
    num_layers: int = field(default=1, metadata={"help": "stacked layers", "positive": True})
    # token inputs are embedded in this many dimensions
    embedding_size: int = field(
        default=16, metadata={"help": "embedding size for token inputs", "positive": True}
    )
    # between layers
    dropout: float = field(default=0.0, metadata={"help": "dropout between layers"})
    bidirectional: bool = field(default=False, metadata={"help": "run each layer both ways"})
    engine: str = field(default="auto", metadata={"help": "engine: auto, reference, native, ..."})


@dataclass
class TaskConfig:
    name: str = "gap"
    options: dict[str, Any] = field(default_factory=dict)  # the task's keyword options


@dataclass
class OptimConfig:
    # AdamW's learning rate
    lr: float = field(default=3e-3, metadata={"help": "AdamW learning rate", "positive": True})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    # largest gradient norm; 0 turns clipping off
    clip: float = field(default=1.0, metadata={"help": "largest gradient norm, 0 for none"})
    # learning rate after warm-up: constant, cosine or linear decay
    schedule: str = field(
        default="constant",
        metadata={"help": "learning rate after warm-up", "choices": SCHEDULES},
    )
    # steps of linear warm-up
    warmup: int = field(default=0, metadata={"help": "steps of linear warm-up"})


@dataclass
class RunConfig:
    # the step budget
    steps: int = field(default=2000, metadata={"help": "step budget", "positive": True})
    # the global batch; data-parallel processes each take a share
    batch_size: int = field(default=64, metadata={"help": "global batch size", "positive": True})
    # steps between evaluations on held-out data
    eval_every: int = field(
        default=100, metadata={"help": "steps between evaluations", "positive": True}
    )
    # held-out sequences per evaluation
    eval_size: int = field(
        default=512, metadata={"help": "held-out sequences per evaluation", "positive": True}
    )
    # steps between checkpoints (one is also written at the end)
    checkpoint_every: int = field(
        default=500, metadata={"help": "steps between checkpoints", "positive": True}
    )
    # steps between training-loss lines in metrics.jsonl
    log_every: int = field(
        default=10, metadata={"help": "steps between log lines", "positive": True}
    )
    # stop once the held-out metrics count as solved
    early_stop: bool = field(default=True, metadata={"help": "stop once solved"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and the data"})
    # Treat subnormal floats as zero while training on the CPU. A vanishing gradient fills the
    # backward pass with subnormals, which x86 processes many times slower: an RNN at gap 200
    # trained 3x slower without this, to the same result.
    flush_denormal: bool = field(
        default=True,
        metadata={"help": "treat subnormal floats as zero while training on the CPU (faster)"},
    )


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TrainConfig:
        """Builds a config from nested tables; an unknown section or key is an error."""
        if not isinstance(data, dict):
            got = type(data).__name__
            raise LstmkitValueError(f"a config is a table of sections, got a {got}")
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise LstmkitValueError(
                f"unknown config section(s) {sorted(unknown)}; expected {sorted(_SECTIONS)}"
            )
        parts: dict[str, Any] = {}
        for name, kind in _SECTIONS.items():
            table = data.get(name, {})
            if not isinstance(table, dict):
                raise LstmkitValueError(f"config section [{name}] must be a table, got {table!r}")
            parts[name] = _build(kind, table, name)
        config = TrainConfig(**parts)
        validate(config)
        return config

    @staticmethod
    def load(path: str | Path) -> TrainConfig:
        """Reads a ``.toml`` or ``.json`` file."""
        file = Path(path)
        if not file.is_file():
            raise LstmkitFileNotFoundError(f"no config file at {file}")
        if file.suffix not in (".toml", ".json"):
            raise LstmkitValueError(f"a config file must end in .toml or .json, got {file.name}")
        try:
            text = file.read_text(encoding="utf-8")
            data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
        except (UnicodeDecodeError, ValueError) as error:  # JSON's and TOML's errors included
            kind = file.suffix[1:].upper()
            raise LstmkitValueError(
                f"{file} is not valid UTF-8 {kind}: {one_line(error)}"
            ) from None
        return TrainConfig.from_dict(data)


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "task": TaskConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "dict[str, Any]": (dict,),
}


def _build(kind: type, table: dict[str, Any], section: str) -> Any:
    types = {f.name: str(f.type) for f in fields(kind)}
    unknown = set(table) - set(types)
    if unknown:
        raise LstmkitValueError(
            f"unknown key(s) {sorted(unknown)} in [{section}]; expected {sorted(types)}"
        )
    for key, value in table.items():
        allowed = _TYPES[types[key]]
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if wrong_bool or not isinstance(value, allowed):
            raise LstmkitValueError(f"{section}.{key} must be {types[key]}, got {value!r}")
    return kind(**table)


def validate(config: TrainConfig) -> None:
    """Checks value ranges, so a bad config fails before any work."""
    checks: list[tuple[bool, str]] = [
        (
            config.model.hidden_size > 0,
            f"model.hidden_size must be positive, got {config.model.hidden_size}",
        ),
        (
            config.model.num_layers > 0,
            f"model.num_layers must be positive, got {config.model.num_layers}",
        ),
        (
            config.model.embedding_size > 0,
            f"model.embedding_size must be positive, got {config.model.embedding_size}",
        ),
        (
            0.0 <= config.model.dropout <= 1.0,
            f"model.dropout must be in [0, 1], got {config.model.dropout}",
        ),
        (config.optim.lr > 0, f"optim.lr must be positive, got {config.optim.lr}"),
        (config.optim.clip >= 0, f"optim.clip must be >= 0, got {config.optim.clip}"),
        (
            config.optim.schedule in SCHEDULES,
            f"optim.schedule must be one of {', '.join(SCHEDULES)}, got {config.optim.schedule!r}",
        ),
        (config.optim.warmup >= 0, f"optim.warmup must be >= 0, got {config.optim.warmup}"),
        (config.run.steps > 0, f"run.steps must be positive, got {config.run.steps}"),
        (
            config.run.batch_size > 0,
            f"run.batch_size must be positive, got {config.run.batch_size}",
        ),
        (
            config.run.eval_every > 0,
            f"run.eval_every must be positive, got {config.run.eval_every}",
        ),
        (config.run.eval_size > 0, f"run.eval_size must be positive, got {config.run.eval_size}"),
        (
            config.run.checkpoint_every > 0,
            f"run.checkpoint_every must be positive, got {config.run.checkpoint_every}",
        ),
        (config.run.log_every > 0, f"run.log_every must be positive, got {config.run.log_every}"),
    ]
    for ok, message in checks:
        if not ok:
            raise LstmkitValueError(message)
