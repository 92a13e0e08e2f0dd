"""The Clockwork RNN of Koutník et al. 2014: eq. (1), each module updating on its own period."""

from __future__ import annotations

import numpy as np
import torch

from tests.references import np64


def clockwork_sequence(
    xs: np.ndarray,
    h0: np.ndarray,
    t0: np.ndarray,
    state: dict[str, torch.Tensor],
    *,
    periods: tuple[int, ...],
    sizes: tuple[int, ...],
    suffix: str = "",
    relu: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The docstring's equations, module by module and sequence by sequence, in float64.

    ``xs (T, B, I)``, ``h0 (B, H)``, ``t0 (B,)`` integer step counts. Module i reads only the
    columns of modules j >= i, so masked entries of W_H are never touched. Returns every h_t
    ``(T, B, H)``, the last h and the step count after the last step."""
    W_I, W_H = np64(state["weight_ih" + suffix]), np64(state["weight_hh" + suffix])
    bias = np64(state["bias" + suffix]) if "bias" + suffix in state else np.zeros(len(W_H))
    f = (lambda a: np.maximum(a, 0.0)) if relu else np.tanh
    starts = np.cumsum([0, *sizes])
    h, t = h0.copy(), t0.copy()
    hs = []
    for x in xs:
        new = h.copy()  # inactive modules keep their values
        for i, T_i in enumerate(periods):
            rows = slice(starts[i], starts[i + 1])
            slower = slice(starts[i], starts[-1])  # modules j >= i feed module i
            for b in range(len(h)):
                if t[b] % T_i == 0:
                    a = W_I[rows] @ x[b] + W_H[rows, slower] @ h[b, slower] + bias[rows]
                    new[b, rows] = f(a)
        h, t = new, t + 1
        hs.append(h)
    return np.stack(hs), h, t
