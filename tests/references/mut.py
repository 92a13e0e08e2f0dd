"""MUT1, MUT2 and MUT3 of Jozefowicz, Zaremba & Sutskever 2015, as the paper lists them."""

from __future__ import annotations

import numpy as np

from tests.references import Array, np64, sigmoid


def mut_sequence(xs: Array, h: Array, state: dict, *, kind: int, suffix: str = ""):
    """MUT1, MUT2, MUT3 of Jozefowicz et al. 2015 as the paper lists them (h_t → h_{t+1}).
    Returns (hs, h_T)."""

    def w(name: str) -> Array:
        return np64(state[name + suffix])

    hs = []
    for x in xs:
        if kind == 1:
            z = sigmoid(x @ w("weight_xz").T + w("bias_z"))
            r = sigmoid(x @ w("weight_xr").T + h @ w("weight_hr").T + w("bias_r"))
            h_new = np.tanh((r * h) @ w("weight_hh").T + np.tanh(x) + w("bias_h"))
        elif kind == 2:
            z = sigmoid(x @ w("weight_xz").T + h @ w("weight_hz").T + w("bias_z"))
            r = sigmoid(x + h @ w("weight_hr").T + w("bias_r"))
            h_new = np.tanh((r * h) @ w("weight_hh").T + x @ w("weight_xh").T + w("bias_h"))
        else:
            z = sigmoid(x @ w("weight_xz").T + np.tanh(h) @ w("weight_hz").T + w("bias_z"))
            r = sigmoid(x @ w("weight_xr").T + h @ w("weight_hr").T + w("bias_r"))
            h_new = np.tanh((r * h) @ w("weight_hh").T + x @ w("weight_xh").T + w("bias_h"))
        h = h_new * z + h * (1.0 - z)
        hs.append(h)
    return np.stack(hs), h
