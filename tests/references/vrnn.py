"""The Variational RNN of Chung et al. 2015 (eqs. 5-7, 9, 10) and STORN of Bayer & Osendorfer
2014, with Bernoulli outputs: their negative bound per step, one sequence at a time in NumPy.

Each sequence is cut to its own length before anything is computed, so padding cannot enter;
the LSTM (gates i, f, g, o) and GRU (gates r, z, n, reset after the product, as torch.nn) steps
are written out here from their equations. Weights are read from the module's state dict."""

from __future__ import annotations

import numpy as np
import torch

from tests.references import Array, np64, sigmoid


def softplus(v: Array) -> Array:
    return np.logaddexp(0.0, v)


def relu(v: Array) -> Array:
    return np.maximum(v, 0.0)


def linear(p: dict, name: str, v: Array) -> Array:
    return v @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def rnn_step(p: dict, prefix: str, suffix: str, x: Array, state: tuple, kind: str) -> tuple:
    """One LSTM or GRU step; state is (h, c) for the LSTM and (h,) for the GRU."""
    W_ih, W_hh = p[f"{prefix}weight_ih{suffix}"], p[f"{prefix}weight_hh{suffix}"]
    b_ih, b_hh = p[f"{prefix}bias_ih{suffix}"], p[f"{prefix}bias_hh{suffix}"]
    h = state[0]
    if kind == "lstm":
        i, f, g, o = np.split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=-1)
        c = sigmoid(f) * state[1] + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    xr, xz, xn = np.split(x @ W_ih.T + b_ih, 3, axis=-1)
    hr, hz, hn = np.split(h @ W_hh.T + b_hh, 3, axis=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return ((1.0 - z) * n + z * h,)


def zero_state(H: int, kind: str) -> tuple:
    return (np.zeros(H), np.zeros(H)) if kind == "lstm" else (np.zeros(H),)


def gaussian(p: dict, name: str, u: Array, hidden: bool) -> tuple[Array, Array]:
    if hidden:
        u = relu(linear(p, f"{name}.hidden", u))
    return linear(p, f"{name}.mean", u), softplus(linear(p, f"{name}.std", u))


def kl_diag(mu_q: Array, s_q: Array, mu_p: Array, s_p: Array) -> float:
    """KL(N(mu_q, s_q^2) || N(mu_p, s_p^2)) summed over dimensions, the textbook formula."""
    return float(np.sum(np.log(s_p / s_q) + (s_q**2 + (mu_q - mu_p) ** 2) / (2 * s_p**2) - 0.5))


def bernoulli_log_p(logits: Array, x: Array) -> float:
    p = sigmoid(logits)
    return float(np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)))


def vrnn_sequence(p: dict, x: Array, eps: Array, kind: str) -> tuple[list, list]:
    """One sequence x (T, K) with noise eps (T, Z): −log p(x_t|·) and KL_t of every step."""
    H = p["prior.hidden.weight"].shape[1]
    state = zero_state(H, kind)
    recs, kls = [], []
    for t in range(len(x)):
        h = state[0]
        mu_0, s_0 = gaussian(p, "prior", h, True)  # eq. 5
        phi_x = relu(linear(p, "phi_x.0", x[t]))
        mu_z, s_z = gaussian(p, "encoder", np.concatenate([phi_x, h]), True)  # eq. 9
        z = mu_z + s_z * eps[t]
        phi_z = relu(linear(p, "phi_z.0", z))
        hidden = relu(linear(p, "decoder.0.0", np.concatenate([phi_z, h])))
        logits = linear(p, "decoder.1", hidden)  # eq. 6, Bernoulli
        state = rnn_step(p, "cell.", "", np.concatenate([phi_x, phi_z]), state, kind)  # eq. 7
        recs.append(-bernoulli_log_p(logits, x[t]))
        kls.append(kl_diag(mu_z, s_z, mu_0, s_0))
    return recs, kls


def storn_sequence(p: dict, x: Array, eps: Array, kind: str) -> tuple[list, list]:
    """STORN on one sequence: a (bi)directional recognition RNN, then the generative RNN."""
    T = len(x)
    R = p["recognition.weight_hh_l0"].shape[1]
    state = zero_state(R, kind)
    r = []
    for t in range(T):
        state = rnn_step(p, "recognition.", "_l0", x[t], state, kind)
        r.append(state[0])
    if "recognition.weight_ih_l0_reverse" in p:
        state, back = zero_state(R, kind), [None] * T
        for t in reversed(range(T)):
            state = rnn_step(p, "recognition.", "_l0_reverse", x[t], state, kind)
            back[t] = state[0]
        r = [np.concatenate([f, b]) for f, b in zip(r, back, strict=True)]
    H = p["readout.weight"].shape[1]
    state, x_prev = zero_state(H, kind), np.zeros(x.shape[1])
    recs, kls = [], []
    for t in range(T):
        mu, s = gaussian(p, "posterior", r[t], False)
        z = mu + s * eps[t]
        state = rnn_step(p, "cell.", "", np.concatenate([x_prev, z]), state, kind)
        recs.append(-bernoulli_log_p(linear(p, "readout", state[0]), x[t]))
        kls.append(kl_diag(mu, s, np.zeros_like(mu), np.ones_like(s)))
        x_prev = x[t]
    return recs, kls


def negative_bound(
    model: torch.nn.Module, x: Array, eps: Array, lengths: list[int], kind: str, which: str
) -> tuple[float, float, float]:
    """(loss, reconstruction, kl) per real step of a padded batch: every sequence cut to its
    length, its steps' terms summed, divided by the number of real steps."""
    p = {k: np64(v) for k, v in model.state_dict().items()}
    run = vrnn_sequence if which == "vrnn" else storn_sequence
    recs, kls = [], []
    for b, n in enumerate(lengths):
        rec, kl = run(p, x[b, :n], eps[b, :n], kind)
        recs += rec
        kls += kl
    rec_mean, kl_mean = sum(recs) / len(recs), sum(kls) / len(kls)
    return rec_mean + kl_mean, rec_mean, kl_mean
