"""Two-layer perceptron with GELU, as used inside transformer blocks, and the GELU forms.

GELU comes in two forms (Hendrycks & Gimpel 2016): ``exact``, ``x * Phi(x)`` with the normal
CDF computed by erf (timm, torch's default), and ``tanh``, the approximation
``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` used by the Flax reference code
(``flax.linen.gelu`` defaults to ``approximate=True``: Scenic's ViViT and TokenLearner) and by
transformers' ViViT (``hidden_act="gelu_fast"``). The two differ by up to about 1e-3 (absolute)
per activation, so a network reproduces one reference only with that reference's form; every
module that applies GELU takes ``gelu`` as a constructor argument.
"""

from __future__ import annotations

import torch
from torch import nn

GELU_FORMS = ("exact", "tanh")


def gelu_layer(gelu: str) -> nn.GELU:
    """``nn.GELU`` of the form ``gelu`` (``"exact"``: erf; ``"tanh"``: the tanh approximation)."""
    if gelu not in GELU_FORMS:
        raise ValueError(f"gelu must be one of {GELU_FORMS}, got {gelu!r}")
    return nn.GELU(approximate="none" if gelu == "exact" else "tanh")


class Mlp(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout over the last dimension.

    Args:
        in_dim, hidden_dim, out_dim: widths.
        dropout: dropout after the GELU and after the second linear layer.
        gelu: GELU form, ``"exact"`` (erf) or ``"tanh"`` (see the module docstring).

    Input ``[..., in_dim]``; output ``[..., out_dim]``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        dropout: float = 0.0,
        gelu: str = "exact",
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = gelu_layer(gelu)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
