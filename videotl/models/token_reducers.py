"""Token reducers for ViT/ViViT, interchangeable by name (``model.token_reducer``) at the same
layer(s) (``model.reducer_layers``) with their own output counts (``model.reducer_tokens``).

A reducer at layer ``l`` leaves at most ``S`` tokens per temporal index for block ``l``'s MLP and
the blocks after it (``S = ReducerSpec.num_tokens``; for ATS the maximum ``K``). The class token
(if any) is always kept. The interface is ``videotl.models.layers.TokenReducer``: a reducer acts
on block ``l``'s input tokens ``[B, T', P, C] -> [B, T', S, C]`` (with their grid and, if it asks,
the attention each token received in block ``l - 1``), or on block ``l``'s attention queries
(given the block's queries, keys and values, it selects the tokens that keep an output).

Registered here:

- ``tokenlearner``: TokenLearner v1 (eq. 1) as in the paper's ViT (§4.1): sigmoid maps from three
  3x3 convolutions of width ``S`` with GELU in between, over each temporal index's ``h x w`` grid
  (on LayerNorm-ed tokens), then weighted spatial average pooling;
- ``tokenlearner_v11``: TokenLearner v1.1 (released with the paper): LayerNorm -> MLP (hidden
  width 64) -> softmax over the ``P`` positions, then the weighted sum;
- ``ats``: Adaptive Token Sampling (parameter-free; needs a class token): at most ``K = S``
  tokens per temporal index, sampled by the class token's attention times value norms; the count
  varies per sample (``videotl.models.layers.adaptive_token_sampling``);
- ``token_pooling``, ``token_pooling_kmeans``: Token Pooling, weighted K-medoids or K-means
  clustering into ``S`` tokens, initialised with the top-``S`` tokens by significance (the
  attention received in the block before, so not at layer 0), ``ReducerSpec.iterations``
  iterations (``videotl.models.layers.token_pooling``);
- ``spatial_pool``: fixed average pooling of each temporal index's ``h x w`` grid to an
  ``h' x w'`` grid of ``S`` tokens with the same aspect (``S = P / 4`` is 2x2 pooling, the
  TokenLearner paper's Table 6 baseline); the output stays on a grid, so it can be pooled again.

A new reducer is a builder ``ReducerSpec -> TokenReducer`` registered in ``TOKEN_REDUCERS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from videotl.models.layers import (
    AdaptiveTokenSampler,
    TokenLearner,
    TokenLearnerV11,
    TokenPooling,
    TokenReducer,
)
from videotl.registry import Registry


@dataclass(frozen=True)
class ReducerSpec:
    """What a reducer builder needs to know: token width ``dim``, output tokens ``num_tokens``
    per temporal index (ATS: the maximum), and clustering ``iterations`` (Token Pooling)."""

    dim: int
    num_tokens: int
    iterations: int = 5


ReducerBuilder = Callable[[ReducerSpec], TokenReducer]
TOKEN_REDUCERS: Registry[ReducerBuilder] = Registry("token reducer")


def build_token_reducer(kind: str, spec: ReducerSpec) -> TokenReducer:
    """Builds the registered reducer ``kind``; its ``kind`` attribute names it in statistics."""
    reducer = TOKEN_REDUCERS.get(kind)(spec)
    reducer.kind = kind
    return reducer


class GridTokenLearner(TokenReducer):
    """TokenLearner v1 on patch tokens laid out on their grid.

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
        self.learner = TokenLearner(dim, num_tokens, num_conv_layers, kernel_size=3, norm=True)

    def forward(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = _on_grid(tokens, grid, "tokenlearner")
        return self.learner(x.permute(0, 4, 1, 2, 3))  # [B, T', S, C]


class SequenceTokenLearnerV11(TokenLearnerV11, TokenReducer):
    """TokenLearner v1.1 with the reducer interface (it needs no grid).

    Shapes: tokens ``[B, T', P, C]``; output ``[B, T', S, C]``.
    """

    def forward(  # type: ignore[override]
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None = None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return super().forward(tokens)


class SpatialPool(TokenReducer):
    """Average pooling of each temporal index's ``h x w`` grid to ``S`` tokens on an
    ``h' x w'`` grid of the same aspect (``h' w' = S``, ``h' w = w' h``); with ``h`` divisible by
    ``h'`` it is plain ``(h/h') x (w/w')`` average pooling, else adaptive average pooling.

    Shapes: tokens ``[B, T', h*w, C]``; output ``[B, T', S, C]`` on ``output_grid(grid)``.
    """

    needs_grid = True
    keeps_grid = True

    def __init__(self, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens

    def output_grid(self, grid: tuple[int, int] | None) -> tuple[int, int]:
        if grid is None:
            raise ValueError("spatial_pool needs the tokens on a grid")
        height, width = grid
        rows = round(math.sqrt(self.num_tokens * height / width))
        columns = self.num_tokens // max(rows, 1)
        if rows < 1 or rows * columns != self.num_tokens or rows * width != columns * height \
                or rows > height:
            unit = math.gcd(height, width)
            valid = [height * width // unit**2 * a * a for a in range(1, unit + 1)]
            raise ValueError(
                f"spatial_pool cannot lay out {self.num_tokens} tokens on a grid with the aspect "
                f"of the {height}x{width} grid; token counts that fit: {valid}"
            )
        return rows, columns

    def forward(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = _on_grid(tokens, grid, "spatial_pool")  # [B, T', h, w, C]
        pooled = F.adaptive_avg_pool2d(x.flatten(0, 1).permute(0, 3, 1, 2), self.output_grid(grid))
        return pooled.flatten(2).transpose(1, 2).unflatten(0, tokens.shape[:2])

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}"


def _on_grid(tokens: torch.Tensor, grid: tuple[int, int] | None, kind: str) -> torch.Tensor:
    """``[B, T', P, C] -> [B, T', h, w, C]``, checking that ``grid`` holds the tokens."""
    batch, frames, positions, channels = tokens.shape
    if grid is None:
        raise ValueError(f"{kind} needs the tokens on a grid, but an earlier reducer left none")
    height, width = grid
    if height * width != positions:
        raise ValueError(f"grid {grid} does not hold the {positions} tokens per frame")
    return tokens.reshape(batch, frames, height, width, channels)


@TOKEN_REDUCERS.register("tokenlearner")
def tokenlearner(spec: ReducerSpec) -> TokenReducer:
    return GridTokenLearner(spec.dim, spec.num_tokens)


@TOKEN_REDUCERS.register("tokenlearner_v11")
def tokenlearner_v11(spec: ReducerSpec) -> TokenReducer:
    return SequenceTokenLearnerV11(spec.dim, spec.num_tokens, hidden_dim=64)


@TOKEN_REDUCERS.register("ats")
def ats(spec: ReducerSpec) -> TokenReducer:
    return AdaptiveTokenSampler(spec.num_tokens)


@TOKEN_REDUCERS.register("token_pooling")
def token_pooling(spec: ReducerSpec) -> TokenReducer:
    return TokenPooling(spec.num_tokens, spec.iterations, "kmedoids")


@TOKEN_REDUCERS.register("token_pooling_kmeans")
def token_pooling_kmeans(spec: ReducerSpec) -> TokenReducer:
    return TokenPooling(spec.num_tokens, spec.iterations, "kmeans")


@TOKEN_REDUCERS.register("spatial_pool")
def spatial_pool(spec: ReducerSpec) -> TokenReducer:
    return SpatialPool(spec.num_tokens)


def set_counted_tokens(model: torch.nn.Module, tokens: int | None) -> list[AdaptiveTokenSampler]:
    """Makes every ATS module of ``model`` keep ``tokens`` per temporal index (each at most its
    ``K``) when counted on the meta device; None: its ``K``. Returns the ATS modules."""
    samplers = [m for m in model.modules() if isinstance(m, AdaptiveTokenSampler)]
    for sampler in samplers:
        sampler.tokens_when_counting = None if tokens is None else min(tokens, sampler.max_tokens)
    return samplers
