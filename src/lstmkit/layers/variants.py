"""The sequence layers of the post's other families: MUT1-3, the Clockwork RNN, the
Depth-Gated LSTM and the time × depth Grid LSTM, each :class:`Recurrent` over its cell."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from lstmkit._checks import check_state
from lstmkit._errors import LstmkitValueError
from lstmkit._state import State, map_state
from lstmkit._warnings import LstmkitWarning
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.clockwork import ClockworkCell
from lstmkit.cells.depth_gated import DepthGatedLSTMCell
from lstmkit.cells.grid import GridLSTMCell
from lstmkit.cells.mut import MUTCell
from lstmkit.engines.regularizers import RegularizerOptions
from lstmkit.layers.recurrent import Output, Recurrent
from lstmkit.layers.registry import Example, register_layer

if TYPE_CHECKING:
    from typing_extensions import Unpack


class MUT(Recurrent):
    r"""A multi-layer MUT1, MUT2 or MUT3 network (Jozefowicz et al. 2015; see lstmkit.MUTCell).

    ``output, h_n = mut(input, h_0)``; shapes as :class:`Recurrent`. Parameters: the cell's
    matrices by the paper's names, ``weight_xz_l{k}``, ``weight_hr_l{k}``, ..., ``bias_z_l{k}``,
    and ``_reverse``. MUT1 and MUT2 need ``input_size == hidden_size`` in every layer, so a
    bidirectional MUT1 or MUT2 has one layer (the next would read 2·hidden_size features).
    ``recurrent_init`` is :class:`lstmkit.MUTCell`'s.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        kind: int = 1,
        num_layers: int = 1,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        recurrent_init: str = "uniform",
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **regularizers: Unpack[RegularizerOptions],
    ) -> None:
        cell = MUTCell(
            input_size,
            hidden_size,
            kind=kind,
            recurrent_init=recurrent_init,
            device=device,
            dtype=dtype,
        )
        if kind in (1, 2) and bidirectional and num_layers > 1:
            raise LstmkitValueError(
                f"MUT{kind} needs input_size == hidden_size in every layer, but layer 1 of a "
                f"bidirectional network reads 2·hidden_size = {2 * hidden_size} features; use "
                "num_layers=1, bidirectional=False, or kind=3"
            )
        super().__init__(
            cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            dropout=dropout,
            engine=engine,
            **regularizers,
        )

    @property
    def kind(self) -> int:
        return self.first_cell(MUTCell).kind


class ClockworkRNN(Recurrent):
    r"""A multi-layer Clockwork RNN (Koutník et al. 2014; see :class:`lstmkit.ClockworkCell`).

    ``output, (h_n, t_n) = layer(input, (h_0, t_0))``; shapes as :class:`lstmkit.Recurrent`, with
    the state a :class:`ClockworkState` of ``h (L·D, B, H)`` and the clock ``t (L·D, B, 1)``
    (None gives zeros: every layer, direction and sequence starts at t = 0). Every layer and
    direction gets the same modules. Parameters: ``weight_ih_l{k}``, ``weight_hh_l{k}``,
    ``bias_l{k}``, and ``_reverse``. ``recurrent_init`` ("uniform", "orthogonal" or "identity")
    is :class:`lstmkit.ClockworkCell`'s.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        num_modules: int | None = None,
        periods: Sequence[int] | None = None,
        module_sizes: Sequence[int] | None = None,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        recurrent_init: str = "uniform",
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **regularizers: Unpack[RegularizerOptions],
    ) -> None:
        cell = ClockworkCell(
            input_size,
            hidden_size,
            num_modules=num_modules,
            periods=periods,
            module_sizes=module_sizes,
            bias=bias,
            nonlinearity=nonlinearity,
            recurrent_init=recurrent_init,
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
            **regularizers,
        )

    @property
    def periods(self) -> tuple[int, ...]:
        return self.first_cell(ClockworkCell).periods

    @property
    def module_sizes(self) -> tuple[int, ...]:
        return self.first_cell(ClockworkCell).module_sizes

    @property
    def bias(self) -> bool:
        return self.first_cell(ClockworkCell).bias is not None

    @property
    def nonlinearity(self) -> str:
        return self.first_cell(ClockworkCell).nonlinearity


class DepthGatedLSTM(Recurrent):
    r"""A depth-gated LSTM over sequences, in torch.nn.LSTM's calling convention.

    ``output, (h_n, c_n) = dglstm(input, (h_0, c_0))``. Each step runs the whole stack of
    :class:`DepthGatedLSTMCell` (see its equations): the lower layer's cell C_t^{k-1} is needed
    at the same step, so the layers advance together rather than one after the other as in
    torch.nn.LSTM. The :class:`lstmkit.Recurrent` underneath therefore holds one cell per
    direction (its own ``num_layers`` attribute is 1); the depth is :attr:`depth`.

    Args:
        input_size, hidden_size: I and H.
        num_layers: L, the depth of the gated stack (default 1: a plain LSTM; depth gates join
            from the second layer).
        bias, peepholes, forget_bias, recurrent_init: as :class:`DepthGatedLSTMCell`.
        batch_first: input and output ``(B, T, ·)``.
        dropout: dropout on each layer's output where it enters the layer above (not on the
            cells the depth gates carry up), in training mode; needs num_layers > 1.
        bidirectional: a second, independent stack runs from the last step to the first; the
            outputs of the two top layers are concatenated. Unlike torch.nn.LSTM, layer k of one
            direction reads only layer k - 1 of the same direction, so each direction's layers
            have the same sizes and its cells form one chain of depth gates.
        engine: as :class:`lstmkit.Recurrent`; the fused engine runs it a layer of the stack at
            a time.
        input_dropout, recurrent_dropout, zoneout_hidden, zoneout_cell: as
            :class:`lstmkit.Recurrent`, applied to every layer of the stack (recurrent dropout
            on each h_{t-1}^k where it enters W_hh^k; zoneout on the whole state after each
            step, so a layer reads h_t^{k-1} and C_t^{k-1} of the layer below before it).

    Shapes (T steps, B sequences, D = 2 if bidirectional else 1, L = num_layers), as
    torch.nn.LSTM::

        input       (T, B, I), (B, T, I) with batch_first, unbatched (T, I), or PackedSequence
        h_0, c_0    (L·D, B, H), or (L·D, H) for unbatched input; row k·D + d is layer k of
                    direction d (d = 1 the reverse stack); None gives zeros
        output      (T, B, D·H): the top layer's h_t (batch-first, unbatched or packed as input)
        h_n, c_n    (L·D, B, H), at each sequence's last step (lengths= and packed input too)

    Parameters: the cell's, ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}``, ``weight_c{i,f,o}_l{k}``, ``weight_xd_l{k}``, ``weight_cd_l{k}``,
    ``weight_ld_l{k}``, ``bias_d_l{k}``, and the same with ``_reverse``. The LSTM part has
    torch.nn.LSTM's names and shapes, so a unidirectional torch.nn.LSTM's state dict loads with
    ``strict=False`` (the depth gates' parameters are then the ones left missing).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        peepholes: bool = False,
        forget_bias: float | None = None,
        recurrent_init: str = "uniform",
        engine: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **regularizers: Unpack[RegularizerOptions],
    ) -> None:
        cell = DepthGatedLSTMCell(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            peepholes=peepholes,
            forget_bias=forget_bias,
            dropout=dropout,
            recurrent_init=recurrent_init,
            device=device,
            dtype=dtype,
        )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts between layers, so it needs num_layers > 1; "
                f"got dropout={dropout} and num_layers=1",
                LstmkitWarning,
                stacklevel=2,
            )
        super().__init__(
            cell,
            bidirectional=bidirectional,
            batch_first=batch_first,
            engine=engine,
            **regularizers,
        )

    def _adopt(self, cell: RecurrentCell[Any], key: str) -> None:
        # The cell's names already carry the layer (weight_ih_l2); the layer adds only the
        # direction, so the names are torch.nn.LSTM's.
        suffix = key.removeprefix("l0")  # "" or "_reverse"
        names: dict[str, str] = {}
        for name, p in list(cell._parameters.items()):
            if p is None:
                continue
            self.register_parameter(name + suffix, p)
            del cell._parameters[name]
            names[name] = name + suffix
        object.__setattr__(cell, "_lstmkit_binding", (self, names))

    @property
    def stack(self) -> DepthGatedLSTMCell:
        """The forward direction's cell (the reverse one is ``cell(0, reverse=True)``)."""
        cell = self.cell(0)
        assert isinstance(cell, DepthGatedLSTMCell)
        return cell

    @property
    def depth(self) -> int:
        """L, the number of depth-gated layers (``num_layers`` as given)."""
        return self.stack.num_layers

    @property
    def bias(self) -> bool:
        return self.stack.bias

    @property
    def peepholes(self) -> bool:
        return self.stack.peepholes

    def initial_state(
        self, batch_size: int, *, dtype: torch.dtype, device: torch.device
    ) -> LSTMState:
        """Zeros in torch.nn's layout: ``(h_0, c_0)``, each ``(L·D, B, H)``."""
        shape = (self.depth * self.num_directions, batch_size, self.hidden_size)
        zeros = torch.zeros(shape, dtype=dtype, device=device)
        return LSTMState(zeros, zeros.clone())

    def _initial_or_given(
        self, hx: Any, *, batch_size: int, like: Tensor, unbatched: bool, what: str = "hx"
    ) -> State:
        if hx is None:
            return super()._initial_or_given(
                None, batch_size=batch_size, like=like, unbatched=False
            )
        one = LSTMState(*(like.new_zeros(batch_size, self.hidden_size) for _ in range(2)))
        rows = self.depth * self.num_directions
        given = check_state(hx, one, unbatched=unbatched, what=what, stacked=rows)
        return map_state(self._to_stack_layout, given)  # (D, B, L·H)

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Any = None,
        *,
        lengths: Tensor | list[int] | None = None,
        resets: Tensor | None = None,
        reset_state: Any = None,
        return_cell_states: bool = False,
    ) -> Output:
        """As :meth:`lstmkit.Recurrent.forward`, with states in torch.nn.LSTM's layout: hx,
        reset_state and h_n ``(L·D, B, H)``, and the cell states of every layer of the stack,
        ``(L, T, B, D·H)`` (``cell_states[-1]``, the top layer's, lines up with the output)."""
        output, h_n, *cells = super().forward(
            input,
            hx,
            lengths=lengths,
            resets=resets,
            reset_state=reset_state,
            return_cell_states=return_cell_states,
        )
        h_n = map_state(self._to_torch_layout, h_n)
        if not cells:
            return output, h_n
        # (1, *batch, D·L·H), each direction's stack side by side → (L, *batch, D·H)
        top = cells[0][0]
        stack = top.reshape(*top.shape[:-1], self.num_directions, self.depth, self.hidden_size)
        return output, h_n, stack.movedim(-2, 0).flatten(-2)

    def _to_torch_layout(self, t: Tensor) -> Tensor:
        """``(D, *batch, L·H)`` → ``(L·D, *batch, H)``, row k·D + d."""
        split = t.reshape(*t.shape[:-1], self.depth, self.hidden_size)  # (D, *batch, L, H)
        return split.movedim(-2, 0).flatten(0, 1)

    def _to_stack_layout(self, t: Tensor) -> Tensor:
        """``(L·D, B, H)`` → ``(D, B, L·H)``, the inverse of :meth:`_to_torch_layout`."""
        split = t.reshape(self.depth, self.num_directions, *t.shape[1:])  # (L, D, B, H)
        return split.movedim(0, -2).flatten(-2)

    def extra_repr(self) -> str:
        parts = [self.stack.extra_repr()]
        if self.bidirectional:
            parts.append("bidirectional=True")
        if self.batch_first:
            parts.append("batch_first=True")
        parts += [f"{k}={v}" for k, v in vars(self.regularizers).items() if v]
        if self.engine != "auto":
            parts.append(f"engine={self.engine!r}")
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
    ``weight_time_b0_l0``, ``weight_depth_b1_l0_reverse``, ``weight_in_l0``. The fused engine runs
    it a block at a time (with priority "time", through a kernel that runs both of a block's
    transforms in each step). The recurrent regularisers of :class:`lstmkit.Recurrent` are not
    offered: zoneout and recurrent dropout act on a state's h, which here is an output, not a
    recurrent vector. ``recurrent_init`` is :class:`GridLSTMCell`'s.
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
        recurrent_init: str = "uniform",
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
            recurrent_init=recurrent_init,
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
        return self.first_cell(GridLSTMCell).depth

    @property
    def tied(self) -> bool:
        return self.first_cell(GridLSTMCell).tied


register_layer(
    "mut",
    MUT,
    examples=[
        Example("MUT1", "Jozefowicz et al. 2015", {"kind": 1}, square=True),
        Example("MUT2", "Jozefowicz et al. 2015", {"kind": 2}, square=True),
        Example("MUT3", "Jozefowicz et al. 2015", {"kind": 3}),
    ],
)
register_layer(
    "clockwork",
    ClockworkRNN,
    examples=[Example("Clockwork RNN, periods 1, 2, 4, 8", "Koutník et al. 2014")],
)
register_layer(
    "dglstm",
    DepthGatedLSTM,
    examples=[Example("Depth-Gated LSTM, 3 layers", "Yao et al. 2015", {"num_layers": 3})],
)
register_layer(
    "grid",
    GridLSTM,
    examples=[Example("Grid LSTM, time × depth, 3 blocks", "Kalchbrenner 2015", {"depth": 3})],
)
