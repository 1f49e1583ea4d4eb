"""Scenic (google-research/scenic) Flax checkpoints of ViViT and TokenLearner ViT, read without
JAX and mapped onto a ``VisionTransformer``.

Reading (``read_flax_msgpack``): Flax writes a checkpoint with ``flax.serialization.to_bytes``:
one msgpack map of nested string-keyed maps whose leaves are msgpack *ext* objects. Ext code 1
is an ndarray, code 3 a numpy scalar; the payload of both is itself msgpack of
``(shape, dtype name, C-order bytes)`` (dtype names as bytes; ``bfloat16`` is numpy-foreign and
is widened here to float32 from its 16 high bits). Code 2 is a Python complex, packed as
``(real, imag)``. Arrays above 2**30 bytes are split by Flax into a map
``{"__msgpack_chunked_array__": True, "shape": {"0": ...}, "chunks": {"0": flat, ...}}``;
they are joined back. Tuples and lists were already turned into maps keyed ``"0"``, ``"1"``...

Layout (Scenic's ``TrainState``): the parameters are under ``params`` (optax), or
``optimizer/target`` (flax.optim; older files nest a further ``params``); ``global_step``,
``rng``, ``model_state`` and the optimiser's moments are not weights and are ignored. Files that
hold the parameter tree alone are read as such.

Mapping (Scenic name -> videotl name, transform; ``E`` is ``Transformer`` for the unfactorised
model, ``SpatialTransformer`` / ``TemporalTransformer`` for the factorised encoder, whose class
tokens are ``cls_SpatialTransformer`` / ``cls_TemporalTransformer``):

- ``embedding/kernel`` ``[t, p, p, 3, C]`` (THWIO) -> ``patch_embed.proj.weight``
  ``[C, 3, t, p, p]``; an image ViT's ``[p, p, 3, C]`` (HWIO) is inflated to the model's tubelet
  (``central`` frame or ``average``, as Scenic's ``init_embedding``); ``embedding/bias`` copied;
- ``cls`` ``[1, 1, C]`` -> ``cls_token``; ``E/posembed_input/pos_embedding`` ``[1, K + N, C]``
  -> ``pos_embed`` (grid resampled bicubically per temporal index when the grid differs, a
  one-frame grid repeated over ``T'``; the temporal encoder's ``[1, K + T, C]`` interpolated
  linearly in time, corners aligned, as Scenic's ``interpolate_1d_positional_embeddings``);
- ``E/encoderblock_{i}/LayerNorm_0|1`` (``scale``, ``bias``) -> ``norm1|norm2`` (``weight``,
  ``bias``); ``MultiHeadDotProductAttention_0/{query,key,value}/kernel`` ``[C, H, D]`` ->
  one ``attn.qkv.weight`` ``[3 H D, C]`` (rows ordered q, k, v; head-major), their biases
  ``[H, D]`` -> ``attn.qkv.bias``; ``out/kernel`` ``[H, D, C]`` -> ``attn.proj.weight``
  ``[C, H D]``; ``MlpBlock_0/Dense_0|1`` -> ``mlp.fc1|fc2`` (Dense ``kernel`` ``[in, out]`` ->
  ``weight`` ``[out, in]``);
- ``E/encoder_norm`` -> ``norm`` (``temporal_norm`` for ``TemporalTransformer``);
  ``output_projection`` -> ``head``;
- TokenLearner v1.1, ``E/TokenLearnerModuleV11_{k}``: ``LayerNorm_0`` -> ``norm``,
  ``token_masking/Dense_0|1`` -> ``mlp.fc1|fc2`` of ``encoder.reducers.{k}``;
- TokenLearner v1, ``E/TokenLearnerModule_{k}``: ``LayerNorm_0`` -> ``learner.norm``,
  ``Conv_{j}/kernel`` ``[3, 3, C_in, S]`` (HWIO) -> the ``j``-th convolution of
  ``learner.attention`` ``[S, C_in, 1, 3, 3]`` (the release has no biases);
- TokenFuser, ``E/TokenFuser_{k}`` -> ``encoder.fusers.{k}``: ``fuser_mix_norm1`` ->
  ``token_norm``, ``Dense_0`` (``[S, S]``) -> ``token_mix``, ``fuser_mix_norm2`` ->
  ``mixed_norm``, ``LayerNorm_0`` -> ``original_norm``, ``token_masking/Dense_0|1`` ->
  ``weights.fc1|fc2``.

Every parameter of the model must come from the file and every weight of the file must be used:
otherwise ``CheckpointError`` lists the names (missing, left over, or of another shape).
Architecture is not inferred: build the model as the checkpoint was trained (GELU ``tanh``,
``gap_norm="norm_then_pool"`` for Scenic's ``gap``); the report's note says where it differs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videotl.models.layers import TokenFuserV11, TokenLearnerV11, resize_grid_embedding
from videotl.models.reducers.token_learner import GridTokenLearner
from videotl.utils.checkpoint import CheckpointError, LoadReport

try:  # the reader's one dependency, in the ``convert`` extra
    import msgpack
except ImportError:  # pragma: no cover - exercised only without the extra
    msgpack = None

if TYPE_CHECKING:
    from videotl.models.backbones.vivit import VisionTransformer

logger = logging.getLogger(__name__)

# flax.serialization._MsgpackExtType
EXT_NDARRAY = 1
EXT_NATIVE_COMPLEX = 2
EXT_NPSCALAR = 3
CHUNKED = "__msgpack_chunked_array__"
# Where Scenic's TrainState keeps the parameters, most specific first.
PARAMETER_ROOTS = ("optimizer/target/params/", "optimizer/target/", "params/")
INFLATIONS = ("central", "average")

Arrays = Sequence[np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One videotl tensor ``target`` made from the Scenic parameters ``sources`` by ``convert``
    (which returns the tensor in videotl's layout and a note when it adapted the shape)."""

    target: str
    sources: tuple[str, ...]
    convert: Callable[[Arrays], tuple[np.ndarray, str | None]]


# --- Reading -------------------------------------------------------------------------------------


def read_flax_msgpack(path: str | Path) -> dict[str, np.ndarray]:
    """All array and number leaves of a Flax msgpack file, by ``a/b/c`` name (see the module
    docstring for the encoding); ``None`` and string leaves are left out."""
    path = Path(path)
    if msgpack is None:
        raise CheckpointError(f"{path}: reading Flax checkpoints needs msgpack "
                              "(pip install 'videotl[convert]')")
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        tree = msgpack.unpackb(path.read_bytes(), ext_hook=_ext_hook, raw=False,
                               strict_map_key=False)
    except Exception as error:  # noqa: BLE001 - corrupt files raise many kinds of errors
        raise CheckpointError(f"cannot read Flax msgpack checkpoint {path}: {error}") from None
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} is not a Flax checkpoint (top level is a "
                              f"{type(tree).__name__}, not a map)")
    flat: dict[str, np.ndarray] = {}
    _flatten(tree, "", flat, path)
    return flat


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_NDARRAY:
        return _ndarray_from_bytes(data)
    if code == EXT_NPSCALAR:
        return _ndarray_from_bytes(data)[()]
    if code == EXT_NATIVE_COMPLEX:
        real, imag = msgpack.unpackb(data)
        return complex(real, imag)
    return msgpack.ExtType(code, data)


def _ndarray_from_bytes(data: bytes) -> np.ndarray:
    """Flax's ndarray payload: msgpack ``(shape, dtype name, C-order bytes)``."""
    shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    name = dtype_name.decode() if isinstance(dtype_name, bytes) else dtype_name
    if name == "bfloat16":  # the high half of a float32: widen exactly
        array = (np.frombuffer(buffer, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        array = np.frombuffer(buffer, dtype=np.dtype(name))
    return array.reshape(shape).copy()  # frombuffer is read-only


def _flatten(node: Any, prefix: str, out: dict[str, np.ndarray], path: Path) -> None:
    if isinstance(node, dict) and node.get(CHUNKED) is True:
        out[prefix.rstrip("/")] = _unchunk(node, prefix, path)
    elif isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}{key}/", out, path)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _flatten(value, f"{prefix}{index}/", out, path)
    elif isinstance(node, np.ndarray):
        out[prefix.rstrip("/")] = node
    elif isinstance(node, (bool, int, float, complex, np.generic)):
        out[prefix.rstrip("/")] = np.asarray(node)


def _unchunk(node: dict, prefix: str, path: Path) -> np.ndarray:
    """Flax's chunked form of a large array -> the array."""
    try:
        shape = [node["shape"][str(i)] for i in range(len(node["shape"]))]
        chunks = [node["chunks"][str(i)] for i in range(len(node["chunks"]))]
        return np.concatenate(chunks).reshape(shape)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: bad chunked array {prefix.rstrip('/')}: {error}") from None


def scenic_parameters(flat: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """The parameter tree of a flattened Scenic checkpoint, names relative to its root, and the
    root (``""`` when the file holds the parameters alone)."""
    for root in PARAMETER_ROOTS:
        found = {k[len(root):]: v for k, v in flat.items() if k.startswith(root)}
        if found:
            return found, root
    return dict(flat), ""


# --- Loading -------------------------------------------------------------------------------------


def load_scenic(
    model: VisionTransformer,
    path: str | Path,
    inflation: str = "central",
    new_classifier: bool = False,
) -> LoadReport:
    """Loads a Scenic ViViT / ViT / TokenLearner ViT checkpoint into ``model`` (see the module
    docstring for the mapping and ``scenic_state_dict`` for the arguments) and logs the report.

    Raises:
        CheckpointError: the file cannot be read, or it does not fit the model (the message lists
            every missing, left-over and mis-shaped name).
    """
    target, report = scenic_state_dict(model, path, inflation, new_classifier)
    model.load_state_dict(target, strict=False)
    logger.info("pretrained: %s", report.summary())
    return report


def scenic_state_dict(
    model: VisionTransformer,
    path: str | Path,
    inflation: str = "central",
    new_classifier: bool = False,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The tensors of a Scenic checkpoint under ``model``'s names and shapes, and the report;
    nothing is copied into ``model``.

    Args:
        model: a ``VisionTransformer`` built with the checkpoint's architecture.
        path: the Flax msgpack checkpoint (``checkpoint_<step>``).
        inflation: for an image checkpoint (2D ``embedding/kernel``) in a model with tubelets of
            ``t > 1`` frames: ``"central"`` or ``"average"``.
        new_classifier: leave out the classifier when ``output_projection`` has another number
            of classes (reported as mismatched) instead of refusing the file.
    """
    if inflation not in INFLATIONS:
        raise ValueError(f"inflation must be one of {INFLATIONS}, got {inflation!r}")
    params, root = scenic_parameters(read_flax_msgpack(path))
    report = LoadReport(str(path), note=_architecture_note(model, root))
    rules = scenic_rules(model, params, inflation)
    return _apply(rules, params, model, report, new_classifier, str(path)), report


def _apply(
    rules: list[Rule], params: dict[str, np.ndarray], model: nn.Module, report: LoadReport,
    new_classifier: bool, path: str,
) -> dict[str, torch.Tensor]:
    """Converts every rule's tensor; raises with all missing, left-over and mis-shaped names."""
    own = model.state_dict()
    missing = [name for rule in rules for name in rule.sources if name not in params]
    missing += [name for name in own if name not in {rule.target for rule in rules}]
    used = {name for rule in rules for name in rule.sources}
    leftover = sorted(name for name in params if name not in used)
    target: dict[str, torch.Tensor] = {}
    wrong: list[str] = []
    for rule in rules:
        if any(name not in params for name in rule.sources):
            continue
        array, note = rule.convert([params[name] for name in rule.sources])
        shape, wanted = tuple(array.shape), tuple(own[rule.target].shape)
        if shape != wanted and new_classifier and rule.target.startswith("head."):
            report.mismatched.append((rule.target, wanted, shape))
        elif shape != wanted:
            wrong.append(f"{'+'.join(rule.sources)} -> {rule.target} {list(shape)} in file, "
                         f"{list(wanted)} in model")
        else:
            target[rule.target] = torch.from_numpy(np.ascontiguousarray(array)).to(
                own[rule.target].dtype)
            report.loaded.append(rule.target)
            if note:
                report.adapted.append(f"{rule.target}: {note}")
    if missing or leftover or wrong:
        raise CheckpointError(_mismatch_message(path, type(model).__name__, missing, leftover,
                                                wrong))
    return target


def _mismatch_message(
    path: str, model_name: str, missing: list[str], leftover: list[str], wrong: list[str]
) -> str:
    parts = []
    if missing:
        parts.append(f"missing in file: {', '.join(missing)}")
    if leftover:
        parts.append(f"left over in file: {', '.join(leftover)}")
    if wrong:
        parts.append(f"other shape: {'; '.join(wrong)}")
    return f"Scenic checkpoint {path} does not fit this {model_name}: {' | '.join(parts)}"


def _architecture_note(model: nn.Module, root: str) -> str:
    """Where the model's numerics differ from Scenic's (GELU form, order of norm and mean)."""
    notes = [f"Scenic parameters at {root.rstrip('/') or 'the top level'}"]
    if any(isinstance(m, nn.GELU) and m.approximate != "tanh" for m in model.modules()):
        notes.append("model uses exact GELU, Scenic tanh (build it with gelu='tanh')")
    if getattr(model, "classifier", "") == "gap" and getattr(model, "gap_norm", "") != (
            "norm_then_pool"):
        notes.append("Scenic normalises every token before its mean (gap_norm='norm_then_pool')")
    return "; ".join(notes)


# --- The parameter mapping -----------------------------------------------------------------------


def scenic_rules(
    model: VisionTransformer, params: dict[str, np.ndarray], inflation: str = "central"
) -> list[Rule]:
    """The rules filling every tensor of ``model`` from Scenic names (``params`` is read only to
    tell an image checkpoint's class-token presence and grid)."""
    factorised = model.temporal_encoder is not None
    spatial = "SpatialTransformer" if factorised else "Transformer"
    cls_name = "cls_SpatialTransformer" if factorised else "cls"
    frames = 1 if factorised else model.temporal_size
    rules = _embedding_rules(model, inflation)
    if model.cls_token is not None:
        rules.append(_copy("cls_token", cls_name))
    kernel = params.get("embedding/kernel")
    image = kernel is not None and kernel.ndim == 4
    rules.append(_position_rule("pos_embed", f"{spatial}/posembed_input/pos_embedding",
                                model, frames, cls_name in params, image))
    rules += _encoder_rules("encoder", spatial, model.encoder)
    rules += _layer_norm("norm", f"{spatial}/encoder_norm")
    if factorised:
        rules += _temporal_rules(model, params)
    rules += _dense("head", "output_projection")
    return rules


def _embedding_rules(model: VisionTransformer, inflation: str) -> list[Rule]:
    tubelet = model.tubelet_size

    def kernel(arrays: Arrays) -> tuple[np.ndarray, str | None]:
        (array,) = arrays
        if array.ndim == 5:  # [t, p, p, 3, C] -> [C, 3, t, p, p]
            return array.transpose(4, 3, 0, 1, 2), None
        if array.ndim != 4:
            return array, None  # reported with its shape
        weight = array.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        if inflation == "average":
            inflated = np.repeat(weight[:, :, None], tubelet, axis=2) / tubelet
        else:
            inflated = np.zeros(weight.shape[:2] + (tubelet,) + weight.shape[2:], weight.dtype)
            inflated[:, :, tubelet // 2] = weight
        return inflated, f"2D patch kernel inflated to {tubelet} frames ({inflation})"

    return [Rule("patch_embed.proj.weight", ("embedding/kernel",), kernel),
            _copy("patch_embed.proj.bias", "embedding/bias")]


def _temporal_rules(model: VisionTransformer, params: dict[str, np.ndarray]) -> list[Rule]:
    rules = []
    if model.temporal_cls_token is not None:
        rules.append(_copy("temporal_cls_token", "cls_TemporalTransformer"))
    rules.append(_temporal_position_rule(
        "temporal_pos_embed", "TemporalTransformer/posembed_input/pos_embedding", model,
        "cls_TemporalTransformer" in params))
    rules += _encoder_rules("temporal_encoder", "TemporalTransformer", model.temporal_encoder)
    rules += _layer_norm("temporal_norm", "TemporalTransformer/encoder_norm")
    return rules


def _encoder_rules(target: str, source: str, encoder: nn.Module) -> list[Rule]:
    """Blocks, TokenLearners and TokenFusers of a ``TokenEncoder``."""
    rules = []
    for index in range(len(encoder.blocks)):
        rules += _block(f"{target}.blocks.{index}", f"{source}/encoderblock_{index}")
    for index, reducer in enumerate(encoder.reducers):
        rules += _reducer(f"{target}.reducers.{index}", source, index, reducer)
    for index, fuser in enumerate(encoder.fusers):
        if not isinstance(fuser, TokenFuserV11):
            continue  # its tensors stay unmatched and are reported missing
        rules += _fuser(f"{target}.fusers.{index}", f"{source}/TokenFuser_{index}")
    return rules


def _block(target: str, source: str) -> list[Rule]:
    """A pre-LayerNorm encoder block (Scenic's ``Encoder1DBlock`` / ViViT ``EncoderBlock``)."""
    return (_layer_norm(f"{target}.norm1", f"{source}/LayerNorm_0")
            + _attention(f"{target}.attn", f"{source}/MultiHeadDotProductAttention_0")
            + _layer_norm(f"{target}.norm2", f"{source}/LayerNorm_1")
            + _mlp(f"{target}.mlp", f"{source}/MlpBlock_0"))


def _reducer(target: str, source: str, index: int, reducer: nn.Module) -> list[Rule]:
    """TokenLearner v1.1 or v1 (Flax names them by class and order, from 0 in each encoder)."""
    if isinstance(reducer, TokenLearnerV11):
        prefix = f"{source}/TokenLearnerModuleV11_{index}"
        return (_layer_norm(f"{target}.norm", f"{prefix}/LayerNorm_0")
                + _mlp(f"{target}.mlp", f"{prefix}/token_masking"))
    if isinstance(reducer, GridTokenLearner):
        prefix = f"{source}/TokenLearnerModule_{index}"
        rules = _layer_norm(f"{target}.learner.norm", f"{prefix}/LayerNorm_0")
        convs = [(name, m) for name, m in reducer.learner.attention.named_children()
                 if isinstance(m, nn.Conv3d)]
        for position, (name, conv) in enumerate(convs):
            rules.append(Rule(f"{target}.learner.attention.{name}.weight",
                              (f"{prefix}/Conv_{position}/kernel",), _conv2d_kernel))
            if conv.bias is not None:
                rules.append(_copy(f"{target}.learner.attention.{name}.bias",
                                   f"{prefix}/Conv_{position}/bias"))
        return rules
    return []  # parameter-free reducers; any other's tensors are reported missing


def _fuser(target: str, source: str) -> list[Rule]:
    """Scenic's ``TokenFuser`` onto ``TokenFuserV11``."""
    return (_layer_norm(f"{target}.token_norm", f"{source}/fuser_mix_norm1")
            + _dense(f"{target}.token_mix", f"{source}/Dense_0")
            + _layer_norm(f"{target}.mixed_norm", f"{source}/fuser_mix_norm2")
            + _layer_norm(f"{target}.original_norm", f"{source}/LayerNorm_0")
            + _mlp(f"{target}.weights", f"{source}/token_masking"))


def _attention(target: str, source: str) -> list[Rule]:
    """``MultiHeadDotProductAttention``: q, k, v ``DenseGeneral`` ``[C, H, D]`` (bias
    ``[H, D]``) -> one ``qkv`` Linear; ``out`` ``[H, D, C]`` -> ``proj``."""
    parts = ("query", "key", "value")

    def qkv_weight(arrays: Arrays) -> tuple[np.ndarray, str | None]:
        return np.concatenate([a.reshape(a.shape[0], -1).T for a in arrays]), None

    def qkv_bias(arrays: Arrays) -> tuple[np.ndarray, str | None]:
        return np.concatenate([a.reshape(-1) for a in arrays]), None

    def out_weight(arrays: Arrays) -> tuple[np.ndarray, str | None]:
        return arrays[0].reshape(-1, arrays[0].shape[-1]).T, None

    return [
        Rule(f"{target}.qkv.weight", tuple(f"{source}/{p}/kernel" for p in parts), qkv_weight),
        Rule(f"{target}.qkv.bias", tuple(f"{source}/{p}/bias" for p in parts), qkv_bias),
        Rule(f"{target}.proj.weight", (f"{source}/out/kernel",), out_weight),
        _copy(f"{target}.proj.bias", f"{source}/out/bias"),
    ]


def _mlp(target: str, source: str) -> list[Rule]:
    """``MlpBlock`` (``Dense_0``, GELU, ``Dense_1``) -> ``Mlp`` (``fc1``, ``fc2``)."""
    return _dense(f"{target}.fc1", f"{source}/Dense_0") + _dense(f"{target}.fc2",
                                                                 f"{source}/Dense_1")


def _dense(target: str, source: str) -> list[Rule]:
    """Flax ``Dense`` ``kernel`` ``[in, out]`` -> ``weight`` ``[out, in]``; ``bias`` copied."""
    return [Rule(f"{target}.weight", (f"{source}/kernel",), lambda a: (a[0].T, None)),
            _copy(f"{target}.bias", f"{source}/bias")]


def _layer_norm(target: str, source: str) -> list[Rule]:
    return [_copy(f"{target}.weight", f"{source}/scale"), _copy(f"{target}.bias", f"{source}/bias")]


def _copy(target: str, source: str) -> Rule:
    return Rule(target, (source,), lambda arrays: (arrays[0], None))


def _conv2d_kernel(arrays: Arrays) -> tuple[np.ndarray, str | None]:
    """HWIO ``[k, k, C_in, C_out]`` -> ``[C_out, C_in, 1, k, k]`` (a per-frame Conv3d)."""
    return arrays[0].transpose(3, 2, 0, 1)[:, :, None], None


# --- Position embeddings -------------------------------------------------------------------------


def _position_rule(
    target: str, source: str, model: VisionTransformer, frames: int, file_has_cls: bool,
    image: bool,
) -> Rule:
    """Patch position embeddings ``[1, K + N, C]`` onto ``frames`` temporal indices of the
    model's grid: as is; each of the ``frames`` square grids of a video checkpoint resampled
    (bicubic, ``resize_grid_embedding``); or the one square grid of an ``image`` checkpoint
    resampled and repeated over the indices (Scenic's ``resize_tile``)."""
    keep = model.num_prefix_tokens
    grid = model.grid

    def convert(arrays: Arrays) -> tuple[np.ndarray, str | None]:
        (embed,) = arrays
        if embed.ndim != 3 or file_has_cls != bool(keep):
            return embed, None  # the class-token mismatch is reported by its own name
        prefix, patches = embed[:, :keep], embed[0, keep:]
        count, dim = patches.shape
        if count == frames * grid[0] * grid[1]:
            return embed, None
        file_frames = 1 if image else frames
        side = _square_side(count // file_frames)
        if side is None or count % file_frames:
            return embed, None  # reported with its shape
        on_grid = torch.from_numpy(patches.astype(np.float32)).view(file_frames, side, side, dim)
        resized = resize_grid_embedding(on_grid, grid).numpy()
        resized = np.repeat(resized, frames // file_frames, axis=0).reshape(1, -1, dim)
        notes = []
        if (side, side) != tuple(grid):
            notes.append(f"grid {side}x{side} resampled to {grid[0]}x{grid[1]}")
        if file_frames != frames:
            notes.append(f"one grid repeated over {frames} temporal indices")
        return np.concatenate([prefix, resized.astype(embed.dtype)], axis=1), ", ".join(notes)

    return Rule(target, (source,), convert)


def _temporal_position_rule(
    target: str, source: str, model: VisionTransformer, file_has_cls: bool
) -> Rule:
    """Temporal position embeddings ``[1, K + T, C]`` -> ``[1, K + T', C]``, interpolated
    linearly with aligned corners (``scipy.ndimage.zoom(order=1)``, Scenic's way)."""
    keep = model.num_prefix_tokens
    frames = model.temporal_size

    def convert(arrays: Arrays) -> tuple[np.ndarray, str | None]:
        (embed,) = arrays
        if embed.ndim != 3 or file_has_cls != bool(keep) or embed.shape[1] - keep == frames:
            return embed, None
        prefix, steps = embed[:, :keep], embed[:, keep:]
        resized = F.interpolate(torch.from_numpy(steps.astype(np.float32)).transpose(1, 2),
                                size=frames, mode="linear", align_corners=True)
        note = f"{steps.shape[1]} temporal positions interpolated to {frames}"
        return np.concatenate([prefix, resized.transpose(1, 2).numpy().astype(embed.dtype)],
                              axis=1), note

    return Rule(target, (source,), convert)


def _square_side(count: int) -> int | None:
    side = math.isqrt(count)
    return side if count > 0 and side * side == count else None
