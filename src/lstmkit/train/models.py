"""What the trainer can train: the model kinds of ``model.kind``, how each is built for a task,
and how its outputs meet the task's batches (an :class:`Objective`).

``sequence`` (the default) is a layer named by ``model.cell`` with a readout: it predicts the
task's targets from its inputs, and the task scores the predictions. The other kinds are the
models of the post's last section, each named with its options as ``name:key=value,...``:

- ``vrnn`` and ``storn`` (Chung et al. 2015; Bayer & Osendorfer 2014) and ``draw`` (Gregor et
  al. 2015) model binary data (a piano roll, a binarised digit): they read the batch's targets
  as their data and are trained by their variational bound, which they report in the task's
  own unit (nats per step, or per digit) as an upper bound on the task's NLL;
- ``captioner`` (Xu et al. 2015) writes a caption for an image with attention over its
  convolutional features: it is trained with the caption fed in (teacher forcing) and
  evaluated on the words it chooses itself (greedy decoding).

A task says which kinds it takes (:attr:`lstmkit.tasks.base.Task.models`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._spec import Spec
from lstmkit.layers.registry import build_layer
from lstmkit.modules.captioner import Captioner
from lstmkit.modules.draw import DRAW, DRAWOutput
from lstmkit.modules.sequence import SequenceModel
from lstmkit.modules.vrnn import STORN, VRNN, BoundOutput
from lstmkit.tasks import TASKS, Batch, Task
from lstmkit.train.config import ModelConfig

KINDS: dict[str, dict[str, Any]] = {
    "sequence": {},
    "vrnn": {"latent_size": 16, "feature_size": None},
    "storn": {"latent_size": 16, "recognition_size": None, "bidirectional": True},
    "draw": {"glimpses": 16, "z_size": 10, "attention": True, "read_n": 2, "write_n": 5},
    "captioner": {"attention": True, "feature_size": 64},
}
"""Each model kind and its options with their defaults (None: the model's own default)."""

CELLS: dict[str, tuple[str, ...]] = {"vrnn": ("lstm", "gru"), "storn": ("lstm", "gru")}
"""The ``model.cell`` each kind other than ``sequence`` accepts; DRAW and the captioner are
built on LSTMs, as in their papers."""

EVAL_NOISE_SEED = 1502_04623
"""Seeds the latent noise of every held-out evaluation, so that two evaluations of a
generative model differ only by its weights (DRAW's arXiv number)."""


def model_kind(config: ModelConfig) -> Spec:
    """``config.kind`` parsed and checked: a known kind, known options of the right types, and a
    ``cell`` the kind can use; the options come back with the defaults filled in."""
    spec = Spec.parse(config.kind)
    if spec.name not in KINDS:
        raise LstmkitValueError(
            f"unknown model kind {spec.name!r}; expected one of {', '.join(KINDS)}"
        )
    defaults = KINDS[spec.name]
    unknown = sorted(set(spec.options) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "none"
        raise LstmkitValueError(
            f"model kind {spec.name!r} has no option(s) {', '.join(unknown)}; its options are "
            f"{valid}"
        )
    for key, value in spec.options.items():
        _check_option(spec.name, key, value, defaults[key])
    if spec.name != "sequence":
        cells = CELLS.get(spec.name, ("lstm",))
        if config.cell not in cells:
            raise LstmkitValueError(
                f"model kind {spec.name!r} is built on {' or '.join(cells)}; got model.cell "
                f"{config.cell!r} (cell options apply to sequence models only)"
            )
    return Spec(spec.name, {**defaults, **spec.options})


def _check_option(kind: str, key: str, value: object, default: object) -> None:
    """A bool option takes true or false; any other a positive integer, or none where its
    default is none (the model's own choice)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise LstmkitTypeError(f"{kind} option {key} must be true or false, got {value!r}")
        return
    if value is None and default is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LstmkitValueError(f"{kind} option {key} must be a positive integer, got {value!r}")


def check_task(config: ModelConfig, task: Task | type[Task]) -> None:
    """Refuses a model kind that cannot learn ``task``, naming the kinds it takes and the tasks
    that take the kind."""
    kind = model_kind(config).name
    if kind in task.models:
        return
    takers = [name for name, cls in TASKS.items() if kind in cls.models]
    raise LstmkitValueError(
        f"a {kind} model cannot learn the {task.name} task, which takes "
        f"{', '.join(task.models)} models; {kind} learns {', '.join(takers) or 'no task'}"
    )


def sizes_of(task: Task) -> dict[str, Any]:
    """What building a model for ``task`` needs to know of it (a checkpoint's ``model_info``)."""
    image = task.image_size
    return {
        "vocab_size": task.vocab_size,
        "input_size": task.input_size,
        "output_size": task.output_size,
        "readout": task.readout,
        "image_size": None if image is None else list(image),
    }


def build(
    config: ModelConfig,
    *,
    vocab_size: int | None,
    input_size: int,
    output_size: int,
    readout: Literal["last", "all"],
    image_size: list[int] | tuple[int, int] | None = None,
) -> nn.Module:
    """The model ``config`` describes, for a task of these sizes (see :func:`sizes_of`)."""
    spec = model_kind(config)
    o, H = spec.options, config.hidden_size
    if spec.name == "vrnn":
        return VRNN(
            input_size, H, o["latent_size"], feature_size=o["feature_size"], cell=config.cell
        )
    if spec.name == "storn":
        return STORN(
            input_size,
            H,
            o["latent_size"],
            recognition_size=o["recognition_size"],
            cell=config.cell,
            bidirectional=o["bidirectional"],
        )
    if spec.name in ("draw", "captioner"):
        if image_size is None:
            raise LstmkitValueError(f"a {spec.name} model is built for images; the task has none")
        height, width = image_size
        if spec.name == "draw":
            options = {k: o[k] for k in ("glimpses", "z_size", "attention", "read_n", "write_n")}
            return DRAW(height, width, hidden_size=H, **options)
        return Captioner(
            output_size,
            image_size=(height, width),
            channels=input_size,
            hidden_size=H,
            embedding_size=config.embedding_size,
            feature_size=o["feature_size"],
            attention=o["attention"],
        )
    layer = build_layer(
        config.cell,
        config.embedding_size if vocab_size is not None else input_size,
        H,
        num_layers=config.num_layers,
        dropout=config.dropout,
        bidirectional=config.bidirectional,
        batch_first=True,
        engine=config.engine,
    )
    return SequenceModel(layer, vocab_size=vocab_size, output_size=output_size, readout=readout)


class Objective:
    """How a model meets a task's batches: what it is run on, and how its outputs are scored.
    This one is a sequence model's: the model reads the inputs, the task scores its outputs."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def outputs(self, net: nn.Module, batch: Batch) -> Any:
        return net(batch.inputs, batch.lengths)

    def loss(self, outputs: Any, batch: Batch) -> Tensor:
        return self.task.loss(outputs, batch)

    def metrics(self, outputs: Any, batch: Batch) -> dict[str, float]:
        return self.task.metrics(outputs, batch)


class BoundObjective(Objective):
    """A latent-variable model of the batch's targets, trained by its negative variational
    bound. The bound is reported as the task's main metric, in its unit (an upper bound on the
    NLL), with its two parts: ``reconstruction`` and ``kl``. Held-out evaluations draw the
    latent noise from :data:`EVAL_NOISE_SEED`."""

    def outputs(self, net: nn.Module, batch: Batch) -> Any:
        generator = None
        if not net.training:
            device = batch.targets.device
            generator = torch.Generator(device=device).manual_seed(EVAL_NOISE_SEED)
        if isinstance(_inner(net), DRAW):  # images, all the same size
            return net(batch.targets, generator=generator)
        return net(batch.targets, batch.lengths, generator=generator)

    def parts(self, outputs: Any, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """The bound, its reconstruction term and its KL, in the task's unit."""
        if isinstance(outputs, DRAWOutput):
            return outputs.loss.mean(), outputs.reconstruction.mean(), outputs.kl.mean()
        assert isinstance(outputs, BoundOutput)
        scale = 1.0  # nats per step, averaged over the real steps
        if self.task.nll_per_sequence:  # nats per sequence: the steps per sequence, on average
            steps = (
                batch.targets.shape[1] if batch.lengths is None else batch.lengths.double().mean()
            )
            scale = float(steps)
        return outputs.loss * scale, outputs.reconstruction * scale, outputs.kl * scale

    def loss(self, outputs: Any, batch: Batch) -> Tensor:
        return self.parts(outputs, batch)[0]

    def metrics(self, outputs: Any, batch: Batch) -> dict[str, float]:
        bound, reconstruction, kl = (v.item() for v in self.parts(outputs, batch))
        return {self.task.metric: bound, "reconstruction": reconstruction, "kl": kl}


class CaptionObjective(Objective):
    """A captioner: trained on the caption fed in word by word, evaluated on the words it
    chooses itself, as many as the batch's captions hold; the task scores the logits."""

    def outputs(self, net: nn.Module, batch: Batch) -> Any:
        if net.training:
            return net(batch.inputs, batch.targets)
        return net(batch.inputs, max_length=batch.targets.shape[1])

    def loss(self, outputs: Any, batch: Batch) -> Tensor:
        return self.task.loss(outputs.logits, batch)

    def metrics(self, outputs: Any, batch: Batch) -> dict[str, float]:
        return self.task.metrics(outputs.logits, batch)


OBJECTIVES: dict[str, Callable[[Task], Objective]] = {
    "sequence": Objective,
    "vrnn": BoundObjective,
    "storn": BoundObjective,
    "draw": BoundObjective,
    "captioner": CaptionObjective,
}


def objective(config: ModelConfig, task: Task) -> Objective:
    """How a model of ``config`` trains on and is scored by ``task``."""
    check_task(config, task)
    return OBJECTIVES[model_kind(config).name](task)


def _inner(net: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper, or the model itself."""
    inner = getattr(net, "module", net)
    return inner if isinstance(inner, nn.Module) else net
