"""What exporting a character model gains and costs (``lstmkit bench-onnx``,
``benchmarks/bench_onnx.py``): held-out bits per character and time per character of lstmkit's
own engine (PyTorch, float32) against onnxruntime on the exported step model, float32 and int8,
in one process, on the same weights and the same characters.

Three workloads: *stream*, one character a call at batch 1 from a carried state (what sampling
and a streaming service run); *score*, a batch of held-out windows a call from the zero state
(what evaluation runs); *sample*, ``lstmkit sample``'s whole loop, drawing included. The three
runtimes are called in turn, the order rotating each round, so that a machine that slows down
meanwhile slows all alike; the figures are medians.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit._errors import LstmkitValueError
from lstmkit._machine import describe_machine
from lstmkit.modules.sequence import SequenceModel
from lstmkit.tasks.base import Batch
from lstmkit.tasks.charlm import CharLMTask
from lstmkit.train.checkpoint import load_latest
from lstmkit.train.sample import (
    CharStepModel,
    OnnxCharModel,
    draw_text,
    export_charlm,
    torch_step,
)
from lstmkit.train.trainer import evaluate, load_run

RUNTIMES = ("lstmkit", "onnxruntime float32", "onnxruntime int8")
"""The runtimes compared, in the order of the table; ratios are to the first."""


@dataclass(frozen=True)
class DeployBenchConfig:
    checkpoint: str  # a charlm run's checkpoint.pt
    batch: int = 32  # sequences a call in the score workload
    sample_length: int = 200  # characters the sample workload draws a call
    min_repeats: int = 5  # at least this many timed calls of each runtime ...
    min_seconds: float = 1.0  # ... and at least this long, per workload
    per_channel: bool = False  # int8 with a scale per output row
    seed: int = 0  # the sample workload's seed


def run_deploy_bench(
    config: DeployBenchConfig, *, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Exports the checkpoint's model (float32, then int8) to a temporary folder and measures
    the three runtimes; returns the machine, the model, the held-out bits per character, the
    timings and whether sampling through onnxruntime float32 gave lstmkit's text."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    from lstmkit.interop.onnx_int8 import quantize

    say = progress or (lambda what: None)
    load_at_start = _load()
    model, task = load_run(config.checkpoint)
    if not isinstance(task, CharLMTask):
        raise LstmkitValueError(
            f"{config.checkpoint} was trained on the {task.name!r} task; expected 'charlm'"
        )
    step_model = CharStepModel(model).eval()
    with tempfile.TemporaryDirectory() as folder:
        say("exporting")
        report = export_charlm(model, task.vocabulary, Path(folder) / "model.onnx")
        int8 = quantize(
            report.path, Path(folder) / "model.int8.onnx", per_channel=config.per_channel
        )
        sessions = {
            "onnxruntime float32": OnnxCharModel(report.path),
            "onnxruntime int8": OnnxCharModel(int8),
        }
        sizes = {"float32": report.path.stat().st_size, "int8": int8.stat().st_size}
        say("scoring the held-out text")
        windows = task.eval_batches(config.batch, len(task.eval_text))
        bpc = {"lstmkit": evaluate(model, task, windows, torch.device("cpu"))["bpc"]}
        bpc.update({name: _onnx_bpc(m, task, windows) for name, m in sessions.items()})
        timings = _timings(config, step_model, sessions, windows[0], task.vocabulary, say)
        same = _same_text(config, step_model, sessions["onnxruntime float32"], task.vocabulary)
    return {
        "machine": describe_machine(),
        "onnxruntime": ort.__version__,
        "load_average": [load_at_start, _load()],
        "config": asdict(config),
        "model": _describe_model(config.checkpoint, model, task, report.operators),
        "file_bytes": sizes,
        "verify_difference": report.largest_difference,
        "held_out_chars": sum(b.targets.numel() for b in windows),
        "bpc": bpc,
        "timings": timings,
        "same_text": same,
    }


def _load() -> float | None:
    """The machine's load average over the last minute: other processes share the cores."""
    try:
        return os.getloadavg()[0]
    except OSError:  # not available here
        return None


def _onnx_bpc(model: OnnxCharModel, task: CharLMTask, windows: list[Batch]) -> float:
    """Held-out bits per character through onnxruntime, averaged over windows as
    :func:`lstmkit.train.trainer.evaluate` averages them."""
    total, count = 0.0, 0
    for batch in windows:
        tokens = np.ascontiguousarray(batch.inputs.T.numpy())  # (T, B)
        logits, _ = model.run(tokens, model.initial_state(len(batch)))
        outputs = torch.from_numpy(logits).transpose(0, 1)  # (B, T, V), as the model answers
        total += task.metrics(outputs, batch)["bpc"] * len(batch)
        count += len(batch)
    return total / count


def _timings(
    config: DeployBenchConfig,
    step_model: CharStepModel,
    sessions: dict[str, OnnxCharModel],
    window: Batch,
    vocabulary: str,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Each workload's rows: per runtime the median ms a call, its range, µs per character and
    the ratio to lstmkit's median."""
    prompt = torch.tensor([[0]])
    with torch.no_grad():
        _, *state = step_model(prompt.repeat(8, 1), *step_model.initial_state(1))
    state_np = [s.numpy() for s in state]
    scored = window.inputs.T.contiguous()  # (T, B) held-out tokens
    scored_np = scored.numpy()
    zero = step_model.initial_state(scored.shape[1])

    @torch.no_grad()
    def ours_stream() -> object:
        return step_model(prompt, *state)

    @torch.no_grad()
    def ours_score() -> object:
        return step_model(scored, *zero)

    def sample(step: Any) -> Callable[[], object]:
        length, seed = config.sample_length, config.seed
        return lambda: draw_text(step, vocabulary, length=length, seed=seed)

    workloads: dict[str, tuple[int, dict[str, Callable[[], object]]]] = {
        "stream": (1, {"lstmkit": ours_stream}),
        "score": (scored.numel(), {"lstmkit": ours_score}),
        "sample": (config.sample_length, {"lstmkit": sample(torch_step(step_model))}),
    }
    for name, m in sessions.items():
        start = m.initial_state(scored.shape[1])
        workloads["stream"][1][name] = _call(m, prompt.numpy(), state_np)
        workloads["score"][1][name] = _call(m, scored_np, start)
        workloads["sample"][1][name] = sample(m.step)
    rows = []
    for workload, (chars, fns) in workloads.items():
        say(f"timing {workload}")
        times = measure_turns(fns, min_repeats=config.min_repeats, min_seconds=config.min_seconds)
        base = statistics.median(times["lstmkit"])
        engine = step_model.rnn.last_engine  # the lstmkit engine its calls ran on
        for runtime in RUNTIMES:
            median = statistics.median(times[runtime])
            rows.append(
                {
                    "workload": workload,
                    "runtime": runtime,
                    "engine": engine if runtime == "lstmkit" else None,
                    "chars": chars,
                    "median_ms": median,
                    "min_ms": min(times[runtime]),
                    "max_ms": max(times[runtime]),
                    "calls": len(times[runtime]),
                    "us_per_char": 1e3 * median / chars,
                    "ratio": median / base,
                }
            )
    return rows


def _call(model: OnnxCharModel, tokens: Any, state: Any) -> Callable[[], object]:
    return lambda: model.run(tokens, state)


def measure_turns(
    fns: dict[str, Callable[[], object]], *, min_repeats: int, min_seconds: float
) -> dict[str, list[float]]:
    """Times in ms of each function, after two warm-up calls each, called in turn (A B C, then
    B C A, ...) at least ``min_repeats`` times and for at least ``min_seconds``."""
    names = list(fns)
    for name in names:
        fns[name]()
        fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    began, rounds = time.perf_counter(), 0
    while rounds < min_repeats or time.perf_counter() - began < min_seconds:
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
        rounds += 1
    return times


def _same_text(
    config: DeployBenchConfig, step_model: CharStepModel, onnx: OnnxCharModel, vocabulary: str
) -> bool:
    """Whether sampling through onnxruntime float32 draws lstmkit's text, seed for seed."""
    length = config.sample_length
    seeds = range(config.seed, config.seed + 5)
    ours = [draw_text(torch_step(step_model), vocabulary, length=length, seed=s) for s in seeds]
    theirs = [draw_text(onnx.step, vocabulary, length=length, seed=s) for s in seeds]
    return ours == theirs


def _describe_model(
    checkpoint: str, model: SequenceModel, task: CharLMTask, operators: dict[str, str]
) -> str:
    rnn = model.rnn
    step = load_latest(checkpoint)[0]["step"]
    layers = ", ".join(f"{name or 'the model'} as ONNX {op}" for name, op in operators.items())
    parameters = sum(p.numel() for p in model.parameters())
    return (
        f"{checkpoint} (step {step}): {type(rnn).__name__}, {rnn.num_layers} layer(s), hidden "
        f"{rnn.hidden_size}, embedding {rnn.input_size}, {parameters:,} parameters, "
        f"{task.codec.size} tokens; exported as a step model, {layers}"
    )


def format_deploy(results: dict[str, Any]) -> str:
    """The results as markdown: the summary table, then each measurement."""
    rows = results["timings"]
    header = ["lstmkit (PyTorch float32)", *RUNTIMES[1:]]
    kb = {k: v / 1024 for k, v in results["file_bytes"].items()}
    per_channel = "per-channel" if results["config"]["per_channel"] else "per-tensor"
    start, end = results["load_average"]
    load = "" if start is None else f"; load average {start:.1f} at the start, {end:.1f} at the end"
    config = results["config"]
    command = (
        f"lstmkit bench-onnx {config['checkpoint']} --batch {config['batch']} --sample-length "
        f"{config['sample_length']} --repeats {config['min_repeats']} --seconds "
        f"{config['min_seconds']:g}" + (" --per-channel" if config["per_channel"] else "")
    )
    lines = [
        f"Printed by `{command}`.",
        "",
        f"Machine: {results['machine']}; onnxruntime {results['onnxruntime']}{load}.",
        f"Model: {results['model']}. ONNX files: float32 {kb['float32']:.1f} kB, int8 "
        f"{kb['int8']:.1f} kB ({per_channel} scales); onnxruntime float32 against PyTorch on "
        f"the export's example: largest difference {results['verify_difference']:.1e}.",
        "",
        "| | " + " | ".join(header) + " |",
        "|---|---|---|---|",
        f"| held-out bits per character ({results['held_out_chars']:,} characters) | "
        + " | ".join(f"{results['bpc'][r]:.4f}" for r in RUNTIMES)
        + " |",
    ]
    what = {
        "stream": "stream: 1 character a call, batch 1",
        "score": "score: {b} sequences of {t} characters a call",
        "sample": "sample: `lstmkit sample`'s loop, {n} characters",
    }
    for workload, label in what.items():
        found = {r["runtime"]: r for r in rows if r["workload"] == workload}
        chars = found["lstmkit"]["chars"]
        label = label.format(b=config["batch"], t=chars // config["batch"], n=chars)
        cells = [f"{found[r]['us_per_char']:.2f} µs ({found[r]['ratio']:.2f}x)" for r in RUNTIMES]
        lines.append(f"| {label}: time per character | " + " | ".join(cells) + " |")
    same = "the same" if results["same_text"] else "NOT the same"
    lines += [
        "",
        "Times per character are the median time of a call divided by the characters it reads "
        "or draws; ratios are to lstmkit's median. The runtimes were called in turn, the order "
        "rotating each round, after two warm-up calls each. Sampling with seeds "
        f"{config['seed']}-{config['seed'] + 4} ({config['sample_length']} characters each) "
        f"gave {same} text through lstmkit and onnxruntime float32.",
        "",
        "| workload | runtime | ms a call: median (min-max) | calls |",
        "|---|---|---|---|",
    ]
    for r in rows:
        runtime = r["runtime"] + (f" (engine {r['engine']})" if r["engine"] else "")
        lines.append(
            f"| {r['workload']} | {runtime} | {r['median_ms']:.3f} "
            f"({r['min_ms']:.3f}-{r['max_ms']:.3f}) | {r['calls']} |"
        )
    return "\n".join(lines) + "\n"
