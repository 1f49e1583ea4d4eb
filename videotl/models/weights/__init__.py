"""Pretrained weights from other projects' formats, behind one entry point: ``load_pretrained``
(``model.pretrained=PATH`` with ``model.pretrained_format``).

Formats (docs/PRETRAINED.md):

- ``videotl``: videotl's own weights (a training checkpoint, or a file written by
  ``tools/convert_checkpoint.py``), by name;
- ``timm``: image-ViT state dicts in timm's layout, inflated into ViViT (``timm.py``);
- ``hf``: transformers ViViT, ``VivitForVideoClassification`` / ``VivitModel`` (``hf.py``);
- ``scenic``: Scenic's Flax msgpack checkpoints of ViViT and TokenLearner ViT (``scenic.py``);
- ``auto``: a ``.msgpack`` file or one without a state-dict suffix (Flax's ``checkpoint_N``) is
  Scenic's; a state dict is told by its names: ``vivit.``/``embeddings.patch_embeddings.``
  (transformers), ``encoder.blocks.`` (videotl), ``blocks.`` / ``patch_embed.`` (timm).

Every format maps the file onto the model's names and shapes and returns a ``LoadReport``; a
tensor that does not fit is an error naming the file and the keys, never a silent partial load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from videotl.models.weights.hf import BACKBONE_TENSORS, hf_vivit_state_dict, is_hf_vivit
from videotl.models.weights.scenic import scenic_state_dict
from videotl.models.weights.timm import INFLATIONS, image_vit_state_dict
from videotl.utils.checkpoint import (
    TORCH_SUFFIXES,
    CheckpointError,
    LoadReport,
    read_state_dict,
)


FORMATS = ("auto", "videotl", "timm", "hf", "scenic")
STATE_DICT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)

logger = logging.getLogger(__name__)

Mapper = Callable[[dict, nn.Module, str, str], "tuple[dict[str, torch.Tensor], LoadReport]"]


def load_pretrained(
    model: nn.Module, path: str | Path, format: str = "auto", inflation: str = "central"
) -> LoadReport:
    """Initialises ``model`` from ``path`` in ``format`` (one of ``FORMATS``; ``inflation``: how
    timm's 2D patch filters become tubelet filters) and logs the report."""
    if format not in FORMATS:
        raise ValueError(f"pretrained_format must be one of {FORMATS}, got {format!r}")
    if inflation not in INFLATIONS:
        raise ValueError(f"pretrained_inflation must be one of {INFLATIONS}, got {inflation!r}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if format == "scenic" or (format == "auto" and path.suffix not in STATE_DICT_SUFFIXES):
        # A classifier for another number of classes is skipped, as for the other formats.
        target, report = scenic_state_dict(model, path, inflation, new_classifier=True)
    else:
        source = read_state_dict(path)
        chosen = detect_format(source, path) if format == "auto" else format
        target, report = MAPPERS[chosen](source, model, str(path), inflation)
        if format == "auto":
            report.note = f"{chosen} format (detected); {report.note}".rstrip("; ")
    copy_into(model, target, report)
    return report


def detect_format(source: dict[str, torch.Tensor], path: str | Path) -> str:
    """``videotl``, ``timm`` or ``hf`` from the names of a state dict's tensors."""
    keys = list(source)
    if is_hf_vivit(keys):
        return "hf"
    if any(key.startswith("encoder.blocks.") for key in keys):
        return "videotl"
    if any(key.startswith(("blocks.", "patch_embed.")) for key in keys):
        return "timm"
    raise CheckpointError(
        f"{path}: cannot tell the format from its tensor names ({', '.join(keys[:4])}, ...); "
        f"set model.pretrained_format to one of {', '.join(FORMATS[1:])}"
    )


def copy_into(model: nn.Module, target: dict[str, torch.Tensor], report: LoadReport) -> None:
    """Copies ``target`` (names and shapes already checked) into ``model`` and logs the report;
    a model on the meta device (statistics) is only checked."""
    if any(parameter.is_meta for parameter in model.parameters()):
        report.note += "; model on the meta device (statistics): checked, nothing copied"
    else:
        model.load_state_dict(target, strict=False)
    logger.info("pretrained: %s", report.summary())


def videotl_state_dict(
    source: dict[str, torch.Tensor], model: nn.Module, path: str, inflation: str = "central"
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """videotl's own weights, by name: a classifier for another number of classes is skipped,
    token-reducer tensors the file lacks stay as initialised; any other difference (a name the
    model lacks, another shape, a missing backbone tensor) is an error listing the keys."""
    shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    report = LoadReport(path, note="videotl")
    unknown = [key for key in source if key not in shapes]
    wrong = [f"{key} {list(source[key].shape)} in file, {list(shapes[key])} in model"
             for key in source if key in shapes and tuple(source[key].shape) != shapes[key]
             and not key.startswith("head.")]
    if unknown or wrong:
        listed = [f"not in the model: {', '.join(unknown)}"] if unknown else []
        listed += [f"other shapes: {'; '.join(wrong)}"] if wrong else []
        raise CheckpointError(
            f"{path}: the checkpoint does not fit the model; {' | '.join(listed)}"
        )
    target = {}
    for key, tensor in source.items():
        if tuple(tensor.shape) != shapes[key]:
            report.mismatched.append((key, shapes[key], tuple(tensor.shape)))
        else:
            target[key] = tensor
    skipped = {name for name, _, _ in report.mismatched}
    report.missing = [name for name in shapes if name not in target and name not in skipped]
    backbone = [name for name in report.missing if BACKBONE_TENSORS.match(name)]
    if backbone:
        raise CheckpointError(f"{path}: the model has tensors the checkpoint lacks: "
                              f"{', '.join(backbone)}")
    report.loaded = sorted(target)
    return target, report


def _timm(
    source: dict[str, torch.Tensor], model: nn.Module, path: str, inflation: str
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    return image_vit_state_dict(source, model, inflation, path)


def _hf(
    source: dict[str, torch.Tensor], model: nn.Module, path: str, inflation: str
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    return hf_vivit_state_dict(source, model, path)


MAPPERS: dict[str, Mapper] = {"videotl": videotl_state_dict, "timm": _timm, "hf": _hf}
