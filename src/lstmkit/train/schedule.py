"""The learning rate's schedule, and what a changed step budget does to it on resuming."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from lstmkit._errors import LstmkitValueError
from lstmkit.train.config import OptimConfig

_log = logging.getLogger("lstmkit")


def lr_factor(optim: OptimConfig, steps: int) -> Callable[[int], float]:
    """The learning rate's multiplier after ``k`` optimiser steps."""

    def factor(k: int) -> float:
        if k < optim.warmup:
            return (k + 1) / optim.warmup
        if optim.schedule == "constant":
            return 1.0
        progress = min(1.0, (k - optim.warmup) / max(1, steps - optim.warmup))
        if optim.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return factor


def check_schedule(
    optim: OptimConfig, saved_steps: int, steps: int, step: int, *, reschedule: bool
) -> None:
    """A run resumed at ``step`` with a step budget changed from ``saved_steps`` to ``steps``:
    where its schedule decays over the budget, the learning rate would jump (a finished cosine
    run would start again from its peak). Refused unless ``reschedule``; said either way."""
    if steps == saved_steps or optim.schedule == "constant":
        return
    before = optim.lr * lr_factor(optim, saved_steps)(step)
    after = optim.lr * lr_factor(optim, steps)(step)
    what = (
        f"run.steps changes from {saved_steps} to {steps}, and the {optim.schedule} schedule "
        f"spreads its decay over run.steps: at step {step} the learning rate goes from "
        f"{before:.3g} to {after:.3g}"
    )
    if not reschedule:
        raise LstmkitValueError(
            f"{what}. Resume with --reschedule (Trainer(reschedule=True)) to accept that, or "
            f"keep run.steps at {saved_steps}"
        )
    _log.info("%s, as --reschedule allows", what)
