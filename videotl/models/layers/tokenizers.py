"""Alternatives to TokenLearner's input-conditioned spatial attention (the paper's §5.3 and
Table 6): each turns every frame into ``S`` token vectors, like ``TokenLearner``.

- ``FixedGridTokenizer``: average of each cell of a fixed grid of ``S`` cells;
- ``DenseTokenizer``: a dense layer over the positions of the frame generates the tokens;
- ``PooledMlpTokenizer``: spatial global average pooling, then an MLP generates ``S`` tokens;
- ``PriorOnlyTokenizer``: TokenLearner's weighted pooling with learned maps that do not depend
  on the input (a spatial prior).

``DenseTokenizer`` and ``PriorOnlyTokenizer`` hold one weight per position of a
``grid_size x grid_size`` frame (8 x 8: res5 of a 256 x 256 test crop); frames of another size
(7 x 7 for 224 x 224 training crops) are handled by bilinear resampling, described in each class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from videotl.models.layers.mlp import Mlp


def fixed_grid_shape(num_tokens: int) -> tuple[int, int]:
    """``(rows, cols)`` with ``rows * cols == num_tokens`` and ``rows <= cols`` as close as
    possible: 8 -> (2, 4), 9 -> (3, 3), 16 -> (4, 4), 7 -> (1, 7)."""
    rows = max(d for d in range(1, math.isqrt(num_tokens) + 1) if num_tokens % d == 0)
    return rows, num_tokens // rows


def _frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, H, W] -> [B*T, C, H, W]``."""
    batch, channels, frames, height, width = x.shape
    return x.transpose(1, 2).reshape(batch * frames, channels, height, width)


class FixedGridTokenizer(nn.Module):
    """Splits each frame into a fixed ``rows x cols`` grid (``fixed_grid_shape(S)``) and averages
    each cell: token ``i`` of frame ``t`` is the mean of ``x_t`` over cell ``i`` (row-major).

    When ``H`` or ``W`` is not a multiple of the grid, cells follow adaptive average pooling
    (cell ``r`` spans rows ``floor(r*H/rows)`` to ``ceil((r+1)*H/rows)``, so neighbours may share
    a row). No parameters.

    Args:
        num_tokens: tokens ``S`` per frame (the number of cells).

    Shapes:
        input ``[B, C, T, H, W]``; output tokens ``[B, T, S, C]``.
    """

    def __init__(self, num_tokens: int = 8) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.grid = fixed_grid_shape(num_tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool3d(x, (x.shape[2], *self.grid))  # [B, C, T, rows, cols]
        return cells.flatten(3).permute(0, 2, 3, 1)


class DenseTokenizer(nn.Module):
    """Generates tokens directly with a dense layer over the positions of each frame:
    ``z_{t,i}[c] = sum_p W[i, p] x_{t,p}[c] + b_i``, one linear map ``R^{G*G} -> R^S`` applied to
    every channel (as TokenFuser's map over tokens is).

    Frames of another size than ``G x G`` are first resampled to it (bilinear,
    ``align_corners=False``), so the same weights serve 7 x 7 training and 8 x 8 test grids.

    Args:
        num_tokens: tokens ``S`` per frame.
        grid_size: ``G``, the frame size the dense layer reads.

    Shapes:
        input ``[B, C, T, H, W]``; output tokens ``[B, T, S, C]``.
    """

    def __init__(self, num_tokens: int = 8, grid_size: int = 8) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.grid_size = grid_size
        self.dense = nn.Linear(grid_size * grid_size, num_tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames = x.shape[:3]
        grid = (self.grid_size, self.grid_size)
        frame = _frames(x)
        if frame.shape[-2:] != grid:
            frame = F.interpolate(frame, size=grid, mode="bilinear", align_corners=False)
        tokens = self.dense(frame.flatten(2))  # [B*T, C, S]
        return tokens.view(batch, frames, channels, self.num_tokens).transpose(2, 3)


class PooledMlpTokenizer(nn.Module):
    """Spatial global average pooling per frame, then an MLP that generates ``S`` tokens from it:
    ``[z_{t,1}, ..., z_{t,S}] = MLP(mean_{h,w} x_t)``, with MLP ``C -> hidden -> S*C`` (GELU).

    Args:
        channels: channels ``C``.
        num_tokens: tokens ``S`` per frame.
        hidden_dim: the MLP's hidden width (default ``C``).

    Shapes:
        input ``[B, C, T, H, W]``; output tokens ``[B, T, S, C]``.
    """

    def __init__(self, channels: int, num_tokens: int = 8, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.mlp = Mlp(channels, hidden_dim or channels, num_tokens * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames = x.shape[:3]
        pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # [B, T, C]
        return self.mlp(pooled).view(batch, frames, self.num_tokens, channels)


class PriorOnlyTokenizer(nn.Module):
    """TokenLearner with input-independent maps: ``z_i = mean_{h,w}(alpha_i * x)`` where
    ``alpha_i = sigmoid(P_i)`` and ``P_i`` is a learned ``G x G`` map, the same for every frame
    and every clip. For frames of another size the logits ``P`` are resampled bilinearly
    (``align_corners=False``) to ``H x W`` before the sigmoid. ``P`` starts from a standard normal
    draw, so the ``S`` maps differ from the start.

    Args:
        num_tokens: tokens ``S`` per frame.
        grid_size: ``G``, the size of the learned maps.

    Shapes:
        input ``[B, C, T, H, W]``; output tokens ``[B, T, S, C]``;
        maps (with ``return_maps=True``): ``[B, T, S, H, W]`` in ``(0, 1)``.
    """

    def __init__(self, num_tokens: int = 8, grid_size: int = 8) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.prior = nn.Parameter(torch.randn(num_tokens, grid_size, grid_size))

    def maps(self, height: int, width: int) -> torch.Tensor:
        """The attention maps ``[S, H, W]`` for frames of ``height x width``."""
        logits = self.prior
        if logits.shape[-2:] != (height, width):
            logits = F.interpolate(
                logits[None], size=(height, width), mode="bilinear", align_corners=False
            )[0]
        return torch.sigmoid(logits)

    def forward(
        self, x: torch.Tensor, return_maps: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch, _, frames, height, width = x.shape
        maps = self.maps(height, width)
        tokens = torch.einsum("shw,bcthw->btsc", maps, x) / (height * width)
        if return_maps:
            return tokens, maps.expand(batch, frames, *maps.shape)
        return tokens
