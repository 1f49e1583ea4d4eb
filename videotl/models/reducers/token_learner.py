"""TokenLearner (Ryoo et al. 2021) as token reducers of ViT/ViViT: adapters giving the layers of
``videotl.models.layers.token_learner`` (also used by X(2+1)D's TokenLearner module) the
``InputReducer`` interface."""

from __future__ import annotations

import torch

from videotl.models.layers.token_learner import TokenLearner, TokenLearnerV11
from videotl.models.reducers.base import InputReducer, tokens_on_grid


class GridTokenLearner(InputReducer):
    """TokenLearner v1 (eq. 1) on patch tokens laid out on their grid, as in the paper's ViT
    (§4.1): sigmoid maps from 3x3 convolutions over LayerNorm-ed tokens, then weighted spatial
    average pooling.

    Args:
        dim: token channels ``C``.
        num_tokens: tokens ``S`` per temporal index.
        num_conv_layers: 3x3 convolutions computing the maps (three for images in the paper).

    Shapes:
        tokens ``[B, T', P, C]`` with ``P = h * w``; output ``[B, T', S, C]``.
    """

    needs_grid = True

    def __init__(self, dim: int, num_tokens: int, num_conv_layers: int = 3) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.learner = TokenLearner(dim, num_tokens, num_conv_layers, kernel_size=3, norm=True)

    def forward(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = tokens_on_grid(tokens, grid, self.kind)  # [B, T', h, w, C]
        return self.learner(x.permute(0, 4, 1, 2, 3))  # [B, T', S, C]


class SequenceTokenLearnerV11(TokenLearnerV11, InputReducer):
    """TokenLearner v1.1 with the reducer interface (it needs no grid): LayerNorm -> MLP ->
    softmax over the ``P`` positions, then the weighted sum.

    Shapes: tokens ``[B, T', P, C]``; output ``[B, T', S, C]``.
    """

    def forward(  # type: ignore[override]
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None = None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return super().forward(tokens)
