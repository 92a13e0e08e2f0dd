"""A training run's configuration: four small dataclasses, from flags or a TOML/JSON file."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class ModelConfig:
    cell: str = (
        "lstm"  # a layer by name and options: "lstm", "lstm:chrono=200", "gru:reset_after=false"
    )
    hidden_size: int = 64
    num_layers: int = 1
    embedding_size: int = 16  # token inputs are embedded in this many dimensions
    dropout: float = 0.0  # between layers
    bidirectional: bool = False
    engine: str = "auto"


@dataclass
class TaskConfig:
    name: str = "gap"
    options: dict[str, Any] = field(default_factory=dict)  # the task's keyword options


@dataclass
class OptimConfig:
    lr: float = 3e-3  # AdamW's learning rate
    weight_decay: float = 0.01
    clip: float = 1.0  # largest gradient norm; 0 turns clipping off
    schedule: str = "constant"  # learning rate after warm-up: constant, cosine or linear decay
    warmup: int = 0  # steps of linear warm-up


@dataclass
class RunConfig:
    steps: int = 2000  # the step budget
    batch_size: int = 64  # the global batch; data-parallel processes each take a share
    eval_every: int = 100  # steps between evaluations on held-out data
    eval_size: int = 512  # held-out sequences per evaluation
    checkpoint_every: int = 500  # steps between checkpoints (one is also written at the end)
    log_every: int = 10  # steps between training-loss lines in metrics.jsonl
    early_stop: bool = True  # stop once the held-out metrics count as solved
    seed: int = 0
    # Treat subnormal floats as zero while training on the CPU. A vanishing gradient fills the
    # backward pass with subnormals, which x86 processes many times slower: an RNN at gap 200
    # trained 3x slower without this, to the same result.
    flush_denormal: bool = True


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
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise ValueError(
                f"unknown config section(s) {sorted(unknown)}; expected {sorted(_SECTIONS)}"
            )
        parts: dict[str, Any] = {}
        for name, kind in _SECTIONS.items():
            table = data.get(name, {})
            if not isinstance(table, dict):
                raise ValueError(f"config section [{name}] must be a table, got {table!r}")
            parts[name] = _build(kind, table, name)
        config = TrainConfig(**parts)
        validate(config)
        return config

    @staticmethod
    def load(path: str | Path) -> TrainConfig:
        """Reads a ``.toml`` or ``.json`` file."""
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no config file at {file}")
        if file.suffix == ".toml":
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        elif file.suffix == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
        else:
            raise ValueError(f"a config file must end in .toml or .json, got {file.name}")
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
        raise ValueError(
            f"unknown key(s) {sorted(unknown)} in [{section}]; expected {sorted(types)}"
        )
    for key, value in table.items():
        allowed = _TYPES[types[key]]
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if wrong_bool or not isinstance(value, allowed):
            raise ValueError(f"{section}.{key} must be {types[key]}, got {value!r}")
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
            raise ValueError(message)
