"""The contract between a cell and whatever runs it over time.

A cell takes one step: ``state_t = cell(x_t, state_{t-1})``. Time, layers and directions belong
to :class:`lstmkit.Recurrent`; engines execute the loop. To let a fast engine hoist work out of
the loop, a step is split in pieces:

* ``project_input(x)`` — everything that depends on the input alone (for the built-in cells
  ``W_ih·x + b_ih``). It is applied to all time steps at once, before the loop.
* ``step(xp_t, state)`` — the recurrent product and the pointwise update, given one projected
  time slice ``xp_t``.
* ``output(state)`` — what the layer emits at each step (``h_t``).

A state is a tensor ``h`` of shape ``(B, H)`` or a named tuple of such tensors whose first field is
``h`` (``LSTMState(h, c)`` for the LSTM family).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import check_input_tensor, check_state
from lstmkit._errors import LstmkitValueError
from lstmkit._state import State, map_state

__all__ = ["LSTMState", "RecurrentCell", "State", "parameter_of"]

_UNSET = object()  # a parameter name that is not in a module's _parameters


class LSTMState(NamedTuple):
    """State of an LSTM-family cell, ``(h, c)`` in that order everywhere."""

    h: Tensor
    """Hidden state h_t, ``(B, H)``, or ``(B, P)`` with a projection of size P."""
    c: Tensor
    """Cell state C_t (the post's "conveyor belt"), ``(B, H)``."""


S = TypeVar("S", bound=State)
"""A cell's own state type: ``Tensor``, :class:`LSTMState`, ..."""


class RecurrentCell(nn.Module, Generic[S]):
    """Base class of every cell: one step of a recurrent network.

    Subclasses set ``input_size`` and ``hidden_size`` and implement :meth:`step`; they override
    :meth:`initial_state` when the state is more than one tensor ``h``, :meth:`project_input`
    when part of the step depends on the input alone, and :meth:`spawn` so that
    :class:`lstmkit.Recurrent` can build further layers and directions of the same kind.

    A cell is generic in its state type ``S`` (``RecurrentCell[LSTMState]``). Calling it takes
    one step, the way ``torch.nn.LSTMCell`` does::

        state = cell(x_t, state)   # x_t: (B, input_size) or unbatched (input_size,)
    """

    input_size: int
    hidden_size: int
    supports_recurrent_dropout: ClassVar[bool] = False
    """Whether :meth:`step` takes ``h_mask``, a recurrent-dropout mask for h_{t-1} that it
    applies where h_{t-1} enters a matrix product (and nowhere else)."""

    @property
    def output_size(self) -> int:
        """Size of ``output(state)``, the features the layer emits per step and direction."""
        return self.hidden_size

    def project_input(self, x: Tensor) -> Tensor:
        """The input-only part of the step, for any number of leading dimensions.

        ``x``: ``(..., input_size)`` → ``(..., G)``; ``G`` is the cell's own width.
        """
        return x

    def step(self, xp_t: Tensor, state: S, *, h_mask: Tensor | None = None) -> S:
        """One step from an already projected input slice ``xp_t`` of shape ``(B, G)``.

        ``h_mask`` ``(B, O)``, given only when :attr:`supports_recurrent_dropout`, is a
        recurrent-dropout mask the step multiplies h_{t-1} by where it enters a matrix product.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step(xp_t, state)")

    def output(self, state: S) -> Tensor:
        """What the layer emits for this state: ``h``, the state's first field."""
        return state if isinstance(state, Tensor) else state[0]

    def initial_state(self, batch_size: int, *, dtype: torch.dtype, device: torch.device) -> S:
        """The zero state for a batch of ``batch_size``; a given state must have its shapes.

        By default one tensor h of shape ``(B, hidden_size)``; cells with more state override it.
        """
        return torch.zeros(batch_size, self.hidden_size, dtype=dtype, device=device)  # type: ignore[return-value]

    def spawn(self, input_size: int) -> RecurrentCell[S]:
        """A fresh, independently initialised cell like this one that takes ``input_size`` features.

        :class:`lstmkit.Recurrent` calls it to build layers above the first and reverse directions.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define spawn(input_size), which lstmkit.Recurrent "
            "needs for num_layers > 1 or bidirectional=True; define it to return a new cell of "
            "the same configuration with the given input size"
        )

    def forward(self, input: Tensor, hx: State | None = None) -> S:
        """One step. ``input``: ``(B, input_size)`` or ``(input_size,)``; ``hx`` as
        :meth:`initial_state` gives it (zeros when omitted), unbatched when ``input`` is."""
        if hx is not None and _recording.RECORDING is None:
            new = self._direct_step(input, hx)
            if new is not None:
                return new
        unbatched = self._check_step_input(input)
        x = input.unsqueeze(0) if unbatched else input
        expected = self.initial_state(x.shape[0], dtype=x.dtype, device=x.device)
        state = expected
        if hx is not None:
            state = check_state(hx, expected, unbatched=unbatched, what="hx")  # type: ignore[assignment]
            self.check_state_values(state)
        new = None if _recording.RECORDING is not None else self.torch_step(x, state)
        if new is None:
            new = self.step(self.project_input(x), state)
        return map_state(lambda s: s.squeeze(0), new) if unbatched else new  # type: ignore[return-value]

    def _direct_step(self, input: object, hx: State) -> S | None:
        """A batched step with as few checks as torch.nn's cell makes, or None where the full
        checks must run. Where the cell has a torch cell for its configuration, torch checks
        the shapes, dtypes and devices in C++; if it refuses, the full checks then say in
        lstmkit's words what is wrong (and a failure they do not explain is raised again by the
        same call). Otherwise the input and state are compared with what the cell takes."""
        if type(input) is not Tensor or input.dim() != 2:
            return None
        try:
            new = self.torch_step(input, hx)  # type: ignore[arg-type]
        except (RuntimeError, TypeError):
            return None
        if new is not None:
            return new
        state = self._plain_state(input, hx)
        if state is None:
            return None
        self.check_state_values(state)
        return self.step(self.project_input(input), state)

    def check_state_values(self, state: S) -> None:
        """Refuses, with an :class:`lstmkit.LstmkitValueError`, values a caller gave in a state
        that the cell cannot take (a clock that is not a whole number, say). Shapes and dtypes
        are checked before; the default takes any values."""

    def _params(self, *names: str) -> list[Any]:
        """The cell's parameters of these names (None where absent), as attribute access
        gives them but without nn.Module's attribute lookup for each (a step at batch 1 counts
        it)."""
        own = self._parameters
        if "_lstmkit_binding" in self.__dict__:
            return [getattr(self, n) for n in names]
        found = [own.get(n, _UNSET) for n in names]
        return [getattr(self, n) if p is _UNSET else p for n, p in zip(names, found, strict=True)]

    def _plain_state(self, input: object, hx: object) -> S | None:
        """``hx`` as the state type if ``input`` and ``hx`` are a batched step exactly as the
        cell takes them (shapes, dtype and device), else None (the full checks then say what is
        wrong). A few comparisons, so that one step at batch 1 costs what torch.nn's cell does."""
        layout = self.state_layout()
        if layout is None or type(input) is not Tensor or input.dim() != 2:
            return None
        like = self._like()
        if like is None or input.shape[1] != self.input_size or input.dtype != like.dtype:
            return None
        if input.device != like.device:
            return None
        kind, widths = layout
        values = (hx,) if kind is None else hx
        if not isinstance(values, tuple) or len(values) != len(widths):
            return None
        B = input.shape[0]
        for value, width in zip(values, widths, strict=True):
            if type(value) is not Tensor or value.shape != (B, width):
                return None
            if value.dtype != input.dtype or value.device != input.device:
                return None
        return hx if kind is None or type(hx) is kind else kind(*values)  # type: ignore[return-value]

    def _like(self) -> Tensor | None:
        """:func:`parameter_of`, by the name of the cell's first own parameter where it still
        holds it (a layer that adopts the cell takes its parameters)."""
        name = self.__dict__.get("_lstmkit_first_parameter")
        if name is None:
            name = next((n for n, p in self._parameters.items() if p is not None), "")
            self.__dict__["_lstmkit_first_parameter"] = name
        own = self._parameters.get(name) if name else None
        return parameter_of(self) if own is None else own

    def state_layout(self) -> tuple[Any, tuple[int, ...]] | None:
        """The state's named-tuple type (None for a single tensor) and each field's width, so
        that a call given a state can check it by comparison alone; None (the default) where
        the cell does not say, and a given state then gets the full checks. Known for the default
        :meth:`initial_state`, one tensor ``(B, hidden_size)``."""
        if type(self).initial_state is RecurrentCell.initial_state:
            return None, (self.hidden_size,)
        return None

    def torch_step(self, x: Tensor, state: S) -> S | None:
        """One step by torch's own fused cell (``torch.lstm_cell`` and kin), for the
        configurations torch.nn's cells compute; None where there is none. A call of the cell
        takes it (one C++ call instead of a few small operations, so one step at batch 1 costs
        about what torch.nn's cell costs); engines and traces use :meth:`step`, the equations.
        ``x``: ``(B, input_size)``, not yet projected; ``state`` may be any tuple of its fields
        (or a bad one: torch's cell raises for a state it cannot take)."""
        return None

    def _check_step_input(self, input: object) -> bool:
        """Validates one step's input; returns whether it is unbatched."""
        x = check_input_tensor(input, what="input", like=parameter_of(self))
        if x.dim() not in (1, 2):
            raise LstmkitValueError(
                f"input must be (batch, input_size) or unbatched (input_size,), got {x.dim()}-D "
                f"with shape {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise LstmkitValueError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {x.shape[-1]}"
            )
        return x.dim() == 1

    def __getattr__(self, name: str) -> Any:
        # Inside lstmkit.Recurrent a cell's parameters live on the layer under torch.nn's names
        # (weight_ih_l0, ...); the cell reads them from there, so both always see the same tensor.
        bound = self.__dict__.get("_lstmkit_binding")
        if bound is not None and name in bound[1]:
            layer, flat = bound[0], bound[1][name]
            # What nn.Module's lookup finds first, without a second Python-level __getattr__
            # (this runs for every parameter on every call); a parametrized name is not in
            # _parameters, and getattr computes it.
            found = layer._parameters.get(flat, _UNSET)
            return getattr(layer, flat) if found is _UNSET else found
        return super().__getattr__(name)


def parameter_of(cell: nn.Module) -> Tensor | None:
    """A tensor that carries the cell's dtype and device, or None for a parameter-free cell."""
    bound = cell.__dict__.get("_lstmkit_binding")
    if bound is not None:
        for name in bound[1]:
            return getattr(cell, name)  # type: ignore[no-any-return]
    return next(iter(cell.parameters()), None)


_MOVED = {
    "map_state": "lstmkit._state",
    "add_torch_weights": "lstmkit.cells.functional",
    "check_sizes": "lstmkit.cells.functional",
    "init_uniform_": "lstmkit.cells.functional",
    "TORCH_WEIGHTS": "lstmkit.cells.functional",
}


def __getattr__(name: str) -> object:
    # helpers a cell of one's own may have imported from here; they live elsewhere now
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(
            f"lstmkit.cells.base.{name} has moved to {_MOVED[name]}.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
