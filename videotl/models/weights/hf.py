"""Hugging Face transformers ViViT (``VivitForVideoClassification`` / ``VivitModel``) state dicts
mapped onto videotl's unfactorised ``VisionTransformer`` (``vivit_b16`` for the public
ViViT-B/16x2 Kinetics-400 model, ``google/vivit-b-16x2-kinetics400``).

transformers' ViViT is ViViT model 1 (joint space-time attention) with a class token:

- ``embeddings.patch_embeddings.projection`` is a ``Conv3d`` with kernel = stride = the tubelet
  ``[C, 3, t, p, p]``; transformers feeds it ``[B, T, 3, H, W]`` transposed to ``[B, 3, T, H, W]``,
  videotl's own layout, and flattens the output ``(T', h, w)`` row-major like videotl: the kernel
  and ``position_embeddings`` ``[1, 1 + T' h w, C]`` are copied as they are;
- each layer has separate ``query``/``key``/``value`` (``q_proj``/``k_proj``/``v_proj``) Linear
  layers; videotl's ``attn.qkv`` is their rows stacked in the order q, k, v (heads major within
  each, as in transformers' ``view(..., heads, head_dim)``);
- ``layernorm_before``/``layernorm_after`` -> ``norm1``/``norm2``; ``intermediate.dense``/
  ``output.dense`` (``mlp.fc1``/``mlp.fc2``) -> ``mlp.fc1``/``mlp.fc2``; the final ``layernorm``
  -> ``norm`` (transformers normalises every token, then reads the class token; LayerNorm acts
  per token, so this equals videotl's ``classifier="token"``); ``classifier`` -> ``head``;
  ``VivitModel``'s ``pooler`` (dense + tanh, unused for classification) is skipped.

Both key layouts are read: transformers 4's (``encoder.layer.{i}.attention.attention.query``)
and transformers 5's (``layers.{i}.attention.q_proj``), with or without the ``vivit.`` prefix.

The checkpoint's hyper-parameters come from the ``config.json`` that ``save_pretrained`` writes
beside the weights, else from ``VivitConfig``'s defaults (those of the public model):
``hidden_act="gelu_fast"`` (the tanh GELU: ``model.gelu=tanh``), ``layer_norm_eps=1e-6``
(videotl's ViT epsilon), ``qkv_bias=True``. Nothing is loaded partially: a key the model has no
place for, a shape that differs (other than the classifier's, which is skipped for another number
of classes) or a backbone tensor the checkpoint lacks is an error listing the keys, and a setting
that differs names the config keys to set. Tensors of token reducers inserted into the model
(e.g. TokenLearner at layer 6 for fine-tuning) are not in the checkpoint and stay as initialised.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videotl.utils.checkpoint import CheckpointError, LoadReport

if TYPE_CHECKING:
    from videotl.models.backbones.vivit import VisionTransformer

logger = logging.getLogger(__name__)

HF_CONFIG_FILE = "config.json"
# transformers' names of the tanh approximation of GELU and of the exact (erf) form.
TANH_ACTIVATIONS = ("gelu_fast", "gelu_new", "gelu_pytorch_tanh")
EXACT_ACTIVATIONS = ("gelu",)
# VivitConfig's defaults: the settings of the public checkpoints.
DEFAULT_SETTINGS = {"hidden_act": "gelu_fast", "layer_norm_eps": 1e-6, "qkv_bias": True}

# transformers 4 names -> transformers 5 names (the canonical ones here), applied in order.
_RENAMES = (
    (re.compile(r"^encoder\.layer\.(\d+)\."), r"layers.\1."),
    (re.compile(r"\.attention\.attention\.query\."), ".attention.q_proj."),
    (re.compile(r"\.attention\.attention\.key\."), ".attention.k_proj."),
    (re.compile(r"\.attention\.attention\.value\."), ".attention.v_proj."),
    (re.compile(r"\.attention\.output\.dense\."), ".attention.o_proj."),
    (re.compile(r"\.intermediate\.dense\."), ".mlp.fc1."),
    (re.compile(r"\.output\.dense\."), ".mlp.fc2."),
)
_DIRECT = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}
_LAYER = re.compile(r"^layers\.(\d+)\.(.+)$")
_LAYER_PARTS = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.o_proj": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_QKV = {"attention.q_proj": 0, "attention.k_proj": 1, "attention.v_proj": 2}
# The model tensors a transformers ViViT checkpoint fills; others (token reducers) may stay.
BACKBONE_TENSORS = re.compile(
    r"^(cls_token|pos_embed|patch_embed\.proj\.\w+|norm\.\w+|head\.\w+|"
    r"encoder\.blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.\w+|"
    r"temporal_.*)$"
)


def is_hf_vivit(keys: list[str]) -> bool:
    """Whether state-dict ``keys`` are in transformers' ViViT layout."""
    return any(_strip_prefix(key).startswith("embeddings.patch_embeddings.") for key in keys)


def hf_vivit_state_dict(
    source: dict[str, torch.Tensor], model: VisionTransformer, path: str | Path
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Maps a transformers ViViT state dict onto ``model``'s names and shapes (see the module
    docstring); returns it and the report. Raises ``CheckpointError`` naming the keys at fault."""
    path = str(path)
    settings = checkpoint_settings(path)
    check_model_settings(model, settings, path)
    report = LoadReport(path, note="transformers ViViT")
    shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    target, unknown = _rename(source, report)
    if unknown:
        raise CheckpointError(
            f"{path}: {len(unknown)} tensors have no place in a transformers ViViT: "
            f"{', '.join(unknown)}"
        )
    _add_missing_qkv_bias(target, shapes, settings, report)
    _check_shapes(target, shapes, f"{path}{_geometry(settings)}", report)
    _check_complete(target, shapes, path, report)
    report.loaded = sorted(target)
    return target, report


def checkpoint_settings(path: str) -> dict[str, Any]:
    """``hidden_act``, ``layer_norm_eps``, ``qkv_bias`` (and the geometry, when known) of the
    checkpoint: from ``config.json`` beside it, else ``VivitConfig``'s defaults."""
    config_file = Path(path).parent / HF_CONFIG_FILE
    if not config_file.is_file():
        return dict(DEFAULT_SETTINGS, source="VivitConfig defaults")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{config_file}: cannot read the transformers config: {error}")
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file}: expected a JSON object (a transformers config)")
    settings = {key: config.get(key, value) for key, value in DEFAULT_SETTINGS.items()}
    for key in ("num_frames", "image_size", "tubelet_size"):
        if key in config:
            settings[key] = config[key]
    return dict(settings, source=str(config_file))


def check_model_settings(model: nn.Module, settings: dict[str, Any], path: str) -> None:
    """Raises ``CheckpointError`` naming the config keys to set when ``model`` does not compute
    what the checkpoint's network computed (GELU form, LayerNorm epsilon, classifier, encoder)."""
    wanted = _gelu_form(settings["hidden_act"], path)
    changes = []
    if getattr(model, "temporal_encoder", None) is not None:
        changes.append("model.name: an unfactorised ViViT (e.g. vivit_b16), not a factorised "
                       "encoder")
    if getattr(model, "classifier", "token") != "token":
        changes.append("model.classifier=token")
    forms = {_module_gelu(module) for module in model.modules() if isinstance(module, nn.GELU)}
    if forms and forms != {wanted}:
        changes.append(f"model.gelu={wanted}")
    epsilons = {
        module.eps for name, module in model.named_modules()
        if isinstance(module, nn.LayerNorm) and BACKBONE_TENSORS.match(f"{name}.weight")
    }
    eps = float(settings["layer_norm_eps"])
    if epsilons and epsilons != {eps}:
        changes.append(f"a LayerNorm epsilon of {eps:g} (the model's: "
                       f"{', '.join(f'{e:g}' for e in sorted(epsilons))})")
    if changes:
        raise CheckpointError(
            f"{path}: the checkpoint's network (hidden_act={settings['hidden_act']}, "
            f"layer_norm_eps={eps:g}; {settings['source']}) needs: {'; '.join(changes)}"
        )


def _geometry(settings: dict[str, Any]) -> str:
    """`` (checkpoint: data.num_frames=32, ...)`` from config.json's geometry, or ``""``."""
    known = []
    if "num_frames" in settings:
        known.append(f"data.num_frames={settings['num_frames']}")
    if "image_size" in settings:
        known.append(f"data.train_crop_size={settings['image_size']}")
    if "tubelet_size" in settings:
        known.append("tubelet " + "x".join(str(size) for size in settings["tubelet_size"]))
    return f" (checkpoint: {', '.join(known)})" if known else ""


def _gelu_form(activation: str, path: str) -> str:
    if activation in TANH_ACTIVATIONS:
        return "tanh"
    if activation in EXACT_ACTIVATIONS:
        return "exact"
    raise CheckpointError(
        f"{path}: hidden_act={activation!r} is not a GELU videotl computes "
        f"({', '.join(TANH_ACTIVATIONS + EXACT_ACTIVATIONS)})"
    )


def _module_gelu(module: nn.GELU) -> str:
    return "exact" if module.approximate == "none" else "tanh"


def _strip_prefix(key: str) -> str:
    return key[len("vivit."):] if key.startswith("vivit.") else key


def _canonical(key: str) -> str:
    """transformers 5's name of ``key`` (either version's layout), without ``vivit.``."""
    key = _strip_prefix(key)
    for pattern, replacement in _RENAMES:
        key = pattern.sub(replacement, key)
    return key


def _rename(
    source: dict[str, torch.Tensor], report: LoadReport
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """videotl names for the checkpoint's tensors (q, k, v stacked into qkv) and the keys that
    have none. The pooler is skipped and reported as unexpected."""
    target: dict[str, torch.Tensor] = {}
    parts: dict[str, list[torch.Tensor | None]] = {}
    unknown = []
    for key, tensor in source.items():
        name = _canonical(key)
        if name.startswith("pooler."):
            report.unexpected.append(f"{key} (VivitModel's pooler: not used by the classifier)")
        elif name in _DIRECT:
            target[_DIRECT[name]] = tensor
        elif (layer := _LAYER.match(name)) is not None and _layer_name(layer) is not None:
            block, part = _layer_name(layer)
            if part in _QKV:
                stem = f"encoder.blocks.{block}.attn.qkv.{name.rsplit('.', 1)[1]}"
                parts.setdefault(stem, [None, None, None])[_QKV[part]] = tensor
            else:
                target[f"encoder.blocks.{block}.{_LAYER_PARTS[part]}.{name.rsplit('.', 1)[1]}"] \
                    = tensor
        else:
            unknown.append(key)
    for stem, pieces in parts.items():
        absent = [letter for letter, piece in zip("qkv", pieces) if piece is None]
        if absent:
            unknown.append(f"{stem} (no {'/'.join(absent)} projection in the file)")
            continue
        target[stem] = torch.cat(pieces, dim=0)
    return target, unknown


def _layer_name(match: re.Match) -> tuple[str, str] | None:
    """``(block index, part)`` of a ``layers.{i}.{part}.{weight|bias}`` name, or None."""
    part = match.group(2).rsplit(".", 1)[0]
    known = part in _LAYER_PARTS or part in _QKV
    return (match.group(1), part) if known else None


def _add_missing_qkv_bias(
    target: dict[str, torch.Tensor], shapes: dict[str, tuple], settings: dict[str, Any],
    report: LoadReport,
) -> None:
    """``qkv_bias=False`` checkpoints: zero biases for videotl's biased qkv projection."""
    if settings["qkv_bias"]:
        return
    for name in list(target):
        bias = name[:-len("weight")] + "bias"
        if name.endswith("attn.qkv.weight") and bias not in target and bias in shapes:
            target[bias] = target[name].new_zeros(target[name].shape[0])
            report.adapted.append(f"{bias}: zeros (qkv_bias=False in the checkpoint)")


def _check_shapes(
    target: dict[str, torch.Tensor], shapes: dict[str, tuple], path: str, report: LoadReport
) -> None:
    """Skips (and reports) a classifier for another number of classes; any other tensor of
    another shape, or with no place in the model, is an error listing them all."""
    wrong = []
    for name in list(target):
        shape = tuple(target[name].shape)
        if name not in shapes:
            wrong.append(f"{name} {list(shape)} (not in the model)")
        elif shape != shapes[name] and name.startswith("head."):
            # Another number of classes: the classifier stays freshly initialised.
            report.mismatched.append((name, shapes[name], shape))
            del target[name]
        elif shape != shapes[name]:
            wrong.append(f"{name} {list(shape)} in file, {list(shapes[name])} in model")
    if wrong:
        raise CheckpointError(
            f"{path}: the checkpoint does not fit the model (set model.name, data.num_frames "
            f"and data.train_crop_size to the checkpoint's depth, width, tubelet, frames and "
            f"crop): {'; '.join(wrong)}"
        )


def _check_complete(
    target: dict[str, torch.Tensor], shapes: dict[str, tuple], path: str, report: LoadReport
) -> None:
    """Every backbone tensor of the model must come from the file; token-reducer tensors may
    stay as initialised (reported as missing)."""
    skipped = {name for name, _, _ in report.mismatched}
    absent = [name for name in shapes if name not in target and name not in skipped]
    backbone = [name for name in absent if BACKBONE_TENSORS.match(name)]
    if backbone:
        raise CheckpointError(
            f"{path}: the model has tensors the checkpoint lacks (more blocks or another "
            f"architecture than the checkpoint's): {', '.join(backbone)}"
        )
    report.missing = absent
