"""The two kinds of token reducer and what a ViT/ViViT encoder gives each one.

A reducer at layer ``l`` cuts the tokens of each temporal index that block ``l`` and the later
blocks process. Where it acts is its class:

- ``InputReducer``: on block ``l``'s input. Called as ``reducer(tokens, grid, significance)`` with
  the patch tokens ``[B, T', P, C]``, their layout ``grid = (h, w)`` (``P = h * w``; None once a
  reducer has left the grid) and, when ``needs_significance``, the attention each token received
  in block ``l - 1`` ``[B, T', P]`` (else None). Returns ``[B, T', S, C]``. The class token(s)
  never enter it: the encoder keeps them aside.
- ``QueryReducer``: inside block ``l``, between its query/key/value projection and the attention:
  called as ``reducer(context, num_prefix=..., frames=...)`` with the block's
  ``AttentionContext`` over the whole sequence (``num_prefix`` class tokens first, then
  ``frames`` temporal indices of equal token counts); returns the ``QuerySelection`` of tokens
  that keep an output. Only those are attended from (against all keys), added to their residual
  and passed through the MLP (``videotl.models.reducers.block``). The count may vary per sample:
  the selection is padded and carries a mask that later blocks use as a key mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from videotl.models.layers.attention import AttentionContext


class TokenReducer(nn.Module):
    """What every reducer declares (see the module docstring for the two kinds).

    Attributes:
        kind: its registered name (set by ``build_token_reducer``), its entry in statistics.
        keeps_grid: its output is laid out on ``output_grid(grid)``.
        needs_class_token: scores tokens by the class token's attention.
    """

    kind = "token reducer"
    keeps_grid = False
    needs_class_token = False

    def output_grid(self, grid: tuple[int, int] | None) -> tuple[int, int] | None:
        """The layout of the output tokens of each temporal index (None: no layout)."""
        return None


class InputReducer(TokenReducer):
    """A reducer of block ``l``'s input patch tokens.

    Attributes:
        needs_grid: needs the ``(h, w)`` layout of each temporal index's tokens.
        needs_significance: needs the attention each token received in the block before.

    Shapes:
        tokens ``[B, T', P, C]`` on ``grid``, significance ``[B, T', P]`` or None;
        output ``[B, T', S, C]``.
    """

    needs_grid = False
    needs_significance = False

    def forward(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class QuerySelection:
    """The tokens of a block's input sequence that keep an output (chosen by a query reducer
    such as ATS), padded to a common count.

    Shapes: ``index`` ``[B, M]`` (positions in the input sequence; padding entries point at any
    position), ``mask`` ``[B, M]`` (``True`` for real entries) or None when all are real.
    """

    index: torch.Tensor
    mask: torch.Tensor | None = None


class QueryReducer(TokenReducer):
    """A reducer choosing, inside block ``l``, the tokens whose queries keep an output.

    Shapes:
        ``context`` over ``[B, num_prefix + frames * n, C]`` tokens -> ``QuerySelection`` of
        ``[B, M]`` sequence positions.
    """

    def forward(self, context: AttentionContext, num_prefix: int, frames: int) -> QuerySelection:
        raise NotImplementedError


def tokens_on_grid(tokens: torch.Tensor, grid: tuple[int, int] | None, kind: str) -> torch.Tensor:
    """``[B, T', P, C] -> [B, T', h, w, C]``, checking that ``grid`` holds the tokens; ``kind``
    names the reducer in errors."""
    batch, frames, positions, channels = tokens.shape
    if grid is None:
        raise ValueError(f"{kind} needs the tokens on a grid, but an earlier reducer left none")
    height, width = grid
    if height * width != positions:
        raise ValueError(f"grid {grid} does not hold the {positions} tokens per frame")
    return tokens.reshape(batch, frames, height, width, channels)
