"""Scenic Flax checkpoints (``videotl.models.weights.scenic``): files written here in Scenic's
layout with Flax's msgpack encoding, from tiny randomly initialised videotl models by an inverse
mapping written independently of the loader; loading them back must map every tensor, leave none
over, and give the source model's outputs. Also: position-embedding interpolation, tubelet
inflation and shapes, and the errors for files that do not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videotl.models.backbones.vivit import VisionTransformer
from videotl.models.layers import resize_grid_embedding
from videotl.models.weights.scenic import load_scenic, read_flax_msgpack
from videotl.utils.checkpoint import CheckpointError

msgpack = pytest.importorskip("msgpack", reason="the Scenic reader needs msgpack")

TINY = dict(num_classes=5, patch_size=8, dim=32, num_heads=4, mlp_dim=64)


# --- Flax's msgpack encoding, written for the test ------------------------------------------------


def _ext(code: int, array: np.ndarray) -> msgpack.ExtType:
    payload = (list(array.shape), array.dtype.name, array.tobytes("C"))
    return msgpack.ExtType(code, msgpack.packb(payload, use_bin_type=True))


def _default(value: object) -> msgpack.ExtType:
    if isinstance(value, np.ndarray):
        return _ext(1, value)
    if isinstance(value, np.generic):
        return _ext(3, np.asarray(value))
    raise TypeError(f"cannot pack {type(value)}")


def _write(tree: dict, path: Path) -> Path:
    path.write_bytes(msgpack.packb(tree, default=_default, strict_types=True))
    return path


# --- videotl -> Scenic, the inverse mapping ------------------------------------------------------


def _np(state: dict[str, torch.Tensor], name: str) -> np.ndarray:
    return state[name].detach().numpy().copy()


def _dense(state: dict, name: str) -> dict:
    return {"kernel": _np(state, f"{name}.weight").T, "bias": _np(state, f"{name}.bias")}


def _norm(state: dict, name: str) -> dict:
    return {"scale": _np(state, f"{name}.weight"), "bias": _np(state, f"{name}.bias")}


def _mlp(state: dict, name: str) -> dict:
    return {"Dense_0": _dense(state, f"{name}.fc1"), "Dense_1": _dense(state, f"{name}.fc2")}


def _attention(state: dict, name: str, heads: int) -> dict:
    weight, bias = _np(state, f"{name}.qkv.weight"), _np(state, f"{name}.qkv.bias")
    dim = weight.shape[1]
    tree = {}
    for index, part in enumerate(("query", "key", "value")):
        rows = slice(index * dim, (index + 1) * dim)
        tree[part] = {"kernel": weight[rows].T.reshape(dim, heads, dim // heads),
                      "bias": bias[rows].reshape(heads, dim // heads)}
    tree["out"] = {"kernel": _np(state, f"{name}.proj.weight").T.reshape(heads, dim // heads, dim),
                   "bias": _np(state, f"{name}.proj.bias")}
    return tree


def _encoder(state: dict, name: str, model_encoder: torch.nn.Module, heads: int) -> dict:
    tree = {}
    for index in range(len(model_encoder.blocks)):
        block = f"{name}.blocks.{index}"
        tree[f"encoderblock_{index}"] = {
            "LayerNorm_0": _norm(state, f"{block}.norm1"),
            "MultiHeadDotProductAttention_0": _attention(state, f"{block}.attn", heads),
            "LayerNorm_1": _norm(state, f"{block}.norm2"),
            "MlpBlock_0": _mlp(state, f"{block}.mlp"),
        }
    for index, reducer in enumerate(model_encoder.reducers):
        prefix = f"{name}.reducers.{index}"
        if hasattr(reducer, "learner"):  # TokenLearner v1: LayerNorm and bias-free convolutions
            convs = [key for key in state  # as released: the kernels only, no biases
                     if key.startswith(f"{prefix}.learner.attention.") and key.endswith("weight")]
            tree[f"TokenLearnerModule_{index}"] = {
                "LayerNorm_0": _norm(state, f"{prefix}.learner.norm"),
                **{f"Conv_{i}": {"kernel": _np(state, key)[:, :, 0].transpose(2, 3, 1, 0)}
                   for i, key in enumerate(convs)},
            }
        else:
            tree[f"TokenLearnerModuleV11_{index}"] = {
                "LayerNorm_0": _norm(state, f"{prefix}.norm"),
                "token_masking": _mlp(state, f"{prefix}.mlp"),
            }
    for index in range(len(model_encoder.fusers)):
        prefix = f"{name}.fusers.{index}"
        tree[f"TokenFuser_{index}"] = {
            "fuser_mix_norm1": _norm(state, f"{prefix}.token_norm"),
            "Dense_0": _dense(state, f"{prefix}.token_mix"),
            "fuser_mix_norm2": _norm(state, f"{prefix}.mixed_norm"),
            "LayerNorm_0": _norm(state, f"{prefix}.original_norm"),
            "token_masking": _mlp(state, f"{prefix}.weights"),
        }
    return tree


def to_scenic(model: VisionTransformer, heads: int = TINY["num_heads"]) -> dict:
    """The Scenic parameter tree of ``model`` (ViViT, factorised-encoder ViViT, TokenLearner
    ViT), as Scenic's modules name and lay out their parameters."""
    state = model.state_dict()
    kernel = _np(state, "patch_embed.proj.weight")  # [C, 3, t, p, p]
    params = {
        "embedding": {"kernel": kernel.transpose(2, 3, 4, 1, 0),
                      "bias": _np(state, "patch_embed.proj.bias")},
        "output_projection": _dense(state, "head"),
    }
    factorised = model.temporal_encoder is not None
    spatial = "SpatialTransformer" if factorised else "Transformer"
    params[spatial] = {"posembed_input": {"pos_embedding": _np(state, "pos_embed")},
                       "encoder_norm": _norm(state, "norm"),
                       **_encoder(state, "encoder", model.encoder, heads)}
    if model.cls_token is not None:
        params["cls_SpatialTransformer" if factorised else "cls"] = _np(state, "cls_token")
    if factorised:
        params["TemporalTransformer"] = {
            "posembed_input": {"pos_embedding": _np(state, "temporal_pos_embed")},
            "encoder_norm": _norm(state, "temporal_norm"),
            **_encoder(state, "temporal_encoder", model.temporal_encoder, heads)}
        if model.temporal_cls_token is not None:
            params["cls_TemporalTransformer"] = _np(state, "temporal_cls_token")
    return params


def _train_state(params: dict, optax: bool = True) -> dict:
    """Scenic's TrainState around ``params`` (optax: ``params``; flax.optim:
    ``optimizer/target``), with entries that are not weights."""
    extra = {"global_step": np.int64(1234), "rng": np.arange(2, dtype=np.uint32),
             "model_state": {}, "metadata": {"note": "written by a test"}}
    if optax:
        return {"params": params, "opt_state": {"0": {"mu": {"x": np.zeros(3, np.float32)}}},
                **extra}
    return {"optimizer": {"target": params, "state": {"step": np.int64(1)}}, **extra}


def _random(model: VisionTransformer, seed: int = 0) -> VisionTransformer:
    """Every parameter drawn at random (also zero-initialised ones: the fuser's token mix)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def _assert_round_trip(arguments: dict, tmp_path: Path, optax: bool = True) -> None:
    source = _random(VisionTransformer(**arguments))
    path = _write(_train_state(to_scenic(source), optax), tmp_path / "checkpoint_1234")
    loaded = VisionTransformer(**arguments).eval()
    report = load_scenic(loaded, path)
    assert sorted(report.loaded) == sorted(loaded.state_dict())
    assert not report.missing and not report.unexpected and not report.mismatched
    assert not report.adapted
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[name]), name
    clip = torch.randn(2, 3, arguments["num_frames"], arguments["train_crop_size"],
                       arguments["train_crop_size"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), source(clip), rtol=0, atol=1e-6)


# --- (c) Scenic-layout checkpoints load, every tensor mapped, none left over ----------------------


def test_unfactorised_vivit_round_trip(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=2)
    _assert_round_trip(arguments, tmp_path)


def test_factorised_encoder_vivit_round_trip_flax_optim_layout(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=6, tubelet_size=2, depth=2,
                     temporal_depth=2)
    _assert_round_trip(arguments, tmp_path, optax=False)


def test_tokenlearner_v11_fuser_vit_round_trip(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=4,
                     classifier="gap", token_reducer="tokenlearner_v11", reducer_layers=1,
                     reducer_tokens=4, token_fuser=True)
    _assert_round_trip(arguments, tmp_path)


def test_tokenlearner_v11_without_fuser_round_trip(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=1, depth=3, classifier="gap",
                     token_reducer="tokenlearner_v11", reducer_layers=2, reducer_tokens=4)
    _assert_round_trip(arguments, tmp_path)


def test_tokenlearner_v1_as_released_round_trip(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=1, depth=3, classifier="gap",
                     token_reducer="tokenlearner_v1", reducer_layers=1, reducer_tokens=4,
                     tokenlearner_conv_layers=4, tokenlearner_conv_bias=False,
                     tokenlearner_pooling="sum")
    _assert_round_trip(arguments, tmp_path)


def test_missing_and_left_over_names_are_errors(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=2)
    params = to_scenic(_random(VisionTransformer(**arguments)))
    del params["Transformer"]["encoderblock_1"]["LayerNorm_1"]["scale"]
    params["Transformer"]["encoderblock_2"] = {"LayerNorm_0": {"scale": np.ones(32, np.float32)}}
    path = _write({"params": params}, tmp_path / "checkpoint")
    with pytest.raises(CheckpointError) as error:
        load_scenic(VisionTransformer(**arguments), path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert "Transformer/encoderblock_1/LayerNorm_1/scale" in message
    assert "Transformer/encoderblock_2/LayerNorm_0/scale" in message


def test_released_tokenlearner_v1_refused_by_the_papers_v1(tmp_path: Path) -> None:
    """Scenic's v1 (four bias-free convolutions) into videotl's paper v1 (three with biases):
    the fourth convolution is left over and the biases are missing, by name."""
    arguments = dict(TINY, train_crop_size=32, num_frames=1, depth=2, classifier="gap",
                     token_reducer="tokenlearner_v1", reducer_layers=1, reducer_tokens=4)
    model = _random(VisionTransformer(**arguments))
    params = to_scenic(model)
    learner = params["Transformer"]["TokenLearnerModule_0"]
    learner["Conv_3"] = {"kernel": np.zeros((3, 3, 4, 4), np.float32)}
    path = _write({"params": params}, tmp_path / "checkpoint")
    with pytest.raises(CheckpointError) as error:
        load_scenic(VisionTransformer(**arguments), path)
    message = str(error.value)
    assert "Transformer/TokenLearnerModule_0/Conv_3/kernel" in message
    assert "Transformer/TokenLearnerModule_0/Conv_0/bias" in message


def test_classifier_for_other_classes(tmp_path: Path) -> None:
    arguments = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=2)
    path = _write({"params": to_scenic(_random(VisionTransformer(**arguments)))},
                  tmp_path / "checkpoint")
    other = dict(arguments, num_classes=7)
    with pytest.raises(CheckpointError, match="output_projection/kernel -> head.weight"):
        load_scenic(VisionTransformer(**other), path)
    report = load_scenic(VisionTransformer(**other), path, new_classifier=True)
    assert [entry[0] for entry in report.mismatched] == ["head.weight", "head.bias"]


# --- (d) position-embedding interpolation and tubelet shapes -------------------------------------


def test_spatial_position_embedding_resampled_to_a_larger_grid(tmp_path: Path) -> None:
    small = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=1)
    source = _random(VisionTransformer(**small))
    path = _write({"params": to_scenic(source)}, tmp_path / "checkpoint")
    model = VisionTransformer(**dict(small, train_crop_size=48))  # grid 4x4 -> 6x6
    report = load_scenic(model, path)
    assert any(entry.startswith("pos_embed: grid 4x4 resampled to 6x6") for entry in report.adapted)
    loaded, original = model.pos_embed.detach(), source.pos_embed.detach()
    assert loaded.shape == (1, 1 + 2 * 36, 32)
    assert torch.equal(loaded[:, :1], original[:, :1])
    expected = resize_grid_embedding(original[0, 1:].view(2, 4, 4, 32), (6, 6)).reshape(1, -1, 32)
    torch.testing.assert_close(loaded[:, 1:], expected, rtol=0, atol=1e-6)


def test_temporal_position_embedding_interpolated_linearly(tmp_path: Path) -> None:
    short = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=1, temporal_depth=1)
    source = _random(VisionTransformer(**short))
    path = _write({"params": to_scenic(source)}, tmp_path / "checkpoint")
    model = VisionTransformer(**dict(short, num_frames=8))  # 2 -> 4 temporal positions
    report = load_scenic(model, path)
    assert "temporal_pos_embed: 2 temporal positions interpolated to 4" in report.adapted
    first, last = source.temporal_pos_embed.detach()[0, 1:]
    steps = model.temporal_pos_embed.detach()[0]
    assert torch.equal(steps[0], source.temporal_pos_embed.detach()[0, 0])  # the class position
    for index, where in enumerate((0.0, 1 / 3, 2 / 3, 1.0)):  # corners aligned
        torch.testing.assert_close(steps[1 + index], (1 - where) * first + where * last,
                                   rtol=0, atol=1e-6)


def _image_checkpoint(tmp_path: Path) -> tuple[VisionTransformer, Path]:
    """A Scenic image ViT: 2D ``embedding/kernel`` ``[p, p, 3, C]`` (HWIO), one 4x4 grid."""
    image = _random(VisionTransformer(**dict(TINY, train_crop_size=32, depth=1)))
    params = to_scenic(image)
    params["embedding"]["kernel"] = params["embedding"]["kernel"][0]  # [1, p, p, 3, C] -> HWIO
    return image, _write({"params": params}, tmp_path / "checkpoint")


@pytest.mark.parametrize("inflation", ["central", "average"])
def test_image_checkpoint_inflated_into_tubelets(tmp_path: Path, inflation: str) -> None:
    image, path = _image_checkpoint(tmp_path)
    model = VisionTransformer(**dict(TINY, train_crop_size=32, num_frames=6, tubelet_size=2,
                                     depth=1))
    report = load_scenic(model, path, inflation=inflation)
    kernel, flat = model.patch_embed.proj.weight.detach(), image.patch_embed.proj.weight.detach()
    assert kernel.shape == (32, 3, 2, 8, 8) and flat.shape == (32, 3, 1, 8, 8)
    if inflation == "central":
        assert torch.equal(kernel[:, :, 1:], flat) and not kernel[:, :, 0].any()
    else:
        torch.testing.assert_close(kernel, flat.expand(-1, -1, 2, -1, -1) / 2, rtol=0, atol=0)
    assert f"patch_embed.proj.weight: 2D patch kernel inflated to 2 frames ({inflation})" \
        in report.adapted
    assert "pos_embed: one grid repeated over 3 temporal indices" in report.adapted
    positions = model.pos_embed.detach()
    assert positions.shape == (1, 1 + 3 * 16, 32)  # one 4x4 grid repeated over T' = 3
    grid = image.pos_embed.detach()[:, 1:]
    for frame in range(3):
        assert torch.equal(positions[:, 1 + 16 * frame: 1 + 16 * (frame + 1)], grid)


def test_tubelet_of_another_length_is_refused(tmp_path: Path) -> None:
    two = dict(TINY, train_crop_size=32, num_frames=4, tubelet_size=2, depth=1)
    path = _write({"params": to_scenic(_random(VisionTransformer(**two)))},
                  tmp_path / "checkpoint")
    with pytest.raises(CheckpointError, match=r"embedding/kernel -> patch_embed.proj.weight "
                                              r"\[32, 3, 2, 8, 8\] in file, \[32, 3, 4, 8, 8\]"):
        load_scenic(VisionTransformer(**dict(two, tubelet_size=4)), path)


# --- The reader ----------------------------------------------------------------------------------


def test_reader_decodes_flax_leaves(tmp_path: Path) -> None:
    """ndarray and numpy-scalar ext types, bfloat16, Flax's chunked arrays, nested names."""
    big = np.arange(10, dtype=np.float32).reshape(2, 5)
    bf16 = np.array([1.5, -2.0, 3.140625], dtype=np.float32)
    bf16_bytes = (bf16.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    bf16_ext = msgpack.ExtType(1, msgpack.packb(([3], "bfloat16", bf16_bytes), use_bin_type=True))
    chunked = {"__msgpack_chunked_array__": True, "shape": {"0": 2, "1": 5},
               "chunks": {"0": big.reshape(-1)[:6], "1": big.reshape(-1)[6:]}}
    tree = {"a": {"b": {"kernel": big.astype(np.float16)}}, "step": np.int64(7),
            "half": bf16_ext, "chunked": chunked, "none": None}
    flat = read_flax_msgpack(_write(tree, tmp_path / "checkpoint"))
    assert set(flat) == {"a/b/kernel", "step", "half", "chunked"}
    assert flat["a/b/kernel"].dtype == np.float16 and flat["a/b/kernel"].shape == (2, 5)
    assert int(flat["step"]) == 7
    np.testing.assert_array_equal(flat["half"], bf16)
    np.testing.assert_array_equal(flat["chunked"], big)


def test_reader_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint"
    path.write_bytes(b"\xc1 not msgpack")
    with pytest.raises(CheckpointError, match=str(path)):
        read_flax_msgpack(path)
