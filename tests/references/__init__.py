"""Float64 NumPy references written from the papers' equations, independent of lstmkit's code.

One module per cell family (lstm, gru, rnn, mut, clockwork, depth_gated, grid, attention); this
package module holds the numerics they share. Weights are read from a module's state dict by the
documented layout (row blocks of H in the order i, f, g, o with absent gates left out; GRU r, z,
n) and converted by np64, or taken as NumPy arrays; numpy_decoder and np_image_grid are handed
the module itself and read its state dict and sizes. Nothing here imports lstmkit.
"""

from __future__ import annotations

import numpy as np
import torch

Array = np.ndarray


def sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


def np64(t: torch.Tensor) -> Array:
    return t.detach().to("cpu", torch.float64).numpy()


def layer_norm(v: Array, gain: Array, bias: Array, eps: float = 1e-5) -> Array:
    """Ba, Kiros & Hinton 2016: (v - mean) / sqrt(var + eps) * gain + bias, over the last axis."""
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * gain + bias
