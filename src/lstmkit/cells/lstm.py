"""The LSTM cell of "Understanding LSTM Networks" and the variants the post and its studies name.

One step, with the post's symbols (σ the logistic sigmoid, ``*`` elementwise)::

    f_t     = σ(W_f·[h_{t-1}, x_t] + b_f)          forget gate
    i_t     = σ(W_i·[h_{t-1}, x_t] + b_i)          input gate
    C̃_t     = tanh(W_C·[h_{t-1}, x_t] + b_C)       candidate values
    C_t     = f_t * C_{t-1} + i_t * C̃_t            cell state
    o_t     = σ(W_o·[h_{t-1}, x_t] + b_o)          output gate
    h_t     = o_t * tanh(C_t)

``W·[h, x]`` is stored the way torch.nn stores it, as ``W_hh·h + W_ih·x`` with two biases.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import check_choice, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit.cells.base import LSTMState, RecurrentCell
from lstmkit.cells.functional import (
    TORCH_WEIGHTS,
    add_torch_weights,
    check_chrono,
    check_number,
    check_recurrent_init,
    check_sizes,
    forget_bias_,
    init_layer_norm_,
    init_uniform_,
    orthogonal_,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

_recording.declare(
    i_t=Quantity("input gate", r"$i_t$", "gate"),
    f_t=Quantity("forget gate", r"$f_t$", "gate"),
    C_tilde=Quantity("candidate values", r"$\tilde{C}_t$", "value"),
    C_t=Quantity("cell state", r"$C_t$", "value"),
    o_t=Quantity("output gate", r"$o_t$", "gate"),
    h_t=Quantity("hidden state", r"$h_t$", "value"),
    m_t=Quantity("hidden state before the projection", r"$m_t$", "value"),
)

GATES = "ifo"
"""The sigmoid gates, in the order every lstmkit option lists them."""


@dataclass(frozen=True)
class LSTMConfig:
    """Everything that makes one LSTM variant differ from another. The defaults are the standard
    LSTM of the post and of torch.nn.LSTM (with the forget bias of Jozefowicz et al. 2015)."""

    bias: bool = True  # b_ih and b_hh, as torch.nn
    proj_size: int = 0  # > 0: h_t = W_hr·(o_t * tanh(C_t)), proj_size wide (Sak et al. 2014)
    peepholes: str = ""  # gates that see the cell, a subset of "ifo" (Gers & Schmidhuber 2000)
    coupled: bool = False  # coupled input and forget gates: f_t = 1 - i_t (CIFG)
    input_gate: bool = True  # False: i_t = 1 (Greff's NIG)
    forget_gate: bool = True  # False: f_t = 1 (NFG)
    output_gate: bool = True  # False: o_t = 1 (NOG)
    input_activation: bool = True  # False: C̃_t = W_C·[h, x] + b_C, no tanh (NIAF)
    output_activation: bool = True  # False: h_t = o_t * C_t (NOAF)
    full_gate_recurrence: bool = False  # gates also see i, f, o of the previous step (FGR)
    layer_norm: bool = False  # normalise W_ih·x, W_hh·h and C_t (Ba, Kiros & Hinton 2016)
    forget_bias: float = 1.0  # b_f at initialisation (Jozefowicz et al. 2015)
    chrono: int | None = None  # T_max of chrono init (Tallec & Ollivier 2018), see LSTMCell
    recurrent_init: str = "uniform"  # or "orthogonal" per gate block (Saxe et al. 2014)

    @property
    def blocks(self) -> str:
        """Row blocks of weight_ih / weight_hh / biases, each hidden_size rows, in torch.nn's
        order i, f, g, o with absent gates left out ("ifgo" for the standard LSTM)."""
        return (
            ("i" if self.input_gate else "")
            + ("f" if self.has_forget_weights else "")
            + "g"
            + ("o" if self.output_gate else "")
        )

    @property
    def has_forget_weights(self) -> bool:
        """Whether f_t has weights of its own (not when it is absent or derived as 1 - i_t)."""
        return self.forget_gate and not self.coupled

    @property
    def recurrent_gates(self) -> str:
        """The gates whose previous activations feed every gate under full gate recurrence."""
        return "".join(g for g in self.blocks if g != "g")

    @property
    def is_standard(self) -> bool:
        """Whether this is the LSTM torch.nn.LSTM computes (initialisation aside)."""
        return (
            self.blocks == "ifgo"
            and not self.peepholes
            and self.input_activation
            and self.output_activation
            and not self.full_gate_recurrence
            and not self.layer_norm
        )

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the defaults, as keyword options that rebuild this config."""
        default = LSTMConfig()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise LstmkitTypeError(f"{f.name} must be a bool, got {describe(value)}")
        if isinstance(self.proj_size, bool) or not isinstance(self.proj_size, int):
            raise LstmkitTypeError(f"proj_size must be an int, got {describe(self.proj_size)}")
        if self.proj_size < 0:
            raise LstmkitValueError(f"proj_size must be >= 0, got {self.proj_size}")
        object.__setattr__(self, "peepholes", _normalise_peepholes(self.peepholes))
        if self.coupled and not (self.input_gate and self.forget_gate):
            raise LstmkitValueError(
                "coupled=True derives the forget gate from the input gate (f_t = 1 - i_t), so it "
                f"needs both; got input_gate={self.input_gate}, forget_gate={self.forget_gate}"
            )
        for gate in self.peepholes:
            if gate not in self.recurrent_gates:
                why = "is derived as 1 - i_t" if gate == "f" and self.coupled else "is switched off"
                raise LstmkitValueError(
                    f"a peephole on the {_GATE_NAME[gate]} gate, but that gate {why}; "
                    f"peepholes can go on {', '.join(self.recurrent_gates) or 'no gate'} here"
                )
        check_number("forget_bias", self.forget_bias)
        if self.chrono is not None:
            check_chrono(self.chrono)
        check_recurrent_init(self.recurrent_init)


_GATE_NAME = {"i": "input", "f": "forget", "o": "output"}

VARIANTS: dict[str, dict[str, Any]] = {
    # Greff et al. 2015, "LSTM: A Search Space Odyssey": their vanilla LSTM has peepholes on all
    # gates, and each variant changes one thing. A peephole on a gate that a variant removes
    # goes with the gate.
    "vanilla": {"peepholes": "ifo"},
    "NIG": {"peepholes": "fo", "input_gate": False},
    "NFG": {"peepholes": "io", "forget_gate": False},
    "NOG": {"peepholes": "if", "output_gate": False},
    "NIAF": {"peepholes": "ifo", "input_activation": False},
    "NOAF": {"peepholes": "ifo", "output_activation": False},
    "NP": {"peepholes": ""},
    "CIFG": {"peepholes": "io", "coupled": True},
    "FGR": {"peepholes": "ifo", "full_gate_recurrence": True},
}
"""Greff et al. 2015's LSTM variants by name, as the options each one sets."""

VARIANT_DESCRIPTIONS = {
    "vanilla": "Greff's vanilla LSTM: peepholes on all gates",
    "NIG": "no input gate (i_t = 1)",
    "NFG": "no forget gate (f_t = 1)",
    "NOG": "no output gate (o_t = 1)",
    "NIAF": "no input activation (C̃_t linear)",
    "NOAF": "no output activation (h_t = o_t * C_t)",
    "NP": "no peepholes (the standard LSTM)",
    "CIFG": "coupled input and forget gate (f_t = 1 - i_t)",
    "FGR": "full gate recurrence (gates see i, f, o of step t-1)",
}


class LSTMOptions(TypedDict, total=False):
    """The variant switches that LSTMCell and LSTM take as keyword arguments (see LSTMConfig)."""

    variant: str | None
    peepholes: str | None
    coupled: bool | None
    input_gate: bool | None
    forget_gate: bool | None
    output_gate: bool | None
    input_activation: bool | None
    output_activation: bool | None
    full_gate_recurrence: bool | None
    layer_norm: bool | None
    forget_bias: float | None
    chrono: int | None
    recurrent_init: str | None


def lstm_config(
    *, bias: bool = True, proj_size: int = 0, **options: Unpack[LSTMOptions]
) -> LSTMConfig:
    """Resolves keyword options, and a ``variant`` preset, into an :class:`LSTMConfig`.

    An option left at None takes the preset's value, or the default. An option given explicitly
    that contradicts the preset is an error, not a silent override.
    """
    unknown = set(options) - set(LSTMOptions.__annotations__)
    if unknown:
        valid = ", ".join(sorted(LSTMOptions.__annotations__))
        raise LstmkitTypeError(
            f"unexpected LSTM option(s) {sorted(unknown)}; the options are {valid}"
        )
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    variant = given.pop("variant", None)
    settings: dict[str, Any] = {}
    if variant is not None:
        check_choice("variant", variant, list(VARIANTS))
        settings.update(VARIANTS[variant])
    if "peepholes" in given:
        given["peepholes"] = _normalise_peepholes(given["peepholes"])
    for key, value in given.items():
        if key in settings and settings[key] != value:
            raise LstmkitValueError(
                f"variant={variant!r} sets {key}={settings[key]!r}; got {key}={value!r} as well. "
                "Leave the option out, or build the configuration without a variant"
            )
        settings[key] = value
    if "forget_bias" in given and "chrono" in given:
        raise LstmkitValueError(
            "give forget_bias or chrono, not both: both set the forget gate's bias"
        )
    config = LSTMConfig(bias=bias, proj_size=proj_size, **settings)
    for key in ("forget_bias", "chrono"):
        if key in given and not config.forget_gate:
            raise LstmkitValueError(
                f"{key} sets the forget gate's bias, but this cell has no forget gate"
            )
        if key in given and not config.bias:
            raise LstmkitValueError(
                f"{key} sets the forget gate's bias, but this cell has bias=False"
            )
    return config


def _normalise_peepholes(value: object) -> str:
    if isinstance(value, str) or (
        isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value)
    ):
        letters = list(value)
    else:
        raise LstmkitTypeError(
            f"peepholes must be a string of gates such as 'ifo', got {describe(value)}"
        )
    unknown = [v for v in letters if v not in GATES]
    if unknown or len(set(letters)) != len(letters):
        raise LstmkitValueError(
            f"peepholes must name each of the gates 'i', 'f', 'o' at most once, got {value!r}"
        )
    return "".join(g for g in GATES if g in letters)


class LSTMStep(NamedTuple):
    """Every quantity of one LSTM step, each ``(B, H)``; a gate that a variant removes is 1.0."""

    i_t: Tensor | float
    f_t: Tensor | float
    C_tilde: Tensor
    C_t: Tensor
    o_t: Tensor | float
    h_t: Tensor  # before any projection


def lstm_pointwise(
    gates: Tensor,
    C_prev: Tensor,
    config: LSTMConfig,
    *,
    w_ci: Tensor | None = None,
    w_cf: Tensor | None = None,
    w_co: Tensor | None = None,
    gate_recurrence: Tensor | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None,
    depth: Tensor | None = None,
) -> LSTMStep:
    """The pointwise part of an LSTM step: from pre-activations to the new cell and hidden state.

    gates: ``(B, len(config.blocks)·H)``, the pre-activations ``W·[h_{t-1}, x_t] + b`` of each
        block in ``config.blocks`` order.
    C_prev: ``(B, H)``, the cell state C_{t-1}.
    w_ci, w_cf, w_co: ``(H,)`` peephole weights of the gates in ``config.peepholes``.
    gate_recurrence: ``(B, len(config.recurrent_gates)·H)``, the full-gate-recurrence term
        ``R·[i, f, o]_{t-1}`` of each gate, when ``config.full_gate_recurrence``.
    ln_c: the gain and bias ``(H,)`` of the layer normalisation of C_t before the output
        activation, when ``config.layer_norm``.
    depth: ``(B, H)``, a term added to C_t before the output gate sees it: the Depth-Gated
        LSTM's ``d_t^k * C_t^{k-1}`` (Yao et al. 2015, eq. 7).
    """
    a = dict(zip(config.blocks, gates.chunk(len(config.blocks), dim=-1), strict=True))
    if gate_recurrence is not None:
        fed = config.recurrent_gates
        for gate, r in zip(fed, gate_recurrence.chunk(len(fed), dim=-1), strict=True):
            a[gate] = a[gate] + r  # FGR: R_i·i_{t-1} + R_f·f_{t-1} + R_o·o_{t-1}

    i_t: Tensor | float = 1.0
    if config.input_gate:
        pre_i = a["i"] if w_ci is None else a["i"] + w_ci * C_prev  # peephole on C_{t-1}
        i_t = torch.sigmoid(pre_i)
    f_t: Tensor | float = 1.0
    if config.coupled:
        f_t = 1.0 - i_t
    elif config.forget_gate:
        pre_f = a["f"] if w_cf is None else a["f"] + w_cf * C_prev  # peephole on C_{t-1}
        f_t = torch.sigmoid(pre_f)
    C_tilde = torch.tanh(a["g"]) if config.input_activation else a["g"]
    C_t = f_t * C_prev + i_t * C_tilde
    if depth is not None:
        C_t = depth + C_t  # the cell of the layer below, through the depth gate
    o_t: Tensor | float = 1.0
    if config.output_gate:
        pre_o = a["o"] if w_co is None else a["o"] + w_co * C_t  # peephole on the new C_t
        o_t = torch.sigmoid(pre_o)
    C_out = C_t if ln_c is None else F.layer_norm(C_t, C_t.shape[-1:], *ln_c)  # LN(C_t)
    h_t = o_t * torch.tanh(C_out) if config.output_activation else o_t * C_out
    return LSTMStep(i_t, f_t, C_tilde, C_t, o_t, h_t)


class FullGateState(NamedTuple):
    """State of an LSTM with full gate recurrence: ``(h, c)`` and the gates of the last step."""

    h: Tensor
    """Hidden state h_t, ``(B, H)`` or ``(B, P)``."""
    c: Tensor
    """Cell state C_t, ``(B, H)``."""
    a: Tensor
    """Gate activations ``[i_t, f_t, o_t]`` (the gates that exist, in that order), ``(B, k·H)``."""


class LSTMCell(RecurrentCell[LSTMState | FullGateState]):
    r"""One LSTM step, the standard cell by default and any variant by keyword.

    Equations (shapes for a batch of B, input size I, hidden size H, projection size P)::

        i_t     = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi + w_ci * C_{t-1})     (B, H)
        f_t     = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf + w_cf * C_{t-1})     (B, H)
        C̃_t     = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)                   (B, H)
        C_t     = f_t * C_{t-1} + i_t * C̃_t                                      (B, H)
        o_t     = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho + w_co * C_t)         (B, H)
        h_t     = o_t * tanh(C_t)                                                (B, H)
        h_t     = W_hr h_t            only with proj_size = P > 0                (B, P)

    The peephole terms ``w_c· * C`` (Gers & Schmidhuber 2000) exist only for the gates named in
    ``peepholes``: i and f look at C_{t-1}, o at the new C_t.

    Options (keyword-only; the defaults give the standard LSTM, as torch.nn.LSTMCell):
        bias: whether the biases b_ih, b_hh exist.
        proj_size: P > 0 projects h_t to P features (torch.nn.LSTM's proj_size).
        peepholes: any subset of ``"ifo"``.
        coupled: coupled input and forget gates, ``f_t = 1 - i_t`` (CIFG).
        input_gate / forget_gate / output_gate: False fixes that gate at 1 (Greff's NIG/NFG/NOG).
        input_activation: False makes C̃_t linear (NIAF).
        output_activation: False gives ``h_t = o_t * C_t`` (NOAF).
        full_gate_recurrence: each gate also receives ``R·[i, f, o]_{t-1}`` (FGR).
        layer_norm: layer normalisation (Ba, Kiros & Hinton 2016, eqs. 20-22): the gates'
            pre-activation is ``LN(W_hh h_{t-1}) + LN(W_ih x_t) + b`` (each LN over all G·H
            pre-activations, with its own gain and bias), and ``h_t = o_t * tanh(LN(C_t))``;
            the carried C_t itself is not normalised.
        variant: a preset of Greff et al. 2015: one of ``VARIANTS`` ("vanilla", "NIG", "NFG",
            "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR"); options given with it must agree.
        forget_bias: b_f at initialisation, default 1.0 (Jozefowicz et al. 2015; torch.nn uses
            its uniform draw there; Keras also uses 1). With ``coupled`` it sets b_i = -forget_bias,
            which gives f_t = 1 - i_t the same bias.
        chrono: T_max for chrono initialisation (Tallec & Ollivier 2018):
            b_f ~ log U(1, T_max - 1) per unit and b_i = -b_f.
        recurrent_init: "uniform" (torch.nn's, default) or "orthogonal": each gate's block of
            weight_hh a random orthogonal matrix of its own, and weight_hr too with a projection
            (Saxe et al. 2014; why per block: lstmkit.cells.functional.orthogonal_).

    Parameters (torch.nn's names and layout; inside a layer they carry the suffix
    ``_l{k}[_reverse]``)::

        weight_ih  (G·H, I)   input weights of the blocks in config.blocks ("ifgo" when standard)
        weight_hh  (G·H, P or H)   recurrent weights, same blocks
        bias_ih, bias_hh  (G·H,)   with bias=True
        weight_hr  (P, H)     with proj_size = P > 0
        weight_ci, weight_cf, weight_co  (H,)   peephole weights of the gates in ``peepholes``
        weight_gg  (k·H, k·H)  full gate recurrence: rows are the receiving gates, columns the
                               previous activations, both in config.recurrent_gates order
        ln_ih_weight, ln_ih_bias, ln_hh_weight, ln_hh_bias  (G·H,)   with layer_norm
        ln_c_weight, ln_c_bias  (H,)   with layer_norm

    A gate that a variant removes has no rows, so the standard LSTM has exactly torch.nn.LSTM's
    ``4H`` rows in the order i, f, g, o. All weights start U(-1/√H, 1/√H), as torch.nn, except
    the forget bias and what recurrent_init changes (above).

    State: :class:`LSTMState` ``(h, c)``; with full gate recurrence :class:`FullGateState`
    ``(h, c, a)``, whose ``a`` carries the previous step's gates.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    weight_hr: Tensor | None
    weight_ci: Tensor | None
    weight_cf: Tensor | None
    weight_co: Tensor | None
    weight_gg: Tensor | None
    ln_ih_weight: Tensor | None
    ln_ih_bias: Tensor | None
    ln_hh_weight: Tensor | None
    ln_hh_bias: Tensor | None
    ln_c_weight: Tensor | None
    ln_c_bias: Tensor | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **options: Unpack[LSTMOptions],
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        config = lstm_config(bias=bias, proj_size=proj_size, **options)
        if config.proj_size >= hidden_size:
            raise LstmkitValueError(
                f"proj_size must be smaller than hidden_size, got proj_size={config.proj_size}, "
                f"hidden_size={hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.config = config
        # whether torch's own cell computes this configuration (torch_step): asked every call
        self._torch_computes = config.is_standard and not config.proj_size
        H, G, k = hidden_size, len(config.blocks), len(config.recurrent_gates)
        add_torch_weights(
            self,
            G * H,
            input_size=input_size,
            recurrent_size=self.output_size,
            bias=config.bias,
            device=device,
            dtype=dtype,
        )
        new: dict[str, Any] = {"device": device, "dtype": dtype}
        self._optional("weight_hr", config.proj_size > 0, (config.proj_size, H), new)
        for gate in GATES:
            self._optional(f"weight_c{gate}", gate in config.peepholes, (H,), new)
        self._optional("weight_gg", config.full_gate_recurrence, (k * H, k * H), new)
        for name, size in (("ln_ih", G * H), ("ln_hh", G * H), ("ln_c", H)):
            self._optional(f"{name}_weight", config.layer_norm, (size,), new)
            self._optional(f"{name}_bias", config.layer_norm, (size,), new)
        self.reset_parameters()

    def _optional(
        self, name: str, present: bool, shape: tuple[int, ...], new: dict[str, Any]
    ) -> None:
        self.register_parameter(name, nn.Parameter(torch.empty(shape, **new)) if present else None)

    @property
    def output_size(self) -> int:
        return self.config.proj_size or self.hidden_size

    @property
    def bias(self) -> bool:
        return self.config.bias

    def reset_parameters(self) -> None:
        """torch.nn's uniform draw, then recurrent_init, layer norm (gain 1, bias 0) and b_f."""
        init_uniform_(self, _PARAMETER_NAMES)
        cfg, H = self.config, self.hidden_size
        if cfg.recurrent_init == "orthogonal":
            orthogonal_(self.weight_hh, rows=H)  # per gate; (H, P) blocks: orthonormal columns
            orthogonal_(self.weight_hr)  # with a projection, (P, H): orthonormal rows
        init_layer_norm_(self, ("ln_ih", "ln_hh", "ln_c"))
        if cfg.bias and cfg.forget_gate:
            assert self.bias_ih is not None
            forget_bias_(
                self.bias_ih,
                self.bias_hh,
                hidden_size=H,
                blocks=cfg.blocks,
                forget_bias=cfg.forget_bias,
                chrono=cfg.chrono,
                coupled=cfg.coupled,
            )

    supports_recurrent_dropout = True

    def project_input(self, x: Tensor) -> Tensor:
        """``W_ih·x + b_ih`` for every block (``LN(W_ih·x) + b_ih`` with layer normalisation):
        ``(..., I)`` → ``(..., G·H)``."""
        if not self.config.layer_norm:
            return F.linear(x, self.weight_ih, self.bias_ih)
        wx = F.layer_norm(
            F.linear(x, self.weight_ih),
            (self.weight_ih.shape[0],),
            self.ln_ih_weight,
            self.ln_ih_bias,
        )
        return wx if self.bias_ih is None else wx + self.bias_ih

    def recurrent_product(
        self, state: LSTMState | FullGateState, h_mask: Tensor | None = None
    ) -> Tensor:
        """``W_hh·h_{t-1} + b_hh`` (``LN(W_hh·h_{t-1}) + b_hh`` with layer normalisation):
        ``(B, P or H)`` → ``(B, G·H)``. ``h_mask`` is a recurrent dropout mask on h_{t-1}."""
        h = state.h if h_mask is None else state.h * h_mask
        if not self.config.layer_norm:
            return F.linear(h, self.weight_hh, self.bias_hh)
        wh = F.layer_norm(
            F.linear(h, self.weight_hh),
            (self.weight_hh.shape[0],),
            self.ln_hh_weight,
            self.ln_hh_bias,
        )
        return wh if self.bias_hh is None else wh + self.bias_hh

    def step(
        self, xp_t: Tensor, state: Any, *, h_mask: Tensor | None = None
    ) -> LSTMState | FullGateState:
        gates = xp_t + self.recurrent_product(state, h_mask)  # (B, G·H)
        gate_recurrence = None
        if self.weight_gg is not None:
            gate_recurrence = F.linear(state.a, self.weight_gg)  # (B, k·H)
        s = lstm_pointwise(
            gates,
            state.c,
            self.config,
            w_ci=self.weight_ci,
            w_cf=self.weight_cf,
            w_co=self.weight_co,
            gate_recurrence=gate_recurrence,
            ln_c=self._ln_c(),
        )
        h_t = s.h_t if self.weight_hr is None else F.linear(s.h_t, self.weight_hr)  # (B, P)
        if _recording.RECORDING is not None:
            m_t = {} if self.weight_hr is None else {"m_t": s.h_t}
            _recording.record(
                self, i_t=s.i_t, f_t=s.f_t, C_tilde=s.C_tilde, C_t=s.C_t, o_t=s.o_t, h_t=h_t, **m_t
            )
        if self.config.full_gate_recurrence:
            activations = {"i": s.i_t, "f": s.f_t, "o": s.o_t}
            a_t = torch.cat([activations[g] for g in self.config.recurrent_gates], dim=-1)  # type: ignore[misc]
            return FullGateState(h_t, s.C_t, a_t)
        return LSTMState(h_t, s.C_t)

    def torch_step(
        self, x: Tensor, state: LSTMState | FullGateState
    ) -> LSTMState | FullGateState | None:
        if not self._torch_computes:
            return None
        h_t, C_t = torch.lstm_cell(x, state, *self._params(*TORCH_WEIGHTS))
        return LSTMState(h_t, C_t)

    def _ln_c(self) -> tuple[Tensor, Tensor] | None:
        if self.ln_c_weight is None or self.ln_c_bias is None:
            return None
        return self.ln_c_weight, self.ln_c_bias

    def initial_state(
        self, batch_size: int, *, dtype: torch.dtype, device: torch.device
    ) -> LSTMState | FullGateState:
        h = torch.zeros(batch_size, self.output_size, dtype=dtype, device=device)
        c = torch.zeros(batch_size, self.hidden_size, dtype=dtype, device=device)
        if self.config.full_gate_recurrence:
            k = len(self.config.recurrent_gates)
            return FullGateState(
                h, c, torch.zeros(batch_size, k * self.hidden_size, dtype=dtype, device=device)
            )
        return LSTMState(h, c)

    def state_layout(self) -> tuple[Any, tuple[int, ...]]:
        """:class:`LSTMState` ``(h, c)``, or :class:`FullGateState` with the gates ``a``."""
        widths = (self.output_size, self.hidden_size)
        if self.config.full_gate_recurrence:
            return FullGateState, (*widths, len(self.config.recurrent_gates) * self.hidden_size)
        return LSTMState, widths

    def spawn(self, input_size: int) -> LSTMCell:
        options = self.config.changes()
        return LSTMCell(
            input_size,
            self.hidden_size,
            bias=options.pop("bias", True),
            proj_size=options.pop("proj_size", 0),
            device=self.weight_ih.device,
            dtype=self.weight_ih.dtype,
            **options,
        )

    def extra_repr(self) -> str:
        changes = ", ".join(f"{k}={v!r}" for k, v in self.config.changes().items())
        return f"{self.input_size}, {self.hidden_size}" + (f", {changes}" if changes else "")


_PARAMETER_NAMES = (*TORCH_WEIGHTS, "weight_hr", "weight_ci", "weight_cf", "weight_co", "weight_gg")
