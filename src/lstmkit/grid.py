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

from lstmkit import tracing
from lstmkit._checks import check_choice, check_input_tensor, check_positive_int, describe
from lstmkit.cells.base import RecurrentCell, check_sizes
from lstmkit.layers import Recurrent

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
    pre_u, pre_f, pre_c, pre_o = pre.chunk(4, dim=-1)
    g_u = torch.sigmoid(pre_u)
    g_f = torch.sigmoid(pre_f)
    g_c = torch.tanh(pre_c)
    g_o = torch.sigmoid(pre_o)
    m_new = g_f * m + g_u * g_c
    h_new = torch.tanh(g_o * m_new) if output_inside else g_o * torch.tanh(m_new)
    return h_new, m_new


def _init_transform_(weight: Tensor, bias: Tensor, *, hidden_size: int, forget_bias: float) -> None:
    """torch.nn's U(-1/√H, 1/√H) for an LSTM transform's weight and bias, with the forget gate's
    bias block set to ``forget_bias`` (Jozefowicz et al. 2015)."""
    bound = 1.0 / hidden_size**0.5
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        bias.uniform_(-bound, bound)
        bias[hidden_size : 2 * hidden_size].fill_(forget_bias)


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {describe(value)}")


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")


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

    Parameters: ``weight`` ``(4H, in_features)`` and ``bias`` ``(4H,)``, row blocks u, f, c, o
    (torch.nn's i, f, g, o), drawn U(-1/√H, 1/√H) with the f block of the bias set to
    ``forget_bias``. Shapes: ``H`` ``(..., in_features)``, ``m`` ``(..., H)`` → ``h'``, ``m'``
    ``(..., H)``.
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("hidden_size", hidden_size)
        _check_bool("output_inside", output_inside)
        _check_number("forget_bias", forget_bias)
        self.in_features, self.hidden_size = in_features, hidden_size
        self.output_inside, self.forget_bias = output_inside, float(forget_bias)
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(4 * hidden_size, in_features, **new))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size, **new))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_transform_(
            self.weight, self.bias, hidden_size=self.hidden_size, forget_bias=self.forget_bias
        )

    def forward(self, H: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        return lstm_transform(
            F.linear(H, self.weight, self.bias), m, output_inside=self.output_inside
        )

    def extra_repr(self) -> str:
        extra = "" if self.output_inside else ", output_inside=False"
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


class GridLSTMCell(RecurrentCell):
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        check_positive_int("depth", depth)
        _check_bool("tied", tied)
        _check_bool("output_inside", output_inside)
        _check_bool("project_memory", project_memory)
        _check_number("forget_bias", forget_bias)
        if priority is not None:
            check_choice("priority", priority, PRIORITIES)
        check_choice("depth_transform", depth_transform, ["lstm", *ACTIVATIONS])
        if project_memory and depth_transform != "lstm":
            raise ValueError(
                "project_memory=True projects x_t into the depth dimension's memory, which needs "
                f"depth_transform='lstm'; got depth_transform={depth_transform!r}"
            )
        self.input_size, self.hidden_size, self.depth = input_size, hidden_size, depth
        self.tied, self.priority, self.depth_transform = tied, priority, depth_transform
        self.output_inside, self.project_memory = output_inside, project_memory
        self.forget_bias = float(forget_bias)
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
        H = self.hidden_size
        bound = 1.0 / H**0.5
        with torch.no_grad():
            self.weight_in.uniform_(-bound, bound)
            self.bias_in.uniform_(-bound, bound)
        for k in range(1 if self.tied else self.depth):
            W_t, b_t, W_d, b_d = self._block(k)
            _init_transform_(W_t, b_t, hidden_size=H, forget_bias=self.forget_bias)
            if self.depth_transform == "lstm":
                _init_transform_(W_d, b_d, hidden_size=H, forget_bias=self.forget_bias)
            else:
                with torch.no_grad():
                    W_d.uniform_(-bound, bound)
                    b_d.uniform_(-bound, bound)

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

    def step(self, xp_t: Tensor, state: GridLSTMState) -> GridLSTMState:  # type: ignore[override]
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
        if tracing.RECORDING is not None:  # the blocks side by side, as in the state
            tracing.record(self, h_time=new.h_time, m_time=new.m_time, h_t=new.h)
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
        return ", ".join(parts)


class GridLSTM(Recurrent):
    r"""A 2-D time × depth Grid LSTM as a sequence layer: :class:`GridLSTMCell` over time, in
    torch.nn's calling convention (batch_first, packed sequences, ``lengths=``, bidirectional).

    ``output, (h_n, h_time_n, m_time_n) = grid(input, hx)``. The grid's own depth is ``depth``
    (K blocks, every one LSTM-gated along depth); ``num_layers`` stacks whole grids, each
    reading the outputs of the one below, as :class:`lstmkit.Recurrent` stacks any cell.
    Shapes (L = num_layers, D = 2 if bidirectional else 1)::

        input     (T, B, I), (B, T, I) with batch_first, (T, I), or a PackedSequence
        output    (T, B, D·H): the top block's depth vector h^d_K at every step
        h_n       (L·D, B, H): that output at each sequence's last step
        h_time_n  (L·D, B, K·H): the K blocks' time vectors h^t_k side by side (block k in
                  columns k·H:(k+1)·H); m_time_n the same for the memories m^t_k

    ``hx`` is a :class:`GridLSTMState` of those shapes (its h is not read) or None for zeros.
    Parameters: those of :class:`GridLSTMCell` with the suffix ``_l{k}[_reverse]``, e.g.
    ``weight_time_b0_l0``, ``weight_depth_b1_l0_reverse``, ``weight_in_l0``. It runs on the
    reference engine. The recurrent regularisers of :class:`lstmkit.Recurrent` are not offered:
    zoneout and recurrent dropout act on a state's h, which here is an output, not a recurrent
    vector.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        depth: int = 2,
        num_layers: int = 1,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        tied: bool = False,
        priority: str | None = "depth",
        depth_transform: str = "lstm",
        output_inside: bool = True,
        project_memory: bool = False,
        forget_bias: float = 1.0,
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        cell = GridLSTMCell(
            input_size,
            hidden_size,
            depth=depth,
            tied=tied,
            priority=priority,
            depth_transform=depth_transform,
            output_inside=output_inside,
            project_memory=project_memory,
            forget_bias=forget_bias,
            device=device,
            dtype=dtype,
        )
        super().__init__(
            cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dropout=dropout,
            engine=engine,
        )

    @property
    def depth(self) -> int:
        return self._grid_cell().depth

    @property
    def tied(self) -> bool:
        return self._grid_cell().tied

    def _grid_cell(self) -> GridLSTMCell:
        cell = self.cell(0)
        assert isinstance(cell, GridLSTMCell)
        return cell


class Grid2dOutput(NamedTuple):
    """What :class:`GridLSTM2d` returns (B images, an R × C grid of blocks, H the hidden size)."""

    outputs: Tensor
    """Every block's ``[h^1 ; h^2]`` in the top layer, ``(B, R, C, 2H)``."""
    final: Tensor
    """The bottom-right block's ``[h^1 ; h^2]``, ``(B, 2H)``: the one that has seen the whole
    image."""


class GridLSTM2d(nn.Module):
    r"""A 2-D Grid LSTM over the rows and columns of an image: one block per pixel or per
    ``patch_size × patch_size`` patch, with an LSTM transform along the rows (dimension 1, left
    to right) and one along the columns (dimension 2, top to bottom).

    Block (r, c) receives ``(h^1, m^1)`` from its left neighbour (r, c - 1), ``(h^2, m^2)`` from
    the block above (r - 1, c) (zeros outside the grid) and its input x_rc, and computes
    (section 3.1, an N-dimensional block with N = 2; every vector ``(B, H)``)::

        H = [h^1_{r,c-1} ; h^2_{r-1,c} ; x_rc]                           (B, 2H + F)
        (h^1_rc, m^1_rc) = LSTM(H, m^1_{r,c-1}, W_1)
        (h^2_rc, m^2_rc) = LSTM(H, m^2_{r-1,c}, W_2)
        output_rc = [h^1_rc ; h^2_rc]                                     (B, 2H)

    with LSTM the transform of :func:`lstm_transform`. Neither dimension has priority. The
    input enters H directly, as x_t does in the paper's one-dimensional LSTM (H = [I x_t ; h]):
    W_i's last F columns are the input's projection, applied to every block in one product.
    x_rc is the block's patch flattened in the order (channel, row, column), F = channels·p²
    (what ``torch.nn.Unfold`` gives). With ``num_layers`` > 1 grids are stacked: layer l + 1
    reads layer l's outputs as its x_rc (F = 2H). Choices the paper leaves open: this way of
    entering the input, the outputs read (both hidden vectors), one bias per transform, and
    initialisation (U(-1/√H, 1/√H), forget gate bias ``forget_bias``).

    The blocks of one anti-diagonal r + c = d depend only on the diagonal d - 1, so they are
    computed together as one batched product: R + C - 1 sequential steps instead of R·C.

    Args:
        in_channels: channels of the image. hidden_size: H.
        patch_size: p, pixels per block along each side; the image's height and width must be
            multiples of it.
        num_layers: stacked 2-D grids.
        output_inside, forget_bias: as in :class:`LSTMTransform`.

    Parameters: ``row.{l}`` and ``col.{l}`` (:class:`LSTMTransform`, W_1 and W_2 of layer l),
    each ``weight`` ``(4H, 2H + F)`` with columns h^1, h^2, x and ``bias`` ``(4H,)``.

    Shapes: images ``(B, channels, height, width)`` → :class:`Grid2dOutput` with ``outputs``
    ``(B, R, C, 2H)``, R = height / p, C = width / p, and ``final`` ``(B, 2H)``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_size: int,
        *,
        patch_size: int = 1,
        num_layers: int = 1,
        output_inside: bool = True,
        forget_bias: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("patch_size", patch_size)
        check_positive_int("num_layers", num_layers)
        self.in_channels, self.hidden_size = in_channels, hidden_size
        self.patch_size, self.num_layers = patch_size, num_layers
        H = hidden_size
        options: dict[str, Any] = {
            "output_inside": output_inside,
            "forget_bias": forget_bias,
            "device": device,
            "dtype": dtype,
        }
        sizes = [in_channels * patch_size**2] + [2 * H] * (num_layers - 1)  # F of each layer
        self.row = nn.ModuleList(LSTMTransform(2 * H + f, H, **options) for f in sizes)
        self.col = nn.ModuleList(LSTMTransform(2 * H + f, H, **options) for f in sizes)

    @property
    def output_inside(self) -> bool:
        return self.transforms(0)[0].output_inside

    def transforms(self, layer: int) -> tuple[LSTMTransform, LSTMTransform]:
        """The row and column transforms (W_1, W_2) of one layer."""
        row, col = self.row[layer], self.col[layer]
        assert isinstance(row, LSTMTransform)
        assert isinstance(col, LSTMTransform)
        return row, col

    def patches(self, images: Tensor) -> Tensor:
        """The blocks' inputs: ``(B, channels, R·p, C·p)`` → ``(B, R, C, channels·p²)``."""
        B, ch, height, width = images.shape
        p = self.patch_size
        R, C = height // p, width // p
        x = images.reshape(B, ch, R, p, C, p).permute(0, 2, 4, 1, 3, 5)  # (B, R, C, ch, p, p)
        return x.reshape(B, R, C, ch * p * p)

    def forward(self, images: Tensor) -> Grid2dOutput:
        x = self.patches(self._check(images))
        for layer in range(self.num_layers):
            x = self._grid(*self.transforms(layer), x)
        return Grid2dOutput(x, x[:, -1, -1])

    def _grid(self, row: LSTMTransform, col: LSTMTransform, x: Tensor) -> Tensor:
        """One 2-D grid over block inputs ``x`` ``(B, R, C, F)`` → outputs ``(B, R, C, 2H)``,
        one anti-diagonal at a time."""
        B, R, C, _ = x.shape
        H = self.hidden_size
        W_1h, W_1x = row.weight[:, : 2 * H], row.weight[:, 2 * H :]  # columns [h^1 ; h^2], x
        W_2h, W_2x = col.weight[:, : 2 * H], col.weight[:, 2 * H :]
        W_h = torch.cat([W_1h, W_2h])  # (8H, 2H): both transforms' product with [h^1 ; h^2]
        xp = F.linear(x, torch.cat([W_1x, W_2x]), torch.cat([row.bias, col.bias]))  # (B, R, C, 8H)
        blocks = [
            (r, d - r)
            for d in range(R + C - 1)
            for r in range(max(0, d - C + 1), min(d, R - 1) + 1)
        ]
        order = torch.tensor([r * C + c for r, c in blocks], device=x.device)
        sizes = [min(d, R - 1) - max(0, d - C + 1) + 1 for d in range(R + C - 1)]
        in_order = xp.reshape(B, R * C, 8 * H).index_select(1, order)  # diagonal by diagonal
        diagonals = torch.split(in_order, sizes, dim=1)
        zero = x.new_zeros(B, H)
        # The last block computed in each row r: its (h^1, m^1) feed (r, c + 1) on the next
        # diagonal and its (h^2, m^2) feed (r + 1, c).
        h_1, m_1 = [zero] * R, [zero] * R
        h_2, m_2 = [zero] * (R + 1), [zero] * (R + 1)  # shifted by one: index r holds row r - 1
        outputs = []
        for d, xp_d in enumerate(diagonals):
            rows = range(max(0, d - C + 1), max(0, d - C + 1) + xp_d.shape[1])
            h_in = torch.cat(
                [torch.stack([h_1[r] for r in rows], 1), torch.stack([h_2[r] for r in rows], 1)],
                dim=-1,
            )  # (B, n, 2H): [h^1_{r,c-1} ; h^2_{r-1,c}]
            pre_1, pre_2 = (xp_d + F.linear(h_in, W_h)).chunk(2, dim=-1)  # (B, n, 4H) each
            h_1d, m_1d = lstm_transform(
                pre_1, torch.stack([m_1[r] for r in rows], 1), output_inside=row.output_inside
            )
            h_2d, m_2d = lstm_transform(
                pre_2, torch.stack([m_2[r] for r in rows], 1), output_inside=col.output_inside
            )
            for r, h1, m1, h2, m2 in zip(
                rows, h_1d.unbind(1), m_1d.unbind(1), h_2d.unbind(1), m_2d.unbind(1), strict=True
            ):
                h_1[r], m_1[r], h_2[r + 1], m_2[r + 1] = h1, m1, h2, m2
            outputs.append(torch.cat([h_1d, h_2d], dim=-1))
        back = torch.argsort(order)  # diagonal order → row-major order
        return torch.cat(outputs, dim=1).index_select(1, back).reshape(B, R, C, 2 * H)

    def _check(self, images: object) -> Tensor:
        x = check_input_tensor(images, what="images", like=self.transforms(0)[0].weight)
        p = self.patch_size
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"images must be (B, channels, height, width) with channels = "
                f"{self.in_channels}, got shape {tuple(x.shape)}"
            )
        if x.shape[2] % p or x.shape[3] % p or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(
                f"images' height and width must be positive multiples of patch_size = {p}, "
                f"got {x.shape[2]} × {x.shape[3]}"
            )
        return x

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.hidden_size}"]
        if self.patch_size != 1:
            parts.append(f"patch_size={self.patch_size}")
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        return ", ".join(parts)
