"""Runs a grid of training runs, one folder each, and picks up where an interrupted grid stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmkit._errors import LstmkitFileExistsError
from lstmkit._machine import describe_machine
from lstmkit.tasks import Task
from lstmkit.train.config import TrainConfig
from lstmkit.train.resume import check_same_run
from lstmkit.train.trainer import CHECKPOINT, CONFIG, RESULT, Trainer, TrainResult


@dataclass(frozen=True)
class PlannedRun:
    key: str  # the run's folder name under runs/
    labels: dict[str, Any]  # what the grid varies (cell, gap, seed, ...), kept with the result
    config: TrainConfig


class Interrupted(Exception):  # noqa: N818 (it is a stop, not an error)
    """The grid was stopped with Ctrl-C; finished runs are kept and --resume continues."""


def run_grid(
    planned: list[PlannedRun],
    out_dir: Path,
    *,
    resume: bool,
    progress: bool | None,
    report: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Runs every planned run in ``out_dir/runs/<key>`` and returns one record per run: its
    labels and its :class:`TrainResult` fields.

    With ``resume``, finished runs are read back and an interrupted one continues from its
    checkpoint; without it, an ``out_dir`` that already holds runs is an error.
    """
    runs_dir = out_dir / "runs"
    if runs_dir.exists() and any(runs_dir.iterdir()) and not resume:
        raise LstmkitFileExistsError(
            f"{out_dir} already holds runs; pass --resume to continue them, or choose another --out"
        )
    records: list[dict[str, Any]] = []
    try:
        _run_all(planned, runs_dir, records, resume=resume, progress=progress, report=report)
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped after {len(records)} of {len(planned)} runs; they are kept in {out_dir}: "
            "rerun with --resume to go on"
        ) from None
    return records


def _run_all(
    planned: list[PlannedRun],
    runs_dir: Path,
    records: list[dict[str, Any]],
    *,
    resume: bool,
    progress: bool | None,
    report: Callable[[str], None],
) -> None:
    out_dir = runs_dir.parent
    for index, run in enumerate(planned, 1):
        folder = runs_dir / run.key
        result_file = folder / RESULT
        if resume and result_file.is_file():
            saved = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
            check_same_run(saved, run.config.to_dict())
            result = json.loads(result_file.read_text(encoding="utf-8"))
            result.pop("out_dir", None)
            budget_raised = result["stopped"] == "budget" and result["steps"] < run.config.run.steps
            if not budget_raised:
                records.append({**run.labels, **result, "key": run.key})
                continue
        trainer = Trainer(
            run.config,
            out_dir=folder,
            resume=resume and (folder / CHECKPOINT).is_file(),
            progress=progress,
        )
        outcome = trainer.fit()
        if outcome.stopped == "interrupted":
            raise Interrupted(
                f"stopped during run {index} of {len(planned)} ({run.key}); its checkpoint and "
                f"the {index - 1} finished runs are kept in {out_dir}: rerun with --resume to go on"
            )
        records.append({**run.labels, **_fields(outcome), "key": run.key})
        report(f"[{index}/{len(planned)}] {run.key}: {summarise(outcome)}")


def _fields(result: TrainResult) -> dict[str, Any]:
    data = dict(vars(result))
    data.pop("out_dir", None)
    return data


def summarise(result: TrainResult) -> str:
    main = result.metrics.get(result.metric, float("nan"))
    if result.solved:
        where = f"solved at step {result.solved_step}"
    elif result.has_goal:
        where = f"not solved in {result.steps} steps"
    else:
        where = f"{result.steps} steps"
    value = f"{result.metric} {main:.3f}"
    if "kl" in result.metrics:  # a latent-variable model's bound: an upper bound on the NLL
        parts = (
            f"reconstruction {result.metrics['reconstruction']:.3f} + KL {result.metrics['kl']:.3f}"
        )
        value = f"{result.metric} ≤ {main:.3f} (the bound: {parts})"
    return (
        f"{where}, {value} ({result.baseline_note}: {result.baseline:.3f}), {result.seconds:.1f} s"
    )


def task_fields(task: Task) -> dict[str, Any]:
    """What an experiment's summary says of its task, its metric and baseline, and the machine
    it ran on."""
    return {
        "task": task.describe(),
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "baseline": task.baseline,
        "baseline_note": task.baseline_note,
        "published": task.published,
        "machine": describe_machine(),
    }
