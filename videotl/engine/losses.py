"""Training losses: cross-entropy for single-label data, BCE-with-logits for multi-label."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiLabelBCE(nn.Module):
    """BCE with logits on multi-hot targets ``[B, K]``; ``label_smoothing`` moves targets
    towards 1/2: ``y * (1 - e) + e / 2``."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        if self.label_smoothing:
            targets = targets * (1 - self.label_smoothing) + self.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(logits, targets)


def build_loss(multilabel: bool, label_smoothing: float = 0.0) -> nn.Module:
    """``logits [B, K]`` and targets (class indices ``[B]`` or multi-hot ``[B, K]``) -> loss."""
    if multilabel:
        return MultiLabelBCE(label_smoothing)
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
