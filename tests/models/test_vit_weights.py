"""Initialisation from image-ViT checkpoints, against randomly initialised tiny timm ViTs."""

import pytest
import torch
import torch.nn.functional as F

from videotl.config import ConfigError, load_config
from videotl.models import build_model
from videotl.models.weights.timm import inflate_patch_embedding, load_image_vit
from videotl.utils.checkpoint import CheckpointError, read_state_dict
from videotl.models.backbones.vivit import VisionTransformer

timm_vit = pytest.importorskip("timm.models.vision_transformer")

# A tiny ViT: 32 x 32 images, 8 x 8 patches (4 x 4 grid), width 64, 2 blocks, 4 heads, 7 classes.
SIZE, PATCH, DIM, DEPTH, HEADS, CLASSES = 32, 8, 64, 2, 4, 7


def timm_model(gap=False, **changes):
    arguments = dict(img_size=SIZE, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                     num_classes=CLASSES)
    if gap:
        arguments.update(class_token=False, global_pool="avg")
    return timm_vit.VisionTransformer(**{**arguments, **changes}).eval()


def ours(**changes):
    arguments = dict(num_classes=CLASSES, train_crop_size=SIZE, patch_size=PATCH, dim=DIM,
                     depth=DEPTH, num_heads=HEADS, mlp_dim=4 * DIM)
    return VisionTransformer(**{**arguments, **changes}).eval()


def save(state, path):
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".bin", ".safetensors"])
def test_image_model_equals_the_timm_model_it_was_loaded_from(tmp_path, suffix, caplog):
    reference = timm_model()
    path = save(reference.state_dict(), tmp_path / f"vit{suffix}")
    model = ours()
    with caplog.at_level("INFO", logger="videotl"):
        report = load_image_vit(model, path)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    images = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images))
    loaded = len(report.loaded)
    assert f"loaded {loaded} of the model's {loaded} tensors" in caplog.text


def test_gap_model_maps_fc_norm(tmp_path):
    reference = timm_model(gap=True)
    model = ours(classifier="gap")
    report = load_image_vit(model, save(reference.state_dict(), tmp_path / "vit.pth"))
    assert report.missing == [] and report.unexpected == []
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images))


@pytest.mark.parametrize("factorised", [False, True])
def test_one_tubelet_clip_with_the_image_at_the_central_frame_gives_the_image_output(
    tmp_path, factorised
):
    reference = timm_model()
    path = save(reference.state_dict(), tmp_path / "vit.pth")
    model = ours(num_frames=3, tubelet_size=3)  # T' = 1 temporal index
    load_image_vit(model, path, inflation="central")
    images = torch.randn(2, 3, SIZE, SIZE)
    clip = torch.randn(2, 3, 3, SIZE, SIZE)  # other frames: noise, ignored by central inflation
    clip[:, :, 1] = images
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(images))
    if factorised:  # the spatial encoder of a factorised model is the image model
        model = ours(num_frames=3, tubelet_size=3, temporal_depth=1)
        report = load_image_vit(model, path, inflation="central")
        assert all(name.startswith("temporal_") for name in report.missing)
        features = []
        model.norm.register_forward_hook(lambda m, args, out: features.append(out))
        with torch.no_grad():
            model(clip)
        expected = reference.forward_head(reference.forward_features(images), pre_logits=True)
        torch.testing.assert_close(features[0], expected)


def test_average_inflation_embeds_a_still_clip_like_the_image(tmp_path):
    reference = timm_model()
    model = ours(num_frames=2, tubelet_size=2)
    load_image_vit(model, save(reference.state_dict(), tmp_path / "vit.pth"), "average")
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(images[:, :, None].repeat(1, 1, 2, 1, 1)),
                                   reference(images))


def test_inflated_filters():
    weight = torch.randn(4, 3, 2, 2)
    central = inflate_patch_embedding(weight, 3, "central")
    assert torch.equal(central[:, :, 1], weight) and not central[:, :, [0, 2]].any()
    torch.testing.assert_close(inflate_patch_embedding(weight, 4, "average").sum(2), weight)


def test_position_embeddings_are_resampled_and_repeated_over_time(tmp_path, caplog):
    reference = timm_model()
    model = ours(train_crop_size=48, num_frames=4, tubelet_size=2)  # 6 x 6 grid, T' = 2
    with caplog.at_level("INFO", logger="videotl"):
        report = load_image_vit(model, save(reference.state_dict(), tmp_path / "vit.pth"))
    source = reference.pos_embed.detach()
    grid = source[:, 1:].reshape(1, 4, 4, DIM).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False)
    resized = resized.permute(0, 2, 3, 1).reshape(1, 36, DIM)
    expected = torch.cat([source[:, :1], resized, resized], dim=1)
    torch.testing.assert_close(model.pos_embed.detach(), expected)
    assert "grid 4x4 resampled to 6x6; repeated over 2 temporal indices" in caplog.text
    assert any(entry.startswith("pos_embed [1, 17, 64] -> [1, 73, 64]") for entry in report.adapted)


def test_report_lists_missing_unexpected_and_skipped_keys(tmp_path, caplog):
    state = timm_model().state_dict()
    state["dist_token"] = torch.zeros(1, 1, DIM)
    model = ours(depth=3, num_classes=5, reducer_layers=2, reducer_tokens=2)
    with caplog.at_level("INFO", logger="videotl"):
        report = load_image_vit(model, save(state, tmp_path / "vit.pth"))
    assert "encoder.blocks.2.attn.qkv.weight" in report.missing
    assert "encoder.reducers.0.mlp.fc1.weight" in report.missing
    assert "head.weight" not in report.missing and report.unexpected == ["dist_token"]
    assert report.mismatched == [("head.weight", (5, DIM), (7, DIM)), ("head.bias", (5,), (7,))]
    printed = caplog.text
    assert "missing in file (kept as initialised): " in printed
    assert "encoder.blocks.2.mlp.fc2.bias" in printed
    assert "unexpected in file (ignored): dist_token" in printed
    assert "skipped head.bias: shape [7] in file, [5] in model" in printed
    assert torch.equal(model.encoder.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])


def test_shape_mismatch_is_refused_naming_file_key_and_shapes(tmp_path):
    path = save(timm_model().state_dict(), tmp_path / "vit.pth")
    with pytest.raises(CheckpointError, match=r"vit.pth: checkpoint tensor 'cls_token' has shape "
                                              r"\[1, 1, 64\] but the model's 'cls_token' has shape "
                                              r"\[1, 1, 48\]"):
        load_image_vit(ours(dim=48), path)
    with pytest.raises(CheckpointError, match="patch_embed.proj.weight"):
        load_image_vit(ours(patch_size=4, train_crop_size=16), path)


def test_unreadable_checkpoints_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint file not found: .*missing.pth"):
        read_state_dict(tmp_path / "missing.pth")
    (tmp_path / "vit.npz").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="expected a .safetensors or .pth/.pt/.bin file"):
        read_state_dict(tmp_path / "vit.npz")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad.pth"):
        read_state_dict(tmp_path / "bad.pth")
    other = save({"encoder.layer.0.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no tensor matches the model; expected a timm"):
        load_image_vit(ours(), other)


def test_training_checkpoints_are_unwrapped(tmp_path):
    state = {f"module.{k}": v for k, v in timm_model().state_dict().items()}
    path = save({"model": state, "epoch": 3}, tmp_path / "checkpoint.pth")
    assert set(read_state_dict(path)) == set(timm_model().state_dict())


def test_build_model_loads_model_pretrained(tmp_path):
    # vivit_tiny: width 32, 4 blocks, 4 heads, MLP 64, tubelets 2 x 8 x 8.
    reference = timm_model(embed_dim=32, mlp_ratio=2.0)
    path = save(reference.state_dict(), tmp_path / "vit.safetensors")
    overrides = ["model.name=vivit_tiny", "data.num_frames=4", "data.train_crop_size=32",
                 "model.pretrained_inflation=average", f"model.pretrained={path}"]
    model = build_model(load_config(None, overrides))
    torch.testing.assert_close(model.encoder.blocks[1].mlp.fc1.weight,
                               reference.blocks[1].mlp.fc1.weight)
    torch.testing.assert_close(model.patch_embed.proj.weight.sum(2),
                               reference.patch_embed.proj.weight)
    overrides[-1] = f"model.pretrained={tmp_path / 'none.pth'}"
    with pytest.raises(ConfigError, match="model.pretrained: checkpoint file not found"):
        build_model(load_config(None, overrides))
