"""The deep output layer of Xu et al. 2015 ("Show, Attend and Tell", eq. 7) and the masked
caption cross-entropy, in float64 NumPy."""

from __future__ import annotations

import numpy as np

from tests.references import Array


def deep_output(
    E_prev: Array, h: Array, z: Array, L_h: Array, L_z: Array, L_o: Array, b_o: Array
) -> Array:
    """Eq. 7's logits ``L_o (E y_{t-1} + L_h h_t + L_z ẑ_t) + b_o``, ``(B, T, K)``."""
    return (E_prev + h @ L_h.T + z @ L_z.T) @ L_o.T + b_o


def caption_nll(logits: Array, targets: Array, lengths: Array) -> float:
    """−log p of each real target token (the first ``lengths[b]`` of caption b) under the
    softmax of ``logits``, averaged over all real tokens of the batch."""
    total, count = 0.0, 0
    for b, n in enumerate(lengths):
        for t in range(int(n)):
            row = logits[b, t]
            log_z = row.max() + np.log(np.exp(row - row.max()).sum())
            total += log_z - row[targets[b, t]]
            count += 1
    return total / count
