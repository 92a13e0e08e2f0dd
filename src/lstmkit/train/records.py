"""What a training run writes beside its checkpoint, and how it shows progress: the JSON files,
the metrics log (metrics.jsonl, and TensorBoard scalars when tensorboard is installed) and the
progress bar."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lstmkit._io import write_text
from lstmkit.tasks import Task
from lstmkit.train.config import TrainConfig

METRICS = "metrics.jsonl"


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


class RunLog:
    """metrics.jsonl, one JSON object per line, and TensorBoard scalars when tensorboard is
    installed. On resume, lines past the checkpoint's step (written after it, before a crash)
    are dropped, so the log matches the run."""

    def __init__(self, out_dir: Path | None, *, keep_until: int) -> None:
        self.path = None if out_dir is None else out_dir / METRICS
        self.board: Any = None
        if out_dir is None or self.path is None:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= keep_until
            ]
            write_text(self.path, "".join(line + "\n" for line in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.board = SummaryWriter(str(out_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({**record, "time": round(time.time(), 3)}) + "\n")
        if self.board is not None:
            scalars = {k: v for k, v in record.items() if isinstance(v, float)}
            scalars.update({f"eval/{k}": v for k, v in record.get("eval", {}).items()})
            for key, value in scalars.items():
                self.board.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def progress_bar(show: bool | None, total: int, initial: int, cfg: TrainConfig, task: Task) -> Any:
    import sys

    from tqdm import tqdm  # type: ignore[import-untyped]

    if show is None:
        show = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        disable=not show,
        desc=f"{cfg.model.cell} on {task.name}",
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
