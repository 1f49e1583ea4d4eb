"""Self-attention along one axis of a video tensor: within each frame (spatial) or along time at
each location (temporal), as in the divided space-time attention of TimeSformer.

Both are pre-LayerNorm, standard multi-head self-attention with a residual connection, like
``JointSpaceTimeAttention`` but over ``H*W`` or ``T`` positions instead of all ``T*H*W``.
"""

from __future__ import annotations

import torch
from torch import nn

from videotl.models.layers.attention import MultiHeadSelfAttention


class _AxisAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int = 8) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads)

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[groups, length, C] -> [groups, length, C]``: attention within each group."""
        return tokens + self.attn(self.norm(tokens))


class SpatialAttention(_AxisAttention):
    """Self-attention among the ``H*W`` positions of each frame; frames do not interact.

    Args:
        dim: channels ``C`` (divisible by ``num_heads``).
        num_heads: attention heads (8 in the paper's Table 5).

    Shapes:
        input ``[B, C, T, H, W]``; output ``[B, C, T, H, W]``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        tokens = x.permute(0, 2, 3, 4, 1).reshape(batch * frames, height * width, channels)
        out = self.attend(tokens).view(batch, frames, height, width, channels)
        return out.permute(0, 4, 1, 2, 3)


class TemporalAttention(_AxisAttention):
    """Self-attention among the ``T`` frames at each spatial location; locations do not interact.

    Args:
        dim: channels ``C`` (divisible by ``num_heads``).
        num_heads: attention heads (8 in the paper's Table 5).

    Shapes:
        input ``[B, C, T, H, W]``; output ``[B, C, T, H, W]``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        tokens = x.permute(0, 3, 4, 2, 1).reshape(batch * height * width, frames, channels)
        out = self.attend(tokens).view(batch, height, width, frames, channels)
        return out.permute(0, 4, 3, 1, 2)
