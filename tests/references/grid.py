"""Grid LSTM (Kalchbrenner et al. 2015): the transform (§2), time × depth and 2-D grids (§3)."""

from __future__ import annotations

import numpy as np
import torch

from tests.references import np64, sigmoid


def np_lstm(Hv: np.ndarray, m: np.ndarray, W: np.ndarray, b: np.ndarray, inside: bool):
    """(h', m') = LSTM(H, m, W): the paper's transform, gates stacked u, f, c, o."""
    n = m.shape[-1]
    pre = Hv @ W.T + b
    g_u, g_f = sigmoid(pre[..., :n]), sigmoid(pre[..., n : 2 * n])
    g_c, g_o = np.tanh(pre[..., 2 * n : 3 * n]), sigmoid(pre[..., 3 * n :])
    m_new = g_f * m + g_u * g_c
    h_new = np.tanh(g_o * m_new) if inside else g_o * np.tanh(m_new)
    return h_new, m_new


def np_grid(
    xs: np.ndarray,
    h_time: np.ndarray,
    m_time: np.ndarray,
    state: dict[str, torch.Tensor],
    *,
    depth: int,
    suffix: str = "",
    tied: bool = False,
    priority: str | None = "depth",
    depth_transform: str = "lstm",
    output_inside: bool = True,
    project_memory: bool = False,
):
    """Steps of the time × depth grid of the GridLSTMCell docstring over ``xs (T, B, I)``."""
    p = {k: np64(v) for k, v in state.items()}
    n = h_time.shape[-1] // depth
    hts = [h_time[:, k * n : (k + 1) * n] for k in range(depth)]
    mts = [m_time[:, k * n : (k + 1) * n] for k in range(depth)]
    alpha = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}
    outputs = []
    for x in xs:
        proj = x @ p["weight_in" + suffix].T + p["bias_in" + suffix]
        h_d = proj[:, :n]
        m_d = proj[:, n:] if project_memory else np.zeros_like(h_d)
        for k in range(depth):
            s = ("" if tied else f"_b{k}") + suffix
            W_t, b_t = p["weight_time" + s], p["bias_time" + s]
            W_d, b_d = p["weight_depth" + s], p["bias_depth" + s]

            def depth_step(Hv, m_d, W_d=W_d, b_d=b_d):
                if depth_transform == "lstm":
                    return np_lstm(Hv, m_d, W_d, b_d, output_inside)
                return alpha[depth_transform](Hv @ W_d.T + b_d), m_d

            Hv = np.concatenate([hts[k], h_d], -1)
            if priority == "time":
                h_d, m_d = depth_step(Hv, m_d)
                hts[k], mts[k] = np_lstm(
                    np.concatenate([hts[k], h_d], -1), mts[k], W_t, b_t, output_inside
                )
            else:
                h_t, mts[k] = np_lstm(Hv, mts[k], W_t, b_t, output_inside)
                if priority == "depth":
                    Hv = np.concatenate([h_t, h_d], -1)
                h_d, m_d = depth_step(Hv, m_d)
                hts[k] = h_t
        outputs.append(h_d)
    return np.stack(outputs), np.concatenate(hts, -1), np.concatenate(mts, -1)


def np_image_grid(images: np.ndarray, grid: torch.nn.Module) -> np.ndarray:
    """The image grid of the GridLSTM2d docstring, block by block in a plain double loop."""
    p = {k: np64(v) for k, v in grid.state_dict().items()}
    n, size, inside = grid.hidden_size, grid.patch_size, grid.output_inside
    Bn, ch, height, width = images.shape
    R, C = height // size, width // size
    x = np.zeros((Bn, R, C, ch * size * size))
    for r in range(R):
        for c in range(C):  # the patch in the order (channel, row, column)
            patch = images[:, :, r * size : (r + 1) * size, c * size : (c + 1) * size]
            x[:, r, c] = patch.reshape(Bn, -1)
    for layer in range(grid.num_layers):
        W_1, b_1 = p[f"row.{layer}.weight"], p[f"row.{layer}.bias"]
        W_2, b_2 = p[f"col.{layer}.weight"], p[f"col.{layer}.bias"]
        h1, m1, h2, m2 = (np.zeros((Bn, R, C, n)) for _ in range(4))
        zero = np.zeros((Bn, n))
        for r in range(R):
            for c in range(C):
                left_h, left_m = (h1[:, r, c - 1], m1[:, r, c - 1]) if c > 0 else (zero, zero)
                up_h, up_m = (h2[:, r - 1, c], m2[:, r - 1, c]) if r > 0 else (zero, zero)
                Hv = np.concatenate([left_h, up_h, x[:, r, c]], -1)
                h1[:, r, c], m1[:, r, c] = np_lstm(Hv, left_m, W_1, b_1, inside)
                h2[:, r, c], m2[:, r, c] = np_lstm(Hv, up_m, W_2, b_2, inside)
        x = np.concatenate([h1, h2], -1)
    return x
