"""Space-time modules for the residual blocks of X(2+1)D, selectable by name.

A space-time module is the middle of an inverted bottleneck block: it maps
``[B, C, T, H, W] -> [B, C, T, H/s, W/s]`` where ``s`` is the block's spatial stride.
Each name is registered with a builder listing its layers; the rows of the paper's Table 4:

- ``conv2d+conv1d``: 3x3 spatial convolution then 3-tap temporal convolution (the backbone);
- ``tokenlearner``: TokenLearner -> Vector Transformer -> TokenFuser (Figure 2);
- ``conv2d+tokenlearner``: spatial convolution then that module (the paper's final model);
- ``joint_mhsa``: 8-head self-attention over all ``T*H*W`` positions;
- ``conv2d+joint_mhsa``: spatial convolution then joint self-attention.

and the further rows of Table 5 (standard transformers: 8-head self-attention, pre-LayerNorm,
residual; spatial attention within each frame, temporal attention along time at each location):

- ``conv2d+mlp_mixer``: spatial convolution then an MLP-Mixer block over the frames;
- ``conv2d+temporal_transformer``: spatial convolution then temporal attention;
- ``spatial+temporal_transformer``: spatial attention then temporal attention (TimeSformer-like);
- ``conv2d+spatial+temporal_transformer``: spatial convolution, spatial and temporal attention;
- ``spatial_transformer+tokenlearner``: spatial attention then the TokenLearner module.

Modules without a spatial convolution downsample by average pooling (stride ``s``) first. The
TokenLearner module's parts follow the spec's ``tokenizer``, ``token_transformer`` and
``token_fusion`` (the paper's Table 6 and §5.3 ablations; defaults: the paper's module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from videotl.models.layers import (
    JointSpaceTimeAttention,
    SpatialAttention,
    TemporalAttention,
    TemporalMlpMixer,
    TokenLearnerModule,
)
from videotl.models.layers.token_learner_module import TokenFusion, Tokenizer, TokenTransformer
from videotl.registry import Registry


@dataclass(frozen=True)
class SpaceTimeSpec:
    """What a space-time module builder needs to know about its place in the network.

    ``tokenizer``, ``token_transformer`` and ``token_fusion`` configure the TokenLearner module
    (``TokenLearnerModule``'s ``tokenizer``, ``transformer`` and ``fusion``) where there is one.
    """

    channels: int
    num_frames: int
    spatial_stride: int = 1
    num_tokens: int = 8
    num_heads: int = 8
    tokenizer: Tokenizer = "tokenlearner"
    token_transformer: TokenTransformer = "vector"
    token_fusion: TokenFusion = "tokenfuser"


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


def downsample_by_pooling(stride: int) -> list[nn.Module]:
    """The downsampling of modules without a strided spatial convolution: average pooling with
    ``stride`` (none for stride 1)."""
    return [SpatialAveragePool(stride)] if stride > 1 else []


@SPACE_TIME_MODULES.register("conv2d+conv1d")
def conv2d_conv1d(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *temporal_conv(spec.channels)]


def _token_learner(spec: SpaceTimeSpec) -> list[nn.Module]:
    module = TokenLearnerModule(
        spec.channels,
        spec.num_frames,
        spec.num_tokens,
        tokenizer=spec.tokenizer,
        transformer=spec.token_transformer,
        fusion=spec.token_fusion,
        num_heads=spec.num_heads,
    )
    return [module, *norm_act(spec.channels)]


def _joint_mhsa(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [JointSpaceTimeAttention(spec.channels, spec.num_heads), *norm_act(spec.channels)]


def _spatial_transformer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [SpatialAttention(spec.channels, spec.num_heads), *norm_act(spec.channels)]


def _temporal_transformer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [TemporalAttention(spec.channels, spec.num_heads), *norm_act(spec.channels)]


def _mlp_mixer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [TemporalMlpMixer(spec.channels, spec.num_frames), *norm_act(spec.channels)]


@SPACE_TIME_MODULES.register("tokenlearner")
def tokenlearner(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*downsample_by_pooling(spec.spatial_stride), *_token_learner(spec)]


@SPACE_TIME_MODULES.register("conv2d+tokenlearner")
def conv2d_tokenlearner(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *_token_learner(spec)]


@SPACE_TIME_MODULES.register("joint_mhsa")
def joint_mhsa(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*downsample_by_pooling(spec.spatial_stride), *_joint_mhsa(spec)]


@SPACE_TIME_MODULES.register("conv2d+joint_mhsa")
def conv2d_joint_mhsa(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *_joint_mhsa(spec)]


@SPACE_TIME_MODULES.register("conv2d+mlp_mixer")
def conv2d_mlp_mixer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *_mlp_mixer(spec)]


@SPACE_TIME_MODULES.register("conv2d+temporal_transformer")
def conv2d_temporal_transformer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [*spatial_conv(spec.channels, spec.spatial_stride), *_temporal_transformer(spec)]


@SPACE_TIME_MODULES.register("spatial+temporal_transformer")
def spatial_temporal_transformer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [
        *downsample_by_pooling(spec.spatial_stride),
        *_spatial_transformer(spec),
        *_temporal_transformer(spec),
    ]


@SPACE_TIME_MODULES.register("conv2d+spatial+temporal_transformer")
def conv2d_spatial_temporal_transformer(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [
        *spatial_conv(spec.channels, spec.spatial_stride),
        *_spatial_transformer(spec),
        *_temporal_transformer(spec),
    ]


@SPACE_TIME_MODULES.register("spatial_transformer+tokenlearner")
def spatial_transformer_tokenlearner(spec: SpaceTimeSpec) -> list[nn.Module]:
    return [
        *downsample_by_pooling(spec.spatial_stride),
        *_spatial_transformer(spec),
        *_token_learner(spec),
    ]
