r"""DRAW, the Deep Recurrent Attentive Writer (Gregor, Danihelka, Graves, Rezende & Wierstra
2015, "DRAW: A Recurrent Neural Network For Image Generation", arXiv 1502.04623): a variational
auto-encoder whose encoder and decoder are LSTMs that read the image and write a canvas over T
glimpses, with or without Gaussian filterbank attention."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._checks import check_input_tensor, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.cells.base import LSTMState
from lstmkit.cells.lstm import LSTMCell

FILTER_EPS = 1e-8
"""The floor of a filter's normaliser Z (eqs. 25-26): a filter that lies wholly outside the
image (every weight underflows to 0) stays 0 instead of becoming 0/0."""

WINDOW_FIELDS = ("g_X", "g_Y", "sigma2", "delta", "gamma")
"""The order of the five window parameters in every ``(…, 5)`` window tensor."""


class DRAWOutput(NamedTuple):
    """What :meth:`DRAW.forward` returns for ``n`` images of ``height`` × ``width`` pixels."""

    loss: Tensor
    """The negative variational bound L = L^x + L^z of each image in nats, ``(n,)`` (eq. 12)."""
    reconstruction: Tensor
    """L^x = -log D(x | c_T), the Bernoulli cross-entropy summed over pixels, ``(n,)`` (eq. 9)."""
    kl: Tensor
    """L^z = Σ_t KL(Q(Z_t | h^enc_t) || N(0, I)), ``(n,)`` (eqs. 10-11)."""
    canvases: Tensor
    """σ(c_t) after every glimpse, ``(n, T, height, width)``; the last is the reconstruction."""
    read_windows: Tensor | None
    """The read window of every glimpse, ``(n, T, 5)`` in :data:`WINDOW_FIELDS` order
    (g_X, g_Y, σ², δ, γ); None without attention."""
    write_windows: Tensor | None
    """The write window of every glimpse, ``(n, T, 5)``; None without attention."""


class DRAWSample(NamedTuple):
    """What :meth:`DRAW.generate` returns for ``n`` images."""

    canvases: Tensor
    """σ(c_t) after every glimpse, ``(n, T, height, width)``: the paper's figures 7-8."""
    logits: Tensor
    """The canvas c_t itself, ``(n, T, height, width)``."""
    writes: Tensor
    """write(h^dec_t) of every glimpse, ``(n, T, height, width)``; c_t is their running sum."""
    write_windows: Tensor | None
    """The write window of every glimpse, ``(n, T, 5)``; None without attention."""


class WindowRectangles(NamedTuple):
    """The windows of every glimpse as rectangles ``(left, top, right, bottom)``, ``(n, T, 4)``,
    in the pixel coordinates of eqs. 25-26 (the first pixel is 1: subtract 1 to draw on
    matplotlib's ``imshow``, whose first pixel is 0). None without attention."""

    read: Tensor | None
    write: Tensor | None


def window_parameters(raw: Tensor, *, height: int, width: int, n: int) -> Tensor:
    """Eqs. 21-24: the five outputs ``(g̃_X, g̃_Y, log σ², log δ̃, log γ)`` of the linear map of
    h^dec, ``(batch, 5)``, as the window ``(g_X, g_Y, σ², δ, γ)``, ``(batch, 5)``, of an
    ``n`` × ``n`` grid on an image of ``height`` (the paper's B) × ``width`` (A) pixels. With
    n = 1 the stride is unused (μ = g) and δ = (max(A, B) - 1) δ̃."""
    gx_tilde, gy_tilde, log_sigma2, log_delta_tilde, log_gamma = raw.unbind(-1)
    g_X = (width + 1) / 2 * (gx_tilde + 1)  # eq. 22
    g_Y = (height + 1) / 2 * (gy_tilde + 1)  # eq. 23
    delta = (max(width, height) - 1) / max(n - 1, 1) * torch.exp(log_delta_tilde)  # eq. 24
    return torch.stack([g_X, g_Y, torch.exp(log_sigma2), delta, torch.exp(log_gamma)], dim=-1)


def filterbank(centre: Tensor, stride: Tensor, variance: Tensor, *, n: int, size: int) -> Tensor:
    """Eqs. 19-20 and 25-26 along one axis: the ``(batch, n, size)`` filterbank whose row i is a
    Gaussian of variance σ² over the pixels a = 1, …, size around the mean
    μ^i = g + (i - n/2 - 0.5) δ, normalised to sum to 1 (Z floored at :data:`FILTER_EPS`).
    ``centre`` g, ``stride`` δ and ``variance`` σ² are each ``(batch,)``."""
    i = torch.arange(1, n + 1, dtype=centre.dtype, device=centre.device)
    mu = centre[:, None] + (i - n / 2 - 0.5) * stride[:, None]  # (batch, n), eqs. 19-20
    a = torch.arange(1, size + 1, dtype=centre.dtype, device=centre.device)
    F_ = torch.exp(-((a - mu[..., None]) ** 2) / (2 * variance[:, None, None]))  # (batch, n, size)
    return F_ / F_.sum(dim=-1, keepdim=True).clamp_min(FILTER_EPS)  # Σ_a F[i, a] = 1


def window_filters(window: Tensor, *, height: int, width: int, n: int) -> tuple[Tensor, Tensor]:
    """F_X ``(batch, n, width)`` and F_Y ``(batch, n, height)`` of windows ``(batch, 5)``."""
    g_X, g_Y, sigma2, delta, _ = window.unbind(-1)
    F_X = filterbank(g_X, delta, sigma2, n=n, size=width)
    F_Y = filterbank(g_Y, delta, sigma2, n=n, size=height)
    return F_X, F_Y


def window_rectangles(windows: Tensor, n: int) -> Tensor:
    """Windows ``(…, 5)`` of an ``n`` × ``n`` grid as rectangles ``(left, top, right, bottom)``,
    ``(…, 4)``: centred on (g_X, g_Y), δ·n wide and high (each of the n filters covers about
    one stride)."""
    g_X, g_Y, _, delta, _ = windows.unbind(-1)
    half = delta * n / 2
    return torch.stack([g_X - half, g_Y - half, g_X + half, g_Y + half], dim=-1)


class DRAW(nn.Module):
    r"""DRAW (Gregor et al. 2015) for grayscale images of ``height`` (B) × ``width`` (A) pixels.

    At each glimpse t = 1, …, T (section 2, eqs. 3-8), with σ the logistic sigmoid::

        x̂_t      = x - σ(c_{t-1})                                    (3) the error image
        r_t      = read(x, x̂_t, h^dec_{t-1})                          (4)
        h^enc_t  = RNN^enc(h^enc_{t-1}, [r_t, h^dec_{t-1}])           (5)
        z_t      ~ Q(Z_t | h^enc_t)                                   (6)
        h^dec_t  = RNN^dec(h^dec_{t-1}, z_t)                          (7)
        c_t      = c_{t-1} + write(h^dec_t)                           (8)

    Q is a diagonal Gaussian, μ_t = W(h^enc_t) and σ_t = exp(W(h^enc_t)) (eqs. 1-2), sampled
    with the reparameterisation trick z_t = μ_t + σ_t ε_t, ε_t ~ N(0, I). RNN^enc and RNN^dec
    are :class:`~lstmkit.cells.lstm.LSTMCell`\ s. The loss (section 2.1, eqs. 9-12), per image
    in nats::

        L^x = -log D(x | c_T) = -Σ_pixels [x log σ(c_T) + (1 - x) log(1 - σ(c_T))]     (9)
        L^z = Σ_t KL(Q(Z_t | h^enc_t) || N(0, I))                                      (10)
            = ½ Σ_t Σ_k (μ_tk² + σ_tk² - log σ_tk²) - T·Z/2                            (11)
        L   = L^x + L^z                                                                (12)

    Without attention (section 3.1): ``read = [x, x̂_t]`` (17) and ``write = W(h^dec_t)`` (18).
    With attention (section 3.2), a read (or write) window comes from its own linear map::

        (g̃_X, g̃_Y, log σ², log δ̃, log γ) = W(h^dec)                                (21)
        g_X = (A + 1)/2 (g̃_X + 1),  g_Y = (B + 1)/2 (g̃_Y + 1)                      (22-23)
        δ   = (max(A, B) - 1)/(N - 1) · δ̃                                          (24)
        μ_X^i = g_X + (i - N/2 - 0.5) δ,  μ_Y^j = g_Y + (j - N/2 - 0.5) δ           (19-20)
        F_X[i, a] = exp(-(a - μ_X^i)² / 2σ²) / Z_X,  F_Y[j, b] likewise              (25-26)
        read(x, x̂, h^dec) = γ [F_Y x F_Xᵀ, F_Y x̂ F_Xᵀ]                              (27)
        w_t = W(h^dec_t)  (an N × N patch),  write(h^dec_t) = 1/γ̂ F̂_Yᵀ w_t F̂_X      (28-29)

    Choices the paper leaves open, made here:
        - pixel coordinates a, b run 1, …, A (B), which makes g̃ = 0 the image's centre and,
          with N = A, δ̃ = 1 and a tiny σ, the read the image itself;
        - Z_X, Z_Y are floored at :data:`FILTER_EPS` (a window wholly off the image reads 0);
        - with N = 1 the stride has no use and δ = (max(A, B) - 1) δ̃;
        - h^enc_0, h^dec_0, their cells and the canvas c_0 start at zero;
        - one hidden size for both LSTMs; each window map's bias starts with g̃ = 0,
          δ̃ = 1, γ = 1 and σ = δ/2 (:func:`_start_window`): the window starts centred and
          spanning the image, each filter half a stride wide, so that the first reads see the
          whole digit (with σ = 1 instead, a 2 × 2 read of a 28-pixel image starts on its empty
          border: after 1,200 steps on the digits task, 16 glimpses of 128 units, the
          posterior had collapsed to the prior there, KL 0.00 and 205.7 nats a digit, the
          independent-pixel baseline's level, while this start reached KL 6.4 and 177.2);
        - x need not be binary: values in [0, 1] give the cross-entropy (9), which is a bound
          on a likelihood only for binary x.

    Args:
        height, width: B and A, the image's size in pixels (28, 28 for MNIST).
        glimpses: T, the number of steps (the paper's MNIST models use 64).
        hidden_size: the width of each LSTM (the paper: 256).
        z_size: Z, the size of each z_t (the paper: 100).
        attention: the Gaussian filterbank read and write (True) or the whole image (False).
        read_n, write_n: N of the read and write grids with attention (the paper's MNIST: 2, 5).

    Parameters: ``encoder`` LSTMCell(2N_r² + H or 2AB + H, H), ``decoder`` LSTMCell(Z, H),
    ``q_mean`` and ``q_log_sigma`` Linear(H, Z), ``write_patch`` Linear(H, N_w² or AB), and with
    attention ``read_window`` and ``write_window`` Linear(H, 5).

    Shapes: images ``x`` ``(n, height, width)`` in [0, 1]; noise ε ``(n, T, Z)``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        glimpses: int,
        hidden_size: int = 256,
        z_size: int = 100,
        attention: bool = True,
        read_n: int = 2,
        write_n: int = 5,
    ) -> None:
        super().__init__()
        for name, value in (
            ("height", height),
            ("width", width),
            ("glimpses", glimpses),
            ("hidden_size", hidden_size),
            ("z_size", z_size),
            ("read_n", read_n),
            ("write_n", write_n),
        ):
            check_positive_int(name, value)
        if not isinstance(attention, bool):
            raise LstmkitTypeError(f"attention must be a bool, got {describe(attention)}")
        self.height, self.width, self.glimpses = height, width, glimpses
        self.hidden_size, self.z_size, self.attention = hidden_size, z_size, attention
        self.read_n, self.write_n = read_n, write_n
        H = hidden_size
        read_size = 2 * read_n * read_n if attention else 2 * height * width
        self.encoder = LSTMCell(read_size + H, H)  # RNN^enc, eq. 5
        self.decoder = LSTMCell(z_size, H)  # RNN^dec, eq. 7
        self.q_mean = nn.Linear(H, z_size)  # μ_t = W(h^enc_t), eq. 1
        self.q_log_sigma = nn.Linear(H, z_size)  # log σ_t = W(h^enc_t), eq. 2
        self.write_patch = nn.Linear(H, write_n * write_n if attention else height * width)
        self.read_window = nn.Linear(H, 5) if attention else None  # eq. 21
        self.write_window = nn.Linear(H, 5) if attention else None
        for window, N in ((self.read_window, read_n), (self.write_window, write_n)):
            if window is not None:
                _start_window(window, N, max(height, width))

    def read(self, x: Tensor, x_hat: Tensor, h_dec: Tensor) -> tuple[Tensor, Tensor | None]:
        """Eq. 4: r_t ``(n, 2N²)`` (eq. 27) or ``(n, 2AB)`` (eq. 17), and the read window
        ``(n, 5)`` (None without attention), from x, x̂_t ``(n, B, A)`` and h^dec_{t-1}."""
        if self.read_window is None:
            return torch.cat([x.flatten(1), x_hat.flatten(1)], dim=-1), None  # eq. 17
        N = self.read_n
        window = window_parameters(
            self.read_window(h_dec), height=self.height, width=self.width, n=N
        )
        F_X, F_Y = window_filters(window, height=self.height, width=self.width, n=N)
        gamma = window[:, 4:5]  # (n, 1)
        images = torch.stack([x, x_hat], dim=1)  # (n, 2, B, A)
        glimpse = F_Y.unsqueeze(1) @ images @ F_X.transpose(1, 2).unsqueeze(1)  # (n, 2, N, N)
        return gamma * glimpse.flatten(1), window  # eq. 27, (n, 2N²)

    def write(self, h_dec: Tensor) -> tuple[Tensor, Tensor | None]:
        """Eq. 8's write(h^dec_t) ``(n, B, A)`` (eqs. 18 or 28-29), and the write window."""
        w_t = self.write_patch(h_dec)  # eq. 18 or 28
        n = h_dec.shape[0]
        if self.write_window is None:
            return w_t.view(n, self.height, self.width), None
        N = self.write_n
        window = window_parameters(
            self.write_window(h_dec), height=self.height, width=self.width, n=N
        )
        F_X, F_Y = window_filters(window, height=self.height, width=self.width, n=N)
        gamma = window[:, 4, None, None]  # (n, 1, 1)
        return F_Y.transpose(1, 2) @ w_t.view(n, N, N) @ F_X / gamma, window  # eq. 29

    def _decode(self, z_t: Tensor, dec: LSTMState) -> tuple[LSTMState, Tensor, Tensor | None]:
        """Eq. 7 and the write of eq. 8: the new decoder state, write(h^dec_t), its window."""
        new = self.decoder(z_t, dec)
        assert isinstance(new, LSTMState)
        w, window = self.write(new.h)
        return new, w, window

    def forward(
        self,
        x: Tensor,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> DRAWOutput:
        """The bound of images ``x`` ``(n, height, width)`` with values in [0, 1], the
        reparameterisation noise ε being ``noise`` ``(n, T, Z)`` or drawn (from ``generator``)."""
        x = self._check_images(x)
        n = x.shape[0]
        eps = self._noise(n, noise, generator, like=x)
        zeros = x.new_zeros(n, self.hidden_size)
        enc, dec = LSTMState(zeros, zeros), LSTMState(zeros, zeros)
        c = x.new_zeros(n, self.height, self.width)  # c_0
        canvases, reads, writes = [], [], []
        kl = x.new_zeros(n)
        for t in range(self.glimpses):
            x_hat = x - torch.sigmoid(c)  # eq. 3
            r_t, read_window = self.read(x, x_hat, dec.h)  # eq. 4
            new_enc = self.encoder(torch.cat([r_t, dec.h], dim=-1), enc)  # eq. 5
            assert isinstance(new_enc, LSTMState)
            enc = new_enc
            mu_t, log_sigma_t = self.q_mean(enc.h), self.q_log_sigma(enc.h)  # eqs. 1-2
            z_t = mu_t + torch.exp(log_sigma_t) * eps[:, t]  # eq. 6, reparameterised
            dec, w, write_window = self._decode(z_t, dec)  # eq. 7
            c = c + w  # eq. 8
            sigma2_t = torch.exp(2 * log_sigma_t)
            kl = kl + 0.5 * (mu_t**2 + sigma2_t - 2 * log_sigma_t).sum(-1)  # eq. 11's sum
            canvases.append(torch.sigmoid(c))
            reads.append(read_window)
            writes.append(write_window)
        kl = kl - self.glimpses * self.z_size / 2  # eq. 11's -T/2, once per latent unit
        reconstruction = F.binary_cross_entropy_with_logits(c, x, reduction="none").sum((1, 2))
        return DRAWOutput(
            reconstruction + kl,  # eq. 12
            reconstruction,
            kl,
            torch.stack(canvases, dim=1),
            _stack_windows(reads),
            _stack_windows(writes),
        )

    @torch.no_grad()
    def generate(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> DRAWSample:
        """``n`` images drawn from the model (section 2.3): z_t ~ N(0, I) from the prior (or
        ``noise`` ``(n, T, Z)``), the decoder alone (eqs. 7-8, h^dec_0 = c_0 = 0), every canvas."""
        check_positive_int("n", n)
        like = self.q_mean.weight
        z = self._noise(n, noise, generator, like=like)
        zeros = like.new_zeros(n, self.hidden_size)
        dec = LSTMState(zeros, zeros)
        c = like.new_zeros(n, self.height, self.width)
        logits, writes, windows = [], [], []
        for t in range(self.glimpses):
            dec, w, window = self._decode(z[:, t], dec)  # eq. 7
            c = c + w  # eq. 8
            logits.append(c)
            writes.append(w)
            windows.append(window)
        canvas = torch.stack(logits, dim=1)
        return DRAWSample(
            torch.sigmoid(canvas), canvas, torch.stack(writes, dim=1), _stack_windows(windows)
        )

    @torch.no_grad()
    def windows(
        self,
        x: Tensor,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> WindowRectangles:
        """The read and write windows of every glimpse of the images ``x`` as rectangles
        ``(n, T, 4)`` (:class:`WindowRectangles`), to draw on the images."""
        if not self.attention:
            raise LstmkitValueError(
                "windows: this DRAW reads and writes the whole image (attention=False), so it "
                "has no windows; build it with attention=True"
            )
        out = self(x, noise=noise, generator=generator)
        assert out.read_windows is not None
        assert out.write_windows is not None
        return WindowRectangles(
            window_rectangles(out.read_windows, self.read_n),
            window_rectangles(out.write_windows, self.write_n),
        )

    def _check_images(self, x: object) -> Tensor:
        x = check_input_tensor(x, what="images", like=self.q_mean.weight)
        expected = (self.height, self.width)
        if x.dim() != 3 or tuple(x.shape[1:]) != expected:
            raise LstmkitValueError(
                f"images must be (n, height, width) = (n, {self.height}, {self.width}), "
                f"got shape {tuple(x.shape)}"
            )
        if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
            raise LstmkitValueError(
                "images must hold values in [0, 1] (DRAW's Bernoulli likelihood; binarise "
                f"with (x > 0.5).to(dtype)), got values in [{x.min().item()}, {x.max().item()}]"
            )
        return x

    def _noise(
        self, n: int, noise: Tensor | None, generator: torch.Generator | None, *, like: Tensor
    ) -> Tensor:
        """ε ``(n, T, Z)``: ``noise`` checked, or drawn from N(0, I) with ``generator``."""
        shape = (n, self.glimpses, self.z_size)
        if noise is None:
            return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)
        check_input_tensor(noise, what="noise", like=like)
        if tuple(noise.shape) != shape:
            raise LstmkitValueError(
                f"noise must be (n, T, Z) = {shape}, got shape {tuple(noise.shape)}"
            )
        return noise


def _start_window(window: nn.Linear, n: int, side: int) -> None:
    """Starts a window map (eq. 21) with zero bias except log σ², set so that σ = δ/2 for the
    starting stride δ = (side - 1)/(n - 1) (eq. 24 with δ̃ = 1)."""
    delta = (side - 1) / max(n - 1, 1)
    with torch.no_grad():
        window.bias.zero_()
        window.bias[2] = math.log((delta / 2) ** 2)


def _stack_windows(windows: list[Tensor | None]) -> Tensor | None:
    """The windows of every glimpse, ``(n, T, 5)``, or None without attention."""
    present = [w for w in windows if w is not None]
    return torch.stack(present, dim=1) if present else None
