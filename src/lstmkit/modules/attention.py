"""Soft attention: an LSTM decoder that looks at a set of annotation vectors at every step
(Xu et al. 2015, "Show, Attend and Tell"), or at an encoder's outputs (Bahdanau et al. 2015)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit import _recording
from lstmkit._checks import check_input_tensor, check_positive_int, check_state, describe
from lstmkit._errors import LstmkitTypeError, LstmkitValueError
from lstmkit._recording import Quantity
from lstmkit.cells.base import LSTMState
from lstmkit.cells.lstm import LSTMCell
from lstmkit.engines.export import exporting

_recording.declare(
    alpha_t=Quantity("attention weights", r"$\alpha_t$", "fraction"),
    beta_t=Quantity("context gate", r"$\beta_t$", "fraction"),
)


class AttentionOutput(NamedTuple):
    """What :class:`AttentionDecoder` returns, batch-first (or time-first, as its input)."""

    outputs: Tensor
    """h_t of every step, ``(B, T, H)``."""
    contexts: Tensor
    """The gated context ẑ_t of every step, ``(B, T, D)``."""
    alphas: Tensor
    """The attention weights α_ti over the annotations, ``(B, T, L)``; rows sum to 1."""
    betas: Tensor
    """The gate β_t, ``(B, T, 1)`` (ones without the gate)."""
    state: LSTMState
    """``(h, c)`` after the last step, each ``(B, H)``."""


class AttentionDecoder(nn.Module):
    r"""An LSTM decoder with soft attention over L annotation vectors a_i of size D.

    At every step t (Xu et al. 2015, sections 3.1.2 and 4.2, eqs. 4-6 and 13)::

        e_ti = w_att · tanh(W_a a_i + W_h h_{t-1} + b_att)        attention MLP
        α_ti = exp(e_ti) / Σ_k exp(e_tk)                          over the annotations
        β_t  = σ(w_β · h_{t-1} + b_β)                             gating scalar
        ẑ_t  = β_t Σ_i α_ti a_i                                    the context
        (i, f, C̃, o)_t from [y_t, ẑ_t] and h_{t-1}: one LSTM step (eqs. 1-3), the input
        being the step's input y_t (for captioning the embedded previous word, E y_{t-1})
        concatenated with ẑ_t; C_t and h_t as in lstmkit.LSTMCell

    With ``attend=False`` there is no attention MLP: α_ti = 1/L over the (unmasked) annotations
    at every step, so ẑ_t = β_t mean_i(a_i), the same context at every step (scaled by the
    gate): a decoder that sees the whole image the same way at every step, the control that
    shows what attention adds (not one of Xu et al.'s models; their baselines are other papers').

    And the initial state comes from the mean annotation (section 3.1.2)::

        c_0 = tanh(W_c mean_i(a_i) + b_c),   h_0 = tanh(W_h0 mean_i(a_i) + b_h0)

    The paper calls f_att "a multilayer perceptron conditioned on the previous hidden state"; the
    one-hidden-layer form above is the one its authors' code uses. The paper's output layer,
    p(y_t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z ẑ_t)) (eq. 7), belongs to the model built on the
    decoder (:class:`lstmkit.modules.captioner.Captioner`): the decoder returns h_t and ẑ_t.
    With ``annotation_mask`` the weights of masked annotations are 0 (an encoder's padding, for
    sequence-to-sequence use as in Bahdanau et al. 2015).

    Args:
        input_size: features of y_t per step (E).
        annotation_size: D, the size of each annotation vector.
        hidden_size: H.
        attention_size: the attention MLP's hidden width (default: H).
        gate: use β_t (Xu et al.'s "gating scalar"); False makes β_t = 1.
        attend: attend with the MLP above (default); False weighs the annotations uniformly
            and creates no attention parameters.
        batch_first: inputs and outputs ``(B, T, ·)`` (default) rather than ``(T, B, ·)``.

    Shapes: inputs ``(B, T, E)``; annotations ``(B, L, D)``; annotation_mask ``(B, L)`` bool
    (True = attend); lengths ``(B,)`` real steps of each sequence (later steps output 0 and
    attend nowhere); state ``(h, c)`` each ``(B, H)`` or None for the annotation-based start.
    """

    def __init__(
        self,
        input_size: int,
        annotation_size: int,
        hidden_size: int,
        *,
        attention_size: int | None = None,
        gate: bool = True,
        attend: bool = True,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("annotation_size", annotation_size),
            ("hidden_size", hidden_size),
        ):
            check_positive_int(name, value)
        attention_size = hidden_size if attention_size is None else attention_size
        check_positive_int("attention_size", attention_size)
        self.input_size, self.annotation_size, self.hidden_size = (
            input_size,
            annotation_size,
            hidden_size,
        )
        self.batch_first = batch_first
        self.cell = LSTMCell(input_size + annotation_size, hidden_size)
        self.attend_annotation = (
            nn.Linear(annotation_size, attention_size) if attend else None
        )  # W_a, b_att
        self.attend_hidden = (
            nn.Linear(hidden_size, attention_size, bias=False) if attend else None
        )  # W_h
        self.attend_score = nn.Linear(attention_size, 1, bias=False) if attend else None  # w_att
        self.beta = nn.Linear(hidden_size, 1) if gate else None  # w_β, b_β
        self.init_c = nn.Linear(annotation_size, hidden_size)
        self.init_h = nn.Linear(annotation_size, hidden_size)

    def initial_state(
        self, annotations: Tensor, annotation_mask: Tensor | None = None
    ) -> LSTMState:
        """``(h_0, c_0)`` from the mean of the (unmasked) annotations."""
        if annotation_mask is None:
            mean = annotations.mean(dim=1)
        else:
            weights = annotation_mask.to(annotations.dtype).unsqueeze(-1)  # (B, L, 1)
            mean = (annotations * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return LSTMState(torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))

    def forward(
        self,
        inputs: Tensor,
        annotations: Tensor,
        *,
        annotation_mask: Tensor | None = None,
        state: tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> AttentionOutput:
        y = self._check(inputs, annotations, annotation_mask)
        if not self.batch_first:
            y = y.transpose(0, 1)  # (B, T, E)
        B, T = y.shape[0], y.shape[1]
        if state is None:
            s = self.initial_state(annotations, annotation_mask)
        else:
            zeros = y.new_zeros(B, self.hidden_size)
            s = check_state(state, LSTMState(zeros, zeros), unbatched=False, what="state")  # type: ignore[assignment]
        keys = (  # (B, L, A): W_a a_i + b, once for all steps
            annotations if self.attend_annotation is None else self.attend_annotation(annotations)
        )
        if exporting():  # torch.onnx.export: the steps as one Scan
            return self._scan(y, keys, annotations, annotation_mask, s, lengths)
        live = None if lengths is None else self._live(lengths, B, T, y.device)
        if T == 0:  # no step: empty outputs, the state as it came
            return self._empty(y, annotations, s)
        outputs, contexts, alphas, betas = [], [], [], []
        for t, y_t in enumerate(y.unbind(1)):
            z_t, alpha_t, beta_t = self.attend(keys, annotations, s.h, annotation_mask)
            new = self.cell(torch.cat([y_t, z_t], dim=-1), s)
            if live is not None:  # a finished sequence keeps its state and outputs nothing
                on = live[:, t : t + 1]
                new = LSTMState(torch.where(on, new.h, s.h), torch.where(on, new.c, s.c))
                alpha_t, z_t = alpha_t * on, z_t * on
            s = new
            outputs.append(s.h if live is None else s.h * live[:, t : t + 1])
            contexts.append(z_t)
            alphas.append(alpha_t)
            betas.append(beta_t)
        dim = 1 if self.batch_first else 0
        return AttentionOutput(
            torch.stack(outputs, dim),
            torch.stack(contexts, dim),
            torch.stack(alphas, dim),
            torch.stack(betas, dim),
            s,
        )

    def _scan(
        self,
        y: Tensor,
        keys: Tensor,
        annotations: Tensor,
        mask: Tensor | None,
        s: LSTMState,
        lengths: Tensor | list[int] | None,
    ) -> AttentionOutput:
        """The steps of :meth:`forward` as torch's scan operator, which torch.onnx writes as an
        ONNX Scan with the number of steps left free; the same results."""
        from torch._higher_order_ops.scan import scan

        steps = torch.arange(y.shape[1], device=y.device)
        lens = None if lengths is None else torch.as_tensor(lengths, device=y.device)

        def body(
            carry: list[Tensor], inputs: tuple[Tensor, Tensor]
        ) -> tuple[list[Tensor], tuple[Tensor, ...]]:
            y_t, t = inputs
            h, c = carry
            z_t, alpha_t, beta_t = self.attend(keys, annotations, h, mask)
            xp = self.cell.project_input(torch.cat([y_t, z_t], dim=-1))
            new = self.cell.step(xp, LSTMState(h, c))
            if lens is None:
                return [new.h, new.c], (new.h.clone(), z_t, alpha_t, beta_t)
            on = (t < lens).unsqueeze(-1)  # (B, 1): a finished sequence keeps its state
            h, c = torch.where(on, new.h, h), torch.where(on, new.c, c)
            zero = torch.zeros_like(h)
            out = (torch.where(on, h, zero), z_t * on, alpha_t * on, beta_t)
            return [h, c], out

        initial = [s.h.clone(), s.c.clone()]  # (scan refuses a carry that shares memory)
        (h, c), (outputs, contexts, alphas, betas) = scan(body, initial, (y.transpose(0, 1), steps))
        dim = 1 if self.batch_first else 0
        o, z, a, b = (t.movedim(0, dim) for t in (outputs, contexts, alphas, betas))
        return AttentionOutput(o, z, a, b, LSTMState(h, c))

    @staticmethod
    def _live(lengths: Tensor | list[int], B: int, T: int, device: torch.device) -> Tensor:
        """Which steps of each sequence are real, ``(B, T)``, from its length."""
        lens = torch.as_tensor(lengths, device=device)
        if lens.dtype.is_floating_point or lens.dtype.is_complex or lens.dtype == torch.bool:
            raise LstmkitTypeError(
                f"lengths must be whole numbers of steps, got {lens.dtype} {lens.tolist()}"
            )
        if lens.shape != (B,) or bool((lens < 1).any()) or bool((lens > T).any()):
            raise LstmkitValueError(f"lengths must be {B} values in [1, {T}], got {lens.tolist()}")
        return torch.arange(T, device=device)[None, :] < lens[:, None]

    def _empty(self, y: Tensor, annotations: Tensor, s: LSTMState) -> AttentionOutput:
        """The output of a call with no steps."""
        B, L, D = annotations.shape

        def empty(width: int) -> Tensor:
            return y.new_zeros((B, 0, width) if self.batch_first else (0, B, width))

        return AttentionOutput(empty(self.hidden_size), empty(D), empty(L), empty(1), s)

    def attend(
        self,
        keys: Tensor,
        annotations: Tensor,
        h_prev: Tensor,
        annotation_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step of attention: ``(ẑ_t (B, D), α_t (B, L), β_t (B, 1))`` given the projected
        annotations ``keys`` (B, L, A) and h_{t-1} (B, H); without attention α_t is uniform."""
        if self.attend_score is None or self.attend_hidden is None:  # attend=False
            e = annotations.new_zeros(annotations.shape[:2])  # (B, L): equal scores
        else:
            e = self.attend_score(
                torch.tanh(keys + self.attend_hidden(h_prev).unsqueeze(1))
            ).squeeze(-1)  # (B, L)
        if annotation_mask is not None:
            e = e.masked_fill(~annotation_mask, float("-inf"))
        alpha = F.softmax(e, dim=-1)
        beta = (
            torch.sigmoid(self.beta(h_prev))
            if self.beta is not None
            else h_prev.new_ones(h_prev.shape[0], 1)
        )
        z = beta * torch.bmm(alpha.unsqueeze(1), annotations).squeeze(1)  # (B, D)
        if _recording.RECORDING is not None:
            _recording.record(self, alpha_t=alpha, beta_t=beta)
        return z, alpha, beta

    def _check(self, inputs: Tensor, annotations: Tensor, mask: Tensor | None) -> Tensor:
        like = self.cell.weight_ih
        check_input_tensor(inputs, what="inputs", like=like)
        check_input_tensor(annotations, what="annotations", like=like)
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            layout = "(B, T, E)" if self.batch_first else "(T, B, E)"
            raise LstmkitValueError(
                f"inputs must be {layout} with E = {self.input_size}, "
                f"got shape {tuple(inputs.shape)}"
            )
        batch = inputs.shape[0] if self.batch_first else inputs.shape[1]
        if (
            annotations.dim() != 3
            or annotations.shape[0] != batch
            or annotations.shape[1] < 1
            or annotations.shape[-1] != self.annotation_size
        ):
            raise LstmkitValueError(
                f"annotations must be (B, L, D) with B = {batch}, L >= 1 (something to attend "
                f"to), D = {self.annotation_size}, got shape {tuple(annotations.shape)}"
            )
        if mask is not None:
            if (
                not isinstance(mask, Tensor)
                or mask.dtype != torch.bool
                or mask.shape != annotations.shape[:2]
            ):
                raise LstmkitValueError(
                    "annotation_mask must be a bool tensor of shape "
                    f"{tuple(annotations.shape[:2])}, got {describe(mask)}"
                )
            if not exporting() and not bool(mask.any(dim=1).all()):  # (no values to read)
                raise LstmkitValueError(
                    "annotation_mask leaves a sequence with nothing to attend to"
                )
        return inputs


def doubly_stochastic_penalty(alphas: Tensor, *, weight: float = 1.0) -> Tensor:
    """Xu et al. 2015's regulariser (eq. 14): ``λ Σ_i (1 - Σ_t α_ti)²``, pushing the decoder
    to attend to every annotation about once over the sequence; averaged over the batch.

    ``alphas``: ``(B, T, L)`` as :class:`AttentionDecoder` returns them (batch-first).
    """
    return weight * (1.0 - alphas.sum(dim=1)).pow(2).sum(dim=-1).mean()
