"""Training: one trainer for every cell and task, its configuration and its checkpoints."""

from lstmkit.train.checkpoint import load_checkpoint, save_checkpoint
from lstmkit.train.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig
from lstmkit.train.trainer import (
    NonFiniteLossError,
    Trainer,
    TrainResult,
    build_model,
    evaluate,
    fit,
    load_model,
    load_run,
    step_seed,
)

__all__ = [
    "ModelConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "RunConfig",
    "TaskConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_model",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_model",
    "load_run",
    "save_checkpoint",
    "step_seed",
]
