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

from typing import Any, ClassVar, NamedTuple, TypeAlias

import torch
from torch import Tensor, nn

from lstmkit._checks import check_positive_int, check_state, check_step_input

State: TypeAlias = Tensor | tuple[Tensor, ...]
"""A cell's state: one tensor, or a named tuple of tensors whose first field is ``h``."""


class LSTMState(NamedTuple):
    """State of an LSTM-family cell, ``(h, c)`` in that order everywhere."""

    h: Tensor
    """Hidden state h_t, ``(B, H)``, or ``(B, P)`` with a projection of size P."""
    c: Tensor
    """Cell state C_t (the post's "conveyor belt"), ``(B, H)``."""


def map_state(fn: Any, state: State) -> State:
    """Applies ``fn`` to every tensor of ``state``, keeping its structure."""
    if isinstance(state, Tensor):
        return fn(state)  # type: ignore[no-any-return]
    return type(state)(*(fn(s) for s in state)) if _is_namedtuple(state) else tuple(map(fn, state))


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


class RecurrentCell(nn.Module):
    """Base class of every cell: one step of a recurrent network.

    Subclasses set ``input_size`` and ``hidden_size`` and implement :meth:`step`; they override
    :meth:`initial_state` when the state is more than one tensor ``h``, :meth:`project_input`
    when part of the step depends on the input alone, and :meth:`spawn` so that
    :class:`lstmkit.Recurrent` can build further layers and directions of the same kind.

    Calling a cell takes one step, the way ``torch.nn.LSTMCell`` does::

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

    def step(self, xp_t: Tensor, state: State) -> State:
        """One step from an already projected input slice ``xp_t`` of shape ``(B, G)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement step(xp_t, state)")

    def output(self, state: State) -> Tensor:
        """What the layer emits for this state: ``h``, the state's first field."""
        return state if isinstance(state, Tensor) else state[0]

    def initial_state(self, batch_size: int, *, dtype: torch.dtype, device: torch.device) -> State:
        """The zero state for a batch of ``batch_size``; a given state must have its shapes.

        By default one tensor h of shape ``(B, hidden_size)``; cells with more state override it.
        """
        return torch.zeros(batch_size, self.hidden_size, dtype=dtype, device=device)

    def spawn(self, input_size: int) -> RecurrentCell:
        """A fresh, independently initialised cell like this one that takes ``input_size`` features.

        :class:`lstmkit.Recurrent` calls it to build layers above the first and reverse directions.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define spawn(input_size), which lstmkit.Recurrent "
            "needs for num_layers > 1 or bidirectional=True; define it to return a new cell of "
            "the same configuration with the given input size"
        )

    def forward(self, input: Tensor, hx: State | None = None) -> State:
        """One step. ``input``: ``(B, input_size)`` or ``(input_size,)``; ``hx`` as
        :meth:`initial_state` gives it (zeros when omitted), unbatched when ``input`` is."""
        unbatched = check_step_input(self, input)
        x = input.unsqueeze(0) if unbatched else input
        expected = self.initial_state(x.shape[0], dtype=x.dtype, device=x.device)
        if hx is None:
            state = expected
        else:
            state = check_state(hx, expected, unbatched=unbatched, what="hx")
        new = self.step(self.project_input(x), state)
        return map_state(lambda s: s.squeeze(0), new) if unbatched else new

    def __getattr__(self, name: str) -> Any:
        # Inside lstmkit.Recurrent a cell's parameters live on the layer under torch.nn's names
        # (weight_ih_l0, ...); the cell reads them from there, so both always see the same tensor.
        bound = self.__dict__.get("_lstmkit_binding")
        if bound is not None and name in bound[1]:
            return getattr(bound[0], bound[1][name])
        return super().__getattr__(name)


def add_torch_weights(
    cell: nn.Module,
    rows: int,
    *,
    input_size: int,
    recurrent_size: int,
    bias: bool,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> None:
    """Registers torch.nn's recurrent parameters on ``cell``: ``weight_ih (rows, input_size)``,
    ``weight_hh (rows, recurrent_size)`` and, with ``bias``, ``bias_ih`` and ``bias_hh (rows,)``
    (None without)."""
    new: dict[str, Any] = {"device": device, "dtype": dtype}
    cell.weight_ih = nn.Parameter(torch.empty(rows, input_size, **new))
    cell.weight_hh = nn.Parameter(torch.empty(rows, recurrent_size, **new))
    cell.register_parameter("bias_ih", nn.Parameter(torch.empty(rows, **new)) if bias else None)
    cell.register_parameter("bias_hh", nn.Parameter(torch.empty(rows, **new)) if bias else None)


TORCH_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""The parameters every torch.nn recurrent cell has (the biases may be None)."""


def init_uniform_(cell: RecurrentCell, names: tuple[str, ...]) -> None:
    """torch.nn's initialisation of recurrent weights, U(-1/√H, 1/√H), for the named parameters
    of ``cell`` that are not None."""
    bound = 1.0 / cell.hidden_size**0.5
    with torch.no_grad():
        for name in names:
            p = getattr(cell, name)
            if p is not None:
                p.uniform_(-bound, bound)


def check_sizes(input_size: int, hidden_size: int) -> None:
    check_positive_int("input_size", input_size)
    check_positive_int("hidden_size", hidden_size)
