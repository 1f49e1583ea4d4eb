"""Token Pooling (Marin et al., 2021): downsampling tokens by clustering them.

The ``P`` tokens of each temporal index are clustered into ``K`` clusters, minimising the
weighted reconstruction error ``sum_i w_i ||x_i - c(x_i)||^2``; the output is one token per
cluster. The weights ``w_i`` are the tokens' significance: the attention each received in the
block before (PoWER-BERT's score: summed over heads and queries). The clusters start from the
``K`` most significant tokens and run a fixed number of iterations of

- weighted K-medoids (the default): assign every token to its nearest medoid, then make each
  cluster's medoid the member with the least weighted squared distance to the others; the output
  tokens are the medoids;
- weighted K-means: assign every token to its nearest centre, then move each centre to its
  members' weighted mean; the output tokens are the centres.

With 0 iterations the output is the top-``K`` tokens by significance. With ``K = P`` every token
is its own cluster: the output is the input, ordered by significance.

Gradients: assignments and significance are constants (an ``argmin`` and a ``top-k`` have none);
the output tokens are differentiable functions of the input tokens (a medoid is a copy of its
token; a centre is a weighted mean of its members), which is what training needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from videotl.models.reducers.base import InputReducer

METHODS = ("kmedoids", "kmeans")


class TokenPooling(InputReducer):
    """Token Pooling as an input reducer (see the module docstring).

    Args:
        num_tokens: ``K`` clusters (output tokens) per temporal index.
        clustering_iterations: clustering iterations after the top-``K`` initialisation.
        method: ``"kmedoids"`` or ``"kmeans"``.

    Shapes:
        tokens ``[B, T', P, C]``, significance ``[B, T', P]``; output ``[B, T', K, C]``.
    """

    needs_significance = True

    def __init__(
        self, num_tokens: int, clustering_iterations: int = 5, method: str = "kmedoids"
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"Token Pooling method must be one of {METHODS}, got {method!r}")
        if clustering_iterations < 0:
            raise ValueError(f"Token Pooling clustering_iterations must be >= 0, "
                             f"got {clustering_iterations}")
        self.num_tokens = num_tokens
        self.clustering_iterations = clustering_iterations
        self.method = method

    def forward(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None = None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if significance is None:
            raise ValueError("Token Pooling weighs tokens by their significance (the attention "
                             "they received in the block before); none was given")
        batch, frames, positions, _ = tokens.shape
        if self.num_tokens > positions:
            raise ValueError(f"Token Pooling cannot make {self.num_tokens} clusters of "
                             f"{positions} tokens per temporal index")
        cluster = weighted_kmedoids if self.method == "kmedoids" else weighted_kmeans
        pooled = cluster(tokens.flatten(0, 1), significance.flatten(0, 1).detach(),
                         self.num_tokens, self.clustering_iterations)
        return pooled.unflatten(0, (batch, frames))

    def extra_repr(self) -> str:
        return (f"num_tokens={self.num_tokens}, clustering_iterations="
                f"{self.clustering_iterations}, method={self.method}")


def weighted_kmeans(
    x: torch.Tensor, weights: torch.Tensor, num_clusters: int, iterations: int
) -> torch.Tensor:
    """Weighted K-means of ``x`` ``[G, P, C]`` with weights ``[G, P]`` into ``[G, K, C]`` centres,
    started from the ``K`` heaviest tokens; an empty cluster keeps its centre."""
    centres = _gather(x, weights.topk(num_clusters, dim=-1).indices)
    for _ in range(iterations):
        with torch.no_grad():
            members = F.one_hot(_nearest(x, centres), num_clusters).to(x.dtype)  # [G, P, K]
            weighted = members * weights[..., None].to(x.dtype)
            mass = weighted.sum(dim=1)[..., None]  # [G, K, 1]
        means = weighted.transpose(1, 2) @ x / mass.clamp_min(torch.finfo(x.dtype).tiny)
        centres = torch.where(mass > 0, means, centres)
    return centres


def weighted_kmedoids(
    x: torch.Tensor, weights: torch.Tensor, num_clusters: int, iterations: int
) -> torch.Tensor:
    """Weighted K-medoids of ``x`` ``[G, P, C]`` with weights ``[G, P]``: the ``[G, K, C]``
    medoid tokens, started from the ``K`` heaviest tokens; an empty cluster keeps its medoid."""
    with torch.no_grad():
        medoids = weights.topk(num_clusters, dim=-1).indices  # [G, K]
        if iterations:
            distances = _squared_distances(x, x)  # [G, P, P]
        for _ in range(iterations):
            to_medoids = distances.gather(2, medoids[:, None, :].expand(-1, x.shape[1], -1))
            members = F.one_hot(to_medoids.argmin(dim=-1), num_clusters).float()  # [G, P, K]
            # cost[j, k]: weighted squared distance of cluster k's members to token j.
            cost = distances.transpose(1, 2) @ (members * weights[..., None].float())
            cost = cost.masked_fill(members == 0, float("inf"))  # only members are candidates
            medoids = torch.where(members.sum(dim=1) > 0, cost.argmin(dim=1), medoids)
    return _gather(x, medoids)


def _nearest(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``[G, P]``: index of the nearest of ``centres`` ``[G, K, C]`` for each token."""
    return _squared_distances(x, centres).argmin(dim=-1)


def _squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` ``[G, P, Q]`` (float32, no gradient) for ``x`` ``[G, P, C]`` and
    ``y`` ``[G, Q, C]``."""
    x, y = x.detach().float(), y.detach().float()
    squared = x.square().sum(-1)[..., :, None] + y.square().sum(-1)[..., None, :]
    return (squared - 2 * x @ y.transpose(1, 2)).clamp_min(0)


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` ``[G, K]`` of ``x`` ``[G, P, C]`` -> ``[G, K, C]``."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
