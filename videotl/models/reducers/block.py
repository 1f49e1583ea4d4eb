"""The encoder block as token reducers use it: with a query reducer (ATS) choosing the tokens
that keep an output, and reporting the attention each token received (Token Pooling's
significance in the next block)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from videotl.models.layers.attention import AttentionContext, attend
from videotl.models.layers.transformer import EncoderBlock
from videotl.models.reducers.base import QueryReducer, QuerySelection


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


class ReducingEncoderBlock(EncoderBlock):
    """``EncoderBlock`` (same arguments, submodules and checkpoint layout) whose forward also
    takes the options of token reduction.

    Shapes:
        input ``[B, N, C]``; output ``[B, N, C]``, or a ``BlockOutput`` with ``[B, M, C]`` tokens.
    """

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        queries: QueryReducer | None = None,
        num_prefix: int = 0,
        frames: int = 1,
        received: bool = False,
    ) -> torch.Tensor | BlockOutput:
        """``block(x)``: ``[B, N, C] -> [B, N, C]``. Options for token reduction:

        Args:
            key_mask: ``[B, N]``, False for padded tokens, which take no part as keys.
            queries: a query reducer (ATS): called with the block's ``AttentionContext`` and
                ``num_prefix``, ``frames`` (the sequence's layout), it returns the
                ``QuerySelection`` of tokens that keep an output: only those are attended from,
                added to their residual and passed through the MLP (``[B, M, C]``).
            received: also return the attention each token received (summed over heads and real
                queries; no gradient), computing the attention weights explicitly: the same
                multiply-adds as the fused kernel, with ``[B, H, N, N]`` weights in memory.

        Returns:
            The output tokens, or a ``BlockOutput`` when ``queries`` or ``received`` is given.
        """
        if queries is None and not received:
            return super().forward(x, key_mask)
        context = AttentionContext(*self.attn.project(self.norm1(x)), key_mask)
        selection = None
        if queries is not None:
            selection = queries(context, num_prefix=num_prefix, frames=frames)
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
