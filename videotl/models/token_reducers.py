"""Token reducers for ViT/ViViT, selectable by name: modules that turn the patch tokens of each
temporal index into a few tokens.

Interface of every reducer (what ``VisionTransformer`` calls before its block ``reducer_layer``)::

    reducer(tokens, grid) -> reduced
    tokens:  [B, T', P, C]   patch tokens of T' temporal indices, P = h * w of each
    grid:    (h, w)          the spatial layout of the P tokens (row-major)
    reduced: [B, T', S, C]   S = ReducerSpec.num_tokens tokens per temporal index

The class token (if any) never enters a reducer: the encoder keeps it aside and prepends it to the
reduced tokens. A new reducer is a builder ``ReducerSpec -> nn.Module`` registered in
``TOKEN_REDUCERS``; every ViT/ViViT model with a reducer can then use it through the config key
``model.token_reducer``. Registered here:

- ``tokenlearner``: TokenLearner v1 (eq. 1) as in the paper's ViT (§4.1): sigmoid maps from three
  3x3 convolutions of width ``S`` with GELU in between, over each temporal index's ``h x w`` grid
  (on LayerNorm-ed tokens), then weighted spatial average pooling;
- ``tokenlearner_v11``: TokenLearner v1.1 (released with the paper): LayerNorm -> MLP (hidden
  width 64) -> softmax over the ``P`` positions, then the weighted sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from videotl.models.layers import TokenLearner, TokenLearnerV11
from videotl.registry import Registry


@dataclass(frozen=True)
class ReducerSpec:
    """What a reducer builder needs to know: token width ``dim`` and output tokens ``num_tokens``
    per temporal index."""

    dim: int
    num_tokens: int


ReducerBuilder = Callable[[ReducerSpec], nn.Module]
TOKEN_REDUCERS: Registry[ReducerBuilder] = Registry("token reducer")


def build_token_reducer(kind: str, spec: ReducerSpec) -> nn.Module:
    """Builds the registered reducer ``kind``; its ``kind`` attribute names it in statistics."""
    reducer = TOKEN_REDUCERS.get(kind)(spec)
    reducer.kind = kind
    return reducer


class GridTokenLearner(nn.Module):
    """TokenLearner v1 on patch tokens laid out on their grid.

    Args:
        dim: token channels ``C``.
        num_tokens: tokens ``S`` per temporal index.
        num_conv_layers: 3x3 convolutions computing the maps (three for images in the paper).

    Shapes:
        tokens ``[B, T', P, C]`` with ``P = h * w``; output ``[B, T', S, C]``.
    """

    def __init__(self, dim: int, num_tokens: int, num_conv_layers: int = 3) -> None:
        super().__init__()
        self.learner = TokenLearner(dim, num_tokens, num_conv_layers, kernel_size=3, norm=True)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        batch, frames, positions, channels = tokens.shape
        height, width = grid
        if height * width != positions:
            raise ValueError(f"grid {grid} does not hold the {positions} tokens per frame")
        x = tokens.reshape(batch, frames, height, width, channels).permute(0, 4, 1, 2, 3)
        return self.learner(x)  # [B, T', S, C]


class SequenceTokenLearnerV11(TokenLearnerV11):
    """TokenLearner v1.1 with the reducer interface (it needs no grid).

    Shapes: tokens ``[B, T', P, C]``; output ``[B, T', S, C]``.
    """

    def forward(  # type: ignore[override]
        self, tokens: torch.Tensor, grid: tuple[int, int] | None = None
    ) -> torch.Tensor:
        return super().forward(tokens)


@TOKEN_REDUCERS.register("tokenlearner")
def tokenlearner(spec: ReducerSpec) -> nn.Module:
    return GridTokenLearner(spec.dim, spec.num_tokens)


@TOKEN_REDUCERS.register("tokenlearner_v11")
def tokenlearner_v11(spec: ReducerSpec) -> nn.Module:
    return SequenceTokenLearnerV11(spec.dim, spec.num_tokens, hidden_dim=64)
