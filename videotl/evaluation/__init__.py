"""Evaluation: metrics, multi-view ensembling and the evaluator."""

from videotl.evaluation.ensemble import ViewEnsembler
from videotl.evaluation.metrics import (
    average_precision_per_class,
    mean_average_precision,
    mean_class_accuracy,
    top_k_accuracy,
)

__all__ = [
    "ViewEnsembler",
    "average_precision_per_class",
    "mean_average_precision",
    "mean_class_accuracy",
    "top_k_accuracy",
]
