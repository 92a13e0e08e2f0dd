"""What cell families share below their equations: torch.nn's parameter set-up and
initialisation, the gates' initial biases (a forget gate's, chrono) and the other starts a
recurrent matrix can take (orthogonal, identity).

The one LSTM step every LSTM-like family calls is :func:`lstmkit.cells.lstm.lstm_pointwise`,
beside the :class:`~lstmkit.cells.lstm.LSTMConfig` it reads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmkit._checks import check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError

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


def init_layer_norm_(module: nn.Module, names: tuple[str, ...]) -> None:
    """Layer normalisation's start: gain ``{name}_weight`` 1 and bias ``{name}_bias`` 0 for each
    name whose parameters ``module`` has (None ones are skipped)."""
    with torch.no_grad():
        for name in names:
            gain, bias = getattr(module, f"{name}_weight"), getattr(module, f"{name}_bias")
            if gain is not None:
                gain.fill_(1.0)
            if bias is not None:
                bias.zero_()


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
    if chrono is not None:
        b_f = chrono_bias(H, chrono, like=bias_ih)
    else:
        b_f = torch.full((H,), float(forget_bias)).to(bias_ih)
    rows = {g: slice(j * H, (j + 1) * H) for j, g in enumerate(blocks)}
    if "f" in rows:
        gate_bias_(bias_ih, bias_hh, rows["f"], b_f)
    if "i" in rows and (coupled or chrono is not None):
        gate_bias_(bias_ih, bias_hh, rows["i"], -b_f)


def chrono_bias(hidden_size: int, chrono: int, *, like: Tensor) -> Tensor:
    """``log U(1, T_max - 1)`` per unit, ``(hidden_size,)`` in ``like``'s dtype and device:
    the bias that chrono initialisation (Tallec & Ollivier 2018, eq. 16) gives a gate that
    keeps the state, so that its characteristic forgetting time ``1 / (1 - σ(b))`` lies
    between 2 and T_max. Drawn in float64, then cast."""
    u = torch.empty(hidden_size, dtype=torch.float64).uniform_(1.0, chrono - 1.0)
    return u.log().to(like)


def gate_bias_(bias_ih: Tensor, bias_hh: Tensor | None, rows: slice, value: Tensor) -> None:
    """Sets one gate's initial bias: ``bias_ih[rows] = value`` and ``bias_hh[rows] = 0``, so
    that the two biases torch.nn keeps add up to ``value``."""
    with torch.no_grad():
        bias_ih[rows] = value
        if bias_hh is not None:
            bias_hh[rows] = 0.0


def check_number(name: str, value: object) -> None:
    """A real number (an int or a float, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LstmkitTypeError(f"{name} must be a number, got {describe(value)}")


def check_chrono(chrono: object) -> None:
    """T_max of chrono initialisation: a whole number, 3 or more (``U(1, T_max - 1)`` must not
    be empty or a point)."""
    if isinstance(chrono, bool) or not isinstance(chrono, int):
        raise LstmkitTypeError(f"chrono must be an int T_max, got {describe(chrono)}")
    if chrono < 3:
        raise LstmkitValueError(
            f"chrono needs T_max >= 3 (its bias is drawn as log U(1, T_max - 1)), got {chrono}"
        )


RECURRENT_INITS = ("uniform", "orthogonal", "identity")
"""How a recurrent matrix can start: torch.nn's uniform draw, a random orthogonal matrix per
gate (Saxe et al. 2014), or the identity (Le et al. 2015's IRNN, for the ungated cells)."""


def check_recurrent_init(value: object, *, identity: bool = False) -> None:
    """``recurrent_init`` is one of :data:`RECURRENT_INITS`; ``"identity"`` only where the cell
    takes it (``identity=True``: the ungated RNN and Clockwork cells)."""
    if not isinstance(value, str):
        raise LstmkitTypeError(f"recurrent_init must be a string, got {describe(value)}")
    valid = RECURRENT_INITS if identity else RECURRENT_INITS[:2]
    if value not in valid:
        hint = ""
        if value == "identity":
            hint = (
                "; 'identity' (Le et al. 2015's IRNN) is for the ungated cells rnn and clockwork, "
                "where h_{t-1} enters one (H, H) matrix with no gate"
            )
        choices = ", ".join(repr(c) for c in valid)
        raise LstmkitValueError(f"recurrent_init must be one of {choices}, got {value!r}{hint}")


def orthogonal_(
    weight: Tensor | None, *, rows: int | None = None, columns: slice = slice(None)
) -> None:
    """Sets each block of ``rows`` rows (all rows by default) of ``weight[:, columns]`` (each
    gate's recurrent block, in torch.nn's row layout) to a random orthogonal matrix of its own,
    with :func:`torch.nn.init.orthogonal_` (Saxe, McClelland & Ganguli 2014): a square block has
    ``Wᵀ W = W Wᵀ = I``, a tall one orthonormal columns, a wide one orthonormal rows. The
    matrices are drawn in float64 and then cast, so that a half-precision cell gets one too.
    A ``weight`` of None (an absent parameter) is left alone.

    Why each gate's block on its own, where Keras's ``recurrent_initializer="orthogonal"``
    draws one orthogonal ``(H, G·H)`` kernel for all gates: a gate's pre-activation reads
    ``h_{t-1}`` through its own block, and an orthogonal block passes it on with its norm kept
    (every singular value 1). One orthogonal matrix across G blocks splits that norm between
    them: each block's singular values then spread between 0 and 1, with root mean square
    ``1/√G``, and no block is orthogonal; some directions of h_{t-1} barely reach a gate.
    """
    if weight is None:
        return
    rows = rows or weight.shape[0]
    with torch.no_grad():
        for k in range(weight.shape[0] // rows):
            block = weight[k * rows : (k + 1) * rows, columns]
            q = torch.empty(block.shape, dtype=torch.float64, device=weight.device)
            block.copy_(torch.nn.init.orthogonal_(q))


def identity_(weight_ih: Tensor, weight_hh: Tensor, biases: tuple[Tensor | None, ...]) -> None:
    """Le, Jaitly & Hinton 2015's IRNN initialisation ("A Simple Way to Initialize Recurrent
    Networks of Rectified Linear Units", arXiv 1504.00941): the recurrent matrix
    the identity, the biases 0, and the non-recurrent (input) weights drawn from a Gaussian of
    mean 0 and standard deviation 0.001, as Keras's reproduction of their sequential-MNIST
    experiment (examples/mnist_irnn.py) also draws them."""
    with torch.no_grad():
        torch.nn.init.eye_(weight_hh)
        weight_ih.normal_(0.0, IRNN_INPUT_STD)
        for b in biases:
            if b is not None:
                b.zero_()


IRNN_INPUT_STD = 0.001
"""The standard deviation of the IRNN's input weights (Le, Jaitly & Hinton 2015)."""
