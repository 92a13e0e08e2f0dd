"""lstmkit's warning classes, so that users can filter what lstmkit says and nothing else."""

from __future__ import annotations


class LstmkitWarning(UserWarning):
    """The base of every warning lstmkit gives."""


class EngineFallbackWarning(LstmkitWarning):
    """An engine that "auto" chose could not run here, and a slower one ran instead."""
