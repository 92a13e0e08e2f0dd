"""DRAW (Gregor et al. 2015, arXiv 1502.04623): eqs. 1-12 and 17-29 in float64 NumPy, one image
at a time, loops where the paper writes sums. The weights are a module's state dict read by
name (encoder/decoder LSTM rows i, f, g, o; q_mean, q_log_sigma, write_patch, read_window,
write_window); the sizes are passed in."""

from __future__ import annotations

import numpy as np
import torch

from tests.references import np64, sigmoid


def weights(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: np64(v) for k, v in module.state_dict().items()}


def lstm_step(p: dict[str, np.ndarray], name: str, x: np.ndarray, h: np.ndarray, c: np.ndarray):
    pre = (
        p[f"{name}.weight_ih"] @ x
        + p[f"{name}.bias_ih"]
        + p[f"{name}.weight_hh"] @ h
        + p[f"{name}.bias_hh"]
    )
    i, f, g, o = np.split(pre, 4)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def linear(p: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return p[f"{name}.weight"] @ x + p[f"{name}.bias"]


def window(raw: np.ndarray, A: int, B: int, N: int) -> dict[str, float]:
    """Eqs. 21-24 (A the width, B the height)."""
    gx_t, gy_t, log_s2, log_d, log_g = raw
    return {
        "g_X": (A + 1) / 2 * (gx_t + 1),
        "g_Y": (B + 1) / 2 * (gy_t + 1),
        "sigma2": np.exp(log_s2),
        "delta": (max(A, B) - 1) / max(N - 1, 1) * np.exp(log_d),
        "gamma": np.exp(log_g),
    }


def bank(g: float, delta: float, sigma2: float, N: int, size: int) -> np.ndarray:
    """Eqs. 19-20 and 25-26, pixel coordinates 1, ..., size."""
    F = np.zeros((N, size))
    for i in range(1, N + 1):
        mu = g + (i - N / 2 - 0.5) * delta
        for a in range(1, size + 1):
            F[i - 1, a - 1] = np.exp(-((a - mu) ** 2) / (2 * sigma2))
        F[i - 1] /= max(F[i - 1].sum(), 1e-8)
    return F


def filters(w: dict[str, float], A: int, B: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        bank(w["g_X"], w["delta"], w["sigma2"], N, A),
        bank(w["g_Y"], w["delta"], w["sigma2"], N, B),
    )


def as_vector(w: dict[str, float]) -> np.ndarray:
    return np.array([w["g_X"], w["g_Y"], w["sigma2"], w["delta"], w["gamma"]])


def write(p, h_dec, *, attention: bool, A: int, B: int, N: int):
    """Eq. 18, or eqs. 28-29."""
    w_t = linear(p, "write_patch", h_dec)
    if not attention:
        return w_t.reshape(B, A), None
    w = window(linear(p, "write_window", h_dec), A, B, N)
    F_X, F_Y = filters(w, A, B, N)
    return F_Y.T @ w_t.reshape(N, N) @ F_X / w["gamma"], as_vector(w)


def read(p, x, x_hat, h_dec, *, attention: bool, A: int, B: int, N: int):
    """Eq. 17, or eq. 27."""
    if not attention:
        return np.concatenate([x.ravel(), x_hat.ravel()]), None
    w = window(linear(p, "read_window", h_dec), A, B, N)
    F_X, F_Y = filters(w, A, B, N)
    r = np.concatenate([(F_Y @ x @ F_X.T).ravel(), (F_Y @ x_hat @ F_X.T).ravel()])
    return w["gamma"] * r, as_vector(w)


def numpy_draw(
    module, x, eps, *, T: int, H: int, Z: int, attention: bool, read_n: int, write_n: int
):
    """The bound of each image of ``x`` ``(n, B, A)`` given the noise ``eps`` ``(n, T, Z)``:
    (loss, L^x, L^z, canvases σ(c_t) (n, T, B, A), read windows, write windows)."""
    p = weights(module)
    n, B, A = x.shape
    out: dict[str, list] = {k: [] for k in ("loss", "rec", "kl", "canvas", "read", "write")}
    for k in range(n):
        h_enc, c_enc, h_dec, c_dec = (np.zeros(H) for _ in range(4))
        c = np.zeros((B, A))
        kl_sum, canvases, reads, writes = 0.0, [], [], []
        for t in range(T):
            x_hat = x[k] - sigmoid(c)  # eq. 3
            r, rw = read(p, x[k], x_hat, h_dec, attention=attention, A=A, B=B, N=read_n)
            h_enc, c_enc = lstm_step(p, "encoder", np.concatenate([r, h_dec]), h_enc, c_enc)
            mu = linear(p, "q_mean", h_enc)  # eq. 1
            sigma = np.exp(linear(p, "q_log_sigma", h_enc))  # eq. 2
            z = mu + sigma * eps[k, t]
            h_dec, c_dec = lstm_step(p, "decoder", z, h_dec, c_dec)  # eq. 7
            wr, ww = write(p, h_dec, attention=attention, A=A, B=B, N=write_n)
            c = c + wr  # eq. 8
            kl_sum += np.sum(mu**2 + sigma**2 - np.log(sigma**2))
            canvases.append(sigmoid(c))
            reads.append(rw)
            writes.append(ww)
        D = sigmoid(c)
        rec = -np.sum(x[k] * np.log(D) + (1 - x[k]) * np.log(1 - D))  # eq. 9
        kl = 0.5 * kl_sum - T * Z / 2  # eq. 11
        for key, value in zip(out, (rec + kl, rec, kl, canvases, reads, writes), strict=True):
            out[key].append(value)
    return {k: np.array(v) for k, v in out.items()}


def numpy_generate(module, z, *, H: int, A: int, B: int, attention: bool, write_n: int):
    """Eqs. 7-8 from the latents ``z`` ``(n, T, Z)``: the canvases c_t ``(n, T, B, A)``."""
    p = weights(module)
    n, T, _ = z.shape
    result = np.zeros((n, T, B, A))
    for k in range(n):
        h, cell, c = np.zeros(H), np.zeros(H), np.zeros((B, A))
        for t in range(T):
            h, cell = lstm_step(p, "decoder", z[k, t], h, cell)
            c = c + write(p, h, attention=attention, A=A, B=B, N=write_n)[0]
            result[k, t] = c
    return result
