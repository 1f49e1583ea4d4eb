"""The pre-LayerNorm Transformer encoder block of ViT and ViViT, with stochastic depth, and what
token reducers read from it (``videotl.models.token_reducers``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from videotl.models.layers.attention import AttentionContext, MultiHeadSelfAttention, attend
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


@dataclass
class QuerySelection:
    """The tokens of a block's input sequence that keep an output (chosen by a query reducer
    such as ATS), padded to a common count.

    Shapes: ``index`` ``[B, M]`` (positions in the input sequence; padding entries point at any
    position), ``mask`` ``[B, M]`` (``True`` for real entries) or None when all are real.
    """

    index: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass
class BlockOutput:
    """An encoder block's output with what its reducer options asked for.

    Shapes: ``tokens`` ``[B, M, C]`` (``M = N`` unless queries were selected); ``selection`` as
    returned by the query reducer; ``received`` ``[B, N]``: the attention each input token
    received, summed over heads and over the real queries.
    """

    tokens: torch.Tensor
    selection: QuerySelection | None = None
    received: torch.Tensor | None = None


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
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadSelfAttention(dim, num_heads, True, attention_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_dim, dim, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        select: Callable[[AttentionContext], QuerySelection] | None = None,
        received: bool = False,
    ) -> torch.Tensor | BlockOutput:
        """``block(x)``: ``[B, N, C] -> [B, N, C]``. Options for token reduction:

        Args:
            key_mask: ``[B, N]``, False for padded tokens, which take no part as keys.
            select: a query reducer (ATS): given the block's ``AttentionContext`` it returns the
                ``QuerySelection`` of tokens that keep an output: only those are attended from,
                added to their residual and passed through the MLP (``[B, M, C]``).
            received: also return the attention each token received (summed over heads and real
                queries; no gradient), computing the attention weights explicitly: the same
                multiply-adds as the fused kernel, with ``[B, H, N, N]`` weights in memory.

        Returns:
            The output tokens, or a ``BlockOutput`` when ``select`` or ``received`` is given.
        """
        if select is None and not received:
            x = x + self.drop_path(self.attn(self.norm1(x), key_mask))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        context = AttentionContext(*self.attn.project(self.norm1(x)), key_mask)
        selection = None if select is None else select(context)
        if selection is not None:
            x = _rows(x, selection.index)
            context = replace(context, query=_rows(context.query, selection.index))
        attended, received_attention = self._attend(context, _query_mask(selection, key_mask),
                                                    received)
        x = x + self.drop_path(self.attn.merge(attended))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return BlockOutput(x, selection, received_attention)

    def _attend(
        self, context: AttentionContext, query_mask: torch.Tensor | None, received: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention output ``[B, H, M, C/H]`` and, if ``received``, the attention each token
        received ``[B, N]`` (from explicit weights, without gradient)."""
        rate = self.attn.dropout_rate()
        if not received:
            return attend(context.query, context.key, context.value, context.key_mask, rate), None
        weights = context.weights()
        attended = F.dropout(weights, rate, self.training) @ context.value
        return attended, _received(weights.detach(), query_mask)


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` ``[B, M]`` along the token dimension of ``[B, N, C]`` or
    ``[B, H, N, C/H]`` -> ``[B, M, C]`` or ``[B, H, M, C/H]``."""
    if x.ndim == 3:
        return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
    return x.gather(2, index[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[-1]))


def _query_mask(
    selection: QuerySelection | None, key_mask: torch.Tensor | None
) -> torch.Tensor | None:
    """``[B, M]``: which queries are real tokens."""
    return key_mask if selection is None else selection.mask


def _received(weights: torch.Tensor, query_mask: torch.Tensor | None) -> torch.Tensor:
    """``[B, H, M, N]`` attention weights -> ``[B, N]`` summed over heads and real queries."""
    if query_mask is not None:
        weights = weights * query_mask[:, None, :, None]
    return weights.sum(dim=(1, 2))
