"""Grid LSTM (Kalchbrenner, Danihelka & Graves 2015, "Grid Long Short-Term Memory", arXiv
1507.01526): LSTM cells arranged in a grid of N dimensions, with an LSTM transform, and so a
memory of its own, along every dimension, depth included.

Two grids are built here from one transform:

* :class:`GridLSTMCell` / :class:`GridLSTM`: the 2-D time × depth network, a deep LSTM whose
  depth is LSTM-gated too; a sequence layer like :class:`lstmkit.LSTM`.
* :class:`GridLSTM2d`: a 2-D grid over the rows and columns of an image (or of patches of it).

The paper's text could not be consulted while this was written; the equations below follow its
sections 2 and 3 as they are known, the section numbers are those its readers cite (3.1
N-dimensional blocks, 3.2 priority dimensions, 3.3 non-LSTM dimensions), and every choice the
description leaves open is named where it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import check_choice, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.functional import (
    check_number,
    check_recurrent_init,
    check_sizes,
    forget_bias_,
    init_uniform_,
    orthogonal_,
)
from lstmkit.cells.lstm import LSTMConfig, lstm_pointwise

_recording.declare(
    h_time=Quantity("time hidden vectors", r"$h^{\mathrm{time}}$", "value"),
    m_time=Quantity("time memory vectors", r"$m^{\mathrm{time}}$", "value"),
    h_t=Quantity("hidden state", r"$h_t$", "value"),
)

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}
"""The nonlinearities α a non-LSTM dimension can use (section 3.3)."""

PRIORITIES = ("depth", "time")
"""The dimensions of the time × depth grid that can be given priority (section 3.2), or None."""


def lstm_transform(pre: Tensor, m: Tensor, *, output_inside: bool = True) -> tuple[Tensor, Tensor]:
    r"""The pointwise part of the paper's LSTM transform, ``(h', m') = LSTM(H, m, W)``, given the
    pre-activations ``pre = W H + b``.

    Equations (section 2; σ the logistic sigmoid, ⊙ elementwise; every line ``(..., H)``)::

        g^u = σ(W^u H)              input gate      (torch.nn's i)
        g^f = σ(W^f H)              forget gate     (f)
        g^c = tanh(W^c H)           candidate       (g)
        g^o = σ(W^o H)              output gate     (o)
        m'  = g^f ⊙ m + g^u ⊙ g^c
        h'  = tanh(g^o ⊙ m')        output_inside=True: the paper's form
        h'  = g^o ⊙ tanh(m')        output_inside=False: the post's and torch.nn's form

    ``pre``: ``(..., 4H)``, row blocks in torch.nn's order u, f, c, o (= i, f, g, o); ``m``:
    ``(..., H)``. The paper writes ``W H`` without a bias; lstmkit adds one (``b`` above).
    """
    if output_inside:
        step = lstm_pointwise(pre, m, _NO_OUTPUT_ACTIVATION)  # h_t = g^o ⊙ m'
        return torch.tanh(step.h_t), step.C_t
    step = lstm_pointwise(pre, m, _STANDARD)
    return step.h_t, step.C_t


_STANDARD = LSTMConfig()
_NO_OUTPUT_ACTIVATION = LSTMConfig(output_activation=False)


def _init_transform_(transform: nn.Module, weight: str, bias: str, *, forget_bias: float) -> None:
    """torch.nn's U(-1/√H, 1/√H) for an LSTM transform's weight and bias (parameters of
    ``transform`` by name), with the forget gate's bias block set to ``forget_bias``
    (Jozefowicz et al. 2015)."""
    init_uniform_(transform, (weight, bias))
    H: int = transform.hidden_size  # type: ignore[assignment]
    forget_bias_(getattr(transform, bias), None, hidden_size=H, forget_bias=forget_bias)


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise LstmkitTypeError(f"{name} must be a bool, got {describe(value)}")


class LSTMTransform(nn.Module):
    r"""The paper's LSTM transform along one dimension of a grid: ``(h', m') = LSTM(H, m, W)``
    (section 2), with the equations of :func:`lstm_transform`.

    Args:
        in_features: the size of H, the concatenated hidden vectors the block receives (and,
            where the input enters H, the input).
        hidden_size: H, the size of h and m.
        output_inside: ``h' = tanh(g^o ⊙ m')`` as the paper writes it (default), or False for
            ``h' = g^o ⊙ tanh(m')``.
        forget_bias: the forget gate's bias at initialisation (default 1.0).
        recurrent_init: ``"uniform"`` (default) or ``"orthogonal"``: each gate's block of each
            of the first ``hidden_inputs`` H-wide column blocks (the hidden vectors H starts
            with) a random orthogonal ``(H, H)`` matrix (Saxe et al. 2014; see
            :func:`~lstmkit.cells.functional.orthogonal_`).
        hidden_inputs: how many hidden vectors of size H lead H's columns (for
            ``recurrent_init``; default 0).

    Parameters: ``weight`` ``(4H, in_features)`` and ``bias`` ``(4H,)``, row blocks u, f, c, o
    (torch.nn's i, f, g, o), drawn U(-1/√H, 1/√H) with the f block of the bias set to
    ``forget_bias``, and the hidden columns as ``recurrent_init`` says. Shapes: ``H``
    ``(..., in_features)``, ``m`` ``(..., H)`` → ``h'``, ``m'`` ``(..., H)``.
    """

    weight: Tensor
    bias: Tensor

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        output_inside: bool = True,
        forget_bias: float = 1.0,
        recurrent_init: str = "uniform",
        hidden_inputs: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("hidden_size", hidden_size)
        _check_bool("output_inside", output_inside)
        check_number("forget_bias", forget_bias)
        check_recurrent_init(recurrent_init)
        if isinstance(hidden_inputs, bool) or not isinstance(hidden_inputs, int):
            raise LstmkitTypeError(f"hidden_inputs must be an int, got {describe(hidden_inputs)}")
        if not 0 <= hidden_inputs * hidden_size <= in_features:
            raise LstmkitValueError(
                f"hidden_inputs={hidden_inputs} vectors of size {hidden_size} do not fit in "
                f"in_features={in_features}"
            )
        if recurrent_init == "orthogonal" and hidden_inputs == 0:
            raise LstmkitValueError(
                "recurrent_init='orthogonal' needs hidden_inputs, the number of hidden vectors "
                "that lead H's columns; got hidden_inputs=0"
            )
        self.in_features, self.hidden_size = in_features, hidden_size
        self.output_inside, self.forget_bias = output_inside, float(forget_bias)
        self.recurrent_init, self.hidden_inputs = recurrent_init, hidden_inputs
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(4 * hidden_size, in_features, **new))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size, **new))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_transform_(self, "weight", "bias", forget_bias=self.forget_bias)
        if self.recurrent_init == "orthogonal":
            H = self.hidden_size
            for j in range(self.hidden_inputs):
                orthogonal_(self.weight, rows=H, columns=slice(j * H, (j + 1) * H))

    def forward(self, H: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        return lstm_transform(
            F.linear(H, self.weight, self.bias), m, output_inside=self.output_inside
        )

    def extra_repr(self) -> str:
        extra = "" if self.output_inside else ", output_inside=False"
        if self.recurrent_init != "uniform":
            extra += f", recurrent_init={self.recurrent_init!r}, hidden_inputs={self.hidden_inputs}"
        return f"{self.in_features}, {self.hidden_size}{extra}"


class GridLSTMState(NamedTuple):
    """State of a :class:`GridLSTMCell` after a step (K the grid's depth, H the hidden size)."""

    h: Tensor
    """The cell's output, the top block's depth vector h^d_K, ``(B, H)``. It is what the layer
    emits; the next step does not read it."""
    h_time: Tensor
    """The time dimension's hidden vectors of the K blocks side by side, ``(B, K·H)``: block k
    in columns ``k·H:(k+1)·H``."""
    m_time: Tensor
    """The time dimension's memories, laid out as ``h_time``, ``(B, K·H)``."""


class GridLSTMCell(RecurrentCell[GridLSTMState]):
    r"""One time step of a 2-D time × depth Grid LSTM: K blocks stacked along depth, each with an
    LSTM transform along time (its memory carried to the next step) and a transform along depth
    (its output passed to the block above).

    Block k (k = 1 … K) at step t receives the time dimension's ``(h^t_k, m^t_k)`` from step
    t - 1 and the depth dimension's ``(h^d_{k-1}, m^d_{k-1})`` from the block below, and
    computes (sections 3.1-3.3; every vector ``(B, H)``)::

        H = [h^t_k ; h^d_{k-1}]                                               (B, 2H)
        priority=None (section 3.1): both transforms read H
            (h^t_k', m^t_k') = LSTM(H, m^t_k, W^t_k)
            (h^d_k,  m^d_k)  = LSTM(H, m^d_{k-1}, W^d_k)
        priority="depth" (section 3.2): time first, then depth from the new time vector
            (h^t_k', m^t_k') = LSTM(H, m^t_k, W^t_k)
            H' = [h^t_k' ; h^d_{k-1}]
            (h^d_k,  m^d_k)  = LSTM(H', m^d_{k-1}, W^d_k)
        priority="time": the other way round, depth first and time from H' = [h^t_k ; h^d_k]
        depth_transform="tanh"|"relu" (section 3.3): depth is a non-LSTM dimension,
            h^d_k = α(V_k H + b_k) (or from H' with priority="depth"), and carries no memory

    with LSTM(H, m, W) the transform of :func:`lstm_transform`. The input enters at the bottom
    of the depth dimension, and the output leaves at its top::

        h^d_0 = W_in x_t + b_in                                               (B, H)
        m^d_0 = 0,  or W_in' x_t + b_in' with project_memory=True
        output_t = h^d_K

    Choices the paper leaves open here: how x_t enters (a linear projection into h^d_0, m^d_0
    zero unless ``project_memory``), the output (the top block's depth vector), one bias per
    transform, initialisation (U(-1/√H, 1/√H), forget gate bias ``forget_bias``), and the
    default priority, depth (the depth transform of a block reads that block's new time
    vector, so what the top block emits already holds this step's update of every time memory).

    Weight sharing: ``tied=True`` uses one W^t and one W^d at every depth (the grid's weights
    are shared along depth, as they are along time); ``tied=False`` (default) gives each block
    its own. (TensorFlow's contrib ``grid_rnn`` uses ``tied`` for sharing across the
    dimensions; here it means along depth.)

    Args:
        input_size: I, features of x_t. hidden_size: H.
        depth: K, the number of blocks along depth.
        tied, priority, depth_transform ("lstm", "tanh", "relu"), project_memory, as above.
        output_inside: the paper's ``h' = tanh(g^o ⊙ m')`` (default) in every LSTM transform,
            or False for ``h' = g^o ⊙ tanh(m')``.
        forget_bias: the forget gates' bias at initialisation (default 1.0).
        recurrent_init: "uniform" (default) or "orthogonal": in every transform, the (H, H)
            block of each gate (each row block) that reads the transform's own dimension is a
            random orthogonal matrix of its own (Saxe, McClelland & Ganguli 2014): columns
            h^t_k of W^t_k, columns h^d_{k-1} of W^d_k. The grid is an LSTM along depth as
            along time, and an orthogonal start is as much for depth (Saxe et al.'s deep linear
            networks) as for time; the other half of each matrix stays uniform.

    Parameters (inside a layer with the suffix ``_l{k}[_reverse]``); b{k} is block k + 1,
    the tied parameters have no block suffix::

        weight_in  (H, I), or (2H, I) with project_memory (rows for h^d_0, then m^d_0)
        bias_in    (H,) or (2H,)
        weight_time_b{k}   (4H, 2H)  row blocks u, f, c, o; columns: h^t_k, then h^d_{k-1}
        bias_time_b{k}     (4H,)
        weight_depth_b{k}  (4H, 2H), or (H, 2H) for a non-LSTM depth; columns as above
        bias_depth_b{k}    (4H,) or (H,)

    State: :class:`GridLSTMState` ``(h, h_time, m_time)``; ``h`` is the output, ``(B, H)``,
    ``h_time`` and ``m_time`` hold the K blocks' time vectors, ``(B, K·H)``.
    """

    weight_in: Tensor
    bias_in: Tensor

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        depth: int = 2,
        tied: bool = False,
        priority: str | None = "depth",
        depth_transform: str = "lstm",
        output_inside: bool = True,
        project_memory: bool = False,
        forget_bias: float = 1.0,
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_positive_int("depth", depth)
        check_recurrent_init(recurrent_init)
        _check_bool("tied", tied)
        _check_bool("output_inside", output_inside)
        _check_bool("project_memory", project_memory)
        check_number("forget_bias", forget_bias)
        if priority is not None:
            check_choice("priority", priority, PRIORITIES)
        check_choice("depth_transform", depth_transform, ["lstm", *ACTIVATIONS])
        if project_memory and depth_transform != "lstm":
            raise LstmkitValueError(
                "project_memory=True projects x_t into the depth dimension's memory, which needs "
                f"depth_transform='lstm'; got depth_transform={depth_transform!r}"
            )
        self.input_size, self.hidden_size, self.depth = input_size, hidden_size, depth
        self.tied, self.priority, self.depth_transform = tied, priority, depth_transform
        self.output_inside, self.project_memory = output_inside, project_memory
        self.forget_bias = float(forget_bias)
        self.recurrent_init = recurrent_init
        H = hidden_size
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        rows_in = 2 * H if project_memory else H
        self.weight_in = nn.Parameter(torch.empty(rows_in, input_size, **new))
        self.bias_in = nn.Parameter(torch.empty(rows_in, **new))
        rows_depth = 4 * H if depth_transform == "lstm" else H
        for suffix in self._suffixes():
            setattr(self, f"weight_time{suffix}", nn.Parameter(torch.empty(4 * H, 2 * H, **new)))
            setattr(self, f"bias_time{suffix}", nn.Parameter(torch.empty(4 * H, **new)))
            setattr(
                self, f"weight_depth{suffix}", nn.Parameter(torch.empty(rows_depth, 2 * H, **new))
            )
            setattr(self, f"bias_depth{suffix}", nn.Parameter(torch.empty(rows_depth, **new)))
        self.reset_parameters()

    def _suffixes(self) -> list[str]:
        return [""] if self.tied else [f"_b{k}" for k in range(self.depth)]

    def _block(self, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """W^t_k, b^t_k, W^d_k, b^d_k of block k (counting from 0)."""
        s = "" if self.tied else f"_b{k}"
        return (
            getattr(self, f"weight_time{s}"),
            getattr(self, f"bias_time{s}"),
            getattr(self, f"weight_depth{s}"),
            getattr(self, f"bias_depth{s}"),
        )

    def reset_parameters(self) -> None:
        init_uniform_(self, ("weight_in", "bias_in"))
        for k in range(1 if self.tied else self.depth):
            s = "" if self.tied else f"_b{k}"
            _init_transform_(self, f"weight_time{s}", f"bias_time{s}", forget_bias=self.forget_bias)
            if self.depth_transform == "lstm":
                _init_transform_(
                    self, f"weight_depth{s}", f"bias_depth{s}", forget_bias=self.forget_bias
                )
            else:
                init_uniform_(self, (f"weight_depth{s}", f"bias_depth{s}"))
        H = self.hidden_size
        for s in self._suffixes() if self.recurrent_init == "orthogonal" else []:
            # after every uniform draw, so that the rest is the draw it is without the option
            orthogonal_(getattr(self, f"weight_time{s}"), rows=H, columns=slice(0, H))
            orthogonal_(getattr(self, f"weight_depth{s}"), rows=H, columns=slice(H, 2 * H))

    def initial_state(
        self, batch_size: int, *, dtype: torch.dtype, device: torch.device
    ) -> GridLSTMState:
        """Zeros: h ``(B, H)``, h_time and m_time ``(B, K·H)``."""
        H, K = self.hidden_size, self.depth
        zeros = torch.zeros(batch_size, K * H, dtype=dtype, device=device)
        return GridLSTMState(torch.zeros(batch_size, H, dtype=dtype, device=device), zeros, zeros)

    def project_input(self, x: Tensor) -> Tensor:
        """``W_in x + b_in``, the bottom block's depth input h^d_0 (and m^d_0 with
        project_memory): ``(..., I)`` → ``(..., H)`` or ``(..., 2H)``."""
        return F.linear(x, self.weight_in, self.bias_in)

    def _depth(self, H_in: Tensor, m_d: Tensor, W_d: Tensor, b_d: Tensor) -> tuple[Tensor, Tensor]:
        """The depth transform of one block: LSTM, or α(V H + b) with no memory (m_d passes)."""
        pre = F.linear(H_in, W_d, b_d)
        if self.depth_transform == "lstm":
            return lstm_transform(pre, m_d, output_inside=self.output_inside)
        return ACTIVATIONS[self.depth_transform](pre), m_d

    def step(
        self, xp_t: Tensor, state: GridLSTMState, *, h_mask: Tensor | None = None
    ) -> GridLSTMState:
        K = self.depth
        if self.project_memory:
            h_d, m_d = xp_t.chunk(2, dim=-1)  # h^d_0, m^d_0: (B, H) each
        else:
            h_d, m_d = xp_t, torch.zeros_like(xp_t)  # m^d_0 = 0 (unused by a non-LSTM depth)
        h_time, m_time = [], []
        for k, (h_t, m_t) in enumerate(
            zip(state.h_time.chunk(K, dim=-1), state.m_time.chunk(K, dim=-1), strict=True)
        ):
            W_t, b_t, W_d, b_d = self._block(k)
            H_in = torch.cat([h_t, h_d], dim=-1)  # (B, 2H): [h^t_k ; h^d_{k-1}]
            if self.priority == "time":
                h_d, m_d = self._depth(H_in, m_d, W_d, b_d)
                H_in = torch.cat([h_t, h_d], dim=-1)  # H' = [h^t_k ; h^d_k]
                h_t, m_t = lstm_transform(
                    F.linear(H_in, W_t, b_t), m_t, output_inside=self.output_inside
                )
            else:
                h_t_new, m_t = lstm_transform(
                    F.linear(H_in, W_t, b_t), m_t, output_inside=self.output_inside
                )
                if self.priority == "depth":
                    H_in = torch.cat([h_t_new, h_d], dim=-1)  # H' = [h^t_k' ; h^d_{k-1}]
                h_d, m_d = self._depth(H_in, m_d, W_d, b_d)
                h_t = h_t_new
            h_time.append(h_t)
            m_time.append(m_t)
        new = GridLSTMState(h_d, torch.cat(h_time, dim=-1), torch.cat(m_time, dim=-1))
        if _recording.RECORDING is not None:  # the blocks side by side, as in the state
            _recording.record(self, h_time=new.h_time, m_time=new.m_time, h_t=new.h)
        return new

    def spawn(self, input_size: int) -> GridLSTMCell:
        return GridLSTMCell(
            input_size,
            self.hidden_size,
            depth=self.depth,
            tied=self.tied,
            priority=self.priority,
            depth_transform=self.depth_transform,
            output_inside=self.output_inside,
            project_memory=self.project_memory,
            forget_bias=self.forget_bias,
            recurrent_init=self.recurrent_init,
            device=self.weight_in.device,
            dtype=self.weight_in.dtype,
        )

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}, depth={self.depth}"]
        if self.tied:
            parts.append("tied=True")
        if self.priority != "depth":
            parts.append(f"priority={self.priority!r}")
        if self.depth_transform != "lstm":
            parts.append(f"depth_transform={self.depth_transform!r}")
        if not self.output_inside:
            parts.append("output_inside=False")
        if self.project_memory:
            parts.append("project_memory=True")
        if self.recurrent_init != "uniform":
            parts.append(f"recurrent_init={self.recurrent_init!r}")
        return ", ".join(parts)
