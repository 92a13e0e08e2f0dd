"""The post's central claim as an experiment: as the gap between a cue and the place it is
needed grows, a vanilla RNN stops learning to connect them, and an LSTM does not."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lstmkit._io import slug, write_text
from lstmkit._machine import describe_machine
from lstmkit._spec import Spec
from lstmkit.experiments.runner import PlannedRun, run_grid
from lstmkit.tasks.gap import GapTask
from lstmkit.train.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig


@dataclass(frozen=True)
class GapExperiment:
    """Cells × gaps × seeds on the ``gap`` task, each run to success or the step budget."""

    cells: tuple[str, ...] = ("rnn", "gru", "gru:chrono=200", "lstm", "lstm:chrono=200")
    gaps: tuple[int, ...] = (5, 10, 20, 50, 100, 200)
    seeds: int = 2
    steps: int = 1500  # budget per run
    hidden_size: int = 64
    batch_size: int = 64
    lr: float = 3e-3
    eval_every: int = 100
    classes: int = 8  # chance is 1/classes
    extra: dict[str, Any] = field(default_factory=dict)  # further gap-task options

    def configs(self) -> list[PlannedRun]:
        planned = []
        for cell in self.cells:
            for gap in self.gaps:
                for seed in range(self.seeds):
                    config = TrainConfig(
                        model=ModelConfig(cell=cell, hidden_size=self.hidden_size),
                        task=TaskConfig("gap", {"gap": gap, "classes": self.classes, **self.extra}),
                        optim=OptimConfig(lr=self.lr),
                        run=RunConfig(
                            steps=self.steps,
                            batch_size=self.batch_size,
                            eval_every=self.eval_every,
                            checkpoint_every=self.steps,
                            seed=seed,
                        ),
                    )
                    key = f"{slug(cell)}-gap{gap}-seed{seed}"
                    planned.append(
                        PlannedRun(key, {"cell": cell, "gap": gap, "seed": seed}, config)
                    )
        return planned


QUICK = GapExperiment(cells=("rnn", "lstm:chrono=200"), gaps=(5, 20, 100), seeds=1, steps=800)
"""A preset that shows the same picture in about a minute."""


def run_gap_experiment(
    experiment: GapExperiment,
    out_dir: Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs the grid, then writes ``results.json``, ``results.md`` and ``gap.png`` in
    ``out_dir``. Returns the summary that results.json holds."""
    records = run_grid(
        experiment.configs(), out_dir, resume=resume, progress=progress, report=report
    )
    task = GapTask(classes=experiment.classes, **experiment.extra)
    summary = {
        "experiment": asdict(experiment),
        "chance": task.baseline,
        "machine": describe_machine(),
        "runs": records,
        "table": summarise_gap(records, experiment),
    }
    write_text(out_dir / "results.json", json.dumps(summary, indent=2) + "\n")
    write_text(out_dir / "results.md", format_gap_table(summary))
    plot_gap(summary, out_dir / "gap.png")
    return summary


def summarise_gap(records: list[dict[str, Any]], experiment: GapExperiment) -> list[dict[str, Any]]:
    """One row per (cell, gap): mean held-out accuracy, how many seeds solved it, and the median
    step at which they did."""
    rows = []
    for cell in experiment.cells:
        for gap in experiment.gaps:
            runs = [r for r in records if r["cell"] == cell and r["gap"] == gap]
            accuracies = [r["metrics"]["accuracy"] for r in runs]
            solved = [r["solved_step"] for r in runs if r["solved"]]
            rows.append(
                {
                    "cell": cell,
                    "gap": gap,
                    "accuracy": statistics.fmean(accuracies),
                    "accuracy_min": min(accuracies),
                    "accuracy_max": max(accuracies),
                    "solved": len(solved),
                    "seeds": len(runs),
                    "median_steps": statistics.median(solved) if solved else None,
                }
            )
    return rows


def initialisation(cell: str) -> str:
    """How a cell spec starts the gate that keeps the state (the LSTM's forget gate, the GRU's
    update gate) and, if not as torch.nn does, its recurrent matrix, in words, for the results
    table; "-" where it says nothing of either."""
    spec = Spec.parse(cell)
    options = spec.options
    parts = []
    if spec.name == "lstm":
        if "chrono" in options:
            parts.append(f"chrono, T_max={options['chrono']}")
        elif "forget_bias" in options:
            parts.append(f"b_f = {options['forget_bias']}")
        else:
            parts.append("b_f = 1 (lstmkit's default)")
    elif spec.name == "gru" and "chrono" in options:
        parts.append(f"chrono on z, T_max={options['chrono']}")
    elif spec.name == "gru" and "update_bias" in options:
        parts.append(f"b_z = {options['update_bias']}")
    if options.get("recurrent_init", "uniform") != "uniform":
        parts.append(f"W_hh {options['recurrent_init']}")
    return "; ".join(parts) or "-"


def format_gap_table(summary: dict[str, Any]) -> str:
    experiment = summary["experiment"]
    gaps = experiment["gaps"]
    lines = [
        f"Held-out accuracy on the gap task ({experiment['classes']} classes, chance "
        f"{summary['chance']:.3f}) after training to success (accuracy >= 0.95) or "
        f"{experiment['steps']} steps; mean over {experiment['seeds']} seed(s), then seeds "
        "solved and the median step of success.",
        "",
        "| cell | initialisation | " + " | ".join(f"gap {g}" for g in gaps) + " |",
        "|---|---|" + "---|" * len(gaps),
    ]
    for cell in experiment["cells"]:
        cells = []
        for gap in gaps:
            row = next(r for r in summary["table"] if r["cell"] == cell and r["gap"] == gap)
            text = f"{row['accuracy']:.2f} ({row['solved']}/{row['seeds']}"
            text += f", {row['median_steps']:.0f})" if row["median_steps"] is not None else ")"
            cells.append(text)
        lines.append(f"| {cell} | {initialisation(cell)} | " + " | ".join(cells) + " |")
    lines += ["", f"Machine: {summary['machine']}."]
    return "\n".join(lines) + "\n"


def plot_gap(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiment = summary["experiment"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for cell in experiment["cells"]:
        rows = [r for r in summary["table"] if r["cell"] == cell]
        gaps = [r["gap"] for r in rows]
        mean = [r["accuracy"] for r in rows]
        low = [r["accuracy"] - r["accuracy_min"] for r in rows]
        high = [r["accuracy_max"] - r["accuracy"] for r in rows]
        init = initialisation(cell)
        label = cell if init == "-" else f"{cell}: {init}"
        ax.errorbar(gaps, mean, yerr=[low, high], marker="o", capsize=3, label=label)
    ax.axhline(
        summary["chance"], color="grey", linestyle="--", label=f"chance (1/{experiment['classes']})"
    )
    ax.set_xscale("log")
    ax.set_xticks(experiment["gaps"], [str(g) for g in experiment["gaps"]])
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("gap between cue and query (time steps)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(
        f"Remembering a cue across a gap: trained to success or {experiment['steps']} steps,\n"
        f"mean of {experiment['seeds']} seed(s), bars from min to max",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
