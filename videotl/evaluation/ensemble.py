"""Multi-view ensembling: merges the scores of each video's views, across processes, counting
every video exactly once."""

from __future__ import annotations

import torch

from videotl.utils.distributed import all_gather_objects

AGGREGATIONS = ("mean", "max")


class ViewEnsembler:
    """Accumulates view scores per video; ``aggregation`` is "mean" or "max" over views.

    Views may arrive in any order, split across processes; ``gather()`` merges what every
    process saw. Views that could not be decoded (``ok`` False) are counted, not scored.

    Args:
        num_videos: videos ``V`` in the evaluated set.
        num_classes: classes ``K``.
        aggregation: "mean" or "max".
    """

    def __init__(self, num_videos: int, num_classes: int, aggregation: str) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.aggregation = aggregation
        fill = float("-inf") if aggregation == "max" else 0.0
        self.scores = torch.full((num_videos, num_classes), fill, dtype=torch.float64)
        self.views = torch.zeros(num_videos, dtype=torch.long)
        self.failed_views = torch.zeros(num_videos, dtype=torch.long)

    def add(self, video_index: torch.Tensor, scores: torch.Tensor, ok: torch.Tensor) -> None:
        """Adds a batch: ``video_index [B]``, ``scores [B, K]`` (probabilities), ``ok [B]``."""
        video_index, ok = video_index.long().cpu(), ok.bool().cpu()
        self.failed_views.index_add_(0, video_index[~ok], torch.ones_like(video_index[~ok]))
        self._merge(video_index[ok], scores[ok].detach().double().cpu(),
                    torch.ones_like(video_index[ok]))

    def _merge(self, index: torch.Tensor, scores: torch.Tensor, views: torch.Tensor) -> None:
        if self.aggregation == "max":
            expanded = index[:, None].expand_as(scores)
            self.scores.scatter_reduce_(0, expanded, scores, "amax", include_self=True)
        else:
            self.scores.index_add_(0, index, scores)
        self.views.index_add_(0, index, views)

    def gather(self) -> None:
        """Merges the partial results of all processes (no-op in one process)."""
        seen = torch.nonzero(self.views + self.failed_views).flatten()
        parts = all_gather_objects(
            (seen, self.scores[seen], self.views[seen], self.failed_views[seen])
        )
        if len(parts) == 1:
            return
        self.scores.fill_(float("-inf") if self.aggregation == "max" else 0.0)
        self.views.zero_()
        self.failed_views.zero_()
        for index, scores, views, failed in parts:
            self._merge(index, scores, views)
            self.failed_views.index_add_(0, index, failed)

    def video_scores(self) -> torch.Tensor:
        """``[V, K]``: the mean or max over each video's decoded views (NaN where none)."""
        merged = self.scores.clone()
        if self.aggregation == "mean":
            merged /= self.views.clamp(min=1)[:, None]
        merged[self.views == 0] = float("nan")
        return merged
