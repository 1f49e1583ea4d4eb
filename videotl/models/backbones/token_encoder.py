"""The encoder of ViT/ViViT: Transformer blocks over a class-token prefix and per-frame patch
tokens, with token reducers (``videotl.models.reducers``) at chosen layers and optionally
TokenFuser.

The encoder carries a ``TokenSequence``: the tokens, their temporal indices and grid, the key mask
of padded tokens (after ATS) and, when the next reducer needs it, the attention each token
received in the last block. At a reducer's layer it dispatches on the reducer's class: an
``InputReducer`` replaces the patch tokens before the block; a ``QueryReducer`` (ATS) lets the
block keep the outputs of the queries it selects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torch import nn

from videotl.models.layers import TokenFuserV11
from videotl.models.reducers import (
    InputReducer,
    QueryReducer,
    ReducerSpec,
    ReducingEncoderBlock,
    TokenReducer,
    build_token_reducer,
)

DEFAULT_REDUCER = "tokenlearner_v11"


class TokenEncoder(nn.Module):
    """Encoder blocks over an optional class-token prefix and per-frame patch tokens, with
    optional token reducers (and TokenFuser).

    Args:
        dim, depth, num_heads, mlp_dim: block sizes.
        attention_dropout: dropout on attention weights.
        drop_path: stochastic-depth rate of the last block (rising linearly from 0 at the first).
        token_reducer: registered reducer name (``videotl.models.reducers``).
        reducer_layers: the blocks (increasing) at which a reducer acts: an input reducer
            (TokenLearner, Token Pooling, pooling) before the block, a query reducer (ATS) inside
            it, after the keys and values of every token; None or empty: no reduction.
        reducer_tokens: tokens ``S`` per temporal index left by each reducer (ATS: its
            maximum), one value for all or one per reducer layer.
        token_fuser: reduce, process and fuse back at every block from the (single) reducer
            layer on.
        read_grid: whether the patch tokens after the last block are used; if not (only the class
            token is read), the last block's learned tokens are not fused back (no dead fuser).
        clustering_iterations: iterations of Token Pooling's clustering.
        gelu: GELU form of every block, reducer and fuser: ``"exact"`` (erf: timm) or
            ``"tanh"`` (Flax: Scenic, transformers' ViViT).
        tokenlearner_conv_layers, tokenlearner_conv_bias, tokenlearner_pooling: TokenLearner v1's
            convolutions, their biases and its pooling (``tokenlearner_v1`` reducer only).

    Shapes:
        prefix ``[B, K, C]`` (``K`` = 0 or 1), tokens ``[B, T', P, C]`` laid out on ``grid``;
        output ``[B, K + T' * N, C]`` with ``N`` the tokens per temporal index after the last
        reducer (``P`` without reducer or with the fuser). After ATS, ``N`` is the batch's largest
        kept count and ``key_mask`` (``[B, K + T' * N]``, False for padding) marks real tokens.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        token_reducer: str = DEFAULT_REDUCER,
        reducer_layers: int | Sequence[int] | None = None,
        reducer_tokens: int | Sequence[int] = 8,
        token_fuser: bool = False,
        read_grid: bool = True,
        clustering_iterations: int = 5,
        gelu: str = "exact",
        tokenlearner_conv_layers: int = 3,
        tokenlearner_conv_bias: bool = True,
        tokenlearner_pooling: str = "mean",
    ) -> None:
        super().__init__()
        layers = _reducer_layers(reducer_layers, depth)
        counts = _tokens_per_layer(reducer_tokens, layers)
        if token_fuser and len(layers) != 1:
            raise ValueError(f"token_fuser needs one reducer layer, got reducer_layers "
                             f"{list(layers)}")
        rates = [drop_path * index / max(depth - 1, 1) for index in range(depth)]
        self.blocks = nn.ModuleList(
            ReducingEncoderBlock(dim, num_heads, mlp_dim, attention_dropout, drop_path=rate,
                                 gelu=gelu)
            for rate in rates
        )
        self.reducer_layers = layers
        self.token_fuser = token_fuser
        specs = [
            ReducerSpec(dim, count, clustering_iterations, gelu, tokenlearner_conv_layers,
                        tokenlearner_conv_bias, tokenlearner_pooling)
            for count in counts[:len(layers)]
        ]
        if token_fuser:  # one reducer for every block from the reducer layer on
            specs = specs * (depth - layers[0])
        self.reducers = nn.ModuleList(build_token_reducer(token_reducer, spec) for spec in specs)
        _check_reducers(list(self.reducers), layers, token_fuser)
        fused_blocks = depth - layers[0] - (0 if read_grid else 1) if token_fuser else 0
        self.fusers = nn.ModuleList(
            _token_fuser(dim, counts[0], gelu) for _ in range(fused_blocks)
        )

    def forward(
        self, prefix: torch.Tensor, tokens: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        state = TokenSequence(
            torch.cat([prefix, tokens.flatten(1, 2)], dim=1), prefix.shape[1], tokens.shape[1], grid
        )
        for index, block in enumerate(self.blocks):
            if self.token_fuser and index >= self.reducer_layers[0]:
                x = self._fused_block(index - self.reducer_layers[0], block, state)
                state = TokenSequence(x, state.num_prefix, state.frames, state.grid)
            else:
                state = self._block(index, block, state)
        return state.x

    def _block(self, index: int, block: nn.Module, state: TokenSequence) -> TokenSequence:
        """Runs block ``index``, with the reducer acting there (if any)."""
        reducer = self._reducer_at(index)
        if isinstance(reducer, InputReducer):
            state = _reduce_input(reducer, state)
        queries = reducer if isinstance(reducer, QueryReducer) else None
        next_reducer = self._reducer_at(index + 1)
        received = isinstance(next_reducer, InputReducer) and next_reducer.needs_significance
        if queries is None and not received:
            return replace(state, x=block(state.x, state.key_mask), received=None)
        out = block(state.x, state.key_mask, queries=queries, num_prefix=state.num_prefix,
                    frames=state.frames, received=received)
        if out.selection is None:
            return replace(state, x=out.tokens, received=out.received)
        return TokenSequence(out.tokens, state.num_prefix, state.frames, None,
                             out.selection.mask, out.received)

    def _reducer_at(self, index: int) -> TokenReducer | None:
        if self.token_fuser or index not in self.reducer_layers:
            return None
        return self.reducers[self.reducer_layers.index(index)]

    def _fused_block(self, position: int, block: nn.Module, state: TokenSequence) -> torch.Tensor:
        """Learns tokens from the grid, runs ``block`` on them, fuses them back onto the grid."""
        keep, tokens = state.num_prefix, state.patches()  # [B, T', P, C]
        learned = self.reducers[position](tokens, state.grid)  # [B, T', S, C]
        y = block(torch.cat([state.x[:, :keep], learned.flatten(1, 2)], dim=1))
        if position < len(self.fusers):
            tokens = self.fusers[position](y[:, keep:].unflatten(1, (state.frames, -1)), tokens)
        return torch.cat([y[:, :keep], tokens.flatten(1, 2)], dim=1)


@dataclass
class TokenSequence:
    """The encoder's running sequence ``x`` ``[B, K + T' * N, C]``: ``num_prefix`` (``K``) class
    tokens, then ``N`` tokens for each of ``frames`` (``T'``) temporal indices, laid out on
    ``grid`` (None once a reducer left it); ``key_mask`` ``[B, K + T' * N]`` marks real tokens
    (None: all); ``received`` ``[B, K + T' * N]``: the attention each token received in the
    block that produced ``x``, when the next reducer needs it."""

    x: torch.Tensor
    num_prefix: int
    frames: int
    grid: tuple[int, int] | None
    key_mask: torch.Tensor | None = None
    received: torch.Tensor | None = None

    def patches(self) -> torch.Tensor:
        """``[B, T', N, C]``."""
        return self.x[:, self.num_prefix:].unflatten(1, (self.frames, -1))


def _reduce_input(reducer: InputReducer, state: TokenSequence) -> TokenSequence:
    """Replaces the patch tokens by the output of an input reducer."""
    if state.key_mask is not None:
        raise ValueError(f"{reducer.kind} cannot follow a reducer that keeps a varying number of "
                         "tokens (ATS)")
    significance = None
    if reducer.needs_significance:
        significance = state.received[:, state.num_prefix:].unflatten(1, (state.frames, -1))
    reduced = reducer(state.patches(), state.grid, significance)  # [B, T', S, C]
    grid = reducer.output_grid(state.grid) if reducer.keeps_grid else None
    x = torch.cat([state.x[:, :state.num_prefix], reduced.flatten(1, 2)], dim=1)
    return TokenSequence(x, state.num_prefix, state.frames, grid)


def _reducer_layers(layers: int | Sequence[int] | None, depth: int) -> tuple[int, ...]:
    layers = () if layers is None else (layers,) if isinstance(layers, int) else tuple(layers)
    if any(not 0 <= layer < depth for layer in layers):
        raise ValueError(f"reducer_layers must be in [0, {depth}), got {list(layers)}")
    if any(a >= b for a, b in zip(layers, layers[1:])):
        raise ValueError(f"reducer_layers must increase, got {list(layers)}")
    return layers


def _tokens_per_layer(
    reducer_tokens: int | Sequence[int], layers: tuple[int, ...]
) -> list[int]:
    counts = [reducer_tokens] if isinstance(reducer_tokens, int) else list(reducer_tokens)
    if len(counts) == 1:
        counts = counts * max(len(layers), 1)
    if len(counts) != max(len(layers), 1):
        raise ValueError(f"reducer_tokens {counts} must be one value or one per reducer layer "
                         f"(reducer_layers {list(layers)})")
    if any(count < 1 for count in counts):
        raise ValueError(f"reducer_tokens must be >= 1, got {counts}")
    return counts


def _check_reducers(reducers: list[TokenReducer], layers: tuple[int, ...], fuser: bool) -> None:
    """Refuses reducer placements that cannot get what the reducers need."""
    if fuser:
        reducer = reducers[0]
        if not isinstance(reducer, InputReducer) or reducer.needs_significance:
            raise ValueError(f"token_fuser needs a token_reducer that learns tokens from the grid "
                             f"alone (tokenlearner_v1, tokenlearner_v11, grid_pool), not "
                             f"{reducer.kind}")
        return
    on_grid = True
    for layer, reducer in zip(layers, reducers):
        needs_grid = isinstance(reducer, InputReducer) and reducer.needs_grid
        if needs_grid and not on_grid:
            raise ValueError(f"{reducer.kind} at layer {layer} needs the tokens on their grid, "
                             f"which an earlier reducer left (reducer_layers {list(layers)})")
        needs_significance = isinstance(reducer, InputReducer) and reducer.needs_significance
        if needs_significance and layer == 0:
            raise ValueError(f"{reducer.kind} weighs tokens by the attention they received in the "
                             f"block before it, so it cannot act at layer 0 (reducer_layers "
                             f"{list(layers)})")
        on_grid = reducer.keeps_grid


def _token_fuser(dim: int, num_tokens: int, gelu: str) -> TokenFuserV11:
    fuser = TokenFuserV11(dim, num_tokens, hidden_dim=64, gelu=gelu)
    fuser.kind = "tokenfuser_v11"  # its entry in model statistics
    return fuser
