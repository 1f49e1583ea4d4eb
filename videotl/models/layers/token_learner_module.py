"""The combined module of Figure 2: TokenLearner -> Vector Transformer -> TokenFuser."""

from __future__ import annotations

import torch
from torch import nn

from videotl.models.layers.token_fuser import TokenFuser
from videotl.models.layers.token_learner import TokenLearner
from videotl.models.layers.vector_transformer import VectorTransformer


class TokenLearnerModule(nn.Module):
    """Learns ``S`` tokens per frame, relates all ``S*T`` of them with a Vector Transformer and
    fuses them back into the input, which serves as the residual.

    Args:
        channels: channels ``C`` of the input (also the transformer's width, as in the paper).
        num_frames: frames ``T`` of the input (TokenFuser's size depends on it).
        num_tokens: tokens ``S`` per frame.
        num_conv_layers: convolutions in TokenLearner's attention function.

    Shapes:
        input ``[B, C, T, H, W]``; output ``[B, C, T, H, W]``;
        maps (with ``return_maps=True``): ``[B, T, S, H, W]``.
    """

    def __init__(
        self, channels: int, num_frames: int, num_tokens: int = 8, num_conv_layers: int = 1
    ) -> None:
        super().__init__()
        self.learner = TokenLearner(channels, num_tokens, num_conv_layers)
        self.transformer = VectorTransformer(channels)
        self.fuser = TokenFuser(num_tokens, num_frames)

    def forward(
        self, x: torch.Tensor, return_maps: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        tokens, maps = self.learner(x, return_maps=True)
        batch, frames, num_tokens, channels = tokens.shape
        y = self.transformer(tokens.reshape(batch, frames * num_tokens, channels))
        out = self.fuser(y, x)
        if return_maps:
            return out, maps
        return out
