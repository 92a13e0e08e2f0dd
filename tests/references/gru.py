"""The GRU of Cho et al. 2014 (reset before the product) and torch.nn's (after), with layer norm."""

from __future__ import annotations

import numpy as np

from tests.references import Array, np64, sigmoid
from tests.references import layer_norm as layer_norm_


def gru_sequence(
    xs: Array,
    h: Array,
    state: dict,
    *,
    reset_after: bool,
    bias: bool = True,
    suffix: str = "",
    layer_norm: bool = False,
    h_mask: Array | None = None,
):
    """Cho et al. 2014 (reset_after=False) or torch.nn's form (True). Returns (hs, h_T).
    With layer_norm, W_ih·x and the recurrent products are normalised (the latter over all 3H
    rows after the reset, over the r, z rows and the n rows separately before it). ``h_mask``
    multiplies h_{t-1} where it enters a product."""
    W_ih, W_hh = np64(state["weight_ih" + suffix]), np64(state["weight_hh" + suffix])
    H = W_hh.shape[1]
    zero = np.zeros(3 * H)
    b_ih = np64(state["bias_ih" + suffix]) if bias else zero
    b_hh = np64(state["bias_hh" + suffix]) if bias else zero
    if layer_norm:
        g_ih, be_ih = np64(state["ln_ih_weight" + suffix]), np64(state["ln_ih_bias" + suffix])
        g_hh, be_hh = np64(state["ln_hh_weight" + suffix]), np64(state["ln_hh_bias" + suffix])
    rz, nn_ = slice(0, 2 * H), slice(2 * H, 3 * H)
    hs = []
    for x in xs:
        h_in = h if h_mask is None else h * h_mask
        wx = x @ W_ih.T
        if layer_norm:
            wx = layer_norm_(wx, g_ih, be_ih)
        gx = wx + b_ih
        if reset_after:
            wh = h_in @ W_hh.T
            if layer_norm:
                wh = layer_norm_(wh, g_hh, be_hh)
            gh = wh + b_hh
            r = sigmoid(gx[:, :H] + gh[:, :H])
            z = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
            n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        else:
            wh = h_in @ W_hh[rz].T
            if layer_norm:
                wh = layer_norm_(wh, g_hh[rz], be_hh[rz])
            gh = wh + b_hh[rz]
            r = sigmoid(gx[:, :H] + gh[:, :H])
            z = sigmoid(gx[:, H : 2 * H] + gh[:, H:])
            wn = (r * h_in) @ W_hh[nn_].T
            if layer_norm:
                wn = layer_norm_(wn, g_hh[nn_], be_hh[nn_])
            n = np.tanh(gx[:, 2 * H :] + wn + b_hh[nn_])
        # the post: h_t = (1 - z'_t) h_{t-1} + z'_t h~_t with z' = 1 - z
        z_post = 1.0 - z
        h = (1.0 - z_post) * h + z_post * n
        hs.append(h)
    return np.stack(hs), h
