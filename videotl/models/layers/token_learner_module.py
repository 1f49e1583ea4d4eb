"""The combined module of Figure 2: TokenLearner -> Vector Transformer -> TokenFuser.

Each of the three parts can be switched for the alternatives the paper ablates (Table 6 and
§5.3), so every ablation is this one module with different arguments:

- ``tokenizer``: ``tokenlearner`` (eq. 1), ``fixed_grid``, ``dense``, ``pool_mlp``, ``prior_only``
  (see ``videotl.models.layers.tokenizers``);
- ``transformer``: ``vector`` (eq. 2), ``mhsa`` (standard multi-head self-attention), ``none``;
- ``fusion``: ``tokenfuser`` (§3.2) or ``broadcast`` (per-frame average of the tokens).
"""

from __future__ import annotations

from typing import Callable, Literal, get_args

import torch
from torch import nn

from videotl.models.layers.attention import MultiHeadSelfAttention
from videotl.models.layers.token_fuser import TokenBroadcast, TokenFuser
from videotl.models.layers.token_learner import TokenLearner
from videotl.models.layers.tokenizers import (
    DenseTokenizer,
    FixedGridTokenizer,
    PooledMlpTokenizer,
    PriorOnlyTokenizer,
)
from videotl.models.layers.vector_transformer import VectorTransformer

Tokenizer = Literal["tokenlearner", "fixed_grid", "dense", "pool_mlp", "prior_only"]
TokenTransformer = Literal["vector", "mhsa", "none"]
TokenFusion = Literal["tokenfuser", "broadcast"]
TOKENIZERS: tuple[str, ...] = get_args(Tokenizer)
TOKEN_TRANSFORMERS: tuple[str, ...] = get_args(TokenTransformer)
TOKEN_FUSIONS: tuple[str, ...] = get_args(TokenFusion)
# Tokenizers whose tokens are weighted spatial averages with maps [B, T, S, H, W].
TOKENIZERS_WITH_MAPS = ("tokenlearner", "prior_only")


class TokenLearnerModule(nn.Module):
    """Learns ``S`` tokens per frame, relates all ``S*T`` of them with a Vector Transformer and
    fuses them back into the input, which serves as the residual.

    Args:
        channels: channels ``C`` of the input (also the transformer's width, as in the paper).
        num_frames: frames ``T`` of the input (TokenFuser's size depends on it).
        num_tokens: tokens ``S`` per frame.
        num_conv_layers: convolutions in TokenLearner's attention function (``tokenlearner``).
        tokenizer: how each frame becomes ``S`` tokens (see the module docstring).
        transformer: how the ``S*T`` tokens are related; ``none`` passes them through.
        fusion: how the tokens return to the ``[B, C, T, H, W]`` input.
        num_heads: attention heads of the ``mhsa`` transformer.

    Shapes:
        input ``[B, C, T, H, W]``; output ``[B, C, T, H, W]``;
        maps (with ``return_maps=True``, tokenizers ``tokenlearner`` and ``prior_only``):
        ``[B, T, S, H, W]``.
    """

    def __init__(
        self,
        channels: int,
        num_frames: int,
        num_tokens: int = 8,
        num_conv_layers: int = 1,
        tokenizer: Tokenizer = "tokenlearner",
        transformer: TokenTransformer = "vector",
        fusion: TokenFusion = "tokenfuser",
        num_heads: int = 8,
    ) -> None:
        super().__init__()
        _check_choice("tokenizer", tokenizer, TOKENIZERS)
        _check_choice("transformer", transformer, TOKEN_TRANSFORMERS)
        _check_choice("fusion", fusion, TOKEN_FUSIONS)
        if num_conv_layers != 1 and tokenizer != "tokenlearner":
            raise ValueError(
                f"num_conv_layers={num_conv_layers} applies to tokenizer='tokenlearner' only, "
                f"not {tokenizer!r}"
            )
        self.tokenizer = tokenizer
        self.learner = _TOKENIZER_BUILDERS[tokenizer](channels, num_tokens, num_conv_layers)
        self.transformer = _TRANSFORMER_BUILDERS[transformer](channels, num_heads)
        self.fuser = _FUSION_BUILDERS[fusion](num_tokens, num_frames)

    def forward(
        self, x: torch.Tensor, return_maps: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if return_maps:
            if self.tokenizer not in TOKENIZERS_WITH_MAPS:
                raise ValueError(
                    f"return_maps needs a tokenizer with spatial maps "
                    f"({', '.join(TOKENIZERS_WITH_MAPS)}), not {self.tokenizer!r}"
                )
            tokens, maps = self.learner(x, return_maps=True)
        else:
            tokens = self.learner(x)
        batch, frames, num_tokens, channels = tokens.shape
        y = self.transformer(tokens.reshape(batch, frames * num_tokens, channels))
        out = self.fuser(y, x)
        if return_maps:
            return out, maps
        return out


def _check_choice(argument: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        known = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"unknown TokenLearnerModule {argument} {value!r} (known: {known})")


def multi_head_token_transformer(channels: int, num_heads: int) -> nn.Sequential:
    """LayerNorm then standard multi-head self-attention (``[B, N, C] -> [B, N, C]``): the same
    projections as ``VectorTransformer`` (query, key, value, output), with ``num_heads`` heads."""
    return nn.Sequential(nn.LayerNorm(channels), MultiHeadSelfAttention(channels, num_heads))


_TOKENIZER_BUILDERS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "tokenlearner": lambda channels, tokens, conv_layers: TokenLearner(
        channels, tokens, conv_layers
    ),
    "fixed_grid": lambda channels, tokens, conv_layers: FixedGridTokenizer(tokens),
    "dense": lambda channels, tokens, conv_layers: DenseTokenizer(tokens),
    "pool_mlp": lambda channels, tokens, conv_layers: PooledMlpTokenizer(channels, tokens),
    "prior_only": lambda channels, tokens, conv_layers: PriorOnlyTokenizer(tokens),
}
_TRANSFORMER_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "vector": lambda channels, heads: VectorTransformer(channels),
    "mhsa": multi_head_token_transformer,
    "none": lambda channels, heads: nn.Identity(),
}
_FUSION_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "tokenfuser": TokenFuser,
    "broadcast": lambda tokens, frames: TokenBroadcast(tokens),
}
