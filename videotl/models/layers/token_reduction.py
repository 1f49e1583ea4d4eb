"""The base class of token reducers: what a ViT/ViViT encoder must give each one.

A reducer at layer ``l`` cuts the tokens of each temporal index that block ``l`` and the later
blocks process. It acts in one of two places, declared by ``acts_on``:

- ``"input"``: on block ``l``'s input. Called as ``reducer(tokens, grid, significance)`` with the
  patch tokens ``[B, T', P, C]``, their layout ``grid = (h, w)`` (``P = h * w``; None once a
  reducer has left the grid) and, when ``needs_significance``, the attention each token received
  in block ``l - 1`` ``[B, T', P]`` (else None). Returns ``[B, T', S, C]``.
- ``"queries"``: inside block ``l``, between its query/key/value projection and the attention:
  called as ``reducer(context, num_prefix, frames)`` with the block's ``AttentionContext`` over
  the whole sequence (``num_prefix`` class tokens first, then ``frames`` temporal indices of equal
  token counts); returns the ``QuerySelection`` of tokens that keep an output. Only those are
  attended from (against all keys), added to their residual and passed through the MLP. The
  count may vary per sample: the selection is padded and carries a mask that later blocks use as
  a key mask.

The class token(s) never enter an ``"input"`` reducer: the encoder keeps them aside.
"""

from __future__ import annotations

from torch import nn


class TokenReducer(nn.Module):
    """Base class declaring a reducer's needs (see the module docstring).

    Attributes:
        acts_on: ``"input"`` or ``"queries"``.
        needs_grid: needs the ``(h, w)`` layout of each temporal index's tokens.
        keeps_grid: its output is laid out on ``output_grid(grid)``.
        needs_significance: needs the attention each token received in the block before.
        needs_class_token: scores tokens by the class token's attention.
    """

    acts_on = "input"
    needs_grid = False
    keeps_grid = False
    needs_significance = False
    needs_class_token = False

    def output_grid(self, grid: tuple[int, int] | None) -> tuple[int, int] | None:
        """The layout of the output tokens of each temporal index (None: no layout)."""
        return None
