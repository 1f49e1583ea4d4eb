"""An MLP-Mixer block (Tolstikhin et al. 2021) over the frames of a clip, as a temporal layer."""

from __future__ import annotations

import torch
from torch import nn

from videotl.models.layers.mlp import Mlp


class TemporalMlpMixer(nn.Module):
    """One MLP-Mixer block whose tokens are the ``T`` frames, each summarised by its spatial mean.

    ``z_t = mean_{h,w} x_t`` gives a ``[T, C]`` table; the Mixer block mixes it across frames
    (token mixing: an MLP ``R^T -> R^T`` applied to every channel) and across channels (channel
    mixing: an MLP ``R^C -> R^C`` applied to every frame), each after a LayerNorm and with a
    residual connection. The resulting vector of frame ``t`` is added to every location of that
    frame, like TokenFuser's output. The module's size depends on ``T`` but not on ``H x W``, so it
    runs at any crop size.

    Args:
        channels: channels ``C``.
        num_frames: frames ``T`` (the token-mixing MLP's size depends on it).
        token_hidden_dim: hidden width of the token-mixing MLP (default ``T``).
        channel_hidden_dim: hidden width of the channel-mixing MLP (default ``C``).

    Shapes:
        input ``[B, C, T, H, W]``; output ``[B, C, T, H, W]``.
    """

    def __init__(
        self,
        channels: int,
        num_frames: int,
        token_hidden_dim: int | None = None,
        channel_hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.token_norm = nn.LayerNorm(channels)
        self.token_mlp = Mlp(num_frames, token_hidden_dim or num_frames, num_frames)
        self.channel_norm = nn.LayerNorm(channels)
        self.channel_mlp = Mlp(channels, channel_hidden_dim or channels, channels)

    def mix(self, frames: torch.Tensor) -> torch.Tensor:
        """The Mixer block on frame vectors: ``[B, T, C] -> [B, T, C]``."""
        frames = frames + self.token_mlp(self.token_norm(frames).transpose(1, 2)).transpose(1, 2)
        return frames + self.channel_mlp(self.channel_norm(frames))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != self.num_frames:
            raise ValueError(
                f"TemporalMlpMixer was built for num_frames={self.num_frames}; got an input of "
                f"{x.shape[2]} frames. Build it with num_frames={x.shape[2]}."
            )
        mixed = self.mix(x.mean(dim=(3, 4)).transpose(1, 2))  # [B, T, C]
        return x + mixed.transpose(1, 2)[..., None, None]
