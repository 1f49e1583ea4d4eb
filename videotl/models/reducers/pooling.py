"""Fixed average pooling of each temporal index's patch grid: the TokenLearner paper's Table 6
baseline (``S = P / 4`` is 2x2 pooling), registered as the ``grid_pool`` reducer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from videotl.models.reducers.base import InputReducer, tokens_on_grid


class GridPool(InputReducer):
    """Average pooling of each temporal index's ``h x w`` grid to ``S`` tokens on an
    ``h' x w'`` grid of the same aspect (``h' w' = S``, ``h' w = w' h``); with ``h`` divisible by
    ``h'`` it is plain ``(h/h') x (w/w')`` average pooling, else adaptive average pooling. The
    output stays on a grid, so it can be pooled again.

    Args:
        num_tokens: tokens ``S`` per temporal index.

    Shapes: tokens ``[B, T', h*w, C]``; output ``[B, T', S, C]`` on ``output_grid(grid)``.
    """

    needs_grid = True
    keeps_grid = True

    def __init__(self, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens

    def output_grid(self, grid: tuple[int, int] | None) -> tuple[int, int]:
        if grid is None:
            raise ValueError(f"{self.kind} needs the tokens on a grid")
        height, width = grid
        rows = round(math.sqrt(self.num_tokens * height / width))
        columns = self.num_tokens // max(rows, 1)
        if rows < 1 or rows * columns != self.num_tokens or rows * width != columns * height \
                or rows > height:
            unit = math.gcd(height, width)
            valid = [height * width // unit**2 * a * a for a in range(1, unit + 1)]
            raise ValueError(
                f"{self.kind} cannot lay out {self.num_tokens} tokens on a grid with the aspect "
                f"of the {height}x{width} grid; token counts that fit: {valid}"
            )
        return rows, columns

    def forward(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int] | None,
        significance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = tokens_on_grid(tokens, grid, self.kind)  # [B, T', h, w, C]
        pooled = F.adaptive_avg_pool2d(x.flatten(0, 1).permute(0, 3, 1, 2), self.output_grid(grid))
        return pooled.flatten(2).transpose(1, 2).unflatten(0, tokens.shape[:2])

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}"
