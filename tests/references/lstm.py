"""The LSTM equations of "Understanding LSTM Networks" and the variants of Greff et al. 2015."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tests.references import Array, layer_norm, np64, sigmoid


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


def lstm_by_hand(xs: np.ndarray, state: dict, suffix: str) -> dict[str, np.ndarray]:
    """The post's six quantities at every step, from the weights (blocks i, f, g, o)."""
    W_ih, W_hh = np64(state["weight_ih" + suffix]), np64(state["weight_hh" + suffix])
    b = np64(state["bias_ih" + suffix]) + np64(state["bias_hh" + suffix])
    H = W_hh.shape[1]
    h, C = np.zeros((xs.shape[1], H)), np.zeros((xs.shape[1], H))
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("i_t", "f_t", "C_tilde", "C_t", "o_t")}
    out["h_t"] = []
    for x in xs:
        a = x @ W_ih.T + h @ W_hh.T + b
        i, f, g, o = np.split(a, 4, axis=1)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        C = f * C + i * g
        h = o * np.tanh(C)
        for name, value in zip(out, (i, f, g, C, o, h), strict=True):
            out[name].append(value)
    return {k: np.stack(v) for k, v in out.items()}
