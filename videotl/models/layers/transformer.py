"""The pre-LayerNorm Transformer encoder block of ViT and ViViT, with stochastic depth (the block
with token-reducer options is ``videotl.models.reducers.block``)."""

from __future__ import annotations

import torch
from torch import nn

from videotl.models.layers.attention import MultiHeadSelfAttention
from videotl.models.layers.mlp import Mlp


class DropPath(nn.Module):
    """Stochastic depth: in training, drops a residual branch for a random subset of samples.

    Each sample's branch output is zeroed with probability ``rate`` and otherwise scaled by
    ``1 / (1 - rate)``; in evaluation it is the identity.

    Shapes: input ``[B, ...]``; output like the input.
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class EncoderBlock(nn.Module):
    """``x + MHSA(LN(x))`` then ``x + MLP(LN(x))`` (Dosovitskiy et al. 2021), each branch under
    stochastic depth. Submodule names (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``,
    ``mlp.fc1``, ``mlp.fc2``) follow the common ViT checkpoint layout.

    Args:
        dim: token channels ``C``.
        num_heads: attention heads.
        mlp_dim: hidden width of the MLP (``4 C`` in ViT).
        attention_dropout: dropout on the attention weights.
        dropout: dropout after the attention projection and inside the MLP.
        drop_path: stochastic-depth rate of both residual branches.
        norm_eps: LayerNorm epsilon (``1e-6`` in ViT).
        gelu: the MLP's GELU form, ``"exact"`` (erf: timm) or ``"tanh"`` (Flax, Scenic).

    Shapes:
        input ``[B, N, C]``; output ``[B, N, C]``.
    """

    kind = "encoder block"  # its entry in model statistics

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
        gelu: str = "exact",
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadSelfAttention(dim, num_heads, True, attention_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_dim, dim, dropout, gelu)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N, C] -> [B, N, C]``; ``key_mask`` ``[B, N]`` is False for padded tokens, which
        take no part as keys."""
        x = x + self.drop_path(self.attn(self.norm1(x), key_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))
