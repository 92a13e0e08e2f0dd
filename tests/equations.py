"""Float64 NumPy references written from the papers' equations, independent of lstmkit's code.

Weights are read from a module's state dict by the documented layout (row blocks of H in the
order i, f, g, o with absent gates left out; GRU r, z, n); nothing here calls lstmkit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Array = np.ndarray


def sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


def np64(t: torch.Tensor) -> Array:
    return t.detach().to("cpu", torch.float64).numpy()


@dataclass
class LSTMFlags:
    peepholes: str = ""
    coupled: bool = False
    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    input_activation: bool = True
    output_activation: bool = True
    full_gate_recurrence: bool = False
    proj: bool = False
    bias: bool = True
    layer_norm: bool = False

    @property
    def computed_gates(self) -> str:
        # the sigmoid gates that have weights of their own
        return (
            ("i" if self.input_gate else "")
            + ("f" if self.forget_gate and not self.coupled else "")
            + ("o" if self.output_gate else "")
        )


def lstm_weights(state: dict[str, torch.Tensor], flags: LSTMFlags, suffix: str = "") -> dict:
    blocks = [g for g in "ifgo" if g == "g" or g in flags.computed_gates]
    W_ih, W_hh = np64(state["weight_ih" + suffix]), np64(state["weight_hh" + suffix])
    H = W_ih.shape[0] // len(blocks)
    b = np.zeros(len(blocks) * H)
    if flags.bias:
        b = np64(state["bias_ih" + suffix]) + np64(state["bias_hh" + suffix])
    w: dict = {"H": H, "blocks": blocks, "Wx_all": W_ih, "Wh_all": W_hh, "b_all": b}
    if flags.layer_norm:
        for name in ("ln_ih", "ln_hh", "ln_c"):
            w[name] = (np64(state[f"{name}_weight" + suffix]), np64(state[f"{name}_bias" + suffix]))
    for j, g in enumerate(blocks):
        rows = slice(j * H, (j + 1) * H)
        w["Wx_" + g], w["Wh_" + g], w["b_" + g] = W_ih[rows], W_hh[rows], b[rows]
    for g in flags.peepholes:
        w["p_" + g] = np64(state[f"weight_c{g}" + suffix])
    if flags.full_gate_recurrence:
        w["R"] = np64(state["weight_gg" + suffix])
    if flags.proj:
        w["W_hr"] = np64(state["weight_hr" + suffix])
    return w


def layer_norm(v: Array, gain: Array, bias: Array, eps: float = 1e-5) -> Array:
    """Ba, Kiros & Hinton 2016: (v - mean) / sqrt(var + eps) * gain + bias, over the last axis."""
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * gain + bias


def lstm_sequence(
    xs: Array,
    h: Array,
    c: Array,
    w: dict,
    flags: LSTMFlags,
    a: Array | None = None,
    h_mask: Array | None = None,
):
    """Runs the LSTM equations over xs (T, B, I). Returns (hs (T, B, ·), h_T, c_T, a_T).
    ``h_mask`` multiplies h_{t-1} where it enters the recurrent product (recurrent dropout)."""
    H = w["H"]
    gates = flags.computed_gates
    if a is None:
        a = np.zeros((h.shape[0], len(gates) * H))
    hs = []
    for x in xs:
        h_in = h if h_mask is None else h * h_mask
        wx, wh = x @ w["Wx_all"].T, h_in @ w["Wh_all"].T
        if flags.layer_norm:
            wx, wh = layer_norm(wx, *w["ln_ih"]), layer_norm(wh, *w["ln_hh"])
        pre_all = wx + wh + w["b_all"]
        pre = {g: pre_all[:, j * H : (j + 1) * H] for j, g in enumerate(w["blocks"])}
        if flags.full_gate_recurrence:
            # each gate receives R_gi·i_{t-1} + R_gf·f_{t-1} + R_go·o_{t-1}
            for j, g in enumerate(gates):
                pre[g] = pre[g] + a @ w["R"][j * H : (j + 1) * H].T
        i = sigmoid(pre["i"] + w.get("p_i", 0.0) * c) if flags.input_gate else 1.0
        if flags.coupled:
            f = 1.0 - i
        elif flags.forget_gate:
            f = sigmoid(pre["f"] + w.get("p_f", 0.0) * c)
        else:
            f = 1.0
        C_tilde = np.tanh(pre["g"]) if flags.input_activation else pre["g"]
        c = f * c + i * C_tilde
        o = sigmoid(pre["o"] + w.get("p_o", 0.0) * c) if flags.output_gate else 1.0
        c_out = layer_norm(c, *w["ln_c"]) if flags.layer_norm else c
        m = o * np.tanh(c_out) if flags.output_activation else o * c_out
        h = m @ w["W_hr"].T if flags.proj else m
        acts = {"i": i, "f": f, "o": o}
        if gates:
            a = np.concatenate([acts[g] for g in gates], axis=-1)
        hs.append(h)
    return np.stack(hs), h, c, a


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


layer_norm_ = layer_norm


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
