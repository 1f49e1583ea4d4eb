"""The registry of token reducers for ViT/ViViT, interchangeable by name (``model.token_reducer``)
at the same layer(s) (``model.reducer_layers``) with their own output counts
(``model.reducer_tokens``).

A reducer at layer ``l`` leaves at most ``S`` tokens per temporal index for block ``l``'s MLP and
the blocks after it (``S = ReducerSpec.reducer_tokens``; for ATS the maximum ``K``). The class
token (if any) is always kept. A reducer is an ``InputReducer`` (acting on block ``l``'s input
tokens ``[B, T', P, C] -> [B, T', S, C]``, with their grid and, if it asks, the attention each
token received in block ``l - 1``) or a ``QueryReducer`` (given block ``l``'s queries, keys and
values, it selects the tokens that keep an output); see ``videotl.models.reducers.base``.

Registered here:

- ``tokenlearner_v1``: TokenLearner v1 (eq. 1) as in the paper's ViT (§4.1): sigmoid maps from
  three 3x3 convolutions of width ``S`` with GELU in between, over each temporal index's
  ``h x w`` grid (on LayerNorm-ed tokens), then weighted spatial average pooling; the number of
  convolutions, their biases and the pooling (``mean`` or ``sum``) are set by
  ``model.tokenlearner_conv_layers``, ``model.tokenlearner_conv_bias`` and
  ``model.tokenlearner_pooling`` (the authors' release: 4, false, sum);
- ``tokenlearner_v11``: TokenLearner v1.1 (released with the paper): LayerNorm -> MLP (hidden
  width 64) -> softmax over the ``P`` positions, then the weighted sum;
- ``ats``: Adaptive Token Sampling (parameter-free; needs a class token): at most ``K = S``
  tokens per temporal index, sampled by the class token's attention times value norms; the count
  varies per sample (``videotl.models.reducers.ats``);
- ``token_pooling``, ``token_pooling_kmeans``: Token Pooling, weighted K-medoids or K-means
  clustering into ``S`` tokens, initialised with the top-``S`` tokens by significance (the
  attention received in the block before, so not at layer 0), ``model.clustering_iterations``
  iterations (``videotl.models.reducers.token_pooling``);
- ``grid_pool``: fixed average pooling of each temporal index's ``h x w`` grid to an
  ``h' x w'`` grid of ``S`` tokens with the same aspect (``S = P / 4`` is 2x2 pooling, the
  TokenLearner paper's Table 6 baseline); the output stays on a grid, so it can be pooled again.

A new reducer is a builder ``ReducerSpec -> TokenReducer`` registered in ``TOKEN_REDUCERS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from videotl.models.reducers.ats import AdaptiveTokenSampler
from videotl.models.reducers.base import TokenReducer
from videotl.models.reducers.pooling import GridPool
from videotl.models.reducers.token_learner import GridTokenLearner, SequenceTokenLearnerV11
from videotl.models.reducers.token_pooling import TokenPooling
from videotl.registry import Registry


@dataclass(frozen=True)
class ReducerSpec:
    """What a reducer builder needs to know: token width ``dim``; and, named like the config keys
    they come from, the output tokens ``reducer_tokens`` per temporal index (one entry of
    ``model.reducer_tokens``; ATS: the maximum), ``clustering_iterations`` (Token Pooling), the
    network's GELU form ``gelu`` and TokenLearner v1's ``tokenlearner_conv_layers``,
    ``tokenlearner_conv_bias`` and ``tokenlearner_pooling``."""

    dim: int
    reducer_tokens: int
    clustering_iterations: int = 5
    gelu: str = "exact"
    tokenlearner_conv_layers: int = 3
    tokenlearner_conv_bias: bool = True
    tokenlearner_pooling: str = "mean"


ReducerBuilder = Callable[[ReducerSpec], TokenReducer]
TOKEN_REDUCERS: Registry[ReducerBuilder] = Registry("token reducer")


def build_token_reducer(kind: str, spec: ReducerSpec) -> TokenReducer:
    """Builds the registered reducer ``kind``; its ``kind`` attribute names it in statistics and
    errors."""
    reducer = TOKEN_REDUCERS.get(kind)(spec)
    reducer.kind = kind
    return reducer


@TOKEN_REDUCERS.register("tokenlearner_v1")
def tokenlearner_v1(spec: ReducerSpec) -> TokenReducer:
    return GridTokenLearner(
        spec.dim, spec.reducer_tokens, spec.tokenlearner_conv_layers,
        spec.tokenlearner_conv_bias, spec.tokenlearner_pooling, spec.gelu,
    )


@TOKEN_REDUCERS.register("tokenlearner_v11")
def tokenlearner_v11(spec: ReducerSpec) -> TokenReducer:
    return SequenceTokenLearnerV11(spec.dim, spec.reducer_tokens, hidden_dim=64, gelu=spec.gelu)


@TOKEN_REDUCERS.register("ats")
def ats(spec: ReducerSpec) -> TokenReducer:
    return AdaptiveTokenSampler(spec.reducer_tokens)


@TOKEN_REDUCERS.register("token_pooling")
def token_pooling(spec: ReducerSpec) -> TokenReducer:
    return TokenPooling(spec.reducer_tokens, spec.clustering_iterations, "kmedoids")


@TOKEN_REDUCERS.register("token_pooling_kmeans")
def token_pooling_kmeans(spec: ReducerSpec) -> TokenReducer:
    return TokenPooling(spec.reducer_tokens, spec.clustering_iterations, "kmeans")


@TOKEN_REDUCERS.register("grid_pool")
def grid_pool(spec: ReducerSpec) -> TokenReducer:
    return GridPool(spec.reducer_tokens)
