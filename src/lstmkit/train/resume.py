"""What a resumed run may change: how long it runs and how it is watched, not what the weights
go through."""

from __future__ import annotations

from typing import Any

from lstmkit._errors import LstmkitValueError

MAY_CHANGE = ("steps", "checkpoint_every", "log_every", "eval_every", "eval_size", "early_stop")
"""Run settings a resumed run may change (a changed ``steps`` is also checked against the
learning-rate schedule, :func:`lstmkit.train.schedule.check_schedule`)."""


def check_same_run(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Raises unless two configs describe the same training: only the run settings in
    :data:`MAY_CHANGE` may differ."""
    differences = []
    for section, table in current.items():
        for key, value in table.items():
            before = saved.get(section, {}).get(key)
            if before != value and not (section == "run" and key in MAY_CHANGE):
                differences.append(f"{section}.{key}: {before!r} in the checkpoint, {value!r} now")
    if differences:
        raise LstmkitValueError(
            "the checkpoint was written by a different configuration; resume with the same "
            f"settings (only run.{', run.'.join(MAY_CHANGE)} may change): " + "; ".join(differences)
        )
