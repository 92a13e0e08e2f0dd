"""Greff et al. 2015, "LSTM: A Search Space Odyssey", in small: every variant preset on one task,
several seeds, the final metric with its spread."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstmkit._io import write_text
from lstmkit._machine import describe_machine
from lstmkit._spec import Spec
from lstmkit.cells.lstm import VARIANT_DESCRIPTIONS, VARIANTS
from lstmkit.experiments.runner import PlannedRun, run_grid
from lstmkit.tasks import make_task
from lstmkit.train.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig


@dataclass(frozen=True)
class CompareExperiment:
    """Every variant on one task (a spec such as ``charlm`` or ``adding:length=50``)."""

    task: str = "charlm:length=50"
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: int = 3
    steps: int = 1000
    hidden_size: int = 64
    batch_size: int = 32
    lr: float = 1e-2
    eval_size: int = 256

    def configs(self) -> list[PlannedRun]:
        spec = Spec.parse(self.task)
        planned = []
        for variant in self.variants:
            for seed in range(self.seeds):
                config = TrainConfig(
                    model=ModelConfig(cell=f"lstm:variant={variant}", hidden_size=self.hidden_size),
                    task=TaskConfig(spec.name, dict(spec.options)),
                    optim=OptimConfig(lr=self.lr),
                    run=RunConfig(
                        steps=self.steps,
                        batch_size=self.batch_size,
                        eval_every=self.steps,
                        eval_size=self.eval_size,
                        checkpoint_every=self.steps,
                        early_stop=False,
                        seed=seed,
                    ),
                )
                planned.append(
                    PlannedRun(f"{variant}-seed{seed}", {"variant": variant, "seed": seed}, config)
                )
        return planned


def run_compare_experiment(
    experiment: CompareExperiment,
    out_dir: Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs every variant and seed, then writes ``results.json``, ``results.md`` and
    ``compare.png`` in ``out_dir``."""
    records = run_grid(
        experiment.configs(), out_dir, resume=resume, progress=progress, report=report
    )
    spec = Spec.parse(experiment.task)
    task = make_task(spec.name, **spec.options)
    rows = []
    for variant in experiment.variants:
        values = [r["metrics"][task.metric] for r in records if r["variant"] == variant]
        rows.append(
            {
                "variant": variant,
                "description": VARIANT_DESCRIPTIONS[variant],
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
                "values": values,
            }
        )
    summary = {
        "experiment": asdict(experiment),
        "task": task.describe(),
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "baseline": task.baseline,
        "baseline_note": task.baseline_note,
        "published": task.published,
        "machine": describe_machine(),
        "runs": records,
        "table": rows,
    }
    write_text(out_dir / "results.json", json.dumps(summary, indent=2) + "\n")
    write_text(out_dir / "results.md", format_compare_table(summary))
    plot_compare(summary, out_dir / "compare.png")
    return summary


def format_compare_table(summary: dict[str, Any]) -> str:
    e = summary["experiment"]
    better = "higher" if summary["higher_is_better"] else "lower"
    lines = [
        f"Greff et al. 2015's LSTM variants on {summary['task']}: held-out {summary['metric']} "
        f"({better} is better) after {e['steps']} steps, {e['seeds']} seeds, hidden size "
        f"{e['hidden_size']}. Baseline ({summary['baseline_note']}): {summary['baseline']:.3f}.",
        "",
        f"| variant | what it changes | {summary['metric']} mean | std | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        lines.append(
            f"| {r['variant']} | {r['description']} | {r['mean']:.3f} | {r['std']:.3f} | "
            f"{r['min']:.3f} | {r['max']:.3f} |"
        )
    lines += [
        "",
        "Greff et al. 2015 found no variant clearly better than vanilla; coupling the gates "
        "(CIFG) or dropping the peepholes (NP) cost little; removing the forget gate (NFG) or "
        "the output activation (NOAF) hurt most.",
    ]
    if summary["published"]:
        lines.append(f"Published for the task: {summary['published']}.")
    lines += ["", f"Machine: {summary['machine']}."]
    return "\n".join(lines) + "\n"


def plot_compare(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["table"]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    positions = list(range(len(rows)))
    ax.bar(
        positions,
        [r["mean"] for r in rows],
        yerr=[r["std"] for r in rows],
        capsize=4,
        color="#8fb8de",
        label="mean ± std over seeds",
    )
    for x, r in zip(positions, rows, strict=True):
        ax.scatter([x] * len(r["values"]), r["values"], color="black", s=10, zorder=3)
    ax.axhline(
        summary["baseline"],
        color="grey",
        linestyle="--",
        label=f"baseline: {summary['baseline_note']}",
    )
    ax.set_xticks(positions, [r["variant"] for r in rows])
    ax.set_xlabel("LSTM variant (Greff et al. 2015)")
    better = "higher" if summary["higher_is_better"] else "lower"
    ax.set_ylabel(f"held-out {summary['metric']} ({better} is better)")
    e = summary["experiment"]
    ax.set_title(
        f"Variants on {e['task']}: {e['steps']} steps, {e['seeds']} seeds (dots)", fontsize=10
    )
    values = [v for r in rows for v in r["values"]] + [summary["baseline"]]
    span = max(values) - min(values)
    ax.set_ylim(min(values) - 0.1 * span, max(values) + 0.1 * span)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
