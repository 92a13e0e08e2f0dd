"""The vanilla (Elman) RNN, h_t = tanh(W·[h_{t-1}, x_t] + b), or its ReLU form."""

from __future__ import annotations

import numpy as np

from tests.references import Array, np64


def rnn_sequence(
    xs: Array,
    h: Array,
    state: dict,
    *,
    nonlinearity: str = "tanh",
    bias: bool = True,
    suffix: str = "",
):
    """h_t = tanh(W·[h_{t-1}, x_t] + b), with W = [W_hh, W_ih]. Returns (hs, h_T)."""
    W = np.concatenate(
        [np64(state["weight_hh" + suffix]), np64(state["weight_ih" + suffix])], axis=1
    )
    H = W.shape[0]
    b = np64(state["bias_ih" + suffix]) + np64(state["bias_hh" + suffix]) if bias else np.zeros(H)
    act = np.tanh if nonlinearity == "tanh" else (lambda v: np.maximum(v, 0.0))
    hs = []
    for x in xs:
        h = act(np.concatenate([h, x], axis=-1) @ W.T + b)
        hs.append(h)
    return np.stack(hs), h
