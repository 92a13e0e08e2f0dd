"""The depth-gated LSTM of Yao et al. 2015 (arXiv 1508.03790): eqs. (6)-(7) on top of the LSTM."""

from __future__ import annotations

import numpy as np

from tests.references import sigmoid


def numpy_stack(
    xs: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    p: dict[str, np.ndarray],
    *,
    peepholes: bool = False,
    suffix: str = "",
    zero_between: bool = False,
    h_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eqs. (6)-(7) of Yao et al. on top of the LSTM, step by step and layer by layer.

    xs ``(T, B, I)``; h0, c0 ``(L, B, H)``; ``p`` the parameters by name. ``zero_between``
    replaces each layer's input from the layer below by zeros (dropout with p = 1);
    ``h_mask`` ``(L, B, H)`` multiplies h_{t-1} where it enters W_hh. Returns the top layer's
    h_t for every step ``(T, B, H)`` and the final h, c ``(L, B, H)``.
    """
    depth = h0.shape[0]
    h, c = list(h0), list(c0)
    tops = []
    for x in xs:
        x_k, c_below = x, None
        for k in range(depth):
            W_ih, W_hh = p[f"weight_ih_l{k}{suffix}"], p[f"weight_hh_l{k}{suffix}"]
            b = p[f"bias_ih_l{k}{suffix}"] + p[f"bias_hh_l{k}{suffix}"]
            h_rec = h[k] if h_mask is None else h[k] * h_mask[k]
            a_i, a_f, a_g, a_o = np.split(x_k @ W_ih.T + h_rec @ W_hh.T + b, 4, axis=-1)
            if peepholes:
                a_i = a_i + p[f"weight_ci_l{k}{suffix}"] * c[k]
                a_f = a_f + p[f"weight_cf_l{k}{suffix}"] * c[k]
            c_new = sigmoid(a_f) * c[k] + sigmoid(a_i) * np.tanh(a_g)
            if k > 0:
                d = sigmoid(
                    p[f"bias_d_l{k}{suffix}"]
                    + x_k @ p[f"weight_xd_l{k}{suffix}"].T
                    + p[f"weight_cd_l{k}{suffix}"] * c[k]
                    + p[f"weight_ld_l{k}{suffix}"] * c_below
                )  # (6)
                c_new = d * c_below + c_new  # (7)
            if peepholes:
                a_o = a_o + p[f"weight_co_l{k}{suffix}"] * c_new
            h[k], c[k] = sigmoid(a_o) * np.tanh(c_new), c_new
            x_k = np.zeros_like(h[k]) if zero_between else h[k]
            c_below = c_new
        tops.append(h[-1])
    return np.stack(tops), np.stack(h), np.stack(c)
