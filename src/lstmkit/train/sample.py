"""Text from a character-level language model (``lstmkit sample``), run by PyTorch from a
checkpoint or by onnxruntime from the ONNX file ``lstmkit export`` wrote.

Both run the model as a *step model* (:class:`CharStepModel`): token ids and the recurrent
state in, logits and the new state out, called once for the prompt and then once a character.
Both feed their logits to one drawing loop, :func:`draw_text`, so the same seed and options
give the same text (unless a draw lands within float32 rounding of the boundary between two
characters: the two runtimes sum in different orders, about 1e-6 apart).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lstmkit._errors import (
    LstmkitFileNotFoundError,
    LstmkitRuntimeError,
    LstmkitValueError,
    one_line,
)
from lstmkit._state import like
from lstmkit.interop.onnx_export import ExportReport, export
from lstmkit.modules.sequence import SequenceModel
from lstmkit.tasks.charlm import CharCodec
from lstmkit.train.checkpoint import load_latest
from lstmkit.train.trainer import model_from_checkpoint

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def load_charlm(checkpoint: str | Path) -> tuple[SequenceModel, str]:
    """The model of a ``charlm`` checkpoint, in eval mode, and its vocabulary: character ``k`` of
    the vocabulary is token ``k``, and any character outside it is token ``len(vocabulary)``
    (:class:`lstmkit.tasks.charlm.CharCodec` encodes and decodes with it)."""
    state, read = load_latest(checkpoint)
    return charlm_of(state, read)


def charlm_of(state: dict[str, Any], read: str | Path) -> tuple[SequenceModel, str]:
    """:func:`load_charlm` of a checkpoint already read (see :func:`load_latest`)."""
    task = state["task"]
    if task.get("name") != "charlm":
        raise LstmkitValueError(
            f"{read} was trained on the {task.get('name')!r} task; expected a 'charlm' checkpoint"
        )
    vocabulary = task.get("state", {}).get("vocabulary")
    if not isinstance(vocabulary, str) or not vocabulary:
        raise LstmkitValueError(f"{read}: the charlm task's vocabulary is missing or not text")
    return model_from_checkpoint(state, read), vocabulary


class CharStepModel(nn.Module):
    """A character model as one call per stretch of text, carrying its state between calls: what
    sampling runs, and what ``lstmkit export`` writes for a charlm checkpoint.

    Args:
        model: a :class:`SequenceModel` over tokens with a readout at every step (a charlm
            run's model); its modules are shared, not copied.

    Shapes: ``forward(tokens, *state)`` takes tokens ``(T, B)`` int64 and each field of the
    layer's state (:attr:`state_names`: ``h, c`` for an LSTM, ``h`` for a GRU or an RNN)
    stacked over layers and directions, ``(L·D, B, W)``; it returns the logits ``(T, B, V)``
    and the state after the last step, field by field, in the same shapes.
    """

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        if model.embedding is None or model.readout != "all":
            raise LstmkitValueError(
                "a step model needs a model over tokens that answers at every step (a charlm "
                f"model); got readout {model.readout!r} over "
                + ("features" if model.embedding is None else "tokens")
            )
        self.embedding, self.rnn, self.head = model.embedding, model.rnn, model.head
        weight = model.head.weight
        zero = model.rnn.initial_state(1, dtype=weight.dtype, device=weight.device)
        self._template = zero  # its structure (a tensor, or a named tuple of them)
        fields = [zero] if isinstance(zero, Tensor) else list(zero)
        names = getattr(zero, "_fields", None) or (
            ("h",) if isinstance(zero, Tensor) else tuple(f"s{k}" for k in range(len(fields)))
        )
        self.state_names: tuple[str, ...] = tuple(names)
        self.state_shapes: tuple[tuple[int, int], ...] = tuple(
            (int(t.shape[0]), int(t.shape[2]))
            for t in fields  # (L·D, W) of each (L·D, 1, W)
        )

    @property
    def vocab_size(self) -> int:
        return int(self.head.out_features)

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """The zero state the layer starts from, field by field: each ``(L·D, B, W)``."""
        weight = self.head.weight
        return tuple(
            torch.zeros(n, batch_size, w, dtype=weight.dtype, device=weight.device)
            for n, w in self.state_shapes
        )

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        x = self.embedding(tokens).transpose(0, 1)  # (B, T, E): the layer is batch-first
        template = self._template
        hx = state[0] if isinstance(template, Tensor) else like(template, state)
        output, new = self.rnn(x, hx)
        logits = self.head(output).transpose(0, 1)  # (T, B, V)
        return (logits, *([new] if isinstance(new, Tensor) else new))


Step = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""One call of a character model: ``step(codes, state)`` reads the tokens ``codes`` ``(T,)``
from ``state`` (None: the zero state) and returns the logits ``(V,)`` after the last of them and
the state after it (of whatever type the runtime keeps)."""


def draw_text(
    step: Step,
    vocabulary: str,
    *,
    prompt: str = "def ",
    length: int = 300,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """Continues ``prompt`` by ``length`` characters drawn from ``step``'s logits: each from
    softmax(logits / temperature), restricted to the ``top_k`` most likely characters when
    given. The same step function and seed give the same text; every runtime samples here."""
    check_sampling(prompt=prompt, length=length, temperature=temperature)
    codec = CharCodec(vocabulary)
    if top_k is not None and not 1 <= top_k <= codec.size:
        raise LstmkitValueError(f"top_k must be in [1, {codec.size}], got {top_k}")
    logits, state = step(codec.encode(prompt), None)
    generator = torch.Generator().manual_seed(seed)
    drawn: list[int] = []
    for k in range(length):
        scaled = logits / temperature
        if top_k is not None:
            threshold = scaled.topk(top_k).values[-1]
            scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
        code = int(torch.multinomial(scaled.softmax(-1), 1, generator=generator))
        drawn.append(code)
        if k + 1 < length:
            logits, state = step(torch.tensor([code]), state)
    return prompt + codec.decode(drawn)


def check_sampling(*, prompt: str, length: int, temperature: float) -> None:
    if not prompt:
        raise LstmkitValueError("prompt must have at least one character")
    if length < 0:
        raise LstmkitValueError(f"length must be >= 0, got {length}")
    if not temperature > 0:
        raise LstmkitValueError(f"temperature must be positive, got {temperature}")


def torch_step(model: CharStepModel) -> Step:
    """The :data:`Step` of a step model in PyTorch (no gradients); its state is a tuple of
    tensors."""

    @torch.no_grad()
    def step(codes: Tensor, state: tuple[Tensor, ...] | None) -> tuple[Tensor, Any]:
        hx = model.initial_state(1) if state is None else state
        logits, *new = model(codes[:, None], *hx)
        return logits[-1, 0], tuple(new)

    return step


def sample_text(
    checkpoint: str | Path,
    *,
    prompt: str = "def ",
    length: int = 300,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """Continues ``prompt`` by ``length`` characters drawn from a ``charlm`` checkpoint (see
    :func:`draw_text`). The same seed gives the same text."""
    check_sampling(prompt=prompt, length=length, temperature=temperature)
    model, vocabulary = load_charlm(checkpoint)
    step = torch_step(CharStepModel(model))
    return draw_text(
        step,
        vocabulary,
        prompt=prompt,
        length=length,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )


# ONNX -----------------------------------------------------------------------------------------

KIND = "charlm-step"
"""``lstmkit.model`` in the metadata of an exported character model."""

FORMAT = "1"
"""``lstmkit.format``: the layout of the inputs, outputs and metadata this lstmkit writes."""


def export_charlm(
    model: SequenceModel,
    vocabulary: str,
    path: str | Path,
    *,
    about: dict[str, str] | None = None,
) -> ExportReport:
    """Writes the :class:`CharStepModel` of a character model to ``path`` as ONNX: inputs
    ``tokens`` ``(T, B)`` int64 and the state's fields (``h``, ``c``), outputs ``logits``
    ``(T, B, V)`` and the new state (``h_n``, ``c_n``); the metadata holds the vocabulary, the
    state's layout and ``about`` (the task, the lstmkit version, ...), all that
    :class:`OnnxCharModel` needs. Returns :func:`lstmkit.interop.onnx_export.export`'s report
    (checked in onnxruntime, where it is installed) with the path written."""
    step_model = CharStepModel(model).eval()
    if step_model.vocab_size != CharCodec(vocabulary).size:
        raise LstmkitValueError(
            f"the model has {step_model.vocab_size} outputs; a vocabulary of {len(vocabulary)} "
            f"characters needs {CharCodec(vocabulary).size} (the unknown token too)"
        )
    layout = {
        "names": list(step_model.state_names),
        "shapes": [list(s) for s in step_model.state_shapes],
    }
    metadata = {
        **(about or {}),
        "lstmkit.model": KIND,
        "lstmkit.format": FORMAT,
        "lstmkit.vocabulary": json.dumps(vocabulary),
        "lstmkit.state": json.dumps(layout),
    }
    names = step_model.state_names
    return export(
        step_model,
        step_example(step_model),
        path,
        input_names=["tokens", *names],
        output_names=["logits", *(f"{n}_n" for n in names)],
        metadata=metadata,
    )


def step_example(model: CharStepModel, *, seed: int = 0) -> tuple[Tensor, ...]:
    """An input to trace and check a step model with: 3 steps of 2 sequences of random tokens
    (sizes above 1, which the exporter leaves free), from the state that 5 other random tokens
    leave (a state any cell accepts, a clock's included, and not the zero one)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.vocab_size, (8, 2), generator=generator)
    with torch.no_grad():
        _, *state = model(tokens[:5], *model.initial_state(2))
    return (tokens[5:], *state)


class OnnxCharModel:
    """A character model that ``lstmkit export`` wrote, in onnxruntime: its vocabulary and
    state layout read from the file's metadata.

    Args:
        path: the ONNX file (float32 or its int8 copy).
        threads: onnxruntime's threads within an operator (default: torch's thread count).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = onnx_session(self.path, threads=threads)
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.vocabulary, self.state_names, self.state_shapes = _read_metadata(
            self.path, self.metadata
        )
        expected = ["tokens", *self.state_names]
        got = [i.name for i in self.session.get_inputs()]
        if got != expected:
            raise LstmkitValueError(
                f"{self.path}: expected the inputs {expected} that its metadata describes, "
                f"got {got}"
            )

    def initial_state(self, batch_size: int) -> list[NDArray[np.float32]]:
        import numpy as np

        return [np.zeros((n, batch_size, w), dtype=np.float32) for n, w in self.state_shapes]

    def run(
        self, tokens: NDArray[np.int64], state: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
        """Logits ``(T, B, V)`` for tokens ``(T, B)`` from ``state``, and the state after."""
        feeds = {"tokens": tokens, **dict(zip(self.state_names, state, strict=True))}
        logits, *new = self.session.run(None, feeds)
        return logits, new

    def step(self, codes: Tensor, state: list[NDArray[np.float32]] | None) -> tuple[Tensor, Any]:
        """The :data:`Step` of this model; its state stays in onnxruntime's arrays."""
        start = self.initial_state(1) if state is None else state
        logits, new = self.run(codes[:, None].numpy(), start)
        return torch.from_numpy(logits[-1, 0]), new


def sample_onnx(
    path: str | Path,
    *,
    prompt: str = "def ",
    length: int = 300,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """:func:`sample_text` from an exported character model, through onnxruntime: the same
    text as its checkpoint gives for the same seed and options."""
    check_sampling(prompt=prompt, length=length, temperature=temperature)
    model = OnnxCharModel(path)
    return draw_text(
        model.step,
        model.vocabulary,
        prompt=prompt,
        length=length,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )


def onnx_session(path: str | Path, *, threads: int | None = None) -> Any:
    """An onnxruntime session of the model at ``path`` on the CPU, with ``threads`` threads
    within an operator (default: torch's thread count); an lstmkit error where onnxruntime is
    not installed, there is no file, or onnxruntime cannot read it."""
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError:
        raise LstmkitRuntimeError(
            "running an ONNX model needs onnxruntime: pip install 'lstmkit[onnx]'"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise LstmkitFileNotFoundError(f"no ONNX model at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its notes on unused initializers are not ours
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own classes, which it does not export
        raise LstmkitValueError(
            f"{path} is not an ONNX model onnxruntime can run: {one_line(error)}"
        ) from None


def _read_metadata(
    path: Path, metadata: dict[str, str]
) -> tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]]:
    """The vocabulary, state names and state shapes ``(L·D, W)`` of an exported character
    model's metadata; an error that says what is missing or wrong."""
    if metadata.get("lstmkit.model") != KIND:
        raise LstmkitValueError(
            f"{path} is not an lstmkit character-model export: its metadata has no "
            f"lstmkit.model = {KIND!r}; write one with `lstmkit export CHECKPOINT -o {path.name}` "
            "from a charlm checkpoint"
        )
    if metadata.get("lstmkit.format") != FORMAT:
        raise LstmkitValueError(
            f"{path} is in export format {metadata.get('lstmkit.format')!r}; this lstmkit reads "
            f"format {FORMAT!r}"
        )
    try:
        vocabulary = json.loads(metadata["lstmkit.vocabulary"])
        layout = json.loads(metadata["lstmkit.state"])
        names = tuple(str(n) for n in layout["names"])
        shapes = tuple((int(n), int(w)) for n, w in layout["shapes"])
    except (KeyError, TypeError, ValueError) as error:
        raise LstmkitValueError(
            f"{path}: its lstmkit metadata is damaged ({type(error).__name__}: {one_line(error)})"
        ) from None
    if not isinstance(vocabulary, str) or not vocabulary or len(names) != len(shapes):
        raise LstmkitValueError(f"{path}: its lstmkit metadata is damaged (vocabulary or state)")
    return vocabulary, names, shapes
