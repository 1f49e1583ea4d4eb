"""Test material for the attention visualisation: a video of a moving bright square, and tiny
models whose TokenLearner maps are a known function of the input (bright places get the
attention)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videotl.models.layers import TokenLearner

BACKGROUND, SQUARE = 30, 220
SQUARE_SIZE = 16


def square_position(index: int) -> tuple[int, int]:
    """Top-left ``(x, y)`` pixel of the square in frame ``index`` (moves right and down)."""
    return 8 + 4 * index, 8 + 2 * index


def square_centre(index: int, width: int, height: int) -> tuple[float, float]:
    """The square's centre in frame ``index`` as ``(x, y)`` fractions of the frame."""
    x, y = square_position(index)
    return (x + SQUARE_SIZE / 2) / width, (y + SQUARE_SIZE / 2) / height


def write_square_video(path: Path, num_frames: int = 16, size: tuple[int, int] = (96, 64),
                       fps: float = 15.0) -> Path:
    """H.264 MP4 (``size`` = width, height) of a bright square moving over a dark background."""
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                      options={"qp": "10", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for index in range(num_frames):
            image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
            x, y = square_position(index)
            image[y:y + SQUARE_SIZE, x:x + SQUARE_SIZE] = SQUARE
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class BrightnessAttentionNet(nn.Module):
    """Averages ``cell x cell`` pixel blocks, then a TokenLearner v1 whose token 0 map is
    ``sigmoid(gain * mean_rgb)`` (bright places) and token 1 map ``sigmoid(-gain * mean_rgb)``.

    Shapes: ``[B, 3, T, H, W]`` -> logits ``[B, num_classes]``.
    """

    def __init__(self, num_classes: int = 3, cell: int = 8, gain: float = 6.0) -> None:
        super().__init__()
        self.cell = cell
        self.learner = TokenLearner(3, num_tokens=2, num_conv_layers=1, kernel_size=1)
        conv = self.learner.attention[0]
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[0].fill_(gain / 3)
            conv.weight[1].fill_(-gain / 3)
            conv.bias.zero_()
        self.head = nn.Linear(3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.learner(F.avg_pool3d(x, (1, self.cell, self.cell)))
        return self.head(tokens.mean(dim=(1, 2)))


def make_vivit_attend_to_brightness(model: nn.Module, gain: float = 5.0) -> nn.Module:
    """Sets a tiny ViViT with a TokenLearner v1.1 reducer (``vivit_tiny*_tl4at2``) so that every
    token's map is a softmax over patches of ``gain * GELU(4 b / sqrt(b^2 + 1))``, ``b`` the
    patch's mean normalised pixel value: the blocks before the reducer become identities
    (attention and MLP outputs zeroed), position embeddings zero, and the patch embedding writes
    ``[b, -b, 1, -1, 0, ...]`` (whose LayerNorm has ``4 b / sqrt(b^2 + 1)`` first)."""
    reducer = model.encoder.reducers[0]
    layer = model.encoder.reducer_layers[0]
    with torch.no_grad():
        proj = model.patch_embed.proj
        proj.weight.zero_()
        proj.bias.zero_()
        proj.weight[0].fill_(1.0 / proj.weight[0].numel())
        proj.weight[1].fill_(-1.0 / proj.weight[1].numel())
        proj.bias[2], proj.bias[3] = 1.0, -1.0
        model.pos_embed.zero_()
        for block in model.encoder.blocks[:layer]:
            for linear in (block.attn.proj, block.mlp.fc2):
                linear.weight.zero_()
                linear.bias.zero_()
        for linear in (reducer.mlp.fc1, reducer.mlp.fc2):
            linear.weight.zero_()
            linear.bias.zero_()
        reducer.mlp.fc1.weight[0, 0] = 1.0
        reducer.mlp.fc2.weight[:, 0] = gain
    return model
