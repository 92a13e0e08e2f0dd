"""Experiments that run from one command: the post's gap claim and Greff et al.'s variant study."""

from lstmkit.experiments.chung import ChungExperiment, run_chung_experiment
from lstmkit.experiments.compare import CompareExperiment, run_compare_experiment
from lstmkit.experiments.gap import QUICK, GapExperiment, run_gap_experiment
from lstmkit.experiments.runner import Interrupted

__all__ = [
    "QUICK",
    "ChungExperiment",
    "CompareExperiment",
    "GapExperiment",
    "Interrupted",
    "run_chung_experiment",
    "run_compare_experiment",
    "run_gap_experiment",
]
