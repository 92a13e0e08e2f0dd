"""Sequence layers by name, for the trainer, the command line and the cell table.

Each family registers its layer where the layer is defined (``register_layer("lstm", LSTM,
examples=...)``); nothing else needs to learn a new name. A layer is written
``name:key=value,...`` on the command line (``gru:reset_after=false``); the examples are the
rows it gets in ``lstmkit cells``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lstmkit._checks import check_choice
from lstmkit._errors import LstmkitError, LstmkitTypeError, LstmkitValueError
from lstmkit._spec import Spec
from lstmkit.layers.recurrent import Recurrent

LayerFactory = Callable[..., Recurrent]
"""Builds a layer: ``factory(input_size, hidden_size, **options)``."""


@dataclass(frozen=True)
class Example:
    """One configuration of a layer, as a row of the cell table."""

    what: str  # what it is, in a few words
    paper: str  # where it comes from
    options: dict[str, Any] = field(default_factory=dict)  # keyword options of the factory
    sized: Callable[[int, int], dict[str, Any]] | None = None  # (hidden, steps) -> more options
    square: bool = False  # the cell needs input_size == hidden_size

    def options_for(self, hidden_size: int, steps: int) -> dict[str, Any]:
        extra = {} if self.sized is None else self.sized(hidden_size, steps)
        return {**self.options, **extra}


LAYERS: dict[str, LayerFactory] = {}
"""Sequence layers by name; each is called as ``factory(input_size, hidden_size, **options)``."""

EXAMPLES: dict[str, tuple[Example, ...]] = {}
"""The cell-table rows of each registered layer."""


def register_layer(name: str, factory: LayerFactory, *, examples: Sequence[Example] = ()) -> None:
    """Makes a layer available by name to :func:`build_layer`, the trainer and the CLI, and its
    ``examples`` to ``lstmkit cells``."""
    if not isinstance(name, str) or ":" in name or "," in name or not name:
        raise LstmkitValueError(f"a layer name must be non-empty without ':' or ',', got {name!r}")
    if not callable(factory):
        raise LstmkitTypeError(f"factory must be callable, got {factory!r}")
    LAYERS[name] = factory
    EXAMPLES[name] = tuple(examples)


def build_layer(
    spec: Spec | str, input_size: int, hidden_size: int, **layer_options: Any
) -> Recurrent:
    """The named layer with the spec's options and ``layer_options`` (num_layers, dropout, ...)."""
    if isinstance(spec, str):
        spec = Spec.parse(spec)
    check_choice("cell", spec.name, list(LAYERS))
    clash = set(spec.options) & set(layer_options)
    if clash:
        raise LstmkitValueError(
            f"options {sorted(clash)} given both in the cell spec and separately"
        )
    factory = LAYERS[spec.name]
    try:
        return factory(input_size, hidden_size, **spec.options, **layer_options)
    except TypeError as error:
        if isinstance(error, LstmkitError) and "unexpected keyword" not in str(error):
            raise  # a value of the wrong type, said already
        params = inspect.signature(factory).parameters
        valid = [n for n, p in params.items() if p.kind == p.KEYWORD_ONLY]
        raise LstmkitTypeError(
            f"cell {spec.name!r}: {error}; its options are {', '.join(valid)}"
        ) from None
