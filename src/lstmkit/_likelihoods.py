"""The log-densities the generative models and the binary-frame tasks share: the Bernoulli
negative log-likelihood of binary data under logits, and the KL divergence between diagonal
Gaussians in closed form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x) of binary ``x`` under independent Bernoullis with P(x_k = 1) = σ(logit_k),
    summed over the last dimension (the keys of a frame, the pixels of a row): ``(..., K)`` →
    ``(...)``. Values of ``x`` in [0, 1] give the cross-entropy, a likelihood only for 0 and 1."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_kl(mu_q: Tensor, sigma_q: Tensor, mu_p: Tensor, sigma_p: Tensor) -> Tensor:
    """KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²)) in closed form, summed over the last dimension::

        Σ_j  log(σ_p,j / σ_q,j) + (σ_q,j² + (μ_q,j − μ_p,j)²) / (2 σ_p,j²) − 1/2

    Any shapes that broadcast to ``(..., Z)``; returns ``(...)``."""
    ratio = (sigma_q / sigma_p) ** 2
    gap = ((mu_q - mu_p) / sigma_p) ** 2
    return (0.5 * (ratio + gap - 1.0) - torch.log(sigma_q / sigma_p)).sum(-1)
