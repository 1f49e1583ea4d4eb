"""Multi-head self-attention on token sequences and over all positions of a video tensor."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadSelfAttention(nn.Module):
    """Standard multi-head self-attention (Vaswani et al.) on fused SDPA kernels.

    Args:
        dim: token channels ``C`` (divisible by ``num_heads``).
        num_heads: attention heads.
        qkv_bias: biases on the query/key/value projection.
        attn_dropout: dropout on the attention weights (training only).
        proj_dropout: dropout after the output projection.

    Shapes:
        input ``[B, N, C]``; output ``[B, N, C]``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_dropout: float = 0.0,
        proj_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = attn_dropout
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, C/heads]
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_dropout if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(batch, length, dim)
        return self.proj_drop(self.proj(out))


class JointSpaceTimeAttention(nn.Module):
    """Self-attention over all ``T*H*W`` positions of a video tensor (ViViT-style joint
    space-time attention), pre-LayerNorm, with a residual connection.

    Args:
        dim: channels ``C``.
        num_heads: attention heads (8 in the paper's Table 4).

    Shapes:
        input ``[B, C, T, H, W]``; output ``[B, C, T, H, W]``.
    """

    def __init__(self, dim: int, num_heads: int = 8) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)  # [B, T*H*W, C]
        tokens = tokens + self.attn(self.norm(tokens))
        return tokens.transpose(1, 2).reshape(x.shape)
