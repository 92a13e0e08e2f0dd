"""Seeing inside: traces of every gate and state, gradient flow through them, plots, and the
explain page."""

from lstmkit.analysis.explain import explain_checkpoint, explain_page, interpretable_units
from lstmkit.analysis.gradient_flow import GradientFlow, gradient_flow
from lstmkit.analysis.trace import Trace, trace

__all__ = [
    "GradientFlow",
    "Trace",
    "explain_checkpoint",
    "explain_page",
    "gradient_flow",
    "interpretable_units",
    "trace",
]
