"""ViViT (Arnab et al. 2021) and image ViT (Dosovitskiy et al. 2021), with TokenLearner inside
(Ryoo et al. 2021: §4 and Table 1; Tables 2, 5 and 7 of its later version), in one class.

``VisionTransformer`` cuts a clip ``[B, 3, T, H, W]`` into tubelets of ``t x p x p`` pixels:
``T' = T / t`` temporal indices of ``P = h * w = floor(H / p) * floor(W / p)`` patch tokens. Then:

- unfactorised (ViViT model 1): one encoder over all ``T' * P`` tokens (joint space-time
  attention), with one learned position embedding per token;
- factorised encoder (ViViT model 2, ``temporal_depth > 0``): the encoder runs on each temporal
  index separately (shared spatial position embeddings), then a temporal encoder runs over the
  ``T'`` frame representations;
- image ViT: the unfactorised case with ``t = 1`` and ``T = 1`` (``[B, 3, H, W]`` is accepted).

Token reduction: at each of the blocks ``reducer_layers`` (counted from 0) of the (spatial)
encoder, a token reducer (``videotl.models.reducers``: TokenLearner, ATS, Token Pooling, grid
pooling) turns each temporal index's ``P`` patch tokens into ``S = reducer_tokens`` tokens
(ATS: at most ``S``), and the later blocks run on ``T' * S`` tokens: "16 at 12" is ``S = 16``
with 12 blocks on the full grid before it. Reducers acting on a block's input (TokenLearner,
Token Pooling, pooling) act before it; ATS acts inside it, on its attention queries. With
``token_fuser=True``, every block from the reducer layer on instead learns ``S`` tokens per
temporal index from the full grid, runs on them, and TokenFuser v1.1 writes them back onto the
grid with a residual (except after the last block when only the class token is read). The class
token (if any) bypasses the reducers and is always kept.

Classification: ``classifier="token"`` (class token, then LayerNorm) or ``"gap"`` (no class token;
average of all final tokens, then LayerNorm: timm's ``fc_norm``; or, with
``gap_norm="norm_then_pool"``, LayerNorm on every final token, then the average: Scenic's
``encoder_norm`` before its pooling), then dropout and a linear layer.

Reference numerics: ``gelu`` chooses the GELU form of every block, reducer and fuser (``"exact"``,
erf, as timm; ``"tanh"`` as the Flax reference code: Scenic, transformers' ViViT). TokenLearner
and TokenFuser use LayerNorm epsilon 1e-6 and the fuser's token mixing starts at zero, as
released (google-research/scenic, ``scenic/projects/token_learner/model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from videotl.models.backbones.token_encoder import DEFAULT_REDUCER, TokenEncoder
from videotl.models.layers import TokenFuserV11, resize_grid_embedding
from videotl.models.registry import register_model
from videotl.models.weights import load_pretrained

CLASSIFIERS = ("token", "gap")
# The order of LayerNorm and average in the "gap" classifier: timm's (average, then LayerNorm)
# or the Flax reference's (LayerNorm on every token, then average).
GAP_NORMS = ("pool_then_norm", "norm_then_pool")


class TubeletEmbedding(nn.Module):
    """Linear embedding of non-overlapping ``t x p x p`` tubelets (a strided 3D convolution).

    Shapes: ``[B, 3, T, H, W] -> ([B, T/t, h*w, C], (h, w))`` with ``h = floor(H/p)``,
    ``w = floor(W/p)``; tokens of a temporal index are in row-major order.
    """

    def __init__(self, dim: int, patch_size: int, tubelet_size: int = 1) -> None:
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(3, dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)  # [B, C, T', h, w]
        grid = (x.shape[3], x.shape[4])
        return x.flatten(3).permute(0, 2, 3, 1), grid


class VisionTransformer(nn.Module):
    """ViViT / ViT with optional token reduction (see the module docstring).

    Args:
        num_classes: classifier outputs (logits).
        train_crop_size: the input height and width its position embeddings are laid out for;
            inputs of other sizes get bicubically interpolated position embeddings.
        num_frames: input frames ``T`` (1 for images); a multiple of ``tubelet_size``.
        patch_size, tubelet_size: tubelet ``t x p x p``.
        dim, depth, num_heads, mlp_dim: Transformer width, blocks of the (spatial) encoder,
            attention heads, MLP width.
        temporal_depth: blocks of the temporal encoder; 0 builds the unfactorised model.
        classifier: ``"token"`` or ``"gap"``.
        gap_norm: with ``"gap"``, ``"pool_then_norm"`` (timm) or ``"norm_then_pool"`` (Scenic).
        gelu: GELU form of the whole network, ``"exact"`` (erf: timm) or ``"tanh"`` (Flax).
        tokenlearner_conv_layers, tokenlearner_conv_bias, tokenlearner_pooling: TokenLearner
            v1's convolutions, biases and pooling (``token_reducer="tokenlearner_v1"``).
        token_reducer, reducer_layers, reducer_tokens, token_fuser, clustering_iterations: token
            reduction in the (spatial) encoder (see ``TokenEncoder``); ``reducer_layers=None``
            disables it.
        dropout: dropout before the classifier.
        attention_dropout: dropout on attention weights.
        drop_path: stochastic-depth rate of each encoder's last block.

    Shapes:
        input ``[B, 3, T, H, W]`` (images also ``[B, 3, H, W]``); ``forward_features`` ->
        ``[B, dim]``; ``forward`` -> logits ``[B, num_classes]``.
    """

    def __init__(
        self,
        num_classes: int,
        train_crop_size: int = 224,
        num_frames: int = 1,
        patch_size: int = 16,
        tubelet_size: int = 1,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        temporal_depth: int = 0,
        classifier: str = "token",
        token_reducer: str = DEFAULT_REDUCER,
        reducer_layers: int | Sequence[int] | None = None,
        reducer_tokens: int | Sequence[int] = 8,
        token_fuser: bool = False,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        clustering_iterations: int = 5,
        gap_norm: str = "pool_then_norm",
        gelu: str = "exact",
        tokenlearner_conv_layers: int = 3,
        tokenlearner_conv_bias: bool = True,
        tokenlearner_pooling: str = "mean",
    ) -> None:
        super().__init__()
        _check_classifier(classifier, gap_norm)
        if num_frames % tubelet_size:
            raise ValueError(
                f"num_frames ({num_frames}) must be a multiple of the tubelet size {tubelet_size}"
            )
        if train_crop_size < patch_size:
            raise ValueError(
                f"train_crop_size {train_crop_size} is smaller than the patch size {patch_size}"
            )
        self.classifier = classifier
        self.gap_norm = gap_norm
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.temporal_size = num_frames // tubelet_size
        self.grid = (train_crop_size // patch_size, train_crop_size // patch_size)
        self.num_prefix_tokens = 1 if classifier == "token" else 0
        self.dim = dim
        self.patch_embed = TubeletEmbedding(dim, patch_size, tubelet_size)
        self.cls_token = self._class_token(dim)
        embedded_frames = 1 if temporal_depth else self.temporal_size
        positions = self.num_prefix_tokens + embedded_frames * self.grid[0] * self.grid[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, positions, dim))
        self.encoder = TokenEncoder(
            dim, depth, num_heads, mlp_dim, attention_dropout, drop_path,
            token_reducer, reducer_layers, reducer_tokens, token_fuser,
            read_grid=classifier == "gap",
            clustering_iterations=clustering_iterations,
            gelu=gelu,
            tokenlearner_conv_layers=tokenlearner_conv_layers,
            tokenlearner_conv_bias=tokenlearner_conv_bias,
            tokenlearner_pooling=tokenlearner_pooling,
        )
        for reducer in self.encoder.reducers:
            if reducer.needs_class_token and classifier != "token":
                raise ValueError(f"{reducer.kind} scores tokens by the class token's attention; "
                                 f"use classifier 'token', not {classifier!r}")
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_encoder: TokenEncoder | None = None
        if temporal_depth:
            self.temporal_cls_token = self._class_token(dim)
            positions = self.num_prefix_tokens + self.temporal_size
            self.temporal_pos_embed = nn.Parameter(torch.zeros(1, positions, dim))
            self.temporal_encoder = TokenEncoder(
                dim, temporal_depth, num_heads, mlp_dim, attention_dropout, drop_path, gelu=gelu
            )
            self.temporal_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head_drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _class_token(self, dim: int) -> nn.Parameter | None:
        return nn.Parameter(torch.zeros(1, 1, dim)) if self.classifier == "token" else None

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for name, parameter in self.named_parameters():
            if name.endswith("pos_embed"):
                nn.init.trunc_normal_(parameter, std=0.02)
            elif name.endswith("cls_token"):
                nn.init.normal_(parameter, std=1e-6)
        for module in self.modules():
            if isinstance(module, TokenFuserV11):
                module.reset_token_mix()  # zero, as released, unless built otherwise

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` (or ``[B, 3, H, W]`` for images) -> ``[B, dim]``."""
        tokens, grid = self.patch_embed(self._as_clip(x))  # [B, T', P, C]
        batch, frames = tokens.shape[:2]
        if self.temporal_encoder is None:
            tokens = tokens + self._patch_positions(grid)
            x = self.encoder(self._prefix(self.cls_token, self.pos_embed, batch), tokens, grid)
            return self._pool(x, self.norm)
        # Factorised encoder: every temporal index through the spatial encoder on its own.
        tokens = tokens.flatten(0, 1)[:, None] + self._patch_positions(grid)  # [B*T', 1, P, C]
        prefix = self._prefix(self.cls_token, self.pos_embed, batch * frames)
        per_frame = self._pool(self.encoder(prefix, tokens, grid), self.norm)  # [B*T', C]
        keep = self.num_prefix_tokens
        per_frame = per_frame.view(batch, frames, 1, -1) + self.temporal_pos_embed[0, keep:, None]
        prefix = self._prefix(self.temporal_cls_token, self.temporal_pos_embed, batch)
        x = self.temporal_encoder(prefix, per_frame, (1, 1))
        return self._pool(x, self.temporal_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x)))

    def reset_classifier(self, num_classes: int) -> None:
        """Replaces the classifier with a freshly initialised one for ``num_classes``."""
        self.head = nn.Linear(self.dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def _as_clip(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4 and self.num_frames == 1:
            x = x.unsqueeze(2)
        if x.ndim != 5 or x.shape[1] != 3:
            images = " (or [B, 3, H, W] images)" if self.num_frames == 1 else ""
            raise ValueError(f"expects [B, 3, T, H, W] clips{images}, got {tuple(x.shape)}")
        if x.shape[2] != self.num_frames:
            raise ValueError(
                f"VisionTransformer was built for num_frames={self.num_frames} "
                f"({self.temporal_size} tubelets of {self.tubelet_size} frames); got a clip of "
                f"{x.shape[2]} frames. Build it with num_frames={x.shape[2]}."
            )
        return x

    def _patch_positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """Position embeddings of the patch tokens for ``grid``: ``[1, T' or 1, h*w, C]``."""
        embed = self.pos_embed[0, self.num_prefix_tokens:]
        embed = embed.view(-1, self.grid[0], self.grid[1], self.dim)
        return resize_grid_embedding(embed, grid).flatten(1, 2)[None]

    def _prefix(
        self, cls_token: torch.Tensor | None, pos_embed: torch.Tensor, batch: int
    ) -> torch.Tensor:
        """The class token with its position embedding, ``[batch, K, C]`` (``K = 0`` for gap)."""
        if cls_token is None:
            return pos_embed.new_zeros(batch, 0, self.dim)
        return (cls_token + pos_embed[:, :1]).expand(batch, -1, -1)

    def _pool(self, x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        """``[B, K + N, C] -> [B, C]``: the class token, or the mean of all tokens, normalised
        (``gap_norm``: after the mean, or every token before it)."""
        if self.classifier == "token":
            return norm(x[:, 0])
        if self.gap_norm == "norm_then_pool":
            return norm(x).mean(dim=1)
        return norm(x.mean(dim=1))


def _check_classifier(classifier: str, gap_norm: str) -> None:
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
    if gap_norm not in GAP_NORMS:
        raise ValueError(f"gap_norm must be one of {GAP_NORMS}, got {gap_norm!r}")
    if classifier != "gap" and gap_norm != GAP_NORMS[0]:
        raise ValueError(f"gap_norm {gap_norm!r} applies to classifier 'gap', not {classifier!r}")


# --- Registered models --------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """Transformer sizes: B, L, H of ViT (Dosovitskiy et al. 2021, Table 1); S as used by the
    TokenLearner paper (width 384, 6 heads)."""

    dim: int
    depth: int
    num_heads: int
    mlp_dim: int


TINY = Size(32, 4, 4, 64)  # tests and CPU demos
SMALL = Size(384, 12, 6, 1536)
BASE = Size(768, 12, 12, 3072)
LARGE = Size(1024, 24, 16, 4096)
HUGE = Size(1280, 32, 16, 5120)


def _architecture(size: Size, patch_size: int, **changes) -> dict:
    arguments = dict(
        patch_size=patch_size, dim=size.dim, depth=size.depth, num_heads=size.num_heads,
        mlp_dim=size.mlp_dim,
    )
    return {**arguments, **changes}


def _build(
    architecture: dict, pretrained: str | None, inflation: str, pretrained_format: str,
    **arguments,
):
    model = VisionTransformer(**architecture, **arguments)
    if pretrained is not None:
        load_pretrained(model, pretrained, pretrained_format, inflation)
    return model


def _video(name: str, doc: str, architecture: dict) -> None:
    """Registers a ViViT without token reduction (tubelets of 2 frames unless stated)."""

    def builder(
        num_classes: int = 400,
        num_frames: int = 32,
        train_crop_size: int = 224,
        classifier: str = "token",
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        pretrained: str | None = None,
        pretrained_format: str = "auto",
        pretrained_inflation: str = "central",
        gelu: str = "exact",
        gap_norm: str = "pool_then_norm",
    ) -> VisionTransformer:
        return _build(
            {"tubelet_size": 2, **architecture}, pretrained, pretrained_inflation,
            pretrained_format,
            num_classes=num_classes, num_frames=num_frames, train_crop_size=train_crop_size,
            classifier=classifier, dropout=dropout, attention_dropout=attention_dropout,
            drop_path=drop_path, gelu=gelu, gap_norm=gap_norm,
        )

    _register(name, doc, builder)


def _video_reduced(name: str, doc: str, architecture: dict) -> None:
    """Registers a ViViT with token reducers (``model.token_reducer`` chooses which;
    ``model.reducer_layers`` and ``model.reducer_tokens`` replace the name's placement)."""

    def builder(
        num_classes: int = 400,
        num_frames: int = 32,
        train_crop_size: int = 224,
        classifier: str = "token",
        token_reducer: str = DEFAULT_REDUCER,
        reducer_layers: list[int] | None = None,
        reducer_tokens: list[int] | None = None,
        clustering_iterations: int = 5,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        pretrained: str | None = None,
        pretrained_format: str = "auto",
        pretrained_inflation: str = "central",
        gelu: str = "exact",
        gap_norm: str = "pool_then_norm",
        tokenlearner_conv_layers: int = 3,
        tokenlearner_conv_bias: bool = True,
        tokenlearner_pooling: str = "mean",
    ) -> VisionTransformer:
        return _build(
            _placed({"tubelet_size": 2, **architecture}, reducer_layers, reducer_tokens),
            pretrained, pretrained_inflation, pretrained_format,
            num_classes=num_classes, num_frames=num_frames, train_crop_size=train_crop_size,
            classifier=classifier, token_reducer=token_reducer, dropout=dropout,
            attention_dropout=attention_dropout, drop_path=drop_path,
            clustering_iterations=clustering_iterations, gelu=gelu, gap_norm=gap_norm,
            tokenlearner_conv_layers=tokenlearner_conv_layers,
            tokenlearner_conv_bias=tokenlearner_conv_bias,
            tokenlearner_pooling=tokenlearner_pooling,
        )

    _register(name, doc, builder)


def _image(name: str, doc: str, architecture: dict) -> None:
    """Registers an image ViT (``T = 1``, tubelet ``1 x p x p``) without token reduction."""

    def builder(
        num_classes: int = 1000,
        train_crop_size: int = 224,
        classifier: str = "token",
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        pretrained: str | None = None,
        pretrained_format: str = "auto",
        gelu: str = "exact",
        gap_norm: str = "pool_then_norm",
    ) -> VisionTransformer:
        return _build(
            architecture, pretrained, "central", pretrained_format, num_classes=num_classes,
            train_crop_size=train_crop_size, classifier=classifier, dropout=dropout,
            attention_dropout=attention_dropout, drop_path=drop_path, gelu=gelu,
            gap_norm=gap_norm,
        )

    _register(name, doc, builder)


def _image_reduced(name: str, doc: str, architecture: dict) -> None:
    """Registers an image ViT with token reducers (``model.token_reducer`` chooses which;
    ``model.reducer_layers`` and ``model.reducer_tokens`` replace the name's placement)."""

    def builder(
        num_classes: int = 1000,
        train_crop_size: int = 224,
        classifier: str = "token",
        token_reducer: str = DEFAULT_REDUCER,
        reducer_layers: list[int] | None = None,
        reducer_tokens: list[int] | None = None,
        clustering_iterations: int = 5,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        pretrained: str | None = None,
        pretrained_format: str = "auto",
        gelu: str = "exact",
        gap_norm: str = "pool_then_norm",
        tokenlearner_conv_layers: int = 3,
        tokenlearner_conv_bias: bool = True,
        tokenlearner_pooling: str = "mean",
    ) -> VisionTransformer:
        return _build(
            _placed(architecture, reducer_layers, reducer_tokens), pretrained, "central",
            pretrained_format,
            num_classes=num_classes, train_crop_size=train_crop_size, classifier=classifier,
            token_reducer=token_reducer, dropout=dropout, attention_dropout=attention_dropout,
            drop_path=drop_path, clustering_iterations=clustering_iterations, gelu=gelu,
            gap_norm=gap_norm, tokenlearner_conv_layers=tokenlearner_conv_layers,
            tokenlearner_conv_bias=tokenlearner_conv_bias,
            tokenlearner_pooling=tokenlearner_pooling,
        )

    _register(name, doc, builder)


def _placed(
    architecture: dict, reducer_layers: list[int] | None, reducer_tokens: list[int] | None
) -> dict:
    """The architecture with the reducer layers and tokens replaced where given (not None)."""
    changes = {"reducer_layers": reducer_layers, "reducer_tokens": reducer_tokens}
    return {**architecture, **{k: v for k, v in changes.items() if v is not None}}


def _register(name: str, doc: str, builder: Callable[..., VisionTransformer]) -> None:
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc
    register_model(name)(builder)


def _tl(reducer_tokens: int, layer: int, fuser: bool = False) -> dict:
    return dict(reducer_tokens=reducer_tokens, reducer_layers=layer, token_fuser=fuser)


# ViViT model 1 (unfactorised), tubelets 2 x p x p: sizes B, L, H with patches 16, 14 and 10.
for _size_name, _size in (("b", BASE), ("l", LARGE), ("h", HUGE)):
    for _patch in (16, 14, 10):
        _video(
            f"vivit_{_size_name}{_patch}",
            f"ViViT-{_size_name.upper()}/{_patch}x2, unfactorised (joint space-time attention).",
            _architecture(_size, _patch),
        )
# ViViT model 2 (factorised encoder): spatial encoder of the ViT's depth, 4 temporal blocks.
_video("vivit_b16_fe", "ViViT-B/16x2, factorised encoder (12 spatial + 4 temporal blocks).",
       _architecture(BASE, 16, temporal_depth=4))
_video("vivit_l16_fe", "ViViT-L/16x2, factorised encoder (24 spatial + 4 temporal blocks).",
       _architecture(LARGE, 16, temporal_depth=4))
# TokenLearner + ViViT (Table 7): "S at l" on ViViT-L, with extra blocks after TokenLearner.
_video_reduced("vivit_b16_tl8at6", "ViViT-B/16x2 with 8 tokens at layer 6 (ViT-B/16's placement).",
               _architecture(BASE, 16, **_tl(8, 6)))
_video_reduced("vivit_l16_tl16at12", "ViViT-L/16x2 with 16 tokens at layer 12 (24 blocks).",
               _architecture(LARGE, 16, **_tl(16, 12)))
_video_reduced("vivit_l16_tl8at18", "ViViT-L/16x2 with 8 tokens at layer 18 (24+6 blocks).",
               _architecture(LARGE, 16, depth=30, **_tl(8, 18)))
_video_reduced("vivit_l14_tl16at18", "ViViT-L/14x2 with 16 tokens at layer 18 (24+11 blocks).",
               _architecture(LARGE, 14, depth=35, **_tl(16, 18)))
_video_reduced("vivit_l10_tl16at18", "ViViT-L/10x2 with 16 tokens at layer 18 (24+11 blocks).",
               _architecture(LARGE, 10, depth=35, **_tl(16, 18)))
_video_reduced(
    "vivit_l16_tl16at12_fuser",
    "ViViT-L/16x2, 16 tokens learned, processed and fused back at every layer from 12 on.",
    _architecture(LARGE, 16, **_tl(16, 12, fuser=True)),
)
# Image ViT (Table 1) and TokenLearner ViT (Tables 1, 2, 5), TokenLearner at the middle.
_image("vit_s32", "ViT-S/32.", _architecture(SMALL, 32))
_image("vit_s16", "ViT-S/16 (DeiT-S's architecture).", _architecture(SMALL, 16))
_image("vit_b32", "ViT-B/32.", _architecture(BASE, 32))
_image("vit_b16", "ViT-B/16.", _architecture(BASE, 16))
_image("vit_l16", "ViT-L/16.", _architecture(LARGE, 16))
for _name, _doc, _arch in (
    ("vit_s32_tl8at6", "ViT-S/32 with 8 tokens at layer 6.", _architecture(SMALL, 32, **_tl(8, 6))),
    ("vit_s16_tl8at6", "ViT-S/16 with 8 tokens at layer 6.", _architecture(SMALL, 16, **_tl(8, 6))),
    ("vit_b32_tl8at6", "ViT-B/32 with 8 tokens at layer 6.", _architecture(BASE, 32, **_tl(8, 6))),
    ("vit_b16_tl8at6", "ViT-B/16 with 8 tokens at layer 6.", _architecture(BASE, 16, **_tl(8, 6))),
    ("vit_b16_tl16at6", "ViT-B/16 with 16 tokens at layer 6.",
     _architecture(BASE, 16, **_tl(16, 6))),
    ("vit_s32_d22_tl8at11", "ViT-S/32, 22 blocks, 8 tokens at layer 11 (Table 1, S/32 (22)).",
     _architecture(SMALL, 32, depth=22, **_tl(8, 11))),
    ("vit_b32_d20_tl8at10", "ViT-B/32, 20 blocks, 8 tokens at layer 10 (Table 1, B/32 (20)).",
     _architecture(BASE, 32, depth=20, **_tl(8, 10))),
    ("vit_b16_d21_tl8at10", "ViT-B/16, 21 blocks, 8 tokens at layer 10 (Table 1, B/16 (21)).",
     _architecture(BASE, 16, depth=21, **_tl(8, 10))),
    ("vit_b16_d21_tl16at10", "ViT-B/16, 21 blocks, 16 tokens at layer 10 (Table 1).",
     _architecture(BASE, 16, depth=21, **_tl(16, 10))),
    ("vit_l16_tl16at12", "ViT-L/16 with 16 tokens at layer 12 (Tables 2, 5).",
     _architecture(LARGE, 16, **_tl(16, 12))),
    ("vit_l16_d30_tl8at18", "ViT-L/16, 24+6 blocks, 8 tokens at layer 18 (Tables 2, 5).",
     _architecture(LARGE, 16, depth=30, **_tl(8, 18))),
    ("vit_b16_tl8at6_fuser", "ViT-B/16, 8 tokens learned and fused back at layers 6-11 (Table 5).",
     _architecture(BASE, 16, **_tl(8, 6, fuser=True))),
    ("vit_b16_tl16at6_fuser", "ViT-B/16, 16 tokens learned and fused back at layers 6-11.",
     _architecture(BASE, 16, **_tl(16, 6, fuser=True))),
):
    _image_reduced(_name, _doc, _arch)
# Tiny variants (width 32, 4 blocks, patches of 8 pixels) for tests and CPU demos.
_video("vivit_tiny", "Tiny ViViT: width 32, 4 blocks, tubelets 2x8x8.", _architecture(TINY, 8))
_video("vivit_tiny_fe", "Tiny factorised-encoder ViViT: 4 spatial + 2 temporal blocks.",
       _architecture(TINY, 8, temporal_depth=2))
_video_reduced("vivit_tiny_tl4at2", "Tiny ViViT with 4 tokens at layer 2.",
               _architecture(TINY, 8, **_tl(4, 2)))
_video_reduced("vivit_tiny_fe_tl4at2", "Tiny factorised ViViT, 4 tokens at spatial layer 2.",
               _architecture(TINY, 8, temporal_depth=2, **_tl(4, 2)))
_video_reduced("vivit_tiny_tl4at2_fuser", "Tiny ViViT, 4 tokens learned and fused at layers 2-3.",
               _architecture(TINY, 8, **_tl(4, 2, fuser=True)))
_image("vit_tiny", "Tiny ViT: width 32, 4 blocks, patches 8x8.", _architecture(TINY, 8))
_image_reduced("vit_tiny_tl4at2", "Tiny ViT with 4 tokens at layer 2.",
               _architecture(TINY, 8, **_tl(4, 2)))
_image_reduced("vit_tiny_tl4at2_fuser", "Tiny ViT, 4 tokens learned and fused at layers 2-3.",
               _architecture(TINY, 8, **_tl(4, 2, fuser=True)))
