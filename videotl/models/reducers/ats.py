"""Adaptive Token Sampling (ATS; Fayyaz et al., ECCV 2022): a parameter-free query reducer.

Inside an encoder block, ATS scores every patch token ``j`` by the attention the class token
pays it, weighted by the norm of its value, summed over heads::

    S_j = sum_h A^h[cls, j] * ||V^h_j||,  normalised to sum to 1 over each temporal index

and samples up to ``K`` tokens per temporal index by inverse transform sampling: the scores are
sorted (ascending) into a cumulative distribution, and the ``K`` points
``r_k = (k - 1/2) / K`` (evaluation; in training ``(k - 1 + u_k) / K`` with ``u_k ~ U[0, 1)``)
each pick the first token whose cumulative score reaches ``r_k``. A token picked several times is
kept once, so ``K' <= K`` tokens remain, fewer when the scores are concentrated. A temporal index
with at most ``K`` real tokens keeps them all. The class token is always kept. The block then
computes the attention output only for the kept tokens, ``O = A^s V`` (their attention rows
against all keys), and runs its residual and MLP on them.

Batches: each sample and temporal index keeps its own count. The kept tokens are moved first (in
their original order) and every temporal index is padded to the batch's largest count ``m``; the
selection's mask marks padding, which later blocks ignore as keys, so results equal per-sample
processing.

ATS has no parameters: it can be inserted into a trained ViT/ViViT (supplement §3).
"""

from __future__ import annotations

import torch

from videotl.models.layers.attention import AttentionContext
from videotl.models.reducers.base import QueryReducer, QuerySelection


class AdaptiveTokenSampler(QueryReducer):
    """ATS as a query reducer (see the module docstring).

    Args:
        max_tokens: ``K``, the most tokens kept per temporal index.

    Attributes:
        tokens_when_counting: kept tokens per temporal index assumed on the ``meta`` device,
            where the count cannot be computed (FLOP counting); None: ``K``.

    Shapes:
        ``context`` over ``[B, num_prefix + frames * n, C]`` tokens -> selection ``[B, M]`` with
        ``M = num_prefix + frames * m``, ``m <= min(K, n)``.
    """

    needs_class_token = True

    def __init__(self, max_tokens: int) -> None:
        super().__init__()
        if max_tokens < 1:
            raise ValueError(f"ATS needs max_tokens >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.tokens_when_counting: int | None = None

    def forward(self, context: AttentionContext, num_prefix: int, frames: int) -> QuerySelection:
        if num_prefix < 1:
            raise ValueError("ATS scores tokens by the class token's attention; the sequence has "
                             "no class token (use classifier 'token')")
        batch, length, _ = context.shape
        per_index = (length - num_prefix) // frames
        if self.max_tokens >= per_index:  # nothing to drop: no scores needed
            index = torch.arange(length, device=context.query.device).expand(batch, -1)
            return QuerySelection(index, context.key_mask)
        with torch.no_grad():
            scores = significance(context, num_prefix, frames)
            if context.query.is_meta:  # counting: shapes only, the count cannot be computed
                kept = min(self.tokens_when_counting or self.max_tokens, per_index)
                order = torch.arange(kept, device=context.query.device).expand(batch, frames, -1)
                return _selection(order, None, num_prefix, per_index)
            valid = _real_tokens(context, num_prefix, frames)
            kept = sample_tokens(scores.flatten(0, 1), valid.flatten(0, 1), self.max_tokens,
                                 random=self.training).view_as(valid)
            return pack_kept(kept, num_prefix)

    def extra_repr(self) -> str:
        return f"max_tokens={self.max_tokens}"


def significance(context: AttentionContext, num_prefix: int, frames: int) -> torch.Tensor:
    """ATS scores ``[B, T', n]`` (float32): class-token attention times value norm, summed
    over heads (padded keys score 0); not normalised."""
    attention = context.weights(rows=slice(0, 1))[:, :, 0].float()  # [B, H, N]
    scores = (attention * context.value.float().norm(dim=-1)).sum(dim=1)  # [B, N]
    return scores[:, num_prefix:].unflatten(1, (frames, -1))


def sample_tokens(
    scores: torch.Tensor, valid: torch.Tensor, num_samples: int, random: bool = False
) -> torch.Tensor:
    """Inverse transform sampling of up to ``num_samples`` distinct tokens per row.

    Args:
        scores: ``[G, n]`` non-negative scores (normalised here per row; a row scoring 0
            everywhere is sampled uniformly over its real tokens).
        valid: ``[G, n]`` real tokens; the others are never kept.
        num_samples: ``K``; a row with at most ``K`` real tokens keeps them all.
        random: jittered points ``(k + u_k) / K`` instead of ``(k + 1/2) / K``.

    Returns:
        ``[G, n]`` bool: the kept tokens.
    """
    groups, width = scores.shape
    scores = scores * valid
    total = scores.sum(dim=-1, keepdim=True)
    scores = torch.where(total > 0, scores, valid.to(scores.dtype))
    ordered, order = scores.sort(dim=-1, stable=True)
    cdf = ordered.cumsum(dim=-1)
    cdf = cdf / cdf[:, -1:]
    offsets = torch.rand(groups, num_samples, device=scores.device) if random else 0.5
    points = (torch.arange(num_samples, device=scores.device) + offsets) / num_samples
    positions = torch.searchsorted(cdf, points.expand(groups, -1).contiguous())
    picked = order.gather(1, positions.clamp_max(width - 1))
    kept = torch.zeros_like(valid).scatter_(1, picked, True) & valid
    keep_all = valid.sum(dim=-1, keepdim=True) <= num_samples
    return torch.where(keep_all, valid, kept)


def pack_kept(kept: torch.Tensor, num_prefix: int) -> QuerySelection:
    """Kept tokens ``[B, T', n]`` (bool) -> the selection of the prefix then, per temporal
    index, its kept tokens first (original order), padded to the largest count."""
    counts = kept.sum(dim=-1)  # [B, T']
    width = int(counts.max())
    order = torch.argsort((~kept).to(torch.uint8), dim=-1, stable=True)[..., :width]
    slots = torch.arange(width, device=kept.device) < counts[..., None]  # [B, T', m]
    return _selection(order, None if bool(slots.all()) else slots, num_prefix, kept.shape[-1])


def _selection(
    order: torch.Tensor, slots: torch.Tensor | None, num_prefix: int, per_index: int
) -> QuerySelection:
    """Positions ``order`` ``[B, T', m]`` within each temporal index -> sequence positions."""
    batch, frames, _ = order.shape
    device = order.device
    offsets = num_prefix + torch.arange(frames, device=device)[:, None] * per_index
    prefix = torch.arange(num_prefix, device=device).expand(batch, -1)
    index = torch.cat([prefix, (order + offsets).flatten(1)], dim=1)
    if slots is None:
        return QuerySelection(index)
    real_prefix = torch.ones(batch, num_prefix, dtype=torch.bool, device=device)
    return QuerySelection(index, torch.cat([real_prefix, slots.flatten(1)], dim=1))


def _real_tokens(context: AttentionContext, num_prefix: int, frames: int) -> torch.Tensor:
    """``[B, T', n]``: which patch tokens are real (not padding)."""
    if context.key_mask is not None:
        return context.key_mask[:, num_prefix:].unflatten(1, (frames, -1))
    batch, length, _ = context.shape
    size = (batch, frames, (length - num_prefix) // frames)
    return torch.ones(size, dtype=torch.bool, device=context.query.device)


def set_counted_tokens(model: torch.nn.Module, tokens: int | None) -> list[AdaptiveTokenSampler]:
    """Makes every ATS module of ``model`` keep ``tokens`` per temporal index (each at most its
    ``K``) when counted on the meta device; None: its ``K``. Returns the ATS modules."""
    samplers = [m for m in model.modules() if isinstance(m, AdaptiveTokenSampler)]
    for sampler in samplers:
        sampler.tokens_when_counting = None if tokens is None else min(tokens, sampler.max_tokens)
    return samplers
