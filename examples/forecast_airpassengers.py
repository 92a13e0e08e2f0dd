"""An LSTM forecasts the airline passengers series (Box & Jenkins's series G, 144 months,
shipped with pmdarima) twelve months ahead from the last 24, and is scored beside the forecasts
a practitioner tries first: naive (the last value), seasonal naive (the value a year back) and
an ARIMA chosen by pmdarima's auto_arima on the training part. Whichever wins is printed as it
is.

The last 29 months (20 %) are held out: 18 windows whose twelve targets all lie after the
training part. MASE (Hyndman & Koehler 2006) divides each forecast's mean absolute error by the
training part's one-step seasonal naive error; sMAPE is the M4 competition's. Under a minute on
a 2-core CPU:

    python examples/forecast_airpassengers.py            # writes forecast_airpassengers.png

Needs the data extra (``pip install 'lstmkit[data]'``). The same from the command line:
``lstmkit train --task series:name=airpassengers --steps 1500 --hidden-size 64 --lr 0.003
--out run`` then ``lstmkit forecast run/checkpoint.pt -o forecast.csv --plot forecast.png``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from lstmkit.cli import main as lstmkit
from lstmkit.tasks.series import SeriesTask
from lstmkit.train import ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, Trainer


class Setting(NamedTuple):
    """The task's options and the LSTM's budget."""

    task: dict[str, object]
    steps: int
    hidden_size: int
    lr: float


TASK = {"name": "airpassengers", "horizon": 12, "lookback": 24}
FULL = Setting(TASK, 1500, 64, 3e-3)
FAST = Setting({**TASK, "arima": False}, 60, 16, 1e-2)


def main(setting: Setting = FULL, plot: Path | None = None) -> dict[str, dict[str, float]]:
    """Held-out MASE and sMAPE of the LSTM and of each baseline, by forecaster; with ``plot``,
    also draws the forecasts after the end of the series and on its last held-out window."""
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=setting.hidden_size),
        task=TaskConfig("series", dict(setting.task)),
        optim=OptimConfig(lr=setting.lr),
        run=RunConfig(
            steps=setting.steps, batch_size=32, eval_every=setting.steps, eval_size=10_000, seed=0
        ),
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        trainer = Trainer(config, out_dir=folder, progress=False)
        result = trainer.fit()
        wall = time.perf_counter() - start
        task = trainer.task
        assert isinstance(task, SeriesTask)
        if plot is not None:
            status = lstmkit(
                [
                    "forecast",
                    f"{folder}/checkpoint.pt",
                    "-o",
                    f"{folder}/f.csv",
                    "--plot",
                    str(plot),
                ]
            )
            assert status == 0
    scores = {"LSTM": {k: result.metrics[k] for k in ("mase", "smape")}, **task.baselines}
    names = {"arima": task.arima_order}
    print(f"airpassengers, {len(task.held_out_origins)} held-out windows of {task.horizon} months")
    print(f"LSTM hidden {setting.hidden_size}, {setting.steps} steps, seed 0 ({wall:.0f} s)")
    print(f"  {'forecaster':28s} {'MASE':>6s} {'sMAPE %':>8s}")
    for key, value in sorted(scores.items(), key=lambda item: item[1]["mase"]):
        print(f"  {names.get(key, key):28s} {value['mase']:6.3f} {value['smape']:8.2f}")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the version the tests run")
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path("forecast_airpassengers.png"),
        help="where to draw the forecasts (default: %(default)s)",
    )
    args = parser.parse_args()
    main(FAST if args.fast else FULL, args.plot)
