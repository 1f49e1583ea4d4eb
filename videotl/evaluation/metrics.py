"""Video classification metrics on per-video scores, computed with torchmetrics.

Public for users with their own score files:
``mean_average_precision(scores, labels)`` and ``mean_class_accuracy(scores, labels)``.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import torch


def _classification() -> ModuleType:
    """torchmetrics' classification functions, imported at first use: importing torchmetrics
    imports every metric family, its text metrics ``transformers`` when that is installed (3-10 s
    on 2 cores), which a tool that stops on a bad argument or a training run before its first
    evaluation should not wait for."""
    return importlib.import_module("torchmetrics.functional.classification")


def _as_tensor(values) -> torch.Tensor:
    return values if isinstance(values, torch.Tensor) else torch.as_tensor(values)


def top_k_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of videos whose label is among the ``k`` highest scores.

    Args:
        scores: ``[N, K]``; labels: class indices ``[N]``.
    """
    scores, labels = _as_tensor(scores).float(), _as_tensor(labels).long()
    metrics = _classification()
    return float(metrics.multiclass_accuracy(scores, labels, num_classes=scores.shape[1],
                                             top_k=k, average="micro"))


def mean_class_accuracy(scores, labels) -> float:
    """Top-1 accuracy of each class (its recall), averaged over the classes present in
    ``labels`` (AViD's reported metric).

    Args:
        scores: ``[N, K]``; labels: class indices ``[N]``.
    """
    scores, labels = _as_tensor(scores).float(), _as_tensor(labels).long()
    recall = _classification().multiclass_recall
    per_class = recall(scores, labels, num_classes=scores.shape[1], average=None)
    present = torch.bincount(labels, minlength=scores.shape[1]) > 0
    return float(per_class[present].mean())


def average_precision_per_class(scores, labels) -> torch.Tensor:
    """Average precision of every class, NaN for classes without a positive.

    Args:
        scores: ``[N, K]``; labels: 0/1 ``[N, K]``.

    Returns:
        ``[K]`` float64.
    """
    scores, labels = _as_tensor(scores).float(), _as_tensor(labels).long()
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores and labels must both be [N, K]; got {tuple(scores.shape)} and "
                         f"{tuple(labels.shape)}")
    with warnings.catch_warnings():  # classes without positives are handled below
        warnings.simplefilter("ignore", UserWarning)
        per_class = _classification().multilabel_average_precision(
            scores, labels, num_labels=scores.shape[1], average=None
        ).double()
    per_class[labels.sum(dim=0) == 0] = float("nan")
    return per_class


def mean_average_precision(scores, labels, missing_as_zero: bool = False) -> float:
    """Mean over classes of average precision (equal to scikit-learn's macro
    ``average_precision_score`` over the same classes, ties included).

    Classes without a positive in ``labels`` are excluded, or count as AP 0 with
    ``missing_as_zero``. Returns NaN if no class has a positive.

    Args:
        scores: ``[N, K]``; labels: 0/1 ``[N, K]``.
    """
    per_class = average_precision_per_class(scores, labels)
    if missing_as_zero:
        return float(torch.nan_to_num(per_class, nan=0.0).mean())
    present = ~torch.isnan(per_class)
    return float(per_class[present].mean()) if present.any() else float("nan")
