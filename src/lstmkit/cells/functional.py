"""What cell families share below their equations: torch.nn's parameter set-up and
initialisation, and the forget gate's initial bias.

The one LSTM step every LSTM-like family calls is :func:`lstmkit.cells.lstm.lstm_pointwise`,
beside the :class:`~lstmkit.cells.lstm.LSTMConfig` it reads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmkit._checks import check_positive_int

TORCH_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""The parameters every torch.nn recurrent cell has (the biases may be None)."""


def check_sizes(input_size: int, hidden_size: int) -> None:
    check_positive_int("input_size", input_size)
    check_positive_int("hidden_size", hidden_size)


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


def init_uniform_(module: nn.Module, names: tuple[str, ...]) -> None:
    """torch.nn's initialisation of recurrent weights, U(-1/√H, 1/√H) with H
    ``module.hidden_size``, for the named parameters of ``module`` that are not None, in the
    order named."""
    hidden_size: int = module.hidden_size  # type: ignore[assignment]
    bound = 1.0 / hidden_size**0.5
    with torch.no_grad():
        for name in names:
            p = getattr(module, name)
            if p is not None:
                p.uniform_(-bound, bound)


def forget_bias_(
    bias_ih: Tensor,
    bias_hh: Tensor | None,
    *,
    hidden_size: int,
    blocks: str = "ifgo",
    forget_bias: float = 1.0,
    chrono: int | None = None,
    coupled: bool = False,
) -> None:
    """Sets the forget gate's initial bias in a bias of row blocks ``blocks`` (torch.nn's i, f,
    g, o, with absent gates left out), each ``hidden_size`` rows.

    ``b_f = forget_bias`` (Jozefowicz et al. 2015), or with ``chrono = T_max`` the chrono
    initialisation of Tallec & Ollivier 2018, ``b_f ~ log U(1, T_max - 1)`` per unit and
    ``b_i = -b_f``. With ``coupled`` (``f_t = 1 - i_t = σ(-a_i)``) the forget gate has no rows
    and ``b_i = -b_f`` gives it the same bias. The recurrent bias ``bias_hh`` of those blocks
    is set to 0, so the two add up to ``b_f``.
    """
    H = hidden_size
    with torch.no_grad():
        if chrono is not None:
            u = torch.empty(H, dtype=torch.float64).uniform_(1.0, chrono - 1.0)
            b_f = u.log().to(bias_ih)
        else:
            b_f = torch.full((H,), float(forget_bias)).to(bias_ih)
        rows = {g: slice(j * H, (j + 1) * H) for j, g in enumerate(blocks)}
        settings = []
        if "f" in rows:
            settings.append((rows["f"], b_f))
        if "i" in rows and (coupled or chrono is not None):
            settings.append((rows["i"], -b_f))
        for block, value in settings:
            bias_ih[block] = value
            if bias_hh is not None:
                bias_hh[block] = 0.0
