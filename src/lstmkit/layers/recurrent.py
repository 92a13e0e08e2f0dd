"""``Recurrent(cell)``: any cell over time, layers and directions, in torch.nn's calling
convention. The loop itself is an engine's (see :mod:`lstmkit.engines`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit import _recording
from lstmkit._checks import (
    check_input_tensor,
    check_lengths,
    check_positive_int,
    check_probability,
    check_state,
    describe,
)
from lstmkit._errors import LstmkitIndexError, LstmkitTypeError, LstmkitValueError
from lstmkit._state import State, cell_state, map_state
from lstmkit._warnings import EngineFallbackWarning, LstmkitWarning
from lstmkit.cells.base import RecurrentCell, parameter_of
from lstmkit.engines.export import exporting
from lstmkit.engines.registry import (
    Engine,
    check_engine_name,
    get_engine,
    registry_version,
    select_engine,
)
from lstmkit.engines.regularizers import RegularizerOptions, Regularizers
from lstmkit.engines.tuning import autotune_enabled, bucket, choose_engine, may_measure
from lstmkit.layers import _streaming
from lstmkit.layers.exporting import forward_for_export

if TYPE_CHECKING:
    from typing_extensions import Unpack

C = TypeVar("C", bound=RecurrentCell[Any])

_CPU = torch.device("cpu")

Output = tuple[Tensor | PackedSequence, State] | tuple[Tensor | PackedSequence, State, Tensor]
"""``output, h_n``, and the cell states where asked (see :class:`Recurrent`)."""


class Recurrent(nn.Module):
    r"""Runs any cell over time, with several layers, both directions, dropout between layers and
    packed sequences, the way torch.nn.LSTM runs its own cell.

    Args:
        cell: the cell of layer 0, forward direction. The other layers and the reverse direction
            get fresh cells from ``cell.spawn(input_size)``.
        num_layers: stacked layers; layer k > 0 reads the outputs of layer k - 1.
        bidirectional: also run each layer from the last step to the first and concatenate.
        batch_first: input and output are ``(B, T, F)`` instead of ``(T, B, F)``.
        dropout: dropout on the outputs of every layer but the last, in training mode.
        engine: how the recurrence is executed: "auto" (the fastest that supports the cells),
            "reference" (a Python loop over the cell, the truth), "native" (torch's fused
            kernels, standard LSTM / GRU / RNN only), "fused" (lstmkit's C++ kernels), or any
            registered engine.
        input_dropout: variational dropout on every layer's input: one mask per sequence,
            the same at every step (Gal & Ghahramani 2016), in training mode.
        recurrent_dropout: variational dropout on h_{t-1} where it enters the recurrent
            products (Gal & Ghahramani 2016), one mask per sequence, in training mode. The
            cells must support it (lstmkit's do).
        zoneout_hidden, zoneout_cell: zoneout (Krueger et al. 2017): in training each unit of
            h (or c) keeps its previous value with this probability, at every step; in
            evaluation it takes the expectation ``z * old + (1 - z) * new``. zoneout_cell needs
            a state with a ``c`` field. The layer's outputs are the zoned-out h.
        The fused engine runs them with lstmkit's cells (its masks drawn in Python, as the
        reference engine draws them), except zoneout_cell on a Clockwork RNN (whose state's
        second field is its clock), which runs on the reference engine, as do other cells.

    Parameters: the layer takes over its cells' parameters and names them as torch.nn does,
    ``<name>_l{k}`` and ``<name>_l{k}_reverse`` (``weight_ih_l0``, ``weight_hh_l1_reverse``, ...),
    so a torch.nn state dict loads as is. The cells, in ``self.cells`` keyed ``l{k}[_reverse]``,
    read them from the layer. Parameters of a cell's own submodules keep their module path.

    Shapes (T steps, B sequences, D = 2 if bidirectional else 1, L = num_layers, O the cell's
    output size)::

        input   (T, B, input_size), (B, T, input_size) with batch_first, unbatched
                (T, input_size), or a PackedSequence
        hx      the cell's state with every tensor stacked over layers and directions:
                (L·D, B, *) -- for an LSTM the tuple (h_0, c_0); None gives zeros
        output  (T, B, D·O) (batch-first or unbatched like the input, or a PackedSequence)
        h_n     like hx, the state after each sequence's last step

    ``forward(input, hx, lengths=...)`` also accepts padded input with per-sequence lengths; the
    output is then zero past each length and h_n is taken at each sequence's last real step.

    ``resets=`` (bool ``(T, B)``, ``(B, T)`` with batch_first, ``(T,)`` unbatched; padded input
    only): where ``resets[t, b]``, sequence b starts over at step t: in every layer its state
    before step t is ``reset_state``'s row (zeros when None), not the one carried from step
    t - 1 (hx at t = 0). Each piece between a sequence's resets runs as on its own, the first
    from hx and the others from reset_state (``reset_state=hx``: all from hx); in reverse from
    its last step, the last piece from hx. Each step where some sequence starts over costs one
    more engine call per layer and direction; in training the regularisers draw masks per piece.
    ``return_cell_states=True`` (states with a field ``c``: the LSTM, its variants,
    DepthGatedLSTM) returns ``output, h_n, cell_states``, the c of every step after zoneout,
    ``(L, T, B, D·H)`` (``(L, B, T, D·H)`` batch-first, ``(L, T, D·H)`` unbatched, padded for
    packed input), directions side by side as in output, zero past each length; the native
    engine then steps torch's one-step cell, slower than its whole-sequence kernel.

    Truncated backpropagation through time: carry the state across calls, detached, and mark
    where new sequences start in the stream (examples/streaming_tbptt.py)::

        state = None
        for x, y, starts in chunks:  # x (K, B, F), starts (K, B) bool
            out, state = lstm(x, state, resets=starts)
            loss(head(out), y).backward(); optimizer.step(); optimizer.zero_grad()
            state = tuple(s.detach() for s in state)  # a GRU's state: state.detach()
    """

    def __init__(
        self,
        cell: RecurrentCell[Any],
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        dropout: float = 0.0,
        engine: str = "auto",
        **regularizers: Unpack[RegularizerOptions],
    ) -> None:
        super().__init__()
        if not isinstance(cell, RecurrentCell):
            raise LstmkitTypeError(f"cell must be an lstmkit.RecurrentCell, got {describe(cell)}")
        unknown = set(regularizers) - set(RegularizerOptions.__annotations__)
        if unknown:
            raise LstmkitTypeError(
                f"unexpected keyword argument(s) {sorted(unknown)}; the regularisers are "
                f"{', '.join(RegularizerOptions.__annotations__)}"
            )
        for name, value in regularizers.items():
            check_probability(name, value)
        self.regularizers = Regularizers(**{k: float(v) for k, v in dict(regularizers).items()})  # type: ignore[arg-type]
        self._check_regularizers(cell)
        check_positive_int("num_layers", num_layers)
        for name, flag in (("bidirectional", bidirectional), ("batch_first", batch_first)):
            if not isinstance(flag, bool):
                raise LstmkitTypeError(f"{name} must be a bool, got {describe(flag)}")
        check_probability("dropout", dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout acts between layers, so it needs num_layers > 1; "
                f"got dropout={dropout} and num_layers=1",
                LstmkitWarning,
                stacklevel=2,
            )
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self._engine = engine
        directions = 2 if bidirectional else 1
        cells: dict[str, RecurrentCell[Any]] = {}
        for k in range(num_layers):
            for d in range(directions):
                key = f"l{k}" + ("_reverse" if d else "")
                size = cell.input_size if k == 0 else cell.output_size * directions
                cells[key] = cell if (k, d) == (0, 0) else _spawn(cell, size)
        self.cells = nn.ModuleDict(cells)
        # The same cells as a tuple, which every call reads (a ModuleDict lookup costs a few
        # Python calls; the cells never change after construction).
        self._cell_order = tuple(cells.values())
        for key, c in self.cells.items():
            self._adopt(c, key)  # type: ignore[arg-type]
        self.engine = engine  # checked now, not at the first call

    def _check_regularizers(self, cell: RecurrentCell[Any]) -> None:
        reg = self.regularizers
        if reg.recurrent_dropout > 0 and not cell.supports_recurrent_dropout:
            raise LstmkitValueError(
                f"recurrent_dropout needs a cell whose step takes h_mask; {type(cell).__name__} "
                "does not (set supports_recurrent_dropout and accept h_mask to add it)"
            )
        if reg.zoneout_cell > 0:
            state = cell.initial_state(1, dtype=torch.float32, device=torch.device("cpu"))
            if "c" not in getattr(state, "_fields", ()):
                raise LstmkitValueError(
                    f"zoneout_cell needs a state with a cell state c; {type(cell).__name__}'s "
                    "state has none (use zoneout_hidden)"
                )

    def _adopt(self, cell: RecurrentCell[Any], key: str) -> None:
        names: dict[str, str] = {}
        for name, p in list(cell._parameters.items()):
            if p is None:
                continue
            flat = f"{name}_{key}"
            self.register_parameter(flat, p)
            del cell._parameters[name]
            names[name] = flat
        object.__setattr__(cell, "_lstmkit_binding", (self, names))

    @property
    def engine(self) -> str:
        """The engine's name: "auto", "reference", "native" or another registered one."""
        return self._engine

    @engine.setter
    def engine(self, name: str) -> None:
        check_engine_name(name)
        select_engine(name, self)  # fails now, not at the first call, if it cannot run
        self._engine = name
        self._chosen: dict[tuple[Any, ...], str] = {}
        self.last_engine: str | None = None
        """The engine that ran the last call (for "auto": the one it chose)."""

    def _training(self, like: Tensor | None) -> tuple[torch.dtype, torch.device, bool]:
        """The parameters' dtype and device (``like`` is one of them, as :func:`parameter_of`
        gives it) and whether this call needs their gradients."""
        if like is None:
            return torch.float32, _CPU, torch.is_grad_enabled()
        return like.dtype, like.device, torch.is_grad_enabled() and like.requires_grad

    def _engine_for_call(
        self, x: Tensor, batch_sizes: Tensor | None, hx: State, *, batch: int, like: Tensor | None
    ) -> Engine:
        # What an engine supports depends on the cells, which do not change, on the
        # regularisers, and on where and in what precision the parameters are; which one "auto"
        # prefers, also on whether gradients are needed and, measured, on the bucket of sizes.
        # A choice stands until one of those changes (or the registry does).
        dtype, device, training = self._training(like)
        measured = self._engine == "auto" and autotune_enabled() and may_measure(x)
        key: tuple[Any, ...] = (
            registry_version(),
            self.regularizers,
            dtype,
            device,
            training,
            measured,
        )
        if measured:
            steps = x.shape[0] if batch_sizes is None else len(batch_sizes)
            key += (bucket(steps), bucket(batch), batch_sizes is None)
        name = self._chosen.get(key)
        if name is None:
            if measured:
                name = choose_engine(self, x, batch_sizes, hx, training=training).name
            else:
                name = select_engine(self._engine, self, training=training).name
            self._chosen[key] = name
            if name == "reference" and device.type == "cuda" and self._engine == "auto":
                _warn_slow_on_gpu(self.cell(0), device)
        self.__dict__["last_engine"] = name  # not through nn.Module's __setattr__: every call
        return get_engine(name)

    @property
    def input_size(self) -> int:
        return self.cell(0).input_size

    @property
    def hidden_size(self) -> int:
        return self.cell(0).hidden_size

    @property
    def output_size(self) -> int:
        """Features per step and direction (the last dim of output is D times this)."""
        return self.cell(0).output_size

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def cell(self, layer: int, *, reverse: bool = False) -> RecurrentCell[Any]:
        """The cell of one layer and direction; it shares its parameters with this layer."""
        if not 0 <= layer < self.num_layers:
            raise LstmkitIndexError(f"layer must be in [0, {self.num_layers}), got {layer}")
        if reverse and not self.bidirectional:
            raise LstmkitValueError("reverse=True needs a bidirectional layer")
        return self._cell_order[layer * (2 if self.bidirectional else 1) + reverse]

    def first_cell(self, kind: type[C]) -> C:
        """Layer 0's forward cell, which a layer built for cells of ``kind`` knows is one."""
        cell = self.cell(0)
        assert isinstance(cell, kind)
        return cell

    def iter_cells(self) -> Iterator[RecurrentCell[Any]]:
        """The cells in torch.nn's order: l0, l0_reverse, l1, ..."""
        return iter(self._cell_order)

    def reset_parameters(self) -> None:
        for cell in self.iter_cells():
            cell.reset_parameters()

    def flatten_parameters(self) -> None:
        """Does nothing; it exists so that code written for torch.nn.LSTM runs unchanged."""

    def initial_state(self, batch_size: int, *, dtype: torch.dtype, device: torch.device) -> State:
        """The zero state, every tensor stacked over layers and directions: ``(L·D, B, *)``."""
        one = self.cell(0).initial_state(batch_size, dtype=dtype, device=device)
        return self._stacked_zeros(one)

    def _stacked_zeros(self, one: State) -> State:
        # Stacked states need the same shapes in every layer and direction, as in torch.nn.
        count = len(self._cell_order)
        if count == 1:
            return map_state(lambda t: t.unsqueeze(0), one)
        return map_state(lambda t: t.new_zeros((count, *t.shape)), one)

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
        if exporting():  # torch.onnx.export: ONNX's own operators, or a Scan
            if resets is not None or reset_state is not None or return_cell_states:
                raise LstmkitValueError(
                    "ONNX export covers a layer's plain call; resets, reset_state and "
                    "return_cell_states do not export (run the pieces between resets as "
                    "separate calls of the exported model)"
                )
            return forward_for_export(self, input, hx, lengths)
        ask = None
        if resets is not None or reset_state is not None or return_cell_states is not False:
            ask = _streaming.request(self.cell(0), resets, reset_state, return_cell_states)
        if hx is not None and lengths is None and type(input) is Tensor:
            stepped = self._one_step(input, hx, ask)
            if stepped is not None:
                return stepped
        cell = self.cell(0)
        like = parameter_of(cell)
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise LstmkitValueError(
                    "lengths is for padded input; a PackedSequence carries its own"
                )
            if ask is not None and ask.resets is not None:
                raise _streaming.refuse_packed_resets("a PackedSequence")
            check_input_tensor(input.data, what="input.data", like=like)
            self._check_features(input.data, cell.input_size, dims=(2,), what="input.data")
            return self._forward_packed(input, hx, like=like, ask=ask)
        x = check_input_tensor(input, what="input", like=like)
        self._check_features(x, cell.input_size, dims=(2, 3), what="input")
        unbatched = x.dim() == 2
        if unbatched:
            if lengths is not None:
                raise LstmkitValueError(
                    "lengths needs batched input (3-D); this input is unbatched (2-D)"
                )
            x = x.unsqueeze(1)  # (T, 1, F)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (T, B, F)
        if x.shape[0] == 0:
            raise LstmkitValueError(
                f"input must have at least one time step, got shape {tuple(input.shape)}"
            )
        if lengths is not None:
            if ask is not None and ask.resets is not None:
                raise _streaming.refuse_packed_resets("lengths=")
            lens = check_lengths(lengths, batch_size=x.shape[1], steps=x.shape[0])
            packed = pack_padded_sequence(x, lens, enforce_sorted=False)
            out_packed, *rest = self._forward_packed(
                packed, hx, like=like, ask=ask, total_length=x.shape[0]
            )
            assert isinstance(out_packed, PackedSequence)
            out, _ = pad_packed_sequence(
                out_packed, batch_first=self.batch_first, total_length=x.shape[0]
            )
            return (out, *rest)  # type: ignore[return-value]
        state = self._initial_or_given(hx, batch_size=x.shape[1], like=x, unbatched=unbatched)
        engine = self._engine_for_call(x, None, state, batch=x.shape[1], like=like)
        if ask is None:
            out, h_n = engine.run(self, x, None, state)
            cells = None
        else:
            out, h_n, cells = self._run_stream(engine, x, None, state, ask, unbatched=unbatched)
        if unbatched:
            out, h_n = out.squeeze(1), map_state(lambda s: s.squeeze(1), h_n)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if cells is None:
            return out, h_n
        return out, h_n, _streaming.cells_layout(cells, self.batch_first, unbatched)

    def _run_stream(
        self,
        engine: Engine,
        x: Tensor,
        batch_sizes: Tensor | None,
        state: State,
        ask: _streaming.Request,
        *,
        unbatched: bool,
    ) -> tuple[Tensor, State, Tensor | None]:
        """A call with resets or cell states, on the chosen engine if it runs them."""
        engine = _streaming.streaming_engine(self, engine)
        self.__dict__["last_engine"] = engine.name
        resets = None
        if ask.resets is not None:  # (padded input: packed input with resets is refused)
            start = self._initial_or_given(
                ask.reset_state,
                batch_size=x.shape[1],
                like=x,
                unbatched=unbatched,
                what="reset_state",
            )
            resets = _streaming.resets(ask, start, x, self.batch_first, unbatched=unbatched)
        return engine.run_stream(
            self, x, batch_sizes, state, resets=resets, cell_states=ask.cell_states
        )

    def _forward_packed(
        self,
        input: PackedSequence,
        hx: Any,
        *,
        like: Tensor | None,
        ask: _streaming.Request | None = None,
        total_length: int | None = None,
    ) -> Output:
        batch_size = int(input.batch_sizes[0])
        state = self._initial_or_given(hx, batch_size=batch_size, like=input.data, unbatched=False)
        if input.sorted_indices is not None:
            order = input.sorted_indices
            state = map_state(lambda s: s.index_select(1, order), state)
        if _recording.RECORDING is not None:
            _recording.RECORDING.layout(self.cells.values(), input.sorted_indices)
        engine = self._engine_for_call(
            input.data, input.batch_sizes, state, batch=batch_size, like=like
        )
        if ask is None:
            data, h_n = engine.run(self, input.data, input.batch_sizes, state)
            cells = None
        else:
            data, h_n, cells = self._run_stream(
                engine, input.data, input.batch_sizes, state, ask, unbatched=False
            )
        if input.unsorted_indices is not None:
            back = input.unsorted_indices
            h_n = map_state(lambda s: s.index_select(1, back), h_n)
        out = PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
        if cells is None:
            return out, h_n
        return out, h_n, _streaming.padded_cells(cells, input, total_length, self.batch_first)

    def _check_features(
        self, x: Tensor, input_size: int, *, dims: tuple[int, ...], what: str
    ) -> None:
        if x.dim() not in dims:
            if dims == (2,):
                expected = "(total steps, input_size)"
            else:
                expected = (
                    "(T, B, input_size), (B, T, input_size) with batch_first, "
                    "or unbatched (T, input_size)"
                )
            raise LstmkitValueError(
                f"{what} must be {expected}; got {x.dim()}-D with shape {tuple(x.shape)}"
            )
        if x.shape[-1] != input_size:
            raise LstmkitValueError(
                f"{what}.size(-1) must be equal to input_size. "
                f"Expected {input_size}, got {x.shape[-1]}"
            )

    def _initial_or_given(
        self, hx: Any, *, batch_size: int, like: Tensor, unbatched: bool, what: str = "hx"
    ) -> State:
        given = None
        if hx is not None and not unbatched:
            given = self._plain_state(hx, batch_size, like)
        if given is None:
            one = self.cell(0).initial_state(batch_size, dtype=like.dtype, device=like.device)
            if hx is None:
                return self._stacked_zeros(one)
            stacked = len(self._cell_order)
            given = check_state(hx, one, unbatched=unbatched, what=what, stacked=stacked)
        if not (torch.compiler.is_compiling() or exporting()):  # (a data-dependent check
            # would break a traced graph)
            self.cell(0).check_state_values(given)
        return given

    def _one_step(self, x: Tensor, hx: Any, ask: _streaming.Request | None) -> Output | None:
        """One step (T = 1) of a one-layer, one-direction layer whose engine is "auto", given a
        well-formed state, with nothing acting between steps: torch's own fused cell, as a cell
        call takes it, since one step is mostly per-call cost (streaming, reinforcement
        learning). None where any of that does not hold; the full path then runs."""
        if self._engine != "auto" or self.num_layers != 1 or self.bidirectional:
            return None
        if self.regularizers.active or _recording.RECORDING is not None:
            return None
        if x.dim() != 3 or x.shape[1 if self.batch_first else 0] != 1:
            return None
        if torch.compiler.is_compiling() or torch._C._get_tracing_state():
            return None
        cell = self.cell(0)
        step = x[:, 0] if self.batch_first else x[0]  # (B, F)
        stacked = self._plain_state(hx, step.shape[0], step)
        if stacked is not None and ask is not None and ask.resets is not None:
            given = ask.reset_state
            start = None if given is None else self._plain_state(given, step.shape[0], step)
            stacked = _streaming.reset_one_step(ask, stacked, start, step, self.batch_first)
        state = (
            None if stacked is None else cell._plain_state(step, map_state(lambda s: s[0], stacked))
        )
        if state is None:  # (the cell's check covers the input too: features, dtype, device)
            return None
        new = cell.torch_step(step, state)
        if new is None:
            return None
        self.__dict__["last_engine"] = "native"  # torch's kernel
        time = 1 if self.batch_first else 0
        out = cell.output(new).unsqueeze(time)
        h_n = map_state(lambda s: s.unsqueeze(0), new)
        if ask is None or not ask.cell_states:
            return out, h_n
        return out, h_n, cell_state(new)[None].unsqueeze(time + 1)  # (L = 1, T = 1, B, H)

    def _plain_state(self, hx: Any, batch_size: int, like: Tensor) -> State | None:
        """``hx`` in the state's type if it is exactly as the layer takes it (every field
        ``(L·D, B, width)`` in ``like``'s dtype and device), else None: a few comparisons where
        the full checks would build a zero state to compare with."""
        layout = self.cell(0).state_layout()
        if layout is None:
            return None
        kind, widths = layout
        values = (hx,) if kind is None else hx
        if not isinstance(values, tuple) or len(values) != len(widths):
            return None
        stacked = len(self._cell_order)
        for value, width in zip(values, widths, strict=True):
            if type(value) is not Tensor or value.shape != (stacked, batch_size, width):
                return None
            if value.dtype != like.dtype or value.device != like.device:
                return None
        return hx if kind is None or type(hx) is kind else kind(*values)  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional=True")
        if self.batch_first:
            parts.append("batch_first=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        for f in fields(self.regularizers):
            value = getattr(self.regularizers, f.name)
            if value:
                parts.append(f"{f.name}={value}")
        if self.engine != "auto":
            parts.append(f"engine={self.engine!r}")
        return ", ".join(parts)


_WARNED_ON_GPU: set[str] = set()


def _warn_slow_on_gpu(cell: RecurrentCell[Any], device: torch.device) -> None:
    """Says once per kind of cell that it runs the reference engine's Python loop on a GPU."""
    kind = f"{type(cell).__name__}({cell.extra_repr()})"
    if kind in _WARNED_ON_GPU:
        return
    _WARNED_ON_GPU.add(kind)
    warnings.warn(
        f"no fast engine runs {kind} on {device}: it runs on the reference engine, a Python "
        "loop over the time steps, which is slow on a GPU",
        EngineFallbackWarning,
        stacklevel=4,
    )


def _spawn(cell: RecurrentCell[Any], input_size: int) -> RecurrentCell[Any]:
    new = cell.spawn(input_size)
    if not isinstance(new, RecurrentCell):
        raise LstmkitTypeError(
            f"{type(cell).__name__}.spawn() must return a RecurrentCell, got {describe(new)}"
        )
    if new.input_size != input_size or new.output_size != cell.output_size:
        raise LstmkitValueError(
            f"{type(cell).__name__}.spawn({input_size}) returned a cell with input_size="
            f"{new.input_size} and output_size={new.output_size}; expected {input_size} and "
            f"{cell.output_size}"
        )
    return new
