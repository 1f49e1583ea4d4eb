"""ViViT / ViT with token reduction: the tiny registered variants at a tiny input, token counts
around the reducer, the factorised encoder, input checks, and every full-size model on the meta
device."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from videotl.config import ConfigError, ModelConfig, load_config
from videotl.models import MODELS, build_model, list_models, model_arguments
from videotl.models.backbones.vivit import VisionTransformer
from videotl.models.layers import TokenFuserV11
from videotl.models.reducers import ReducerSpec, build_token_reducer

FAMILY = VisionTransformer.__module__
VIVIT_MODELS = [n for n in list_models() if MODELS.get(n).__module__ == FAMILY]
TINY_VIDEO = ["vivit_tiny", "vivit_tiny_fe", "vivit_tiny_tl4at2", "vivit_tiny_fe_tl4at2",
              "vivit_tiny_tl4at2_fuser"]
TINY_IMAGE = ["vit_tiny", "vit_tiny_tl4at2", "vit_tiny_tl4at2_fuser"]
FULL_SIZE = sorted(set(VIVIT_MODELS) - set(TINY_VIDEO) - set(TINY_IMAGE))
# vivit_tiny*: width 32, 4 blocks, tubelets 2x8x8. A 4 x 32 x 32 clip: T' = 2 temporal indices of
# a 4 x 4 grid (P = 16), S = 4 tokens after the reducer.
FRAMES, SIZE, T_PRIME, P, S = 4, 32, 2, 16, 4


def tiny_config(name, *overrides, classes=5):
    frames = FRAMES if name.startswith("vivit") else 1
    return load_config(None, [
        f"model.name={name}", f"model.num_classes={classes}", "model.dropout=0.0",
        f"data.num_frames={frames}", f"data.train_crop_size={SIZE}", *overrides,
    ])


def with_mixing_fusers(model):
    """TokenFuser v1.1's token mixing starts at zero (as released), so until the first step no
    gradient passes through it to the blocks and reducers before it; a random mixing lets the
    test check that every parameter is reached."""
    for module in model.modules():
        if isinstance(module, TokenFuserV11):
            torch.nn.init.trunc_normal_(module.token_mix.weight, std=0.02)
    return model


def clip(name, batch=2):
    frames = FRAMES if name.startswith("vivit") else 1
    return torch.randn(batch, 3, frames, SIZE, SIZE)


def block_lengths(model, x):
    """Sequence shape ``[B, N]`` seen by every encoder block, in call order."""
    seen = []
    hooks = [block.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[:2])))
             for block in model.modules() if getattr(block, "kind", "") == "encoder block"]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return seen


def test_every_registered_model_is_tested():
    assert set(TINY_VIDEO + TINY_IMAGE) <= set(VIVIT_MODELS)
    assert len(FULL_SIZE) >= 30


@pytest.mark.parametrize("classifier", ["token", "gap"])
@pytest.mark.parametrize("name", TINY_VIDEO + TINY_IMAGE)
def test_forward_shape_and_gradients_reach_every_parameter(name, classifier):
    model = with_mixing_fusers(build_model(tiny_config(name, f"model.classifier={classifier}")))
    logits = model(clip(name))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name
    assert (model.cls_token is not None) == (classifier == "token")


@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_models_build_and_classify_on_the_meta_device(name):
    frames = 32 if name.startswith("vivit") else 1
    with torch.device("meta"):
        model = build_model(load_config(None, [
            f"model.name={name}", "model.num_classes=11", f"data.num_frames={frames}"]))
        logits = model(torch.empty(2, 3, frames, 224, 224))
    assert logits.shape == (2, 11)


@pytest.mark.parametrize("classifier, prefix", [("token", 1), ("gap", 0)])
def test_reducer_cuts_every_temporal_index_to_s_tokens_at_its_layer(classifier, prefix):
    model = build_model(tiny_config("vivit_tiny_tl4at2", f"model.classifier={classifier}"))
    lengths = block_lengths(model, clip("vivit_tiny"))
    full, reduced = (2, prefix + T_PRIME * P), (2, prefix + T_PRIME * S)
    assert lengths == [full, full, reduced, reduced]  # "4 at 2": blocks 0-1 full, 2-3 reduced


def test_without_reducer_every_block_sees_all_tokens():
    lengths = block_lengths(build_model(tiny_config("vivit_tiny")), clip("vivit_tiny"))
    assert lengths == [(2, 1 + T_PRIME * P)] * 4


@pytest.mark.parametrize("classifier, prefix, fusers", [("gap", 0, 2), ("token", 1, 1)])
def test_fuser_runs_blocks_on_learned_tokens_and_keeps_the_grid(classifier, prefix, fusers):
    # Layers 2 and 3 learn tokens; with a class token nothing reads the grid after the last
    # block, so only layer 2 fuses its tokens back.
    model = build_model(tiny_config("vivit_tiny_tl4at2_fuser", f"model.classifier={classifier}"))
    assert len(model.encoder.reducers) == 2 and len(model.encoder.fusers) == fusers
    fused = []
    for fuser in model.encoder.fusers:
        fuser.register_forward_hook(lambda m, args, out: fused.append(tuple(out.shape)))
    lengths = block_lengths(model, clip("vivit_tiny"))
    assert lengths == [(2, prefix + T_PRIME * P)] * 2 + [(2, prefix + T_PRIME * S)] * 2
    assert fused == [(2, T_PRIME, P, 32)] * fusers


def test_factorised_encoder_runs_space_per_temporal_index_then_time():
    model = build_model(tiny_config("vivit_tiny_fe_tl4at2"))
    lengths = block_lengths(model, clip("vivit_tiny"))
    spatial_full, spatial_reduced = (2 * T_PRIME, 1 + P), (2 * T_PRIME, 1 + S)
    assert lengths == [spatial_full] * 2 + [spatial_reduced] * 2 + [(2, 1 + T_PRIME)] * 2


def test_factorised_encoder_keeps_temporal_indices_apart_in_space():
    # Changing the frames of temporal index 1 leaves the spatial encoding of index 0 unchanged.
    model = build_model(tiny_config("vivit_tiny_fe")).eval()
    per_frame = []
    model.norm.register_forward_hook(lambda m, args, out: per_frame.append(out))
    x = clip("vivit_tiny", batch=1)
    y = x.clone()
    y[:, :, 2:] = torch.randn_like(y[:, :, 2:])
    with torch.no_grad():
        model(x), model(y)
    torch.testing.assert_close(per_frame[0][0], per_frame[1][0])
    assert not torch.allclose(per_frame[0][1], per_frame[1][1])


# The other reducers need a block around them or a square count:
# tests/models/test_token_reducers.py.
@pytest.mark.parametrize("kind", ["tokenlearner_v1", "tokenlearner_v11"])
def test_each_reducer_outputs_s_tokens_per_temporal_index(kind):
    reducer = build_token_reducer(kind, ReducerSpec(dim=12, reducer_tokens=3))
    assert reducer.kind == kind
    out = reducer(torch.randn(2, 5, 6 * 4, 12), (6, 4))
    assert out.shape == (2, 5, 3, 12)


def test_grid_token_learner_equals_token_learner_on_the_grid():
    reducer = build_token_reducer("tokenlearner_v1", ReducerSpec(dim=12, reducer_tokens=3))
    tokens = torch.randn(2, 5, 6 * 4, 12)
    grid = tokens.view(2, 5, 6, 4, 12).permute(0, 4, 1, 2, 3)  # [B, C, T', h, w]
    torch.testing.assert_close(reducer(tokens, (6, 4)), reducer.learner(grid))
    with pytest.raises(ValueError, match="grid"):
        reducer(tokens, (5, 4))


def test_image_models_take_images_and_one_frame_clips():
    model = build_model(tiny_config("vit_tiny_tl4at2")).eval()
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(images), model(images[:, :, None]))


def test_bad_inputs_are_reported():
    video = build_model(tiny_config("vivit_tiny"))
    with pytest.raises(ValueError, match=r"expects \[B, 3, T, H, W\] clips, got"):
        video(torch.randn(2, 3, SIZE, SIZE))
    with pytest.raises(ValueError) as error:
        video(torch.randn(1, 3, 6, SIZE, SIZE))
    assert str(error.value) == ("VisionTransformer was built for num_frames=4 (2 tubelets of 2 "
                                "frames); got a clip of 6 frames. Build it with num_frames=6.")
    with pytest.raises(ConfigError) as error:  # the config key of the argument, then its message
        build_model(tiny_config("vivit_tiny", "data.num_frames=5"))
    assert str(error.value) == ("data.num_frames: num_frames (5) must be a multiple of the tubelet "
                                "size 2")


def test_other_crop_sizes_use_bicubically_resampled_position_embeddings():
    model = build_model(tiny_config("vivit_tiny")).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, FRAMES, 48, 40)).shape == (1, 5)
        grid = model.pos_embed[0, 1:].view(T_PRIME, 4, 4, 32).permute(0, 3, 1, 2)
        expected = F.interpolate(grid, size=(6, 5), mode="bicubic", align_corners=False)
        expected = expected.permute(0, 2, 3, 1).reshape(1, T_PRIME, 30, 32)
        torch.testing.assert_close(model._patch_positions((6, 5)), expected)
        unchanged = model.pos_embed[:, 1:].view(1, T_PRIME, P, 32)
        assert torch.equal(model._patch_positions((4, 4)), unchanged)


def test_forward_features_and_reset_classifier():
    model = build_model(tiny_config("vivit_tiny_tl4at2"))
    assert model.forward_features(clip("vivit_tiny")).shape == (2, 32)
    model.reset_classifier(11)
    assert model(clip("vivit_tiny")).shape == (2, 11)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model.token_reducer: unknown token reducer 'tokenlerner"
                                          r"'; did you mean 'tokenlearner_v1'"):
        tiny_config("vivit_tiny_tl4at2", "model.token_reducer=tokenlerner")
    unchecked = replace(tiny_config("vivit_tiny_tl4at2"),  # built without load_config
                        model=replace(ModelConfig(), name="vivit_tiny_tl4at2",
                                      token_reducer="tokenlerner"))
    with pytest.raises(ConfigError, match=r"model.token_reducer: unknown token reducer 'tokenlerner"
                                          r"'; did you mean 'tokenlearner_v1'"):
        build_model(unchecked)
    with pytest.raises(ConfigError, match=r"model.token_reducer='tokenlearner_v1' does not apply "
                                          r"to model 'vivit_tiny'"):
        build_model(tiny_config("vivit_tiny", "model.token_reducer=tokenlearner_v1"))
    with pytest.raises(ConfigError, match="model.pretrained_inflation='average' does not apply"):
        build_model(tiny_config("vit_tiny", "model.pretrained_inflation=average"))
    with pytest.raises(ConfigError, match="model.classifier' must be one of 'token', 'gap'"):
        tiny_config("vit_tiny", "model.classifier=cls")
    with pytest.raises(ConfigError, match="model.classifier='gap' does not apply to model "
                                          "'x2plus1d_tiny'"):
        build_model(load_config(None, ["model.name=x2plus1d_tiny", "model.classifier=gap"]))


def test_data_keys_a_model_does_not_use_are_not_errors():
    cfg = load_config(None, ["model.name=x2plus1d_tiny", "data.train_crop_size=160",
                             "data.num_frames=4"])
    assert "train_crop_size" not in model_arguments(cfg, MODELS.get("x2plus1d_tiny"))
    model = build_model(cfg)
    default = build_model(load_config(None, ["model.name=x2plus1d_tiny", "data.num_frames=4"]))
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in default.state_dict().items()}
    assert model(torch.randn(1, 3, 4, 64, 64)).shape == (1, 400)


def test_v1_reducer_by_config():
    model = build_model(tiny_config("vit_tiny_tl4at2", "model.token_reducer=tokenlearner_v1"))
    assert model.encoder.reducers[0].kind == "tokenlearner_v1"
    assert model(clip("vit_tiny")).shape == (2, 5)
