"""X(2+1)D (Ryoo et al. 2021, §5.1): X3D with (2+1)D convolutions, no Squeeze-and-Excitation and
ReLU activations, whose residual blocks host pluggable space-time modules (Figure 7)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from videotl.models.layers.token_learner_module import TokenFusion, Tokenizer, TokenTransformer
from videotl.models.registry import register_model
from videotl.models.space_time import SpaceTimeSpec, build_space_time_module

BACKBONE_MODULE = "conv2d+conv1d"


class Bottleneck(nn.Module):
    """X3D's inverted bottleneck: 1x1x1 expansion, space-time module, 1x1x1 projection, residual.

    Args:
        in_channels, inner_channels, out_channels: widths before, inside and after the block.
        space_time: the space-time module (maps ``inner_channels`` to itself with the stride).
        spatial_stride: the block's spatial stride (for the shortcut).

    Shapes:
        ``[B, C_in, T, H, W] -> [B, C_out, T, ceil(H/s), ceil(W/s)]``.
    """

    def __init__(
        self,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        space_time: nn.Module,
        spatial_stride: int = 1,
    ) -> None:
        super().__init__()
        self.expand = nn.Sequential(
            nn.Conv3d(in_channels, inner_channels, 1, bias=False),
            nn.BatchNorm3d(inner_channels),
            nn.ReLU(inplace=True),
        )
        self.space_time = space_time
        self.project = nn.Sequential(
            nn.Conv3d(inner_channels, out_channels, 1, bias=False), nn.BatchNorm3d(out_channels)
        )
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels or spatial_stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv3d(
                    in_channels, out_channels, 1, stride=(1, spatial_stride, spatial_stride),
                    bias=False,
                ),
                nn.BatchNorm3d(out_channels),
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.project(self.space_time(self.expand(x))))


class X2Plus1D(nn.Module):
    """X(2+1)D network with a classification head.

    Args:
        num_classes: classifier outputs (logits; use softmax or sigmoid outside).
        num_frames: input frames ``T`` (the network keeps ``T`` throughout; TokenFuser's size
            depends on it).
        widths: output widths of the four stages (res2..res5).
        depths: blocks per stage.
        space_time_modules: the space-time module of each stage's blocks, by registered name.
        stem_width: channels after the stem.
        bottleneck_factor: inner width of a block = ``int(factor * width)``.
        head_width: width of the head's last hidden layer.
        num_tokens: TokenLearner tokens per frame (modules that learn tokens).
        num_heads: attention heads (modules that use multi-head attention).
        dropout: dropout before the classifier.
        tokenizer, token_transformer, token_fusion: the parts of the TokenLearner module
            (``TokenLearnerModule``'s ``tokenizer``, ``transformer``, ``fusion``), in modules
            that have one.

    Shapes:
        input ``[B, 3, T, H, W]``; ``forward_features`` -> ``[B, head_width]``;
        ``forward`` -> logits ``[B, num_classes]``.
    """

    def __init__(
        self,
        num_classes: int,
        num_frames: int,
        widths: Sequence[int] = (24, 48, 96, 192),
        depths: Sequence[int] = (3, 5, 11, 7),
        space_time_modules: Sequence[str] = (BACKBONE_MODULE,) * 4,
        stem_width: int = 24,
        bottleneck_factor: float = 2.25,
        head_width: int = 2048,
        num_tokens: int = 8,
        num_heads: int = 8,
        dropout: float = 0.5,
        tokenizer: Tokenizer = "tokenlearner",
        token_transformer: TokenTransformer = "vector",
        token_fusion: TokenFusion = "tokenfuser",
    ) -> None:
        super().__init__()
        if not len(widths) == len(depths) == len(space_time_modules):
            raise ValueError("widths, depths and space_time_modules need one entry per stage")
        self.num_frames = num_frames
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_width, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
            nn.Conv3d(stem_width, stem_width, (5, 1, 1), padding=(2, 0, 0), groups=stem_width,
                      bias=False),
            nn.BatchNorm3d(stem_width),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = stem_width
        for width, depth, kind in zip(widths, depths, space_time_modules):
            inner = int(bottleneck_factor * width)
            blocks = []
            for index in range(depth):
                stride = 2 if index == 0 else 1
                spec = SpaceTimeSpec(
                    inner, num_frames, stride, num_tokens, num_heads,
                    tokenizer=tokenizer, token_transformer=token_transformer,
                    token_fusion=token_fusion,
                )
                space_time = build_space_time_module(kind, spec)
                blocks.append(Bottleneck(in_channels, inner, width, space_time, stride))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        head_inner = int(bottleneck_factor * in_channels)
        self.head_pre = nn.Sequential(
            nn.Conv3d(in_channels, head_inner, 1, bias=False),
            nn.BatchNorm3d(head_inner),
            nn.ReLU(inplace=True),
        )
        self.head_post = nn.Sequential(
            nn.Linear(head_inner, head_width, bias=False), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.head_width = head_width
        self.classifier = nn.Linear(head_width, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W] -> [B, head_width]`` pooled features before the classifier."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"X2Plus1D expects [B, 3, T, H, W] clips, got {tuple(x.shape)}")
        x = self.head_pre(self.stages(self.stem(x)))
        return self.head_post(x.mean(dim=(2, 3, 4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.forward_features(x)))

    def reset_classifier(self, num_classes: int) -> None:
        """Replaces the classifier with a freshly initialised one for ``num_classes``."""
        self.classifier = nn.Linear(self.head_width, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)


def _x2plus1d(space_time_module: str, **kwargs) -> X2Plus1D:
    """Puts ``space_time_module`` in the last stage (res5) and the backbone's module elsewhere."""
    stages = len(kwargs.get("widths", (0,) * 4))
    kinds = (BACKBONE_MODULE,) * (stages - 1) + (space_time_module,)
    return X2Plus1D(space_time_modules=kinds, **kwargs)


@register_model("x2plus1d_m")
def x2plus1d_m(
    num_classes: int = 400,
    num_frames: int = 16,
    space_time_module: str = BACKBONE_MODULE,
    num_tokens: int = 8,
    dropout: float = 0.5,
    tokenizer: Tokenizer = "tokenlearner",
    token_transformer: TokenTransformer = "vector",
    token_fusion: TokenFusion = "tokenfuser",
) -> X2Plus1D:
    """X(2+1)D-M: X3D-M widths (24, 48, 96, 192) and depths (3, 5, 11, 7), inner factor 2.25."""
    return _x2plus1d(
        space_time_module, num_classes=num_classes, num_frames=num_frames,
        num_tokens=num_tokens, dropout=dropout, tokenizer=tokenizer,
        token_transformer=token_transformer, token_fusion=token_fusion,
    )


@register_model("x2plus1d_tiny")
def x2plus1d_tiny(
    num_classes: int = 400,
    num_frames: int = 8,
    space_time_module: str = BACKBONE_MODULE,
    num_tokens: int = 8,
    dropout: float = 0.0,
    tokenizer: Tokenizer = "tokenlearner",
    token_transformer: TokenTransformer = "vector",
    token_fusion: TokenFusion = "tokenfuser",
) -> X2Plus1D:
    """A narrow X(2+1)D (widths 8-32, one or two blocks per stage) for tests and CPU demos."""
    return _x2plus1d(
        space_time_module, num_classes=num_classes, num_frames=num_frames,
        widths=(8, 16, 24, 32), depths=(1, 1, 2, 2), stem_width=8, bottleneck_factor=2.0,
        head_width=64, num_tokens=num_tokens, num_heads=4, dropout=dropout, tokenizer=tokenizer,
        token_transformer=token_transformer, token_fusion=token_fusion,
    )
