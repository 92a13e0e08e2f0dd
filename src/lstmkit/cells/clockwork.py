"""The Clockwork RNN (Koutník, Greff, Gomez & Schmidhuber 2014): a vanilla RNN whose hidden units
are split into modules that each update at their own clock rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._subclasses.fake_tensor import is_fake

from lstmkit import _recording
from lstmkit._checks import check_choice, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.functional import (
    check_recurrent_init,
    check_sizes,
    identity_,
    init_uniform_,
    orthogonal_,
)

_recording.declare(
    active=Quantity("clockwork module active (1) or held (0)", "", "fraction"),
    h_t=Quantity("hidden state", r"$h_t$", "value"),
)

NONLINEARITIES = ("tanh", "relu")
DEFAULT_MODULES = 4
"""Modules of a Clockwork cell given neither num_modules, periods nor module_sizes."""


class ClockworkState(NamedTuple):
    """State of a Clockwork cell, ``(h, t)`` in that order."""

    h: Tensor
    """Hidden state h_t, ``(B, H)``."""
    t: Tensor
    """The clock, ``(B, 1)`` in h's dtype: the index of the step that comes next, counted from 0
    and kept modulo the clock's full cycle (the least common multiple of the periods), which
    leaves every module's timing unchanged and keeps the count small. In bfloat16 (float16) it
    is exact only while the cycle is at most 256 (2048): beyond, ``t + 1`` rounds back and the
    reference's clock stalls, where the fused engine counts in integers."""


class ClockworkCell(RecurrentCell[ClockworkState]):
    r"""One step of a Clockwork RNN (Koutník et al. 2014, "A Clockwork RNN", arXiv 1402.3511).

    The hidden layer of a vanilla RNN, eq. (1) of the paper (its eq. (2), the output layer
    ``y_O = f_O(W_O y_H)``, is a head outside the cell)::

        y_H^(t) = f_H(W_H · y_H^(t-1) + W_I · x^(t))

    is split into g modules; module i owns the rows R_i (k_i units) and has the period T_i, with
    T_1 < T_2 < ... < T_g. At step t only the modules with ``t mod T_i = 0`` compute their rows of
    eq. (1); the others keep their previous values. Module j feeds module i only if it is at
    least as slow (T_j ≥ T_i), so W_H is block-upper-triangular: information flows from slow
    modules to fast ones, never back. With B a batch, I the input size and H = Σ k_i::

        M[R_i, R_j] = 1 if j >= i else 0                          (H, H)   the clock's structure
        a_t         = W_ih x_t + b + (W_hh ⊙ M) h_{t-1}           (B, H)
        h_t[R_i]    = f_H(a_t[R_i])    if t mod T_i = 0           (B, k_i)
        h_t[R_i]    = h_{t-1}[R_i]     otherwise

    ``W_ih`` is the paper's W_I and ``W_hh`` its W_H; f_H is tanh (``nonlinearity="relu"`` for
    ReLU). Choices the paper leaves open:

    * **Time starts at 0**: the first step of every sequence has t = 0, so every module updates
      at the first step and reads the first input. Counting from 1 would leave the slow modules
      emitting their initial state unchanged for up to T_g - 1 steps. The count lives in the
      state (:class:`ClockworkState`), so each sequence of a packed batch and each direction of
      a bidirectional layer counts its own steps from 0; a given initial state may carry any
      whole t >= 0 (another value is refused).
    * **Inactive modules copy** h_{t-1}; they do not take ``f_H(0)``, which is what eq. (1)
      with their block-rows of W_H and W_I set to zero would give.
    * **A bias** b (the paper has none), with ``bias=True``; ``bias=False`` drops it.
    * **Modules**: ``periods`` T_1..T_g, positive and strictly increasing, by default the
      paper's exponential series T_i = 2^(i-1); ``module_sizes`` k_1..k_g summing to H, by
      default as equal as possible (the fastest modules take the remainder, one unit each);
      ``num_modules`` g (4 when nothing says otherwise). Any two of them must agree on g.

    :meth:`step` computes every row with one product by the masked W_hh and then keeps the old
    value of each inactive unit (:meth:`active` says which units update): the reference, which
    does not skip the rows of inactive modules. The fused engine does, the saving the paper
    counts: a step multiplies only the block-rows of the modules that update. Masked entries of
    W_hh start at zero and never act: they get zero gradients.

    Parameters (inside a layer with the suffix ``_l{k}[_reverse]``)::

        weight_ih  (H, I),  weight_hh  (H, H),  bias  (H,) with bias=True

    All start U(-1/√H, 1/√H), as torch.nn's RNN (``recurrent_init="uniform"``, the default),
    or, with

    * ``recurrent_init="orthogonal"``: each module's own block ``W_hh[R_i, R_i]`` a random
      orthogonal matrix (Saxe, McClelland & Ganguli 2014), the blocks by which slower modules
      feed it uniform as before. W_hh ⊙ M is block-triangular, so its eigenvalues are those of
      its diagonal blocks: all of modulus 1, the property an orthogonal start is for (an
      orthogonal matrix masked to that shape would lose it);
    * ``recurrent_init="identity"``: Le, Jaitly & Hinton 2015's IRNN start, W_hh = I (within the
      mask), b = 0 and W_ih drawn from N(0, 0.001²); meant for ``nonlinearity="relu"``.

    The mask M and the periods of the units are buffers outside the state dict. State:
    :class:`ClockworkState` ``(h (B, H), t (B, 1))``, zeros at the start.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias: Tensor | None
    recurrent_mask: Tensor
    unit_periods: Tensor
    supports_recurrent_dropout = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_modules: int | None = None,
        periods: Sequence[int] | None = None,
        module_sizes: Sequence[int] | None = None,
        bias: bool = True,
        nonlinearity: str = "tanh",
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        check_recurrent_init(recurrent_init, identity=True)
        if not isinstance(bias, bool):
            raise LstmkitTypeError(f"bias must be a bool, got {describe(bias)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        self.recurrent_init = recurrent_init
        self.periods, self.module_sizes = _modules(hidden_size, num_modules, periods, module_sizes)
        self.cycle = math.lcm(*self.periods)  # the clock's state repeats after this many steps
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **new))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, **new))
        self.register_parameter(
            "bias", nn.Parameter(torch.empty(hidden_size, **new)) if bias else None
        )
        module = torch.repeat_interleave(
            torch.arange(len(self.periods), device=device),
            torch.tensor(self.module_sizes, device=device),
            output_size=hidden_size,  # (known: on torch's meta device it could not be counted)
        )  # (H,): the module of each unit, in order of increasing period
        mask = module[:, None] <= module[None, :]  # (H, H): row unit i reads column unit j
        self.register_buffer("recurrent_mask", mask, persistent=False)
        unit_periods = torch.tensor(self.periods, device=device)[module]  # (H,)
        self.register_buffer("unit_periods", unit_periods, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's uniform draw, then what ``recurrent_init`` says (see the class); the
        entries the clock masks out start at zero."""
        init_uniform_(self, ("weight_ih", "weight_hh", "bias"))
        with torch.no_grad():
            if self.recurrent_init == "orthogonal":
                start = 0
                for size in self.module_sizes:  # each module's own block R_i × R_i
                    orthogonal_(self.weight_hh[start : start + size, start : start + size])
                    start += size
            elif self.recurrent_init == "identity":
                identity_(self.weight_ih, self.weight_hh, (self.bias,))
            self.weight_hh.mul_(self.recurrent_mask)

    def project_input(self, x: Tensor) -> Tensor:
        """``W_ih·x + b``: ``(..., I)`` → ``(..., H)``."""
        return F.linear(x, self.weight_ih, self.bias)

    def initial_state(
        self, batch_size: int, *, dtype: torch.dtype, device: torch.device
    ) -> ClockworkState:
        return ClockworkState(
            torch.zeros(batch_size, self.hidden_size, dtype=dtype, device=device),
            torch.zeros(batch_size, 1, dtype=dtype, device=device),
        )

    def check_state_values(self, state: ClockworkState) -> None:
        """A given clock must count steps: whole numbers, 0 or more."""
        t = state.t
        if is_fake(t):  # traced: the values are not known
            return
        bad = ~torch.isfinite(t) | (t < 0) | (t != torch.round(t))
        if bool(bad.any()):
            raise LstmkitValueError(
                "a Clockwork state's clock t counts steps: expected whole numbers >= 0, got "
                f"{t[bad].flatten()[0].item()!r}"
            )

    def active(self, t: Tensor) -> Tensor:
        """Which units update at step t: ``t (..., 1)`` → bool ``(..., H)``, True where the unit's
        module has ``t mod T_i = 0``."""
        return torch.remainder(torch.round(t), self.unit_periods) == 0

    def step(
        self, xp_t: Tensor, state: ClockworkState, *, h_mask: Tensor | None = None
    ) -> ClockworkState:
        h_prev, t = state
        h_in = h_prev if h_mask is None else h_prev * h_mask  # recurrent dropout: product only
        a_t = xp_t + F.linear(h_in, self.weight_hh * self.recurrent_mask)  # slow feeds fast only
        h_new = torch.tanh(a_t) if self.nonlinearity == "tanh" else torch.relu(a_t)
        active = self.active(t)
        h_t = torch.where(active, h_new, h_prev)  # inactive modules keep their value
        if _recording.RECORDING is not None:
            _recording.record(self, active=active.to(h_t.dtype), h_t=h_t)
        # into the cycle before the + 1, which a large clock would lose to rounding
        t_next = torch.remainder(torch.remainder(torch.round(t), self.cycle) + 1, self.cycle)
        return ClockworkState(h_t, t_next)

    def spawn(self, input_size: int) -> ClockworkCell:
        return ClockworkCell(
            input_size,
            self.hidden_size,
            periods=self.periods,
            module_sizes=self.module_sizes,
            bias=self.bias is not None,
            nonlinearity=self.nonlinearity,
            recurrent_init=self.recurrent_init,
            device=self.weight_ih.device,
            dtype=self.weight_ih.dtype,
        )

    def extra_repr(self) -> str:
        extra = f", periods={self.periods}, module_sizes={self.module_sizes}"
        extra += "" if self.bias is not None else ", bias=False"
        extra += "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        extra += (
            "" if self.recurrent_init == "uniform" else f", recurrent_init={self.recurrent_init!r}"
        )
        return f"{self.input_size}, {self.hidden_size}{extra}"


def _int_sequence(name: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise LstmkitTypeError(f"{name} must be a list or tuple of ints, got {describe(value)}")
    if not value:
        raise LstmkitValueError(
            f"{name} must have an entry per module, at least one; got {value!r}"
        )
    for v in value:
        check_positive_int(f"every entry of {name}", v)
    return tuple(value)


def _modules(
    hidden_size: int,
    num_modules: int | None,
    periods: Sequence[int] | None,
    module_sizes: Sequence[int] | None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The periods and sizes of the modules from the options, checked; see ClockworkCell."""
    counts: dict[str, int] = {}
    if num_modules is not None:
        check_positive_int("num_modules", num_modules)
        counts["num_modules"] = num_modules
    if periods is not None:
        periods = _int_sequence("periods", periods)
        if any(a >= b for a, b in pairwise(periods)):
            raise LstmkitValueError(f"periods must be strictly increasing, got {list(periods)}")
        counts["len(periods)"] = len(periods)
    if module_sizes is not None:
        module_sizes = _int_sequence("module_sizes", module_sizes)
        if sum(module_sizes) != hidden_size:
            raise LstmkitValueError(
                f"module_sizes must sum to hidden_size={hidden_size}, got {list(module_sizes)} "
                f"(sum {sum(module_sizes)})"
            )
        counts["len(module_sizes)"] = len(module_sizes)
    if len(set(counts.values())) > 1:
        given = ", ".join(f"{k}={v}" for k, v in counts.items())
        raise LstmkitValueError(f"the module options disagree on the number of modules: {given}")
    g = next(iter(counts.values()), DEFAULT_MODULES)
    if g > hidden_size:
        raise LstmkitValueError(
            f"{g} modules need at least {g} hidden units, got hidden_size={hidden_size}"
            + ("" if counts else "; pass num_modules= (the default is 4)")
        )
    if periods is None:
        periods = tuple(2**i for i in range(g))
    if module_sizes is None:
        k, extra = divmod(hidden_size, g)
        module_sizes = tuple(k + (i < extra) for i in range(g))
    return tuple(periods), tuple(module_sizes)
