"""The 2-D Grid LSTM over an image (Kalchbrenner, Danihelka & Graves 2015): LSTM transforms
along the rows and the columns of a grid of patches, computed as anti-diagonal wavefronts."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._checks import check_input_tensor, check_positive_int
from lstmkit._errors import LstmkitValueError
from lstmkit.cells.grid import LSTMTransform, lstm_transform


class Grid2dOutput(NamedTuple):
    """What :class:`GridLSTM2d` returns (B images, an R × C grid of blocks, H the hidden size)."""

    outputs: Tensor
    """Every block's ``[h^1 ; h^2]`` in the top layer, ``(B, R, C, 2H)``."""
    final: Tensor
    """The bottom-right block's ``[h^1 ; h^2]``, ``(B, 2H)``: the one that has seen the whole
    image."""


class GridLSTM2d(nn.Module):
    r"""A 2-D Grid LSTM over the rows and columns of an image: one block per pixel or per
    ``patch_size × patch_size`` patch, with an LSTM transform along the rows (dimension 1, left
    to right) and one along the columns (dimension 2, top to bottom).

    Block (r, c) receives ``(h^1, m^1)`` from its left neighbour (r, c - 1), ``(h^2, m^2)`` from
    the block above (r - 1, c) (zeros outside the grid) and its input x_rc, and computes
    (section 3.1, an N-dimensional block with N = 2; every vector ``(B, H)``)::

        H = [h^1_{r,c-1} ; h^2_{r-1,c} ; x_rc]                           (B, 2H + F)
        (h^1_rc, m^1_rc) = LSTM(H, m^1_{r,c-1}, W_1)
        (h^2_rc, m^2_rc) = LSTM(H, m^2_{r-1,c}, W_2)
        output_rc = [h^1_rc ; h^2_rc]                                     (B, 2H)

    with LSTM the transform of :func:`lstm_transform`. Neither dimension has priority. The
    input enters H directly, as x_t does in the paper's one-dimensional LSTM (H = [I x_t ; h]):
    W_i's last F columns are the input's projection, applied to every block in one product.
    x_rc is the block's patch flattened in the order (channel, row, column), F = channels·p²
    (what ``torch.nn.Unfold`` gives). With ``num_layers`` > 1 grids are stacked: layer l + 1
    reads layer l's outputs as its x_rc (F = 2H). Choices the paper leaves open: this way of
    entering the input, the outputs read (both hidden vectors), one bias per transform, and
    initialisation (U(-1/√H, 1/√H), forget gate bias ``forget_bias``).

    The blocks of one anti-diagonal r + c = d depend only on the diagonal d - 1, so they are
    computed together as one batched product: R + C - 1 sequential steps instead of R·C.

    Args:
        in_channels: channels of the image. hidden_size: H.
        patch_size: p, pixels per block along each side; the image's height and width must be
            multiples of it.
        num_layers: stacked 2-D grids.
        output_inside, forget_bias: as in :class:`LSTMTransform`.
        recurrent_init: ``"uniform"`` (default) or ``"orthogonal"``: the columns that read
            h^1 and h^2 start orthogonal, per gate (:class:`LSTMTransform`).

    Parameters: ``row.{l}`` and ``col.{l}`` (:class:`LSTMTransform`, W_1 and W_2 of layer l),
    each ``weight`` ``(4H, 2H + F)`` with columns h^1, h^2, x and ``bias`` ``(4H,)``.

    Shapes: images ``(B, channels, height, width)`` → :class:`Grid2dOutput` with ``outputs``
    ``(B, R, C, 2H)``, R = height / p, C = width / p, and ``final`` ``(B, 2H)``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_size: int,
        *,
        patch_size: int = 1,
        num_layers: int = 1,
        output_inside: bool = True,
        forget_bias: float = 1.0,
        recurrent_init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("patch_size", patch_size)
        check_positive_int("num_layers", num_layers)
        self.in_channels, self.hidden_size = in_channels, hidden_size
        self.patch_size, self.num_layers = patch_size, num_layers
        H = hidden_size
        options: dict[str, Any] = {
            "output_inside": output_inside,
            "forget_bias": forget_bias,
            "recurrent_init": recurrent_init,
            "hidden_inputs": 2,
            "device": device,
            "dtype": dtype,
        }
        sizes = [in_channels * patch_size**2] + [2 * H] * (num_layers - 1)  # F of each layer
        self.row = nn.ModuleList(LSTMTransform(2 * H + f, H, **options) for f in sizes)
        self.col = nn.ModuleList(LSTMTransform(2 * H + f, H, **options) for f in sizes)

    @property
    def output_inside(self) -> bool:
        return self.transforms(0)[0].output_inside

    def transforms(self, layer: int) -> tuple[LSTMTransform, LSTMTransform]:
        """The row and column transforms (W_1, W_2) of one layer."""
        row, col = self.row[layer], self.col[layer]
        assert isinstance(row, LSTMTransform)
        assert isinstance(col, LSTMTransform)
        return row, col

    def patches(self, images: Tensor) -> Tensor:
        """The blocks' inputs: ``(B, channels, R·p, C·p)`` → ``(B, R, C, channels·p²)``."""
        B, ch, height, width = images.shape
        p = self.patch_size
        R, C = height // p, width // p
        x = images.reshape(B, ch, R, p, C, p).permute(0, 2, 4, 1, 3, 5)  # (B, R, C, ch, p, p)
        return x.reshape(B, R, C, ch * p * p)

    def forward(self, images: Tensor) -> Grid2dOutput:
        x = self.patches(self._check(images))
        for layer in range(self.num_layers):
            x = self._grid(*self.transforms(layer), x)
        return Grid2dOutput(x, x[:, -1, -1])

    def _grid(self, row: LSTMTransform, col: LSTMTransform, x: Tensor) -> Tensor:
        """One 2-D grid over block inputs ``x`` ``(B, R, C, F)`` → outputs ``(B, R, C, 2H)``,
        one anti-diagonal at a time."""
        B, R, C, _ = x.shape
        H = self.hidden_size
        W_1h, W_1x = row.weight[:, : 2 * H], row.weight[:, 2 * H :]  # columns [h^1 ; h^2], x
        W_2h, W_2x = col.weight[:, : 2 * H], col.weight[:, 2 * H :]
        W_h = torch.cat([W_1h, W_2h])  # (8H, 2H): both transforms' product with [h^1 ; h^2]
        xp = F.linear(x, torch.cat([W_1x, W_2x]), torch.cat([row.bias, col.bias]))  # (B, R, C, 8H)
        blocks = [
            (r, d - r)
            for d in range(R + C - 1)
            for r in range(max(0, d - C + 1), min(d, R - 1) + 1)
        ]
        order = torch.tensor([r * C + c for r, c in blocks], device=x.device)
        sizes = [min(d, R - 1) - max(0, d - C + 1) + 1 for d in range(R + C - 1)]
        in_order = xp.reshape(B, R * C, 8 * H).index_select(1, order)  # diagonal by diagonal
        diagonals = torch.split(in_order, sizes, dim=1)
        zero = x.new_zeros(B, H)
        # The last block computed in each row r: its (h^1, m^1) feed (r, c + 1) on the next
        # diagonal and its (h^2, m^2) feed (r + 1, c).
        h_1, m_1 = [zero] * R, [zero] * R
        h_2, m_2 = [zero] * (R + 1), [zero] * (R + 1)  # shifted by one: index r holds row r - 1
        outputs = []
        for d, xp_d in enumerate(diagonals):
            rows = range(max(0, d - C + 1), max(0, d - C + 1) + xp_d.shape[1])
            h_in = torch.cat(
                [torch.stack([h_1[r] for r in rows], 1), torch.stack([h_2[r] for r in rows], 1)],
                dim=-1,
            )  # (B, n, 2H): [h^1_{r,c-1} ; h^2_{r-1,c}]
            pre_1, pre_2 = (xp_d + F.linear(h_in, W_h)).chunk(2, dim=-1)  # (B, n, 4H) each
            h_1d, m_1d = lstm_transform(
                pre_1, torch.stack([m_1[r] for r in rows], 1), output_inside=row.output_inside
            )
            h_2d, m_2d = lstm_transform(
                pre_2, torch.stack([m_2[r] for r in rows], 1), output_inside=col.output_inside
            )
            for r, h1, m1, h2, m2 in zip(
                rows, h_1d.unbind(1), m_1d.unbind(1), h_2d.unbind(1), m_2d.unbind(1), strict=True
            ):
                h_1[r], m_1[r], h_2[r + 1], m_2[r + 1] = h1, m1, h2, m2
            outputs.append(torch.cat([h_1d, h_2d], dim=-1))
        back = torch.argsort(order)  # diagonal order → row-major order
        return torch.cat(outputs, dim=1).index_select(1, back).reshape(B, R, C, 2 * H)

    def _check(self, images: object) -> Tensor:
        x = check_input_tensor(images, what="images", like=self.transforms(0)[0].weight)
        p = self.patch_size
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise LstmkitValueError(
                f"images must be (B, channels, height, width) with channels = "
                f"{self.in_channels}, got shape {tuple(x.shape)}"
            )
        if x.shape[2] % p or x.shape[3] % p or x.shape[2] == 0 or x.shape[3] == 0:
            raise LstmkitValueError(
                f"images' height and width must be positive multiples of patch_size = {p}, "
                f"got {x.shape[2]} × {x.shape[3]}"
            )
        return x

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.hidden_size}"]
        if self.patch_size != 1:
            parts.append(f"patch_size={self.patch_size}")
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        return ", ".join(parts)
