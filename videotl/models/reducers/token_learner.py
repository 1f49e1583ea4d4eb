"""TokenLearner (Ryoo et al. 2021) as token reducers of ViT/ViViT: adapters giving the layers of
``videotl.models.layers.token_learner`` (also used by X(2+1)D's TokenLearner module) the
``InputReducer`` interface."""

from __future__ import annotations

import torch

from videotl.models.layers.token_learner import TokenLearner, TokenLearnerV11
from videotl.models.reducers.base import InputReducer, tokens_on_grid


class GridTokenLearner(InputReducer):
    """TokenLearner v1 (eq. 1) on patch tokens laid out on their grid, as in the paper's ViT
    (§4.1): sigmoid maps from 3x3 convolutions over LayerNorm-ed tokens (epsilon 1e-6), then
    weighted spatial average (or sum) pooling. The paper's form is the default; the authors'
    release is ``num_conv_layers=4, conv_bias=False, pooling="sum", gelu="tanh"``.

    Args:
        dim: token channels ``C``.
        num_tokens: tokens ``S`` per temporal index.
        num_conv_layers: 3x3 convolutions computing the maps, GELU between consecutive ones
            (three for images in the paper; four in the release).
        conv_bias: whether those convolutions have biases (none in the release).
        pooling: ``"mean"`` (the paper's eq. 1) or ``"sum"`` (the release) over positions.
        gelu: GELU form, ``"exact"`` (erf) or ``"tanh"`` (the release).

    Shapes:
        tokens ``[B, T', P, C]`` with ``P = h * w``; output ``[B, T', S, C]``.
    """

    needs_grid = True

    def __init__(
        self,
        dim: int,
        num_tokens: int,
        num_conv_layers: int = 3,
        conv_bias: bool = True,
        pooling: str = "mean",
        gelu: str = "exact",
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.learner = TokenLearner(
            dim, num_tokens, num_conv_layers, kernel_size=3, norm=True, conv_bias=conv_bias,
            pooling=pooling, gelu=gelu,
        )

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
    softmax over the ``P`` positions, then the weighted sum (arguments of ``TokenLearnerV11``).

    Shapes: tokens ``[B, T', P, C]``; output ``[B, T', S, C]``.
    """

    def forward(  # type: ignore[override]
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None = None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return super().forward(tokens)
