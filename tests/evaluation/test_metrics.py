import math

import numpy as np
import pytest
import torch

from videotl.evaluation import mean_average_precision, mean_class_accuracy
from videotl.evaluation.metrics import average_precision_per_class, top_k_accuracy

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_map_equals_sklearn_macro_average_precision_with_ties():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(60, 7, generator=generator).round(decimals=1)  # many ties
    labels = (torch.rand(60, 7, generator=generator) > 0.7).long()
    labels[:, 6] = 0  # a class without positives: excluded
    ours = mean_average_precision(scores, labels)
    theirs = sklearn_metrics.average_precision_score(
        labels[:, :6].numpy(), scores[:, :6].numpy(), average="macro"
    )
    assert ours == pytest.approx(theirs, abs=1e-6)
    per_class = average_precision_per_class(scores, labels)
    assert math.isnan(per_class[6])
    assert mean_average_precision(scores, labels, missing_as_zero=True) == pytest.approx(
        theirs * 6 / 7, abs=1e-6)


def test_map_of_perfect_and_reversed_rankings():
    labels = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])
    assert mean_average_precision(labels.float(), labels) == pytest.approx(1.0)
    reversed_scores = 1.0 - labels.float()
    assert mean_average_precision(reversed_scores, labels) == pytest.approx(0.5)


def test_map_accepts_numpy_and_rejects_shape_mismatch():
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    labels = np.array([[1, 0], [0, 1]])
    assert mean_average_precision(scores, labels) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        mean_average_precision(scores, labels[:, :1])


def test_mean_class_accuracy_is_mean_of_per_class_recall():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.6, 0.4, 0.0],
                           [0.3, 0.7, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])  # class 2 absent: excluded
    # class 0: 2/2 correct; class 1: 2/3 correct
    assert mean_class_accuracy(scores, labels) == pytest.approx((1.0 + 2 / 3) / 2)
    assert top_k_accuracy(scores, labels, 1) == pytest.approx(4 / 5)
    assert top_k_accuracy(scores, labels, 2) == pytest.approx(1.0)
