"""Resampling learned position embeddings to another grid of patches."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_grid_embedding(embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bicubic resampling of position embeddings laid out on a grid (ViT's recipe for fine-tuning
    at another resolution), computed in float32.

    Shapes: ``[N, h, w, C] -> [N, grid[0], grid[1], C]`` (returned as is when the grid matches).
    """
    if tuple(embed.shape[1:3]) == tuple(grid):
        return embed
    resized = F.interpolate(
        embed.permute(0, 3, 1, 2).float(), size=tuple(grid), mode="bicubic", align_corners=False
    )
    return resized.permute(0, 2, 3, 1).to(embed.dtype)
