"""Space-time modules for the residual blocks of X(2+1)D, selectable by name.

A space-time module is the middle of an inverted bottleneck block: it maps
``[B, C, T, H, W] -> [B, C, T, H/s, W/s]`` where ``s`` is the block's spatial stride.
Each name is registered with a builder listing its layers; the rows of the paper's Table 4:

- ``conv2d+conv1d``: 3x3 spatial convolution then 3-tap temporal convolution (the backbone);
- ``tokenlearner``: TokenLearner -> Vector Transformer -> TokenFuser (Figure 2);
- ``conv2d+tokenlearner``: spatial convolution then that module (the paper's final model);
- ``joint_mhsa``: 8-head self-attention over all ``T*H*W`` positions;
- ``conv2d+joint_mhsa``: spatial convolution then joint self-attention.

Modules without a spatial convolution downsample by average pooling (stride ``s``) first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from videotl.models.layers import JointSpaceTimeAttention, TokenLearnerModule
from videotl.registry import Registry


@dataclass(frozen=True)
class SpaceTimeSpec:
    """What a space-time module builder needs to know about its place in the network."""

    channels: int
    num_frames: int
    spatial_stride: int = 1
    num_tokens: int = 8
    num_heads: int = 8


class SpaceTimeModule(nn.Sequential):
    """The layers of one space-time module; ``kind`` is its registered name."""

    def __init__(self, kind: str, layers: list[nn.Module]) -> None:
        super().__init__(*layers)
        self.kind = kind


SpaceTimeBuilder = Callable[[SpaceTimeSpec], list[nn.Module]]
SPACE_TIME_MODULES: Registry[SpaceTimeBuilder] = Registry("space-time module")


def build_space_time_module(kind: str, spec: SpaceTimeSpec) -> SpaceTimeModule:
    """Builds the registered module ``kind`` (unknown names raise with close matches)."""
    return SpaceTimeModule(kind, SPACE_TIME_MODULES.get(kind)(spec))


def norm_act(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


def spatial_conv(channels: int, stride: int = 1) -> list[nn.Module]:
    """3x3 convolution applied to every frame (a 2D convolution), with BN and ReLU."""
    conv = nn.Conv3d(
        channels, channels, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
    )
    return [conv, *norm_act(channels)]


def temporal_conv(channels: int, kernel_size: int = 3) -> list[nn.Module]:
    """1D convolution over time at every location, with BN and ReLU."""
    conv = nn.Conv3d(
        channels, channels, (kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0), bias=False
    )
    return [conv, *norm_act(channels)]


class SpatialAveragePool(nn.Module):
    """Average pooling to ``ceil(H/s) x ceil(W/s)`` (the output size of a strided 3x3 conv).

    Shapes: ``[B, C, T, H, W] -> [B, C, T, ceil(H/s), ceil(W/s)]``.
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, height, width = x.shape[2:]
        size = (frames, -(-height // self.stride), -(-width // self.stride))
        return F.adaptive_avg_pool3d(x, size)


def spatial_pool(stride: int) -> list[nn.Module]:
    return [SpatialAveragePool(stride)] if stride > 1 else []


@SPACE_TIME_MODULES.register("conv2d+conv1d")
def conv2d_conv1d(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *temporal_conv(spec.channels)]


def _token_learner(spec: SpaceTimeSpec) -> list[nn.Module]:
    module = TokenLearnerModule(spec.channels, spec.num_frames, spec.num_tokens)
    return [module, *norm_act(spec.channels)]


def _joint_mhsa(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [JointSpaceTimeAttention(spec.channels, spec.num_heads), *norm_act(spec.channels)]


@SPACE_TIME_MODULES.register("tokenlearner")
def tokenlearner(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_pool(spec.spatial_stride), *_token_learner(spec)]


@SPACE_TIME_MODULES.register("conv2d+tokenlearner")
def conv2d_tokenlearner(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *_token_learner(spec)]


@SPACE_TIME_MODULES.register("joint_mhsa")
def joint_mhsa(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_pool(spec.spatial_stride), *_joint_mhsa(spec)]


@SPACE_TIME_MODULES.register("conv2d+joint_mhsa")
def conv2d_joint_mhsa(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *_joint_mhsa(spec)]
