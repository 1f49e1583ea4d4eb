"""Multi-head self-attention on token sequences and over all positions of a video tensor.

Padded sequences (after a reducer that keeps a different number of tokens per sample, such as
ATS) carry a key mask ``[B, N]``: ``True`` marks real tokens; padded ones take no part as keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class AttentionContext:
    """Queries, keys and values of one self-attention call, split into heads.

    Shapes: ``query``, ``key``, ``value`` ``[B, H, N, C/H]``; ``key_mask`` ``[B, N]`` (``True``
    for real tokens) or None when every token is real.
    """

    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    key_mask: torch.Tensor | None = None

    @property
    def shape(self) -> torch.Size:
        """``[B, N, C]`` of the token sequence the attention runs on."""
        batch, heads, length, head_dim = self.query.shape
        return torch.Size([batch, length, heads * head_dim])

    def weights(self, rows: slice | None = None) -> torch.Tensor:
        """Softmax attention weights ``[B, H, M, N]`` of the queries ``rows`` (default all):
        ``softmax(q k^T / sqrt(C/H))`` over the real keys."""
        query = self.query if rows is None else self.query[:, :, rows]
        logits = query @ self.key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        if self.key_mask is not None:
            logits = logits.masked_fill(~self.key_mask[:, None, None, :], float("-inf"))
        return logits.softmax(dim=-1)


def attend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    key_mask: torch.Tensor | None = None, dropout: float = 0.0,
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` on fused kernels: ``[B, H, M, d]`` queries against
    ``[B, H, N, d]`` keys and values -> ``[B, H, M, d]``; padded keys (``key_mask`` False) are
    ignored."""
    mask = None if key_mask is None else key_mask[:, None, None, :]
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout)


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

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N, C] -> [B, N, C]``; tokens where ``key_mask`` ``[B, N]`` is False are ignored
        as keys."""
        query, key, value = self.project(x)
        return self.merge(attend(query, key, value, key_mask, self.dropout_rate()))

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of ``x`` ``[B, N, C]``, each ``[B, H, N, C/H]``."""
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return query, key, value

    def merge(self, attended: torch.Tensor) -> torch.Tensor:
        """Heads ``[B, H, M, C/H]`` -> output projection ``[B, M, C]``."""
        batch, heads, length, head_dim = attended.shape
        out = attended.transpose(1, 2).reshape(batch, length, heads * head_dim)
        return self.proj_drop(self.proj(out))

    def dropout_rate(self) -> float:
        """Dropout on the attention weights: ``attn_dropout`` in training, else 0."""
        return self.attn_dropout if self.training else 0.0


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
