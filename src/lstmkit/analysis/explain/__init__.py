"""The explain page: one self-contained HTML file that shows what the units of a model do."""

from lstmkit.analysis.explain.page import (
    explain_checkpoint,
    explain_page,
    interpretable_units,
)

__all__ = ["explain_checkpoint", "explain_page", "interpretable_units"]
