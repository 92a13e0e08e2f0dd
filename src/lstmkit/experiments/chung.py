"""The core of Chung et al. 2014, "Empirical Evaluation of Gated Recurrent Neural Networks on
Sequence Modeling", on JSB Chorales: a tanh RNN, a GRU and an LSTM with the same number of
parameters, several seeds, test NLL per time step beside their Table 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstmkit._io import slug, write_text
from lstmkit._spec import Spec
from lstmkit.experiments.compare import plot_compare, spread_rows
from lstmkit.experiments.runner import PlannedRun, run_grid, task_fields
from lstmkit.tasks import make_task
from lstmkit.train.config import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig
from lstmkit.train.trainer import model_for

CHUNG_TEST_NLL = {"gru": 8.54, "lstm": 8.67}
"""Chung et al. 2014, Table 2, JSB Chorales, test: negative log-probability per time step. The
tanh RNN's test figure could not be verified (copies of the table disagree) and is left out."""

CHUNG_SETUP = (
    "Chung et al. 2014 trained one-layer models of about 20k parameters with RMSProp and the "
    "gradient norm rescaled to 1, on BL2012's own JSB files (229 / 76 / 77 pieces); here "
    "music21's chorales in the same proportions (see the chorales task), AdamW, a fixed step "
    "budget (its default chosen on the valid part) and the last weights; nothing chosen on the "
    "test part"
)


@dataclass(frozen=True)
class ChungExperiment:
    """Each cell sized to ``parameters`` (the whole model: layer and 88-way head), on ``task``."""

    task: str = "chorales:evaluate=test"
    cells: tuple[str, ...] = ("rnn", "gru", "lstm")
    parameters: int = 20_000  # about Chung et al.'s music models
    seeds: int = 3
    steps: int = 3000  # chosen on the valid part: at 1000 the gated cells had not caught up
    batch_size: int = 16
    lr: float = 5e-3
    eval_size: int = 512  # held-out pieces; the test part has fewer, so all of it

    def _config(self, cell: str, hidden_size: int, seed: int = 0) -> TrainConfig:
        spec = Spec.parse(self.task)
        return TrainConfig(
            model=ModelConfig(cell=cell, hidden_size=hidden_size),
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

    def count(self, cell: str, hidden_size: int) -> int:
        """Parameters of the whole model for ``cell`` at ``hidden_size`` on 88 keys."""
        config = self._config(cell, hidden_size)
        model = model_for(config, vocab_size=None, input_size=88, output_size=88, readout="all")
        return sum(p.numel() for p in model.parameters())

    def hidden_sizes(self) -> dict[str, int]:
        """For each cell the hidden size whose model's parameter count is nearest the target
        (counts grow with the size, so a bisection finds the first size at or above it)."""
        sizes = {}
        for cell in self.cells:
            low, high = 1, 4096
            while low < high:
                middle = (low + high) // 2
                if self.count(cell, middle) < self.parameters:
                    low = middle + 1
                else:
                    high = middle
            sizes[cell] = min(
                {max(1, low - 1), low}, key=lambda h: abs(self.count(cell, h) - self.parameters)
            )
        return sizes

    def configs(self) -> list[PlannedRun]:
        planned = []
        for cell, hidden in self.hidden_sizes().items():
            for seed in range(self.seeds):
                labels = {"cell": cell, "hidden_size": hidden, "seed": seed}
                config = self._config(cell, hidden, seed)
                planned.append(PlannedRun(f"{slug(cell)}-seed{seed}", labels, config))
        return planned


def run_chung_experiment(
    experiment: ChungExperiment,
    out_dir: Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs every cell and seed, then writes ``results.json``, ``results.md`` and ``chung.png``
    in ``out_dir``."""
    sizes = experiment.hidden_sizes()
    counts = {cell: experiment.count(cell, h) for cell, h in sizes.items()}
    for cell in experiment.cells:
        report(f"{cell}: hidden size {sizes[cell]}, {counts[cell]:,} parameters")
    records = run_grid(
        experiment.configs(), out_dir, resume=resume, progress=progress, report=report
    )
    spec = Spec.parse(experiment.task)
    task = make_task(spec.name, **spec.options)
    groups = [(c, f"H = {sizes[c]}, {counts[c]:,} parameters") for c in experiment.cells]
    rows = spread_rows(records, "cell", groups, task.metric)
    for row in rows:
        row["published"] = CHUNG_TEST_NLL.get(Spec.parse(row["cell"]).name)
    summary = {
        "experiment": asdict(experiment),
        **task_fields(task),
        "evaluated_on": getattr(task, "evaluate", "held-out"),
        "hidden_sizes": sizes,
        "parameters": counts,
        "runs": records,
        "table": rows,
    }
    write_text(out_dir / "results.json", json.dumps(summary, indent=2) + "\n")
    write_text(out_dir / "results.md", format_chung_table(summary))
    plot_compare(summary, out_dir / "chung.png", key="cell", xlabel="cell, equal parameters")
    return summary


def format_chung_table(summary: dict[str, Any]) -> str:
    e = summary["experiment"]
    lines = [
        f"Chung et al. 2014 in small: {', '.join(e['cells'])} with about {e['parameters']:,} "
        f"parameters each on {summary['task']}; {summary['evaluated_on']} NLL per time step in "
        f"nats (lower is better) after {e['steps']} steps of {e['batch_size']} pieces, "
        f"{e['seeds']} seeds. Baseline ({summary['baseline_note']}): {summary['baseline']:.3f}.",
        "",
        "| cell | size | NLL mean | std | min | max | Chung et al. 2014 (test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        published = "not verified" if r["published"] is None else f"{r['published']:.2f}"
        lines.append(
            f"| {r['cell']} | {r['description']} | {r['mean']:.3f} | {r['std']:.3f} | "
            f"{r['min']:.3f} | {r['max']:.3f} | {published} |"
        )
    lines += ["", f"{CHUNG_SETUP}.", "", f"Machine: {summary['machine']}."]
    return "\n".join(lines) + "\n"
