"""TokenLearner (Ryoo et al. 2021, eq. 1) and its v1.1 variant.

Both learn ``S`` spatial attention maps per frame and pool the frame into ``S`` token vectors.
The authors' release (google-research/scenic, ``scenic/projects/token_learner/model.py``:
``TokenLearnerModule``, ``TokenLearnerModuleV11``) uses LayerNorm epsilon 1e-6 and the tanh form
of GELU; its v1 computes the maps with four bias-free 3x3 convolutions (three each followed by
GELU, a fourth projecting to the ``S`` maps) and sums over positions. The paper's text describes
three convolutions with GELU in between and an average. Both are expressible here:
``num_conv_layers``, ``conv_bias``, ``pooling`` and ``gelu``.
"""

from __future__ import annotations

import torch
from torch import nn

from videotl.models.layers.mlp import Mlp, gelu_layer

POOLINGS = ("mean", "sum")


class TokenLearner(nn.Module):
    """TokenLearner v1: ``z_i = pool_{h,w}(alpha_i(x) * x)`` with ``alpha_i = sigmoid(conv(x))``.

    The attention function is ``num_conv_layers`` 2D convolutions applied to every frame, with
    GELU between consecutive ones: one ``C -> S`` convolution (the video models of §5.1), three
    of width ``S`` (the image models of §4.1, as the paper describes them), or four (as released:
    three each followed by GELU, then a fourth giving the maps). ``pool`` is the mean over the
    ``H * W`` positions (eq. 1) or their sum (the release's default, ``use_sum_pooling``).

    Args:
        in_channels: channels ``C`` of the input.
        num_tokens: tokens ``S`` learned per frame.
        num_conv_layers: convolutions in the attention function (>= 1).
        kernel_size: spatial kernel size of those convolutions (odd).
        norm: LayerNorm over channels on the attention function's input (the maps are computed
            from normalised features, the tokens pool the input itself), for un-normalised inputs
            such as the residual stream of a Transformer.
        conv_bias: whether the convolutions have biases (the release has none).
        pooling: ``"mean"`` or ``"sum"`` over positions.
        gelu: GELU form between the convolutions, ``"exact"`` (erf) or ``"tanh"`` (the release).
        norm_eps: epsilon of that LayerNorm (1e-6 as released).

    Shapes:
        input ``x``: ``[B, C, T, H, W]``;
        output tokens: ``[B, T, S, C]``;
        maps (with ``return_maps=True``): ``[B, T, S, H, W]`` in ``(0, 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        num_tokens: int = 8,
        num_conv_layers: int = 1,
        kernel_size: int = 3,
        norm: bool = False,
        conv_bias: bool = True,
        pooling: str = "mean",
        gelu: str = "exact",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if num_conv_layers < 1:
            raise ValueError(f"num_conv_layers must be >= 1, got {num_conv_layers}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.num_tokens = num_tokens
        self.pooling = pooling
        self.norm = nn.LayerNorm(in_channels, eps=norm_eps) if norm else None
        layers: list[nn.Module] = []
        for index in range(num_conv_layers):
            if index > 0:
                layers.append(gelu_layer(gelu))
            layers.append(
                nn.Conv3d(
                    in_channels if index == 0 else num_tokens,
                    num_tokens,
                    kernel_size=(1, kernel_size, kernel_size),
                    padding=(0, kernel_size // 2, kernel_size // 2),
                    bias=conv_bias,
                )
            )
        self.attention = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, return_maps: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        _, _, _, height, width = x.shape
        features = x if self.norm is None else self.norm(x.movedim(1, -1)).movedim(-1, 1)
        maps = torch.sigmoid(self.attention(features))  # [B, S, T, H, W]
        tokens = torch.einsum("bsthw,bcthw->btsc", maps, x)
        if self.pooling == "mean":
            tokens = tokens / (height * width)
        if return_maps:
            return tokens, maps.transpose(1, 2)
        return tokens


class TokenLearnerV11(nn.Module):
    """TokenLearner v1.1: LayerNorm -> MLP -> softmax over positions, as released with the paper
    (Scenic's ``TokenLearnerModuleV11``).

    Args:
        dim: channels ``C`` of the input tokens.
        num_tokens: tokens ``S`` learned per frame.
        hidden_dim: hidden width of the MLP computing the maps.
        dropout: dropout inside that MLP.
        gelu: the MLP's GELU form, ``"exact"`` (erf) or ``"tanh"`` (the release).
        norm_eps: LayerNorm epsilon (1e-6 as released).

    Shapes:
        input ``x``: ``[B, T, P, C]`` (``P`` positions per frame);
        output tokens: ``[B, T, S, C]``;
        maps (with ``return_maps=True``): ``[B, T, S, P]``, each map summing to 1 over ``P``.
    """

    def __init__(
        self,
        dim: int,
        num_tokens: int = 8,
        hidden_dim: int = 64,
        dropout: float = 0.0,
        gelu: str = "exact",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, hidden_dim, num_tokens, dropout, gelu)

    def forward(
        self, x: torch.Tensor, return_maps: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        maps = self.mlp(self.norm(x)).transpose(-1, -2).softmax(dim=-1)  # [B, T, S, P]
        tokens = maps @ x
        if return_maps:
            return tokens, maps
        return tokens
