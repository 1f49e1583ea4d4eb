"""Per-class reports of a test: each class's support, accuracy (single-label) or AP
(multi-label) and the class it is most often taken for; the confusion matrix; and the
comparison of two runs class by class.

Confusions are counted on the top-1 prediction of each video:

- single-label: ``confusion[t, p]`` is the number of videos of true class ``t`` whose highest
  score is class ``p`` (the diagonal holds the correct ones; row sums are the supports);
- multi-label: ``confusion[t, p]`` is the number of videos with ``t`` among their labels whose
  highest score is a class ``p`` that is not among them (the diagonal is 0: a top-1 that is one
  of the video's labels confuses nothing).

Videos without a decoded view (NaN score rows in ``test_scores.npz``) are left out, as they are
of the metrics. Files are written atomically (``videotl.files``); the PNG with matplotlib's Agg
canvas, never a window.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from videotl.errors import InputError
from videotl.evaluation.evaluator import score_metrics
from videotl.evaluation.metrics import average_precision_per_class
from videotl.files import atomic_write, write_text_atomic

logger = logging.getLogger(__name__)

# Up to this many classes the confusion matrix is also drawn; beyond, its largest off-diagonal
# cells are listed in top_confusions.csv instead (a 400-class image shows nothing readable).
MAX_PLOTTED_CLASSES = 60
TOP_CONFUSIONS = 100


@dataclass(frozen=True)
class ClassReport:
    """One row of ``per_class.csv``; ``metric`` is accuracy (single-label) or AP (multi-label),
    NaN for a class without videos (positives)."""

    index: int
    name: str
    support: int
    metric: float
    confused_with: str
    confused_count: int


def is_multilabel(targets: np.ndarray) -> bool:
    """Multi-hot ``[V, K]`` targets (Charades) rather than class indices ``[V]``."""
    return np.asarray(targets).ndim == 2


def scored_rows(scores: np.ndarray) -> np.ndarray:
    """``[V]`` bool: videos with a score (a video with no decoded view has a NaN row)."""
    return np.isfinite(np.asarray(scores, dtype=np.float64)).all(axis=1)


def confusion_matrix(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``[K, K]`` int64 counts of (true class, top-1 class), as the module docstring defines.

    Args:
        scores: ``[V, K]``; targets: class indices ``[V]`` or multi-hot ``[V, K]``.
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    num_classes = scores.shape[1]
    predicted = scores.argmax(axis=1)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    if not is_multilabel(targets):
        np.add.at(matrix, (targets.astype(np.int64), predicted), 1)
        return matrix
    positives = targets.astype(bool)
    wrong = ~positives[np.arange(len(predicted)), predicted]
    videos, true_classes = np.nonzero(positives & wrong[:, None])
    np.add.at(matrix, (true_classes, predicted[videos]), 1)
    return matrix


def class_supports(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K]`` int64: videos of each class (single-label) or with it among their labels."""
    targets = np.asarray(targets)
    if is_multilabel(targets):
        return targets.astype(bool).sum(axis=0).astype(np.int64)
    return np.bincount(targets.astype(np.int64), minlength=num_classes).astype(np.int64)


def per_class_metric(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``[K]`` float64: accuracy of each class (the diagonal over the support, the per-class
    recall whose mean is ``mean_class_accuracy``), or AP with
    ``metrics.average_precision_per_class``; NaN for a class without videos."""
    if is_multilabel(targets):
        return average_precision_per_class(torch.as_tensor(scores),
                                           torch.as_tensor(targets)).numpy()
    matrix = confusion_matrix(scores, targets)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def class_reports(scores: np.ndarray, targets: np.ndarray,
                  class_names: Sequence[str]) -> list[ClassReport]:
    """The rows of ``per_class.csv`` in class order, scored videos only.

    Args:
        scores: ``[V, K]``; targets: ``[V]`` or ``[V, K]``; class_names: ``K`` names.
    """
    scores, targets = _scored(scores, targets)
    matrix = confusion_matrix(scores, targets)
    metric = per_class_metric(scores, targets)
    support = class_supports(targets, scores.shape[1])
    off_diagonal = matrix - np.diag(np.diag(matrix))
    rows = []
    for index, name in enumerate(class_names):
        other = int(off_diagonal[index].argmax())
        count = int(off_diagonal[index, other])
        rows.append(ClassReport(index, str(name), int(support[index]), float(metric[index]),
                                str(class_names[other]) if count else "", count))
    return rows


def recompute_metrics(scores: np.ndarray, targets: np.ndarray,
                      map_missing_as_zero: bool = False) -> dict[str, Any]:
    """The metrics of ``test_metrics.json`` from per-video scores, with the evaluator's own
    function: top1/top5/mean_class_accuracy (single-label) or map (multi-label), and
    ``num_videos`` / ``num_failed_videos``."""
    scored = scored_rows(scores)
    metrics: dict[str, Any] = {"num_videos": int(scored.sum()),
                               "num_failed_videos": int((~scored).sum())}
    if scored.any():
        metrics.update(score_metrics(
            torch.as_tensor(np.asarray(scores)[scored]),
            torch.as_tensor(np.asarray(targets)[scored]),
            is_multilabel(targets), map_missing_as_zero))
    return metrics


def top_confusions(matrix: np.ndarray, class_names: Sequence[str],
                   limit: int = TOP_CONFUSIONS) -> list[tuple[str, str, int]]:
    """The ``limit`` largest off-diagonal cells of ``matrix [K, K]`` with a count, largest
    first (ties in class order): ``(true class, predicted class, count)``."""
    off_diagonal = matrix - np.diag(np.diag(matrix))
    order = np.argsort(-off_diagonal, axis=None, kind="stable")[:limit]
    cells = [np.unravel_index(i, matrix.shape) for i in order]
    return [(str(class_names[t]), str(class_names[p]), int(off_diagonal[t, p]))
            for t, p in cells if off_diagonal[t, p] > 0]


def write_class_reports(scores: np.ndarray, targets: np.ndarray,
                        class_names: Sequence[str] | None, output_dir: str | Path) -> list[Path]:
    """Writes ``per_class.csv`` and the confusions to ``output_dir``; returns the paths.

    Confusions: ``confusion.csv`` (single-label), plus ``confusion.png`` up to
    ``MAX_PLOTTED_CLASSES`` classes, otherwise ``top_confusions.csv`` (always for multi-label).
    ``class_names``: ``K`` names (None: the class indices)."""
    output_dir = Path(output_dir)
    names = default_class_names(class_names, np.asarray(scores).shape[1])
    reports = class_reports(scores, targets, names)
    paths = [output_dir / "per_class.csv"]
    write_text_atomic(paths[0], per_class_csv(reports, is_multilabel(targets)))
    matrix = confusion_matrix(*_scored(scores, targets))
    if not is_multilabel(targets):
        paths.append(output_dir / "confusion.csv")
        write_text_atomic(paths[-1], confusion_csv(matrix, names))
    if not is_multilabel(targets) and len(names) <= MAX_PLOTTED_CLASSES:
        paths.append(output_dir / "confusion.png")
        plot_confusion(matrix, names, paths[-1])
    else:
        paths.append(output_dir / "top_confusions.csv")
        write_text_atomic(paths[-1], top_confusions_csv(matrix, names, reports))
    return paths


def default_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` checked against ``num_classes``, or the indices as names."""
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise InputError(f"{len(class_names)} class names for scores of {num_classes} classes")
    return [str(name) for name in class_names]


def per_class_csv(reports: Sequence[ClassReport], multilabel: bool) -> str:
    """``index,class,support,accuracy|ap,most_confused_with,confused_count``."""
    return _csv([["index", "class", "support", "ap" if multilabel else "accuracy",
                  "most_confused_with", "confused_count"]]
                + [[r.index, r.name, r.support, _number(r.metric), r.confused_with,
                    r.confused_count] for r in reports])


def confusion_csv(matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """Rows: true classes; columns: predicted classes; first row and column: the names."""
    return _csv([["true \\ predicted", *class_names]]
                + [[name, *row.tolist()] for name, row in zip(class_names, matrix)])


def top_confusions_csv(matrix: np.ndarray, class_names: Sequence[str],
                       reports: Sequence[ClassReport]) -> str:
    """``true_class,predicted_class,count,fraction_of_true`` (count over the true class's
    support), the largest ``TOP_CONFUSIONS`` cells."""
    support = {r.name: r.support for r in reports}
    return _csv([["true_class", "predicted_class", "count", "fraction_of_true"]]
                + [[t, p, n, _number(n / support[t])]
                   for t, p, n in top_confusions(matrix, class_names)])


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | Path) -> None:
    """Draws ``matrix [K, K]`` with each row divided by its support (the colours: the fraction
    of each true class predicted as each class; the numbers: the counts) into a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only when drawing
    from matplotlib.figure import Figure

    size = max(4.0, 0.25 * len(class_names) + 2.0)
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    support = matrix.sum(axis=1, keepdims=True)
    image = axes.imshow(matrix / np.maximum(support, 1), cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    if len(class_names) <= 20:
        for (t, p), count in np.ndenumerate(matrix):
            if count:
                axes.text(p, t, str(count), ha="center", va="center", fontsize=7)
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, class_names, fontsize=7)
    axes.set(xlabel="predicted class", ylabel="true class", title="confusion matrix")
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)


@dataclass(frozen=True)
class ClassDelta:
    """A class's metric in two runs A and B (NaN where it has no videos); ``delta = b - a``."""

    name: str
    support_a: int
    support_b: int
    metric_a: float
    metric_b: float

    @property
    def delta(self) -> float:
        return self.metric_b - self.metric_a


def compare_classes(scores_a: np.ndarray, targets_a: np.ndarray, scores_b: np.ndarray,
                    targets_b: np.ndarray, class_names: Sequence[str]) -> list[ClassDelta]:
    """Per-class accuracy or AP of two runs over the same ``K`` classes, in class order.

    Args:
        scores_a: ``[Va, K]``; targets_a: ``[Va]`` or ``[Va, K]``; the same for B.
    """
    if scores_a.shape[1] != scores_b.shape[1] or is_multilabel(targets_a) != is_multilabel(
            targets_b):
        raise InputError(f"the two runs are not comparable: {scores_a.shape[1]} and "
                         f"{scores_b.shape[1]} classes, multi-label {is_multilabel(targets_a)} "
                         f"and {is_multilabel(targets_b)}")
    a = class_reports(scores_a, targets_a, class_names)
    b = class_reports(scores_b, targets_b, class_names)
    return [ClassDelta(x.name, x.support, y.support, x.metric, y.metric) for x, y in zip(a, b)]


def largest_changes(deltas: Sequence[ClassDelta],
                    count: int) -> tuple[list[ClassDelta], list[ClassDelta]]:
    """(the ``count`` classes that gained most, largest gain first; the ``count`` that lost
    most, largest loss first); classes without a delta (NaN) and unchanged ones are left out."""
    changed = [d for d in deltas if not math.isnan(d.delta) and d.delta != 0.0]
    gained = sorted((d for d in changed if d.delta > 0), key=lambda d: -d.delta)[:count]
    lost = sorted((d for d in changed if d.delta < 0), key=lambda d: d.delta)[:count]
    return gained, lost


def compare_csv(deltas: Sequence[ClassDelta], multilabel: bool) -> str:
    """``class,support_a,support_b,<metric>_a,<metric>_b,delta``, in class order."""
    metric = "ap" if multilabel else "accuracy"
    return _csv([["class", "support_a", "support_b", f"{metric}_a", f"{metric}_b", "delta"]]
                + [[d.name, d.support_a, d.support_b, _number(d.metric_a), _number(d.metric_b),
                    _number(d.delta)] for d in deltas])


def load_test_scores(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(scores [V, K], targets [V] or [V, K], video_ids)`` from a ``test_scores.npz``."""
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in ("scores", "targets") if k not in archive.files]
        if missing:
            raise InputError(f"{path}: not a test_scores.npz file (no {', '.join(missing)})")
        scores, targets = archive["scores"], archive["targets"]
        video_ids = [str(v) for v in archive["video_ids"]] if "video_ids" in archive.files else []
    if scores.ndim != 2 or targets.shape[0] != scores.shape[0] or (
            targets.ndim == 2 and targets.shape != scores.shape) or targets.ndim > 2:
        raise InputError(f"{path}: scores {scores.shape} and targets {targets.shape} do not "
                         "match ([V, K] with [V] or [V, K])")
    return scores, targets, video_ids


def _scored(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = scored_rows(scores)
    return np.asarray(scores)[keep], np.asarray(targets)[keep]


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
