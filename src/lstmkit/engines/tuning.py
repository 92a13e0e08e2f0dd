"""``engine="auto"`` decides by measuring, on the machine it runs on.

The same kernels rank differently on different CPUs (torch's MKL takes slow paths on AMD where
oneDNN does not), so a fixed ranking cannot be right everywhere. The first time a kind of layer
runs (its cells and options, dtype, device, threads, a bucket of sizes, training or inference),
the engines that support it (all but the reference loop, where a faster one can run it) are
timed on the real inputs, interleaved, for a few repetitions; the fastest median wins (by more
than :data:`MARGIN`, else the static ranking's first) and the choice is kept in memory and in a
file in the user's cache folder, one per machine (CPU model, core count, torch and lstmkit
versions). A cached choice is used as it is, so a fixed cache gives a fixed choice and runs stay
reproducible.

Measuring changes nothing a user can see: it runs on detached copies of the inputs, computes the
training-mode gradients without touching ``.grad``, puts the random number generator back as it
was, and is not done where it could be seen (:func:`measurable`). ``LSTMKIT_AUTOTUNE=0`` turns
measuring off: "auto" then takes the static ranking of :func:`lstmkit.engines.select_engine`.
``LSTMKIT_CACHE_DIR`` moves the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parametrize

from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._io import cache_dir, write_text
from lstmkit._machine import cpu_name
from lstmkit._state import State, first, map_state
from lstmkit._version import __version__
from lstmkit._warnings import LstmkitWarning
from lstmkit.engines.registry import Engine, Layer, get_engine, select_engine, supporting_engines

FORMAT = 1
"""The cache file's format; a file of another format is ignored."""

MAX_CACHE_BYTES = 4 << 20
"""A larger cache file is not read (it holds a few hundred bytes per kind of layer)."""

MARGIN = 1.05
"""A measured engine replaces the static ranking's first only when at least this much faster:
a near-tie is noise, and the ranking is what a near-tie should fall back on."""

TimeEngine = Callable[[Engine, Callable[[], None]], float]
"""``time_engine(engine, run)``: the seconds one call of ``run()`` takes with ``engine``."""


def autotune_enabled() -> bool:
    """Whether "auto" measures (``LSTMKIT_AUTOTUNE`` is not ``0``)."""
    return os.environ.get("LSTMKIT_AUTOTUNE", "1").strip() not in ("0", "false", "no", "off")


def machine() -> dict[str, Any]:
    """What makes one machine's measurements differ from another's."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "lstmkit": __version__,
    }


def bucket(n: int) -> int:
    """``n`` rounded up to a power of two: sizes in one bucket share a choice."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def workload_key(layer: Layer, x: Tensor, batch_sizes: Tensor | None, *, training: bool) -> str:
    """The kind of work: the cells and their options, how they stack, the dtype and device,
    the bucket of the number of steps and of the batch, training or inference."""
    cell = layer.cell(0)
    if batch_sizes is None:
        steps, batch = x.shape[0], x.shape[1]
    else:
        steps, batch = len(batch_sizes), int(batch_sizes[0])
    parts = [
        f"{type(cell).__name__}({cell.extra_repr()})",
        f"layers={layer.num_layers}x{layer.num_directions}",
        f"dropout={layer.dropout > 0}",
        f"regularized={layer.regularizers.active}",
        str(x.dtype).removeprefix("torch."),
        x.device.type,
        f"threads={torch.get_num_threads()}",
        f"T{bucket(steps)}",
        f"B{bucket(batch)}",
        "packed" if batch_sizes is not None else "padded",
        "training" if training else "inference",
    ]
    return " ".join(parts)


@dataclass
class Choice:
    """What the measurement found for one kind of work."""

    engine: str  # the fastest
    milliseconds: dict[str, float] = field(default_factory=dict)  # median per engine


def candidates(layer: Layer, *, training: bool) -> list[Engine]:
    """The engines worth measuring for ``layer``, best first by the static ranking: every one
    that supports it, but the reference engine (a Python loop, never the fastest where another
    engine can run, and the costliest to time) when another can."""
    ranked = supporting_engines(layer, training=training)
    if not ranked:
        select_engine("auto", layer, training=training)  # raises, saying why each cannot
    fast = [e for e in ranked if e.name != "reference"]
    return fast or ranked


def pick(ranked: list[str], medians: dict[str, float]) -> str:
    """The fastest median, unless the static ranking's first is within :data:`MARGIN` of it."""
    fastest = min(ranked, key=lambda name: medians[name])  # min keeps the first of equals
    if medians[ranked[0]] <= MARGIN * medians[fastest]:
        return ranked[0]
    return fastest


def may_measure(x: Tensor) -> bool:
    """The cheap part of :func:`measurable`, asked on every call: on the CPU, not traced or
    compiled."""
    return (
        x.device.type == "cpu"
        and not torch._C._get_tracing_state()
        and not torch.compiler.is_compiling()
    )


def measurable(layer: Layer, x: Tensor) -> bool:
    """Whether timing engines on this call cannot change what the user sees: on the CPU (on a
    GPU torch's kernels are the only fast engine, and timing would disturb its random state),
    outside ``torch.jit`` tracing and ``torch.compile``, and with no gradient hook or
    parametrization on the parameters (computing a gradient would run them)."""
    if not may_measure(x):
        return False
    if parametrize.is_parametrized(layer):  # type: ignore[arg-type]
        return False
    return not any(p._backward_hooks for p in layer.parameters())


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LstmkitTypeError(f"expected a table of choices, got {type(value).__name__}")
    return value


def _choice(value: object) -> Choice:
    table = _mapping(value)
    engine, milliseconds = table.get("engine"), _mapping(table.get("milliseconds", {}))
    if not isinstance(engine, str):
        raise LstmkitTypeError(f"expected an engine name, got {type(engine).__name__}")
    times = {}
    for name, ms in milliseconds.items():
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
            raise LstmkitTypeError(f"expected a time in ms for {name!r}, got {ms!r}")
        times[str(name)] = float(ms)
    return Choice(engine, times)


def _time_engine(engine: Engine, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


class Tuner:
    """Chooses engines by timing them, and remembers the choices.

    Args:
        repeats: timed runs per engine (interleaved, after one untimed warm-up each).
        time_engine: how one run is timed; tests pass a fake one.
        path: the cache file; by default one per machine in :func:`cache_dir`.
    """

    def __init__(
        self,
        *,
        repeats: int = 5,
        time_engine: TimeEngine = _time_engine,
        path: Path | None = None,
    ) -> None:
        self.repeats = repeats
        self.time_engine = time_engine
        self._path = path
        self.choices: dict[str, Choice] = {}
        self._loaded = False

    @property
    def path(self) -> Path:
        if self._path is None:
            facts = json.dumps(machine(), sort_keys=True)
            digest = hashlib.sha256(facts.encode()).hexdigest()[:12]
            self._path = cache_dir() / f"engines-{digest}.json"
        return self._path

    def choose(
        self,
        layer: Layer,
        x: Tensor,
        batch_sizes: Tensor | None,
        hx: State,
        *,
        training: bool,
        remeasure: bool = False,
    ) -> Engine:
        """The engine to run ``layer`` on this input: a remembered choice, else the fastest of
        the candidates (see :func:`candidates`; only one: that one, unmeasured)."""
        ranked = candidates(layer, training=training)
        if len(ranked) == 1:
            return ranked[0]
        key = workload_key(layer, x, batch_sizes, training=training)
        self._load()
        known = self.choices.get(key)
        names = {e.name for e in ranked}
        if known is not None and set(known.milliseconds) == names and not remeasure:
            return get_engine(known.engine)  # measured among the same engines as now
        choice = self.measure(layer, ranked, x, batch_sizes, hx, training=training)
        self.choices[key] = choice
        self._save(key, choice)
        return get_engine(choice.engine)

    def measure(
        self,
        layer: Layer,
        candidates: list[Engine],
        x: Tensor,
        batch_sizes: Tensor | None,
        hx: State,
        *,
        training: bool,
    ) -> Choice:
        """Times every candidate on the input; the fastest median wins, ties to the earlier
        candidate (the static ranking's order)."""
        x = x.detach()
        hx = map_state(lambda t: t.detach(), hx)
        runs = {
            e.name: _runner(layer, e, x, batch_sizes, hx, training=training) for e in candidates
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        with torch.random.fork_rng(devices=[]):  # measured on the CPU only (measurable())
            for run in runs.values():
                run()  # warm-up: first-use costs (a kernel build, caches) are not the engine's
            runnable = [e for e in candidates if e.unsupported(layer) is None]  # a build may fail
            for _ in range(self.repeats):
                for engine in runnable:
                    times[engine.name].append(self.time_engine(engine, runs[engine.name]))
        medians = {e.name: 1e3 * statistics.median(times[e.name]) for e in runnable}
        return Choice(pick([e.name for e in runnable], medians), medians)

    def choose_among(self, key: str, timers: dict[str, Callable[[], float]]) -> str:
        """A remembered choice for ``key``, else the option whose timer (it returns seconds)
        has the fastest median over :attr:`repeats` interleaved runs; the first option is the
        static choice that a near-tie keeps. For choices below an engine's, such as which
        library multiplies inside the fused kernels."""
        known = self.known(key, timers.keys())
        if known is not None:
            return known
        times: dict[str, list[float]] = {name: [] for name in timers}
        for _ in range(self.repeats):
            for name, timer in timers.items():
                times[name].append(timer())
        medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        choice = Choice(pick(list(timers), medians), medians)
        self.choices[key] = choice
        self._save(key, choice)
        return choice.engine

    def known(self, key: str, options: AbstractSet[str]) -> str | None:
        """The remembered choice for ``key`` if it was measured among exactly ``options``, else
        None; cheap enough to ask on every call."""
        self._load()
        choice = self.choices.get(key)
        if choice is None or choice.milliseconds.keys() != options:
            return None
        return choice.engine

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for key, choice in self._read().items():
            self.choices.setdefault(key, choice)

    def _read(self) -> dict[str, Choice]:
        """The choices in the cache file; a file that is missing, unreadable, too large, of
        another format or not the shape this module writes counts as empty."""
        try:
            if self.path.stat().st_size > MAX_CACHE_BYTES:
                raise LstmkitValueError(f"larger than {MAX_CACHE_BYTES} bytes")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                return {}
            return {key: _choice(value) for key, value in _mapping(data.get("choices")).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, RecursionError) as error:
            warnings.warn(
                f"ignoring the engine cache {self.path} ({error}); it is measured again",
                LstmkitWarning,
                stacklevel=4,
            )
            return {}

    def _save(self, key: str, choice: Choice) -> None:
        try:
            saved = self._read()  # another process may have added choices since
            saved[key] = choice
            data = {
                "format": FORMAT,
                "machine": machine(),
                "choices": {k: asdict(v) for k, v in sorted(saved.items())},
            }
            write_text(self.path, json.dumps(data, indent=1) + "\n")
        except OSError as error:  # a read-only home: the choice still holds in memory
            warnings.warn(
                f"could not save the engine choice to {self.path} ({error})",
                LstmkitWarning,
                stacklevel=4,
            )


def _runner(
    layer: Layer,
    engine: Engine,
    x: Tensor,
    batch_sizes: Tensor | None,
    hx: State,
    *,
    training: bool,
) -> Callable[[], None]:
    """One run of ``engine`` on the input: forward, and in training the parameters' gradients
    (computed and dropped, so ``.grad`` is left alone)."""
    params = [p for p in layer.parameters() if p.requires_grad]

    def run() -> None:
        if not training:
            with torch.no_grad():
                engine.run(layer, x, batch_sizes, hx)
            return
        with torch.enable_grad():
            out, state = engine.run(layer, x, batch_sizes, hx)
            loss = out.sum() + first(state).sum()
            if params and loss.requires_grad:
                torch.autograd.grad(loss, params, allow_unused=True)

    return run


TUNER = Tuner()
"""The tuner every layer's "auto" asks."""


def choose_engine(
    layer: Layer, x: Tensor, batch_sizes: Tensor | None, hx: State, *, training: bool
) -> Engine:
    """The engine "auto" runs ``layer`` on: measured (see the module's docstring), or with
    ``LSTMKIT_AUTOTUNE=0``, or where measuring could be seen (:func:`measurable`), the static
    ranking."""
    if not autotune_enabled() or not measurable(layer, x):
        return select_engine("auto", layer, training=training)
    return TUNER.choose(layer, x, batch_sizes, hx, training=training)
