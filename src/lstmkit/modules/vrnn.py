"""Recurrent networks with a latent variable per step, for binary sequences (piano rolls): the
Variational RNN (Chung et al. 2015) and STORN (Bayer & Osendorfer 2014), each trained by its
variational bound with the reparameterisation trick."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._checks import (
    check_choice,
    check_input_tensor,
    check_lengths,
    check_positive_int,
    describe,
)
from lstmkit._errors import LstmkitValueError
from lstmkit._likelihoods import bernoulli_nll, gaussian_kl
from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.layers.recurrent import Recurrent
from lstmkit.layers.torch_like import GRU, LSTM

CELLS = ("lstm", "gru")
"""The recurrences both models can use: lstmkit's LSTMCell or GRUCell (torch.nn's form)."""


class BoundOutput(NamedTuple):
    """The negative variational bound of a batch, in nats per real time step (padding left out).

    ``loss = reconstruction + kl``; each is summed over the keys and the latent dimensions of a
    step and averaged over every real step of the batch (so long pieces weigh more)."""

    loss: Tensor
    """Scalar: the negative bound per step, −(E_q[log p(x_t | ·)] − KL_t) averaged."""
    reconstruction: Tensor
    """Scalar: −log p(x_t | z_≤t, x_<t) per step under the sampled z (one-sample estimate)."""
    kl: Tensor
    """Scalar: the KL of the step's posterior from its prior, per step, in closed form."""
    steps: Tensor
    """``(B, T)``: the negative bound of each step; 0 at padded steps."""


class GaussianHead(nn.Module):
    """A diagonal Gaussian from a vector: one ReLU layer of ``hidden`` units when ``hidden`` is
    given, then ``μ = W_μ u + b_μ`` and ``σ = softplus(W_σ u + b_σ)`` (positive)."""

    def __init__(self, in_size: int, latent_size: int, hidden: int | None) -> None:
        super().__init__()
        self.hidden = None if hidden is None else nn.Linear(in_size, hidden)
        width = in_size if hidden is None else hidden
        self.mean = nn.Linear(width, latent_size)
        self.std = nn.Linear(width, latent_size)

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        if self.hidden is not None:
            u = torch.relu(self.hidden(u))
        return self.mean(u), F.softplus(self.std(u))


def _feature(in_size: int, out_size: int) -> nn.Sequential:
    """φ(v) = ReLU(W v + b): the papers' feature extractors and hidden layers, one layer deep."""
    return nn.Sequential(nn.Linear(in_size, out_size), nn.ReLU())


def _cell(kind: str, input_size: int, hidden_size: int) -> RecurrentCell[Any]:
    check_choice("cell", kind, CELLS)
    if kind == "lstm":
        return LSTMCell(input_size, hidden_size)
    return GRUCell(input_size, hidden_size)


def _check_rolls(model: nn.Module, x: object, keys: int) -> Tensor:
    like = next(model.parameters())
    rolls = check_input_tensor(x, what="x", like=like)
    if rolls.dim() != 3 or rolls.shape[-1] != keys or rolls.shape[1] == 0:
        raise LstmkitValueError(
            f"x must be (B, T, K) with K = {keys} keys and T ≥ 1, got {tuple(rolls.shape)}"
        )
    return rolls


def _noise(
    noise: Tensor | None, shape: tuple[int, int, int], like: Tensor, gen: torch.Generator | None
) -> Tensor:
    """ε ~ N(0, I) of ``shape`` ``(B, T, Z)``, drawn here or given (to reproduce a bound)."""
    if noise is None:
        return torch.randn(shape, generator=gen, dtype=like.dtype, device=like.device)
    eps = check_input_tensor(noise, what="noise", like=like)
    if tuple(eps.shape) != shape:
        raise LstmkitValueError(
            f"noise must be (B, T, Z) = {shape}, like x with the latent size, "
            f"got {tuple(eps.shape)}"
        )
    return eps


def _bound(rec: Tensor, kl: Tensor, lengths: object) -> BoundOutput:
    """Averages the ``(B, T)`` per-step parts over the real steps given by ``lengths``."""
    B, T = rec.shape
    if lengths is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=rec.device)
    else:
        lens = check_lengths(lengths, batch_size=B, steps=T).to(rec.device)
        mask = torch.arange(T, device=rec.device) < lens.unsqueeze(1)  # (B, T)
    zero = rec.new_zeros(())
    rec, kl = torch.where(mask, rec, zero), torch.where(mask, kl, zero)
    count = mask.sum()
    return BoundOutput((rec + kl).sum() / count, rec.sum() / count, kl.sum() / count, rec + kl)


class _StartFromFrequencies(nn.Module):
    """What VRNN and STORN share: Bernoulli outputs over ``keys`` keys from one linear layer."""

    keys: int

    def _output_layer(self) -> nn.Linear:
        raise NotImplementedError(f"{type(self).__name__} must name its output layer")

    def start_from_frequencies(self, frequency: Tensor) -> None:
        """Sets the output bias to the log-odds of ``frequency`` ``(K,)``, each key's training
        frequency in (0, 1): the untrained model then predicts about the memoryless baseline
        rather than a coin flip per key, and training starts there (a choice for speed, not the
        papers')."""
        if not isinstance(frequency, Tensor) or tuple(frequency.shape) != (self.keys,):
            raise LstmkitValueError(
                f"frequency must be a ({self.keys},) Tensor, one per key, got {describe(frequency)}"
            )
        if not bool(((frequency > 0) & (frequency < 1)).all()):
            raise LstmkitValueError("frequency must lie strictly between 0 and 1 for every key")
        bias = self._output_layer().bias
        with torch.no_grad():
            bias.copy_(torch.logit(frequency.double()).to(bias))


class VRNN(_StartFromFrequencies):
    r"""The Variational RNN of Chung et al. 2015 ("A Recurrent Latent Variable Model for
    Sequential Data", arXiv 1506.02216, section 3) with Bernoulli outputs, for piano rolls.

    At every step t = 1..T, from the recurrent state h_{t−1} (h_0 = 0)::

        [μ_0,t, σ_0,t] = φ^prior(h_{t−1})          (5) prior z_t ~ N(μ_0,t, diag σ²_0,t)
        p_t = σ(φ^dec(φ^z(z_t), h_{t−1}))          (6) x_t | z_t ~ Bernoulli(p_t)
        h_t = f(φ^x(x_t), φ^z(z_t), h_{t−1})       (7) the recurrence
        [μ_z,t, σ_z,t] = φ^enc(φ^x(x_t), h_{t−1})  (9) posterior z_t ~ N(μ_z,t, diag σ²_z,t)
        z_t = μ_z,t + σ_z,t ⊙ ε_t,  ε_t ~ N(0, I)      the reparameterisation trick

    and the bound (10), one term per step::

        log p(x_≤T) ≥ Σ_t E_q[log p(x_t | z_≤t, x_<t)]
                          − KL(q(z_t | x_≤t, z_<t) ‖ p(z_t | x_<t, z_<t))

    The paper's eq. 6 is Gaussian (real-valued speech and handwriting); here x_t is binary, so
    φ^dec gives the logits of independent Bernoullis, one per key (their eq. 6 with the
    output distribution swapped, as the paper's "any distribution" allows). Every frame x_1..x_T
    is modelled, the first from h_0 alone.

    Choices the paper leaves open: φ^x and φ^z are one ReLU layer of ``feature_size`` units;
    φ^prior, φ^enc and φ^dec one ReLU layer of ``feature_size`` followed by linear maps, with
    σ = softplus(·); f is an lstmkit :class:`LSTMCell` (the paper's choice) or :class:`GRUCell`
    taking ``[φ^x(x_t), φ^z(z_t)]``; the expectation is estimated with one sample per step; the
    KL between the two diagonal Gaussians is exact (:func:`gaussian_kl`).

    Against a next-frame model: the bound per step is an upper bound on −log p(x_1..x_T) / T,
    the NLL per step of every frame (the first included); the chorales task's NLL per step
    predicts frames 2..T from the frames before them, so the two compare as bounds on nearly
    the same quantity, with the first frame's cost (from h_0 alone) in the VRNN's average.

    Args:
        keys: K, the binary features per step (88 for a piano roll).
        hidden_size: H, the recurrent state.
        latent_size: Z, the size of z_t.
        feature_size: the width of every φ (default H).
        cell: ``"lstm"`` or ``"gru"``.

    Shapes: x ``(B, T, K)`` in {0, 1}; lengths ``(B,)`` the real steps of each padded sequence;
    noise ``(B, T, Z)`` the ε of the reparameterisation (drawn from ``generator`` when omitted).
    """

    def __init__(
        self,
        keys: int = 88,
        hidden_size: int = 32,
        latent_size: int = 8,
        *,
        feature_size: int | None = None,
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        feature_size = hidden_size if feature_size is None else feature_size
        for name, value in (
            ("keys", keys),
            ("hidden_size", hidden_size),
            ("latent_size", latent_size),
            ("feature_size", feature_size),
        ):
            check_positive_int(name, value)
        self.keys, self.hidden_size, self.latent_size = keys, hidden_size, latent_size
        Fs = feature_size
        self.phi_x = _feature(keys, Fs)  # φ^x
        self.phi_z = _feature(latent_size, Fs)  # φ^z
        self.prior = GaussianHead(hidden_size, latent_size, Fs)  # φ^prior
        self.encoder = GaussianHead(Fs + hidden_size, latent_size, Fs)  # φ^enc
        self.decoder = nn.Sequential(_feature(Fs + hidden_size, Fs), nn.Linear(Fs, keys))  # φ^dec
        self.cell = _cell(cell, 2 * Fs, hidden_size)  # f

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | list[int] | None = None,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> BoundOutput:
        """The negative bound (10) per real step of ``x``; see the class docstring."""
        x = _check_rolls(self, x, self.keys)
        B, T, _ = x.shape
        eps = _noise(noise, (B, T, self.latent_size), x, generator)
        phi_x = self.phi_x(x)  # (B, T, F): φ^x of every frame at once
        state = self.cell.initial_state(B, dtype=x.dtype, device=x.device)
        rec, kl = [], []
        for t in range(T):
            h = self.cell.output(state)  # h_{t-1}
            mu_0, sigma_0 = self.prior(h)  # (5)
            mu_z, sigma_z = self.encoder(torch.cat([phi_x[:, t], h], -1))  # (9)
            z_t = mu_z + sigma_z * eps[:, t]
            phi_z = self.phi_z(z_t)
            logits = self.decoder(torch.cat([phi_z, h], -1))  # (6)
            state = self.cell(torch.cat([phi_x[:, t], phi_z], -1), state)  # (7)
            rec.append(bernoulli_nll(logits, x[:, t]))
            kl.append(gaussian_kl(mu_z, sigma_z, mu_0, sigma_0))
        return _bound(torch.stack(rec, 1), torch.stack(kl, 1), lengths)

    def _output_layer(self) -> nn.Linear:
        return cast(nn.Linear, self.decoder[-1])

    @torch.no_grad()
    def sample(self, n: int, steps: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` sequences of ``steps`` frames from the model: z_t from the prior (5), x_t from
        (6), h_t by (7). Returns ``(n, steps, K)`` of 0.0 and 1.0."""
        check_positive_int("n", n)
        check_positive_int("steps", steps)
        like = next(self.parameters())
        state = self.cell.initial_state(n, dtype=like.dtype, device=like.device)
        frames = []
        for _ in range(steps):
            h = self.cell.output(state)
            mu_0, sigma_0 = self.prior(h)
            eps = torch.randn(mu_0.shape, generator=generator, dtype=like.dtype, device=like.device)
            phi_z = self.phi_z(mu_0 + sigma_0 * eps)
            p = torch.sigmoid(self.decoder(torch.cat([phi_z, h], -1)))
            x_t = torch.bernoulli(p, generator=generator)
            state = self.cell(torch.cat([self.phi_x(x_t), phi_z], -1), state)
            frames.append(x_t)
        return torch.stack(frames, 1)


class STORN(_StartFromFrequencies):
    r"""STORN, the stochastic recurrent network of Bayer & Osendorfer 2014 ("Learning Stochastic
    Recurrent Networks", arXiv 1411.7610), with Bernoulli outputs, for piano rolls.

    Recognition model: an lstmkit LSTM or GRU layer reads the whole sequence, both ways by
    default, and gives an independent Gaussian per step::

        r_t = [→r_t, ←r_t] = RNN_rec(x_1..x_T)_t
        q(z_t | x_1..x_T) = N(μ_t, diag σ_t²),  μ_t = W_μ r_t + b_μ,  σ_t = softplus(W_σ r_t + b_σ)
        z_t = μ_t + σ_t ⊙ ε_t,  ε_t ~ N(0, I)

    Generative model: a prior N(0, I) on every z_t, and an RNN that takes the previous frame and
    the step's latent (x_0 = 0)::

        h_t = f([x_{t−1}, z_t], h_{t−1}),   x_t | x_<t, z_≤t ~ Bernoulli(σ(W_out h_t + b_out))

    Bound: log p(x_1..x_T) ≥ Σ_t E_q[log p(x_t | x_<t, z_≤t)] − KL(q(z_t | x_1..x_T) ‖ N(0, I)).

    Choices the paper leaves open or makes otherwise: the paper's recognition model is one RNN
    over the data; here it is bidirectional (``bidirectional=False`` gives a forward RNN and
    q(z_t | x_1..x_t)), so each z_t may see the whole piece; its RNNs are lstmkit layers and
    cells (the paper used plain tanh RNNs trained with its own optimiser); outputs are Bernoulli
    as in its binary experiments; one sample of ε per step. The bound per step relates to a
    next-frame model's NLL per step as :class:`VRNN`'s does: an upper bound on the NLL per
    step of every frame, the first (predicted from x_0 = 0 and z_1) included.

    Args:
        keys: K, the binary features per step (88 for a piano roll).
        hidden_size: H, the generative RNN's state.
        latent_size: Z, the size of z_t.
        recognition_size: the recognition RNN's state per direction (default H).
        cell: ``"lstm"`` or ``"gru"``, for both RNNs.
        bidirectional: whether the recognition RNN reads both ways.

    Shapes as :class:`VRNN`'s.
    """

    def __init__(
        self,
        keys: int = 88,
        hidden_size: int = 32,
        latent_size: int = 8,
        *,
        recognition_size: int | None = None,
        cell: str = "lstm",
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        recognition_size = hidden_size if recognition_size is None else recognition_size
        for name, value in (
            ("keys", keys),
            ("hidden_size", hidden_size),
            ("latent_size", latent_size),
            ("recognition_size", recognition_size),
        ):
            check_positive_int(name, value)
        check_choice("cell", cell, CELLS)
        self.keys, self.hidden_size, self.latent_size = keys, hidden_size, latent_size
        layer = LSTM if cell == "lstm" else GRU
        self.recognition: Recurrent = layer(
            keys, recognition_size, batch_first=True, bidirectional=bidirectional
        )
        directions = 2 if bidirectional else 1
        self.posterior = GaussianHead(directions * recognition_size, latent_size, None)
        self.cell = _cell(cell, keys + latent_size, hidden_size)  # f
        self.readout = nn.Linear(hidden_size, keys)  # W_out, b_out

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | list[int] | None = None,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> BoundOutput:
        """The negative bound per real step of ``x``; see the class docstring."""
        x = _check_rolls(self, x, self.keys)
        B, T, _ = x.shape
        eps = _noise(noise, (B, T, self.latent_size), x, generator)
        if lengths is not None:  # each piece read (backwards too) from its own last frame
            lengths = check_lengths(lengths, batch_size=B, steps=T)
        r, _ = self.recognition(x, lengths=lengths)  # (B, T, directions · R)
        mu, sigma = self.posterior(r)
        z = mu + sigma * eps  # (B, T, Z)
        x_prev = torch.cat([x.new_zeros(B, 1, self.keys), x[:, :-1]], 1)  # x_0 = 0
        state = self.cell.initial_state(B, dtype=x.dtype, device=x.device)
        rec = []
        for t in range(T):
            state = self.cell(torch.cat([x_prev[:, t], z[:, t]], -1), state)
            rec.append(bernoulli_nll(self.readout(self.cell.output(state)), x[:, t]))
        kl = gaussian_kl(mu, sigma, torch.zeros_like(mu), torch.ones_like(sigma))
        return _bound(torch.stack(rec, 1), kl, lengths)

    def _output_layer(self) -> nn.Linear:
        return self.readout

    @torch.no_grad()
    def sample(self, n: int, steps: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` sequences of ``steps`` frames: z_t ~ N(0, I), x_t from the generative RNN fed
        its own previous frame. Returns ``(n, steps, K)`` of 0.0 and 1.0."""
        check_positive_int("n", n)
        check_positive_int("steps", steps)
        like = next(self.parameters())
        state = self.cell.initial_state(n, dtype=like.dtype, device=like.device)
        x_t = like.new_zeros(n, self.keys)
        frames = []
        for _ in range(steps):
            z_t = torch.randn(
                n, self.latent_size, generator=generator, dtype=like.dtype, device=like.device
            )
            state = self.cell(torch.cat([x_t, z_t], -1), state)
            x_t = torch.bernoulli(
                torch.sigmoid(self.readout(self.cell.output(state))), generator=generator
            )
            frames.append(x_t)
        return torch.stack(frames, 1)
