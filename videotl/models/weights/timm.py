"""Initialising ViT / ViViT models from an image-ViT state dict in timm's layout.

The state dict is read from a local ``.pth`` / ``.pt`` / ``.bin`` file (``torch.load``, tensors
only) or a ``.safetensors`` file, and mapped onto a ``VisionTransformer``:

- ``blocks.{i}.*`` -> ``encoder.blocks.{i}.*`` (the spatial encoder of a factorised model); blocks
  the checkpoint lacks (extra layers, a temporal encoder) and token reducers stay as initialised;
- ``patch_embed.proj.weight`` ``[C, 3, p, p]`` -> the tubelet kernel ``[C, 3, t, p, p]``: the 2D
  filter on the central frame ``t // 2`` and zeros elsewhere (``central``), or the filter on every
  frame divided by ``t`` (``average``, I3D's inflation); either way a tubelet of ``t`` copies of
  an image embeds like the image;
- ``pos_embed`` ``[1, K + g*g, C]``: the ``g x g`` grid is resampled bicubically to the model's
  grid and repeated over its ``T'`` temporal indices; the class-token entry is used when the
  model has a class token (zeros when the checkpoint has none, i.e. no position for the class);
- ``fc_norm.*`` (the norm of timm's pooled features) -> ``norm.*`` for a ``gap`` model;
- ``head.*`` only when its shape matches (same classes); otherwise it is skipped.

Every other tensor is copied by name. A tensor whose shape differs from the model's (after the
adaptations above) is refused with an error naming the file, the key and both shapes.
"""

from __future__ import annotations

import math
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from videotl.models.layers import resize_grid_embedding
from videotl.utils.checkpoint import CheckpointError, LoadReport, read_state_dict

if TYPE_CHECKING:
    from videotl.models.backbones.vivit import VisionTransformer

INFLATIONS = ("central", "average")

logger = logging.getLogger(__name__)


def load_image_vit(
    model: VisionTransformer, path: str | Path, inflation: str = "central"
) -> LoadReport:
    """Loads an image-ViT state dict from ``path`` into ``model`` (see the module docstring) and
    logs the report."""
    target, report = image_vit_state_dict(read_state_dict(path), model, inflation, str(path))
    if any(parameter.is_meta for parameter in model.parameters()):
        report.note += "; model on the meta device (statistics): checked, nothing copied"
    else:
        model.load_state_dict(target, strict=False)
    logger.info("pretrained: %s", report.summary())
    return report


def image_vit_state_dict(
    source: dict[str, torch.Tensor], model: VisionTransformer, inflation: str, path: str = ""
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Maps a timm ViT state dict onto ``model``'s names and shapes; returns it and the report."""
    if inflation not in INFLATIONS:
        raise ValueError(f"inflation must be one of {INFLATIONS}, got {inflation!r}")
    shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    report = LoadReport(path, note=f"{inflation}-frame inflation")
    target: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        name = _target_name(key, source, model, shapes)
        if name is None:
            report.unexpected.append(key)
            continue
        if name.startswith("head.") and tuple(tensor.shape) != shapes[name]:
            # Another number of classes: the classifier stays freshly initialised.
            report.mismatched.append((name, shapes[name], tuple(tensor.shape)))
            continue
        note = None
        if name == "patch_embed.proj.weight" and tensor.ndim == 4:
            tensor = inflate_patch_embedding(tensor, shapes[name][2], inflation)
            note = f"{inflation} frame" if shapes[name][2] > 1 else None
        elif name == "pos_embed":
            tensor, note = _position_embedding(tensor, model, shapes[name], path)
        if note is not None:
            report.adapted.append(f"{key} {list(source[key].shape)} -> {list(tensor.shape)} "
                                  f"({note})")
        if tuple(tensor.shape) != shapes[name]:
            raise CheckpointError(
                f"{path}: checkpoint tensor {key!r} has shape {list(tensor.shape)} but the "
                f"model's {name!r} has shape {list(shapes[name])}; the checkpoint is for another "
                "architecture (width, MLP width or patch size): choose the model of its size"
            )
        target[name] = tensor
        report.loaded.append(name)
    if not target:
        raise CheckpointError(
            f"{path}: no tensor matches the model; expected a timm-format ViT state dict "
            "(keys such as patch_embed.proj.weight, blocks.0.attn.qkv.weight)"
        )
    skipped = {name for name, _, _ in report.mismatched}
    report.missing = [name for name in shapes if name not in target and name not in skipped]
    return target, report


def _target_name(
    key: str, source: dict, model: VisionTransformer, shapes: dict
) -> str | None:
    """The model's name for checkpoint tensor ``key``, or None if the model has no such tensor."""
    pooled_norm = model.classifier == "gap" and "fc_norm.weight" in source
    name = key
    if key.startswith("blocks."):
        name = "encoder." + key
    elif key.startswith("fc_norm."):
        name = "norm." + key[len("fc_norm."):] if pooled_norm else None
    elif key.startswith("norm.") and pooled_norm:
        name = None
    return name if name in shapes else None


def inflate_patch_embedding(
    weight: torch.Tensor, tubelet_size: int, inflation: str = "central"
) -> torch.Tensor:
    """2D patch filters ``[C, 3, p, p]`` -> tubelet filters ``[C, 3, t, p, p]``.

    ``central``: the filter on frame ``t // 2``, zeros on the others; ``average``: the filter on
    every frame, divided by ``t``.
    """
    if inflation == "average":
        return weight[:, :, None].repeat(1, 1, tubelet_size, 1, 1) / tubelet_size
    if inflation == "central":
        inflated = weight.new_zeros(weight.shape[:2] + (tubelet_size,) + weight.shape[2:])
        inflated[:, :, tubelet_size // 2] = weight
        return inflated
    raise ValueError(f"inflation must be one of {INFLATIONS}, got {inflation!r}")


def _position_embedding(
    pos: torch.Tensor, model: VisionTransformer, shape: tuple, path: str
) -> tuple[torch.Tensor, str | None]:
    """``[1, K + g*g, C]`` -> the model's ``[1, K' + T' h w, C]``, with a description of the
    changes (None when there are none)."""
    positions = pos.shape[1]
    side = math.isqrt(positions)
    prefix = positions - side * side
    if pos.ndim != 3 or prefix > 1:
        raise CheckpointError(
            f"{path}: cannot lay out 'pos_embed' of shape {list(pos.shape)} on a square grid "
            "(expected [1, g*g] or [1, 1 + g*g] entries)"
        )
    height, width = model.grid
    frames = (shape[1] - model.num_prefix_tokens) // (height * width)
    grid = pos[:, prefix:].reshape(1, side, side, pos.shape[2])
    patches = resize_grid_embedding(grid, (height, width)).flatten(1, 2).repeat(1, frames, 1)
    notes = []
    if (side, side) != (height, width):
        notes.append(f"grid {side}x{side} resampled to {height}x{width}")
    if frames > 1:
        notes.append(f"repeated over {frames} temporal indices")
    if model.num_prefix_tokens == 0:
        notes += ["class-token entry dropped"] if prefix else []
        return patches, "; ".join(notes) or None
    if not prefix:
        notes.append("no class-token entry in the checkpoint: zeros")
    cls_entry = pos[:, :1] if prefix else pos.new_zeros(1, 1, pos.shape[2])
    return torch.cat([cls_entry, patches], dim=1), "; ".join(notes) or None
