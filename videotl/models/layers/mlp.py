"""Two-layer perceptron with GELU, as used inside transformer blocks."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout over the last dimension.

    Input ``[..., in_dim]``; output ``[..., out_dim]``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
