"""One trainer for every cell and task: AdamW, clipping, a learning-rate schedule, held-out
evaluation, early stopping, progress, a JSON-lines log, atomic checkpoints and exact resume."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from lstmkit._errors import LstmkitFileExistsError, LstmkitRuntimeError, LstmkitValueError
from lstmkit._io import remove_temporaries
from lstmkit._spec import Spec
from lstmkit.modules.sequence import SequenceModel
from lstmkit.modules.vrnn import STORN, VRNN
from lstmkit.tasks import Batch, Task, make_task
from lstmkit.train import distributed
from lstmkit.train.checkpoint import (
    FIELDS,
    FORMAT,
    check_entries,
    check_weights,
    load_latest,
    previous_of,
    save_checkpoint,
)
from lstmkit.train.config import (
    ModelConfig,
    OptimConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    validate,
)
from lstmkit.train.models import Objective, build, check_task, model_kind, objective, sizes_of
from lstmkit.train.records import METRICS as METRICS  # the log's file name, as before
from lstmkit.train.records import RunLog, progress_bar, write_json
from lstmkit.train.resume import check_same_run
from lstmkit.train.schedule import check_schedule, lr_factor

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
RESULT = "result.json"
_MASK64 = (1 << 64) - 1


def step_seed(seed: int, step: int) -> int:
    """The seed of step ``step``'s batch: a SplitMix64 hash of ``(seed, step)``, so each step
    has its own stream and a resumed run draws exactly the batches it would have drawn."""
    z = (seed * 0x9E3779B97F4A7C15 + step * 0xD1B54A32D192ED03 + 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


EVAL_SEED = step_seed(20150827, 0)
"""Held-out batches come from this seed, the same for every run and every run seed."""


class NonFiniteLossError(LstmkitRuntimeError):
    """The loss or the gradient became inf or NaN; the last checkpoint is left as it was."""


@dataclass
class TrainResult:
    steps: int  # the last completed step
    stopped: str  # "solved", "budget" or "interrupted"
    solved: bool
    solved_step: int | None  # the step whose evaluation first counted as solved
    has_goal: bool  # whether the task can count as solved at all (a language model cannot)
    metric: str  # the task's main metric
    metrics: dict[str, float]  # the last held-out evaluation
    baseline: float  # the main metric's chance-level or memoryless value
    baseline_note: str
    seconds: float  # training time, over all sessions of a resumed run
    out_dir: str | None


def build_model(config: TrainConfig, task: Task) -> nn.Module:
    """The model a config describes, sized for the task: a :class:`SequenceModel`, or the model
    of another kind ``config.model.kind`` names (see :mod:`lstmkit.train.models`); a kind that
    cannot learn the task is refused. A VRNN or STORN on a task that knows its keys' training
    frequencies (the chorales) starts with its output at their log-odds: at the memoryless
    baseline, where a next-frame model's training gets within a few steps."""
    check_task(config.model, task)
    model = build(config.model, **sizes_of(task))
    frequency = getattr(task, "key_frequency", None)
    if isinstance(model, VRNN | STORN) and isinstance(frequency, torch.Tensor):
        model.start_from_frequencies(frequency)
    return model


def model_for(
    config: TrainConfig,
    *,
    vocab_size: int | None,
    input_size: int,
    output_size: int,
    readout: Literal["last", "all"],
) -> SequenceModel:
    """The sequence model a config describes, for inputs of ``vocab_size`` tokens (or
    ``input_size`` features when None) and ``output_size`` outputs."""
    if model_kind(config.model).name != "sequence":
        raise LstmkitValueError(
            f"model_for builds sequence models; this config's model.kind is {config.model.kind!r} "
            "(build_model builds any kind for a task)"
        )
    model = build(
        config.model,
        vocab_size=vocab_size,
        input_size=input_size,
        output_size=output_size,
        readout=readout,
    )
    assert isinstance(model, SequenceModel)
    return model


@torch.no_grad()
def evaluate(
    model: nn.Module,
    task: Task,
    batches: list[Batch],
    device: torch.device,
    objective: Objective | None = None,
) -> dict[str, float]:
    """The task's metrics and loss on held-out batches, averaged over sequences; ``objective``
    says how a model of another kind than a sequence model meets the task (see
    :func:`lstmkit.train.models.objective`)."""
    scoring = Objective(task) if objective is None else objective
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in batches:
        batch = batch.to(device)
        outputs = scoring.outputs(model, batch)
        values = {"loss": scoring.loss(outputs, batch).item(), **scoring.metrics(outputs, batch)}
        for key, value in values.items():
            totals[key] = totals.get(key, 0.0) + value * len(batch)
        count += len(batch)
    model.train(was_training)
    return {key: value / count for key, value in totals.items()}


def eval_batches(task: Task, size: int, chunk: int = 256) -> list[Batch]:
    """``size`` held-out sequences in batches of at most ``chunk``, the same on every call."""
    own = getattr(task, "eval_batches", None)
    if own is not None:
        return own(chunk, math.ceil(size / chunk))  # type: ignore[no-any-return]
    generator = torch.Generator().manual_seed(EVAL_SEED)
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    return [task.batch(n, generator) for n in sizes]


class Trainer:
    """Trains the model a :class:`TrainConfig` describes on its task.

    Args:
        config: what to train, on what, how.
        out_dir: where the config, the metrics log, checkpoints and the result go; None keeps
            nothing on disk.
        resume: continue from ``out_dir``'s checkpoint (bitwise as if never stopped), or from the
            previous one beside it where that one is damaged. Without it, an ``out_dir`` that
            already holds a checkpoint is an error, not overwritten.
        reschedule: let a resumed run change ``run.steps`` although its learning-rate schedule
            decays over them (the rate then jumps; refused without it).
        progress: show a progress bar; None shows one when stderr is a terminal.
        device: "cpu", "cuda", ...; None picks CUDA when there is one.
        on_step: called after every completed step with the step and its training loss.

    Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and returns a result
    with ``stopped="interrupted"``; a second Ctrl-C stops at once. A non-finite loss or gradient
    raises :class:`NonFiniteLossError` and keeps the last checkpoint as it was.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        out_dir: str | Path | None = None,
        resume: bool = False,
        reschedule: bool = False,
        progress: bool | None = None,
        device: str | None = None,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        validate(config)
        if resume and out_dir is None:
            raise LstmkitValueError("resume=True needs the out_dir of the run to continue")
        self.config = config
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.resume, self.reschedule = resume, reschedule
        self.progress = progress
        self.device = device
        self.on_step = on_step
        self._stop = threading.Event()
        self.model: nn.Module | None = None  # the trained model, after fit()
        self.task: Task | None = None

    def request_stop(self) -> None:
        """Asks the run to stop after the current step, with a checkpoint (as Ctrl-C does)."""
        self._stop.set()

    def fit(self) -> TrainResult:
        info = distributed.setup(self.device)
        flush = self.config.run.flush_denormal and torch.set_flush_denormal(True)
        clean = False
        try:
            with self._signals():
                result = self._fit(info)
            clean = True
            return result
        finally:
            if flush:
                torch.set_flush_denormal(False)  # torch's default
            distributed.teardown(info, clean=clean)

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: object) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt  # a second signal: stop at once
            self._stop.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _fit(self, info: distributed.Distributed) -> TrainResult:
        run = self._open(info)
        writes = info.is_main and self.out_dir is not None
        log = RunLog(self.out_dir if writes else None, keep_until=run.start)
        if writes and self.out_dir is not None:
            write_json(self.out_dir / CONFIG, self.config.to_dict())
            (self.out_dir / RESULT).unlink(missing_ok=True)  # written again when this run ends
        held_out = eval_batches(run.task, self.config.run.eval_size)
        bar = progress_bar(
            self.progress and info.is_main, self.config.run.steps, run.start, self.config, run.task
        )
        began = time.perf_counter()
        try:
            step, stopped = self._loop(run, info, log, held_out, bar, began)
        finally:
            bar.close()
            log.close()
        seconds = run.seconds_before + time.perf_counter() - began
        if stopped == "interrupted" or not run.last_eval:
            run.last_eval = evaluate(run.model, run.task, held_out, info.device, run.objective)
        self._save(run, info, step, seconds)
        result = TrainResult(
            steps=step,
            stopped=stopped,
            solved=run.solved_step is not None,
            solved_step=run.solved_step,
            has_goal=run.task.has_goal,
            metric=run.task.metric,
            metrics=run.last_eval,
            baseline=run.task.baseline,
            baseline_note=run.task.baseline_note,
            seconds=seconds,
            out_dir=None if self.out_dir is None else str(self.out_dir),
        )
        if writes and self.out_dir is not None and stopped != "interrupted":
            write_json(self.out_dir / RESULT, asdict(result))
        self.model, self.task = run.model, run.task
        return result

    def _open(self, info: distributed.Distributed) -> _Run:
        """Builds the task, model and optimiser, and restores them from the checkpoint when
        resuming."""
        cfg, steps = self.config, self.config.run.steps
        if cfg.run.batch_size % info.world_size:
            raise LstmkitValueError(
                f"run.batch_size ({cfg.run.batch_size}) must divide evenly among "
                f"{info.world_size} processes"
            )
        torch.manual_seed(cfg.run.seed)
        task = make_task(cfg.task.name, **cfg.task.options)
        model = build_model(cfg, task).to(info.device)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg.optim, steps))
        checkpoint = None if self.out_dir is None else self.out_dir / CHECKPOINT
        held = checkpoint is not None and (checkpoint.exists() or previous_of(checkpoint).exists())
        if held and not self.resume:
            raise LstmkitFileExistsError(
                f"{self.out_dir} already holds a run; pass resume=True (--resume) to continue it, "
                "or choose another output folder"
            )
        scoring = objective(cfg.model, task)
        run = _Run(task, scoring, model, model, optimizer, scheduler, checkpoint)
        if checkpoint is not None and info.is_main:  # what a killed save left behind
            remove_temporaries(checkpoint, previous_of(checkpoint))
        if self.resume and checkpoint is not None and held:
            state, read = load_latest(checkpoint)
            check_same_run(state["config"], cfg.to_dict())
            saved_steps = state["config"].get("run", {}).get("steps", steps)
            check_schedule(cfg.optim, saved_steps, steps, state["step"], reschedule=self.reschedule)
            check_weights(model, state["model"], read)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"]["torch"])
            run.start = int(state["step"])
            run.solved_step = state["progress"]["solved_step"]
            run.last_eval = dict(state["progress"]["last_eval"])
            run.seconds_before = float(state["progress"]["seconds"])
        if info.enabled:
            ids = [info.device.index] if info.device.type == "cuda" else None
            run.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return run

    def _loop(
        self,
        run: _Run,
        info: distributed.Distributed,
        log: RunLog,
        held_out: list[Batch],
        bar: Any,
        began: float,
    ) -> tuple[int, Literal["solved", "budget", "interrupted"]]:
        """Trains from ``run.start`` to the budget, success or a stop request; returns the last
        step and why it stopped."""
        cfg = self.config
        share = cfg.run.batch_size // info.world_size
        if run.start >= cfg.run.steps or (run.solved_step is not None and cfg.run.early_stop):
            return run.start, "solved" if run.solved_step is not None else "budget"
        run.model.train()
        step = run.start
        for step in range(run.start + 1, cfg.run.steps + 1):
            generator = torch.Generator().manual_seed(step_seed(cfg.run.seed, step))
            batch = run.task.batch(cfg.run.batch_size, generator)
            batch = batch.rows(info.rank * share, (info.rank + 1) * share).to(info.device)
            loss_value, norm = _train_step(
                run.net, run.model, run.objective, batch, run.optimizer, cfg.optim.clip, info
            )
            _check_finite(loss_value, norm, step, run.checkpoint)
            run.scheduler.step()
            solved = self._observe(run, info, log, held_out, bar, step, loss_value, norm)
            bar.update(1)
            if self.on_step is not None:
                self.on_step(step, loss_value)
            stop_now = _agree(info, self._stop.is_set())
            if solved or stop_now:
                return step, "solved" if solved else "interrupted"
            if step % cfg.run.checkpoint_every == 0:
                self._save(run, info, step, run.seconds_before + time.perf_counter() - began)
        return step, "budget"

    def _observe(
        self,
        run: _Run,
        info: distributed.Distributed,
        log: RunLog,
        held_out: list[Batch],
        bar: Any,
        step: int,
        loss_value: float,
        norm: float,
    ) -> bool:
        """Logs the step and, when due, evaluates; returns whether the run should stop as
        solved."""
        cfg = self.config.run
        if step % cfg.log_every == 0:
            lr = run.scheduler.get_last_lr()[0]
            log.write({"step": step, "loss": loss_value, "lr": lr, "grad_norm": norm})
        if not (step % cfg.eval_every == 0 or step == cfg.steps):
            return False
        run.last_eval = evaluate(run.model, run.task, held_out, info.device, run.objective)
        solved = run.task.solved(run.last_eval)
        if solved and run.solved_step is None:
            run.solved_step = step
        log.write({"step": step, "eval": run.last_eval, "solved": solved})
        metric = run.task.metric
        bar.set_postfix({"loss": f"{loss_value:.4f}", metric: f"{run.last_eval[metric]:.4f}"})
        return solved and cfg.early_stop

    def _save(self, run: _Run, info: distributed.Distributed, step: int, seconds: float) -> None:
        if run.checkpoint is None or not info.is_main:
            return
        if not all(bool(torch.isfinite(p).all()) for p in run.model.parameters()):
            raise NonFiniteLossError(
                f"the weights are not finite after step {step}; not saving them, so "
                f"{run.checkpoint} keeps the last good state. Lower the learning rate or clip "
                "gradients harder (optim.clip)"
            )
        task = run.task
        save_checkpoint(
            run.checkpoint,
            {
                "format": FORMAT,
                "step": step,
                "config": self.config.to_dict(),
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state()},
                "task": {"name": task.name, "state": task.state()},
                "model_info": sizes_of(task),
                "progress": {
                    "solved_step": run.solved_step,
                    "last_eval": run.last_eval,
                    "seconds": seconds,
                },
            },
        )


@dataclass
class _Run:
    """What one call of :meth:`Trainer.fit` trains, and how far it has got."""

    task: Task
    objective: Objective  # how the model meets the task's batches
    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    checkpoint: Path | None
    start: int = 0  # the step the checkpoint was written after
    solved_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    seconds_before: float = 0.0  # training time before this call


def _check_finite(loss_value: float, norm: float, step: int, checkpoint: Path | None) -> None:
    if math.isfinite(loss_value) and math.isfinite(norm):
        return
    what = "training loss" if not math.isfinite(loss_value) else "gradient norm"
    value = loss_value if not math.isfinite(loss_value) else norm
    raise NonFiniteLossError(
        f"the {what} is {value} at step {step}; stopped without saving it, so "
        f"{checkpoint or 'no checkpoint'} keeps the last good state. Lower the "
        "learning rate or clip gradients harder (optim.clip)"
    )


def _train_step(
    net: nn.Module,
    model: nn.Module,
    scoring: Objective,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    clip: float,
    info: distributed.Distributed,
) -> tuple[float, float]:
    """One optimiser step on ``batch``; returns the loss (the mean over processes) and the
    gradient norm. The weights are left untouched when either is not finite."""
    loss = scoring.loss(scoring.outputs(net, batch), batch)
    loss_value = distributed.mean_across(info, loss.detach()).item()
    if not math.isfinite(loss_value):
        return loss_value, math.nan
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    norm = _clip(model, clip)
    if math.isfinite(norm):
        optimizer.step()
    return loss_value, norm


def _clip(model: nn.Module, clip: float) -> float:
    if clip > 0:
        return float(nn.utils.clip_grad_norm_(model.parameters(), clip))
    grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def _agree(info: distributed.Distributed, stop: bool) -> bool:
    """Whether any process was asked to stop, so that all stop after the same step."""
    if not info.enabled:
        return stop
    flag = torch.tensor([1.0 if stop else 0.0], device=info.device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item() > 0)


def fit(
    cell: str,
    task: str,
    *,
    steps: int,
    hidden_size: int = 64,
    num_layers: int = 1,
    embedding_size: int = 16,
    batch_size: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
    eval_size: int = 512,
    kind: str = "sequence",
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Trains a layer named by a spec (``"lstm"``, ``"grid:depth=4"``) on a task named by a spec
    (``"gap:gap=20"``, ``"adding:length=50"``) for ``steps`` steps and evaluates it once at the
    end on ``eval_size`` held-out sequences (at most the whole held-out part of a real-data
    task), in memory: no files, no progress bar, no early stop. ``kind`` trains another model
    kind than a sequence model (``"draw:glimpses=16"`` on ``"digits"``; see
    :mod:`lstmkit.train.models`), with ``cell`` its recurrence (``"lstm"``). The short form of
    building a :class:`TrainConfig` and calling :class:`Trainer`, for notebooks and examples."""
    task_spec = Spec.parse(task)
    config = TrainConfig(
        model=ModelConfig(
            kind=kind,
            cell=cell,
            hidden_size=hidden_size,
            num_layers=num_layers,
            embedding_size=embedding_size,
        ),
        task=TaskConfig(task_spec.name, dict(task_spec.options)),
        optim=OptimConfig(lr=lr),
        run=RunConfig(
            steps=steps,
            batch_size=batch_size,
            eval_every=steps,
            eval_size=eval_size,
            early_stop=False,
            seed=seed,
        ),
    )
    return Trainer(config, progress=False, on_step=on_step).fit()


def model_from_checkpoint(
    state: dict[str, Any], file: str | Path = "the checkpoint"
) -> SequenceModel:
    """The trained sequence model of a loaded checkpoint (see :func:`load_checkpoint`), in eval
    mode; a checkpoint of another model kind (DRAW, a VRNN, ...) is refused with an error that
    says which it holds (:func:`any_model_from_checkpoint` reads every kind)."""
    model = any_model_from_checkpoint(state, file)
    if not isinstance(model, SequenceModel):
        kind = TrainConfig.from_dict(state["config"]).model.kind
        raise LstmkitValueError(
            f"{file} holds a {Spec.parse(kind).name} model (model.kind = {kind!r}); this reads "
            "sequence models only (lstmkit sample reads the generative models and the captioner)"
        )
    return model


def any_model_from_checkpoint(
    state: dict[str, Any], file: str | Path = "the checkpoint"
) -> nn.Module:
    """The trained model of a loaded checkpoint, of any kind, in eval mode. Its weights are
    checked against the model its configuration describes, built first on the meta device (no
    memory), so that a damaged configuration is refused before anything is allocated."""
    check_entries(state, file)
    config = TrainConfig.from_dict(state["config"])
    sizes = {k: state["model_info"][k] for k in FIELDS["model_info"]}
    sizes["image_size"] = state["model_info"].get("image_size")  # absent in older checkpoints
    try:
        with torch.device("meta"):
            probe = build(config.model, **sizes)
    except (RuntimeError, ValueError, TypeError, OverflowError) as error:
        raise LstmkitValueError(
            f"the configuration in {file} describes a model that cannot be built: {error}"
        ) from None
    check_weights(probe, state["model"], file)
    model = build(config.model, **sizes)
    model.load_state_dict(state["model"])
    return model.eval()


def load_model(checkpoint: str | Path) -> tuple[nn.Module, Task, TrainConfig]:
    """The trained model of a checkpoint of any kind (in evaluation mode), the task it was
    trained on, rebuilt as the run built it (a character model's vocabulary included), and the
    run's configuration. Reads the file without running code from it."""
    state, read = load_latest(checkpoint)
    config = TrainConfig.from_dict(state["config"])
    task = make_task(config.task.name, **{**config.task.options, **state["task"].get("state", {})})
    return any_model_from_checkpoint(state, read), task, config


def load_run(checkpoint: str | Path) -> tuple[SequenceModel, Task]:
    """The trained sequence model of a checkpoint (in evaluation mode) and the task it was
    trained on, rebuilt as the run built it; a checkpoint of another model kind is refused with
    an error that names it (:func:`load_model` reads every kind)."""
    state, read = load_latest(checkpoint)
    config = TrainConfig.from_dict(state["config"])
    model = model_from_checkpoint(state, read)  # refuses other kinds before the task is built
    task = make_task(config.task.name, **{**config.task.options, **state["task"].get("state", {})})
    return model, task
