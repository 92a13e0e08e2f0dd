"""Seeded long-term-dependency tasks, each with its metric and the baseline it must beat."""

from __future__ import annotations

from typing import Any

from lstmkit._checks import check_choice
from lstmkit._errors import LstmkitTypeError
from lstmkit.tasks.adding import AddingTask
from lstmkit.tasks.base import Batch, Task
from lstmkit.tasks.captions import CaptionsTask
from lstmkit.tasks.charlm import CharLMTask
from lstmkit.tasks.chorales import ChoralesTask
from lstmkit.tasks.copy_memory import CopyTask
from lstmkit.tasks.digits import BinaryDigitsTask
from lstmkit.tasks.gap import GapTask
from lstmkit.tasks.reber import ReberTask
from lstmkit.tasks.series import SeriesTask
from lstmkit.tasks.smnist import SequentialMNISTTask
from lstmkit.tasks.temporal_order import TemporalOrderTask
from lstmkit.tasks.vowels import JapaneseVowelsTask

TASKS: dict[str, type[Task]] = {
    "gap": GapTask,
    "adding": AddingTask,
    "copy": CopyTask,
    "temporal_order": TemporalOrderTask,
    "reber": ReberTask,
    "charlm": CharLMTask,
    "smnist": SequentialMNISTTask,
    "vowels": JapaneseVowelsTask,
    "chorales": ChoralesTask,
    "series": SeriesTask,
    "digits": BinaryDigitsTask,
    "captions": CaptionsTask,
}
"""Tasks by name."""


def make_task(name: str, /, **options: Any) -> Task:
    """The task called ``name`` with its options (which may include one called ``name``, as the
    series task's does); a wrong option names the valid ones."""
    check_choice("task", name, list(TASKS))
    cls = TASKS[name]
    try:
        return cls(**options)
    except TypeError as error:
        import inspect

        valid = [p for p in inspect.signature(cls).parameters if p != "self"]
        raise LstmkitTypeError(
            f"task {name!r}: {error}; its options are {', '.join(valid)}"
        ) from None


__all__ = [
    "TASKS",
    "AddingTask",
    "Batch",
    "BinaryDigitsTask",
    "CaptionsTask",
    "CharLMTask",
    "ChoralesTask",
    "CopyTask",
    "GapTask",
    "JapaneseVowelsTask",
    "ReberTask",
    "SequentialMNISTTask",
    "SeriesTask",
    "Task",
    "TemporalOrderTask",
    "make_task",
]
