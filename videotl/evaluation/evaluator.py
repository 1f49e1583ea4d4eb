"""Multi-view evaluation: run a model over every view of a dataset, merge views per video,
compute metrics, and write them with the per-video scores."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from videotl.evaluation.ensemble import ViewEnsembler
from videotl.evaluation.metrics import (
    average_precision_per_class,
    mean_average_precision,
    mean_class_accuracy,
    top_k_accuracy,
)
from videotl.files import atomic_write, write_text_atomic
from videotl.utils.distributed import is_main_process

logger = logging.getLogger(__name__)


@dataclass
class TestResult:
    """Per-video results of an evaluation (every video once, in dataset order)."""

    metrics: dict[str, Any]
    video_ids: list[str]
    scores: np.ndarray  # [V, K] merged view scores, NaN rows for videos with no decoded view
    targets: np.ndarray  # [V] class indices, or [V, K] multi-hot
    views: np.ndarray  # [V] decoded views per video
    failed_videos: list[str] = field(default_factory=list)


def default_aggregation(multilabel: bool) -> str:
    """Max over clips for multi-label data (Charades), mean of softmax otherwise."""
    return "max" if multilabel else "mean"


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    aggregation: str | None = None,
    map_missing_as_zero: bool = False,
    description: str = "test",
) -> TestResult:
    """Scores every item of ``loader`` (its dataset must follow videotl's dataset interface)
    and merges the views of each video (``aggregation``: "mean", "max" or None for the
    dataset's default).

    ``autocast_dtype``: run the forward pass under ``torch.autocast`` to this dtype on
    ``device`` (None: the model's own precision). Scores are merged in float64."""
    dataset = loader.dataset
    aggregation = aggregation or getattr(dataset, "view_aggregation",
                                         default_aggregation(dataset.multilabel))
    ensembler = ViewEnsembler(dataset.num_videos, dataset.num_classes, aggregation)
    model.eval()
    stream = sys.stderr
    bar = tqdm(loader, desc=description, file=stream, leave=False, dynamic_ncols=True,
               disable=not (is_main_process() and stream.isatty()))
    for batch in bar:
        autocast = torch.autocast(device.type, dtype=autocast_dtype,
                                  enabled=autocast_dtype is not None)
        with autocast:
            logits = model(batch["video"].to(device, non_blocking=True)).float()
        scores = torch.sigmoid(logits) if dataset.multilabel else torch.softmax(logits, dim=1)
        ensembler.add(batch["video_index"], scores, torch.as_tensor(batch["ok"]))
    ensembler.gather()
    return _result(dataset, ensembler, map_missing_as_zero)


def _result(dataset: Any, ensembler: ViewEnsembler, map_missing_as_zero: bool) -> TestResult:
    scores = ensembler.video_scores()
    targets = torch.stack([torch.as_tensor(dataset.video_target(i))
                           for i in range(dataset.num_videos)])
    scored = ensembler.views > 0
    failed = [dataset.video_ids[i] for i in torch.nonzero(~scored).flatten().tolist()]
    metrics: dict[str, Any] = {
        "num_videos": int(scored.sum()),
        "num_failed_videos": len(failed),
        "num_failed_views": int(ensembler.failed_views.sum()),
        "aggregation": ensembler.aggregation,
    }
    if failed:
        logger.warning("%d videos could not be decoded and are left out of the metrics: %s",
                       len(failed), ", ".join(failed[:20]) + (" ..." if len(failed) > 20 else ""))
    if scored.any():
        metrics.update(score_metrics(scores[scored], targets[scored], dataset.multilabel,
                                     map_missing_as_zero))
    return TestResult(metrics, list(dataset.video_ids), scores.numpy(), targets.numpy(),
                      ensembler.views.numpy(), failed)


def score_metrics(scores: torch.Tensor, targets: torch.Tensor, multilabel: bool,
                  map_missing_as_zero: bool) -> dict[str, Any]:
    """Top-1/top-5 and mean class accuracy (single-label) or mAP (multi-label) of
    ``scores`` ``[V, K]`` against ``targets`` (``[V]`` indices or ``[V, K]`` multi-hot)."""
    if multilabel:
        per_class = average_precision_per_class(scores, targets)
        return {
            "map": mean_average_precision(scores, targets, map_missing_as_zero),
            "map_classes": int((~torch.isnan(per_class)).sum()),
            "map_classes_without_positives": int(torch.isnan(per_class).sum()),
            "map_missing_counted_as_zero": map_missing_as_zero,
        }
    metrics = {
        "top1": top_k_accuracy(scores, targets, 1),
        "mean_class_accuracy": mean_class_accuracy(scores, targets),
    }
    if scores.shape[1] >= 5:
        metrics["top5"] = top_k_accuracy(scores, targets, 5)
    return metrics


def write_test_outputs(result: TestResult, output_dir: str | Path) -> tuple[Path, Path]:
    """Writes ``test_metrics.json`` and ``test_scores.npz`` (video_ids, scores, targets,
    views) to ``output_dir``, each atomically (a full disk leaves the previous files intact);
    returns their paths."""
    output_dir = Path(output_dir)
    metrics_path = output_dir / "test_metrics.json"
    write_text_atomic(metrics_path, json.dumps(
        {**result.metrics, "failed_videos": result.failed_videos}, indent=2) + "\n")
    scores_path = output_dir / "test_scores.npz"
    with atomic_write(scores_path, "wb") as handle:
        np.savez_compressed(handle, video_ids=np.array(result.video_ids), scores=result.scores,
                            targets=result.targets, views=result.views)
    return metrics_path, scores_path
