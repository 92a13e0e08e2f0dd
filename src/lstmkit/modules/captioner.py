r"""An image captioner with soft attention (Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel
& Bengio 2015, "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
arXiv 1502.03044): a small convolutional encoder, lstmkit's attention decoder, and the paper's
deep output layer."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import Tensor, nn

from lstmkit._checks import check_input_tensor, check_positive_int, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit.cells.base import LSTMState
from lstmkit.modules.attention import AttentionDecoder

CONV_LAYERS = 3
"""Pooling blocks of the encoder, each a 3 × 3 convolution (padding 1), batch normalisation,
ReLU, then 2 × 2 max pooling."""

GRID_CONVS = 2
"""Convolutions after the pooling blocks, each 3 × 3 (padding 1) and ReLU on the grid, which
widen every annotation's view of the image to about a digit and its neighbours."""


class CaptionOutput(NamedTuple):
    """What :meth:`Captioner.forward` returns for B images and L steps."""

    logits: Tensor
    """``(B, L, V)``: the unnormalised log-probabilities of eq. 7 at every step."""
    alphas: Tensor
    """``(B, L, h * w)``: the attention weights α_ti over the annotation grid (row-major)."""
    tokens: Tensor
    """``(B, L)`` int64: the words read (teacher forcing) or chosen (greedy decoding)."""


class Captioner(nn.Module):
    r"""Write a caption for an image, one word per step, looking at a grid of its features.

    Encoder (Xu et al. 2015, section 3.1.1): the image ``(B, C, H, W)`` passes through
    ``CONV_LAYERS`` blocks of 3 × 3 convolution, batch normalisation, ReLU and 2 × 2 max
    pooling, of D/4, D/2 and D channels (D = ``feature_size``), leaving a grid of h × w
    positions, h = ⌊H/8⌋, w = ⌊W/8⌋, then ``GRID_CONVS`` 3 × 3 convolutions with ReLU on that
    grid. Each position's D features plus a learned vector p_i for the position are an
    annotation vector::

        a = {a_1, ..., a_L},  a_i = f_i + p_i ∈ R^D,  L = h · w  (row-major)

    The paper takes the 14 × 14 × 512 map of a pretrained VGG net's fourth convolutional block;
    here the encoder is small and trained with the rest.

    Decoder (sections 3.1.2, 4.2): :class:`~lstmkit.modules.attention.AttentionDecoder` over the
    annotations, its input at step t the embedding of the previous word, E y_{t-1}, with
    E y_{-1} = y_0, a learned start vector (so the vocabulary needs no start token). It gives
    h_t and the gated context ẑ_t = β_t Σ_i α_ti a_i. Output, the "deep output layer" (eq. 7)::

        p(y_t | a, y_{t-1}) ∝ exp(L_o (E y_{t-1} + L_h h_t + L_z ẑ_t))

    with E ∈ R^{m×K}, L_h ∈ R^{m×n}, L_z ∈ R^{m×D}, L_o ∈ R^{K×m} (m = ``embedding_size``,
    n = ``hidden_size``, K = ``vocab_size``); L_o has a bias, the others none.

    Choices the paper leaves open, taken here: the encoder above, whose batch normalisation,
    grid convolutions and position vectors p_i each raised held-out word accuracy on the
    captions task (a VGG map carries where it was computed in its deep receptive fields; a
    small encoder's annotations need p_i to say where they are); eq. 7 as written, linear
    (the authors' code puts a tanh, and dropout, before L_o); the start vector in place of a
    start token; greedy decoding rather than beam search; no doubly stochastic penalty (eq. 14,
    :func:`~lstmkit.modules.attention.doubly_stochastic_penalty`, which a trainer may add).

    ``attention=False`` builds the same model with a decoder that does not attend
    (``AttentionDecoder(attend=False)``): α_ti = 1/L, ẑ_t = β_t mean_i(a_i) at every step.

    Args:
        vocab_size: K, the words (including the task's padding and end tokens).
        image_size: ``(H, W)`` of the images, each at least 8.
        channels: C of the images.
        hidden_size: n, the LSTM's units.
        embedding_size: m, the size of a word's embedding and of the deep output's sum.
        feature_size: D, the annotation vectors' size.
        attention: attend (default) or weigh the annotations uniformly.
        attention_size: the attention MLP's width (default: ``hidden_size``).
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        image_size: tuple[int, int],
        channels: int = 1,
        hidden_size: int = 64,
        embedding_size: int = 16,
        feature_size: int = 64,
        attention: bool = True,
        attention_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(vocab_size, image_size, channels, hidden_size, embedding_size, feature_size)
        if not isinstance(attention, bool):
            raise LstmkitTypeError(f"attention must be true or false, got {describe(attention)}")
        self.vocab_size, self.channels, self.attention = vocab_size, channels, attention
        self.image_size = (int(image_size[0]), int(image_size[1]))
        widths = [channels, max(1, feature_size // 4), max(1, feature_size // 2), feature_size]
        blocks: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        for _ in range(GRID_CONVS):
            blocks += [nn.Conv2d(feature_size, feature_size, 3, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*blocks)
        h, w = self.grid_shape
        self.positions = nn.Parameter(0.1 * torch.randn(h * w, feature_size))  # p_i
        self.decoder = AttentionDecoder(
            embedding_size,
            feature_size,
            hidden_size,
            attention_size=attention_size,
            attend=attention,
        )
        self.embedding = nn.Embedding(vocab_size, embedding_size)  # E
        self.start = nn.Parameter(torch.randn(embedding_size))  # y_0 = E y_{-1}
        self.output_hidden = nn.Linear(hidden_size, embedding_size, bias=False)  # L_h
        self.output_context = nn.Linear(feature_size, embedding_size, bias=False)  # L_z
        self.output_words = nn.Linear(embedding_size, vocab_size)  # L_o

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(h, w)``: the annotation grid of an image of ``image_size``."""
        h, w = self.image_size
        return h >> CONV_LAYERS, w >> CONV_LAYERS

    def annotations(self, images: Tensor) -> Tensor:
        """The annotation vectors ``(B, h * w, D)`` of images ``(B, C, H, W)``, row-major: the
        encoder's map at each position plus that position's vector p_i."""
        features: Tensor = self.encoder(images)  # (B, D, h, w)
        return features.flatten(2).transpose(1, 2) + self.positions  # (B, L, D)

    def deep_output(self, previous: Tensor, h: Tensor, z: Tensor) -> Tensor:
        """Eq. 7's logits ``L_o(E y_{t-1} + L_h h_t + L_z ẑ_t)``, ``(..., K)``, from the embedded
        previous words ``(..., m)``, h_t ``(..., n)`` and ẑ_t ``(..., D)``."""
        logits: Tensor = self.output_words(
            previous + self.output_hidden(h) + self.output_context(z)
        )
        return logits

    def forward(
        self, images: Tensor, captions: Tensor | None = None, *, max_length: int | None = None
    ) -> CaptionOutput:
        """Teacher forcing with ``captions`` ``(B, L)`` int64 (the input at step t is word t-1,
        at step 0 the start vector), or, without, greedy decoding for ``max_length`` steps that
        feeds back each step's most likely word. ``images``: ``(B, C, H, W)``."""
        self._check_images(images)
        a = self.annotations(images)  # (B, L, D)
        if captions is not None:
            if max_length is not None:
                raise LstmkitValueError(
                    "give captions (teacher forcing) or max_length (greedy decoding), not both; "
                    f"got captions of shape {tuple(captions.shape)} and max_length {max_length}"
                )
            return self._teacher_forced(a, self._check_captions(captions, len(images)))
        if max_length is None:
            raise LstmkitValueError(
                "greedy decoding needs max_length (the steps to write), got none; or give "
                "captions to read"
            )
        check_positive_int("max_length", max_length)
        return self._greedy(a, max_length)

    def _teacher_forced(self, a: Tensor, captions: Tensor) -> CaptionOutput:
        """Every step at once: the decoder reads the previous words of ``captions``."""
        B = len(a)
        start = self.start.expand(B, 1, -1)  # (B, 1, m)
        previous = torch.cat([start, self.embedding(captions[:, :-1])], dim=1)  # (B, L, m)
        out = self.decoder(previous, a)
        logits = self.deep_output(previous, out.outputs, out.contexts)  # (B, L, K)
        return CaptionOutput(logits, out.alphas, captions)

    def _greedy(self, a: Tensor, steps: int) -> CaptionOutput:
        """One step at a time, each step's argmax the next step's previous word."""
        B = len(a)
        previous = self.start.expand(B, -1)  # (B, m)
        state: LSTMState | None = None
        logits, alphas, tokens = [], [], []
        for _ in range(steps):
            out = self.decoder(previous.unsqueeze(1), a, state=state)
            state = out.state
            logit = self.deep_output(previous, out.outputs[:, 0], out.contexts[:, 0])  # (B, K)
            word = logit.argmax(dim=-1)  # (B,)
            logits.append(logit)
            alphas.append(out.alphas[:, 0])
            tokens.append(word)
            previous = self.embedding(word)
        return CaptionOutput(torch.stack(logits, 1), torch.stack(alphas, 1), torch.stack(tokens, 1))

    def _check_images(self, images: Tensor) -> None:
        check_input_tensor(images, what="images", like=self.start)
        expected = (self.channels, *self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise LstmkitValueError(
                f"images must be (B, C, H, W) with (C, H, W) = {expected}, got shape "
                f"{tuple(images.shape)}"
            )

    def _check_captions(self, captions: Tensor, batch: int) -> Tensor:
        if not isinstance(captions, Tensor) or captions.dtype != torch.int64:
            raise LstmkitTypeError(f"captions must be an int64 Tensor, got {describe(captions)}")
        if captions.dim() != 2 or captions.shape[0] != batch or captions.shape[1] < 1:
            raise LstmkitValueError(
                f"captions must be (B, L) with B = {batch} (the images) and L >= 1, got shape "
                f"{tuple(captions.shape)}"
            )
        if bool((captions < 0).any()) or bool((captions >= self.vocab_size).any()):
            raise LstmkitValueError(
                f"captions must hold words in [0, {self.vocab_size - 1}], got values from "
                f"{int(captions.min())} to {int(captions.max())}"
            )
        return captions


def _check_sizes(
    vocab_size: int,
    image_size: tuple[int, int],
    channels: int,
    hidden_size: int,
    embedding_size: int,
    feature_size: int,
) -> None:
    """The constructor's sizes, each with what was expected and what came."""
    for name, value in (
        ("vocab_size", vocab_size),
        ("channels", channels),
        ("hidden_size", hidden_size),
        ("embedding_size", embedding_size),
        ("feature_size", feature_size),
    ):
        check_positive_int(name, value)
    least = 1 << CONV_LAYERS
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in image_size)
        or min(image_size) < least
    ):
        raise LstmkitValueError(
            f"image_size must be (H, W), two ints of at least {least} (the encoder halves them "
            f"{CONV_LAYERS} times), got {image_size!r}"
        )
