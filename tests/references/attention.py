"""The soft-attention LSTM decoder of Xu et al. 2015 ("Show, Attend and Tell"): eqs. 1-6 and 13."""

from __future__ import annotations

import numpy as np
import torch

from tests.references import np64, sigmoid


def numpy_decoder(
    dec: torch.nn.Module, y: np.ndarray, a: np.ndarray, mask: np.ndarray | None = None
):
    """The equations of the docstring (eqs. 1-6 and 13 of Xu et al.), step by step in NumPy."""
    p = {k: np64(v) for k, v in dec.state_dict().items()}
    m = np.ones(a.shape[:2], dtype=bool) if mask is None else mask
    mean = (a * m[..., None]).sum(1) / m.sum(1, keepdims=True)
    h = np.tanh(mean @ p["init_h.weight"].T + p["init_h.bias"])
    c = np.tanh(mean @ p["init_c.weight"].T + p["init_c.bias"])
    W_ih, W_hh = p["cell.weight_ih"], p["cell.weight_hh"]
    b = p["cell.bias_ih"] + p["cell.bias_hh"]
    hs, zs, alphas = [], [], []
    for t in range(y.shape[1]):
        proj = a @ p["attend_annotation.weight"].T + p["attend_annotation.bias"]  # W_a a_i + b
        e = (
            np.tanh(proj + (h @ p["attend_hidden.weight"].T)[:, None, :])
            @ p["attend_score.weight"][0]
        )
        e = np.where(m, e, -np.inf)
        alpha = np.exp(e - e.max(1, keepdims=True))
        alpha = alpha / alpha.sum(1, keepdims=True)
        beta = sigmoid(h @ p["beta.weight"].T + p["beta.bias"])  # (B, 1)
        z = beta * (alpha[..., None] * a).sum(1)
        pre = np.concatenate([y[:, t], z], -1) @ W_ih.T + h @ W_hh.T + b
        i, f, g, o = np.split(pre, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        hs.append(h)
        zs.append(z)
        alphas.append(alpha)
    return np.stack(hs, 1), np.stack(zs, 1), np.stack(alphas, 1), h, c
