"""Greff et al. 2015, "LSTM: A Search Space Odyssey", in small: every variant preset on one task,
several seeds, the final metric with its spread."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstmkit._io import write_text
from lstmkit._spec import Spec
from lstmkit.cells.lstm import VARIANT_DESCRIPTIONS, VARIANTS
from lstmkit.experiments.runner import PlannedRun, run_grid, task_fields
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
    groups = [(v, VARIANT_DESCRIPTIONS[v]) for v in experiment.variants]
    rows = spread_rows(records, "variant", groups, task.metric)
    summary = {
        "experiment": asdict(experiment),
        **task_fields(task),
        "runs": records,
        "table": rows,
        "findings": check_findings(
            getattr(task, "variant_findings", ()), rows, higher_is_better=task.higher_is_better
        ),
        "findings_note": getattr(task, "variant_findings_note", ""),
    }
    write_text(out_dir / "results.json", json.dumps(summary, indent=2) + "\n")
    write_text(out_dir / "results.md", format_compare_table(summary))
    plot_compare(summary, out_dir / "compare.png")
    return summary


def spread_rows(
    records: list[dict[str, Any]], key: str, groups: list[tuple[str, str]], metric: str
) -> list[dict[str, Any]]:
    """One row per group (its name under ``key`` and a description): the final ``metric`` of its
    runs, their mean, sample standard deviation, min and max."""
    rows = []
    for name, description in groups:
        values = [r["metrics"][metric] for r in records if r[key] == name]
        rows.append(
            {
                key: name,
                "description": description,
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
                "values": values,
            }
        )
    return rows


def _against(row: dict[str, Any], ref: dict[str, Any], higher_is_better: bool) -> tuple[str, str]:
    """How ``row`` compares with ``ref``: "worse", "better" or "close" (within twice the standard
    error of the difference of means), and the numbers in words. With one seed there is no
    spread to judge by: the sign of the difference decides, and nothing is "close"."""
    worse_by = ref["mean"] - row["mean"] if higher_is_better else row["mean"] - ref["mean"]
    n, m = len(row["values"]), len(ref["values"])
    text = f"{row['mean']:.3f} against {ref['mean']:.3f}"
    if min(n, m) < 2:
        return ("worse" if worse_by > 0 else "better"), f"{text}, one seed: by the means alone"
    noise = 2 * math.sqrt(row["std"] ** 2 / n + ref["std"] ** 2 / m)
    text += f", difference {worse_by:+.3f} (+ is worse), noise ±{noise:.3f}"
    if abs(worse_by) <= noise:
        return "close", text
    return ("worse" if worse_by > 0 else "better"), text


RELATIONS = {"worse": "worse than", "close": "close to"}
"""A finding's expectation in words."""


def check_findings(
    findings: Sequence[tuple[str, str]], rows: list[dict[str, Any]], *, higher_is_better: bool
) -> list[dict[str, Any]]:
    """Each published finding (a variant "worse" than vanilla, or "close" to it) that this run
    can test, with what the run's means say and whether they agree; then whether any variant is
    clearly better than vanilla (the papers found none). Empty without findings or vanilla."""
    by_name = {r["variant"]: r for r in rows}
    ref = by_name.get("vanilla")
    if not findings or ref is None:
        return []
    checked = []
    for variant, expected in findings:
        if variant in by_name:
            seen, numbers = _against(by_name[variant], ref, higher_is_better)
            one_seed = min(len(by_name[variant]["values"]), len(ref["values"])) < 2
            agrees = None if one_seed and expected == "close" else seen == expected
            checked.append(
                {
                    "claim": f"{variant} {RELATIONS[expected]} vanilla",
                    "seen": seen,
                    "numbers": numbers,
                    "agrees": agrees,
                }
            )
    others = [r for r in rows if r["variant"] != "vanilla"]
    if others:
        seen_all = {r["variant"]: _against(r, ref, higher_is_better)[0] for r in others}
        better = [v for v, s in seen_all.items() if s == "better"]
        checked.append(
            {
                "claim": "no variant clearly better than vanilla",
                "seen": ", ".join(better) + " better" if better else "none better",
                "numbers": "",
                "agrees": not better,
            }
        )
    return checked


def format_findings(summary: dict[str, Any]) -> list[str]:
    """The published ordering and, line by line, where this run agrees with it."""
    lines = ["", f"{summary['findings_note']}.", "", "Against this run's means:"]
    for f in summary["findings"]:
        verdict = {True: "agrees", False: "DISAGREES", None: "cannot tell"}[f["agrees"]]
        numbers = f" ({f['numbers']})" if f["numbers"] else ""
        lines.append(f"- {f['claim']}: {verdict}; seen {f['seen']}{numbers}")
    return lines


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
    if summary.get("findings"):
        lines += format_findings(summary)
    else:
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


def plot_compare(
    summary: dict[str, Any],
    path: Path,
    *,
    key: str = "variant",
    xlabel: str = "LSTM variant (Greff et al. 2015)",
) -> None:
    """Mean and spread of each row of ``summary["table"]`` (named by ``key``), every seed a dot,
    the baseline a dashed line."""
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
    ax.set_xticks(positions, [r[key] for r in rows])
    ax.set_xlabel(xlabel)
    better = "higher" if summary["higher_is_better"] else "lower"
    ax.set_ylabel(f"held-out {summary['metric']} ({better} is better)")
    e = summary["experiment"]
    ax.set_title(f"On {e['task']}: {e['steps']} steps, {e['seeds']} seeds (dots)", fontsize=10)
    values = [v for r in rows for v in r["values"]] + [summary["baseline"]]
    span = max(values) - min(values)
    ax.set_ylim(min(values) - 0.1 * span, max(values) + 0.1 * span)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
