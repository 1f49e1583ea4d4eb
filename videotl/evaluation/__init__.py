"""Evaluation: metrics, multi-view ensembling, the evaluator and per-class reports."""

from videotl.evaluation.ensemble import ViewEnsembler
from videotl.evaluation.metrics import (
    average_precision_per_class,
    mean_average_precision,
    mean_class_accuracy,
    top_k_accuracy,
)
from videotl.evaluation.reports import (
    class_reports,
    compare_classes,
    confusion_matrix,
    load_test_scores,
    recompute_metrics,
    write_class_reports,
)

__all__ = [
    "ViewEnsembler",
    "average_precision_per_class",
    "class_reports",
    "compare_classes",
    "confusion_matrix",
    "load_test_scores",
    "mean_average_precision",
    "mean_class_accuracy",
    "recompute_metrics",
    "top_k_accuracy",
    "write_class_reports",
]
