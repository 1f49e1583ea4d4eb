"""Reference numerics: TokenLearner v1 / v1.1 and TokenFuser v1.1 against straightforward formulas
written in the conventions of the authors' release (google-research/scenic,
``scenic/projects/token_learner/model.py``: channels-last tensors, Flax ``Dense`` kernels
``[in, out]``, ``flax.linen.gelu`` = the tanh approximation, LayerNorm epsilon 1e-6, sum pooling,
four bias-free 3x3 convolutions), and the config keys that choose these numerics reaching every
layer of a built model."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from videotl.config import ConfigError, load_config
from videotl.models import build_model
from videotl.models.layers import TokenFuserV11, TokenLearnerV11
from videotl.models.reducers import GridTokenLearner

TOL = dict(rtol=1e-6, atol=1e-6)
B, T, H, W, C, S = 2, 3, 4, 5, 6, 3


def gelu_tanh(x):
    """``flax.linen.gelu`` (approximate=True)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, scale, bias, eps=1e-6):
    """Flax ``nn.LayerNorm`` over the last axis (biased variance)."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * scale + bias


def dense(x, linear):
    """Flax ``Dense``: ``x @ kernel + bias``, ``kernel`` ``[in, out]`` (torch: ``[out, in]``)."""
    kernel = linear.weight.T
    return x @ kernel + (0.0 if linear.bias is None else linear.bias)


def mlp_block(x, mlp, act):
    """Scenic's ``MlpBlock``: Dense -> activation -> Dense (dropout off)."""
    return dense(act(dense(x, mlp.fc1)), mlp.fc2)


def conv_same(x, conv):
    """Flax ``nn.Conv`` 3x3, ``SAME`` padding, on ``[N, h, w, c]`` (the 1 x k x k Conv3d's
    kernel as ``HWIO``)."""
    kernel = conv.weight[:, :, 0].permute(2, 3, 1, 0)  # HWIO
    out = F.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), padding="same")
    out = out.permute(0, 2, 3, 1)
    return out if conv.bias is None else out + conv.bias


def randomise(module):
    """Random values for every parameter (LayerNorm scales and biases included), in float64."""
    module = module.double().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                            * 0.5)
    return module


def token_learner_v1_reference(x, learner, act, pooling, eps=1e-6):
    """Scenic's ``TokenLearnerModule`` on every frame: ``x`` ``[B, T, h, w, C]`` ->
    ``[B, T, S, C]``: LayerNorm, the convolutions with ``act`` between consecutive ones, sigmoid,
    then the maps times the (un-normalised) input, summed or averaged over positions."""
    frames = x.flatten(0, 1)  # [B*T, h, w, C]
    norm = learner.learner.norm
    selected = layer_norm(frames, norm.weight, norm.bias, eps)
    convs = [m for m in learner.learner.attention if isinstance(m, nn.Conv3d)]
    for index, conv in enumerate(convs):
        selected = conv_same(selected, conv)
        if index < len(convs) - 1:
            selected = act(selected)
    selected = torch.sigmoid(selected.flatten(1, 2)).transpose(1, 2)[..., None]  # [N, S, hw, 1]
    feat = frames.flatten(1, 2)[:, None]  # [N, 1, hw, C]
    pooled = (feat * selected).sum(2) if pooling == "sum" else (feat * selected).mean(2)
    return pooled.unflatten(0, x.shape[:2])


def test_token_learner_v1_as_released_matches_the_reference():
    learner = randomise(GridTokenLearner(C, S, num_conv_layers=4, conv_bias=False,
                                         pooling="sum", gelu="tanh"))
    x = torch.randn(B, T, H, W, C, dtype=torch.float64)
    out = learner(x.flatten(2, 3), (H, W))
    expected = token_learner_v1_reference(x, learner, gelu_tanh, "sum")
    assert out.shape == (B, T, S, C)
    torch.testing.assert_close(out, expected, **TOL)
    # The tolerance tells the release's numerics apart from near misses.
    for near_miss in (token_learner_v1_reference(x, learner, gelu_erf, "sum"),
                      token_learner_v1_reference(x, learner, gelu_tanh, "sum", eps=1e-5)):
        assert (out - near_miss).abs().max() > 1e-5
    assert [m.bias for m in learner.modules() if isinstance(m, nn.Conv3d)] == [None] * 4


def test_token_learner_v1_as_in_the_paper_matches_its_formula():
    learner = randomise(GridTokenLearner(C, S))  # three convolutions, biases, mean, erf
    x = torch.randn(B, T, H, W, C, dtype=torch.float64)
    out = learner(x.flatten(2, 3), (H, W))
    torch.testing.assert_close(out, token_learner_v1_reference(x, learner, gelu_erf, "mean"),
                               **TOL)
    convs = [m for m in learner.modules() if isinstance(m, nn.Conv3d)]
    assert len(convs) == 3 and all(conv.bias is not None for conv in convs)


def test_token_learner_v11_matches_the_reference():
    learner = randomise(TokenLearnerV11(C, S, hidden_dim=7, gelu="tanh"))
    x = torch.randn(B, T, H * W, C, dtype=torch.float64)
    selected = mlp_block(layer_norm(x, learner.norm.weight, learner.norm.bias), learner.mlp,
                         gelu_tanh)  # [B, T, hw, S]
    selected = torch.softmax(selected.transpose(-1, -2), dim=-1)  # [B, T, S, hw]
    expected = torch.einsum("btsi,btid->btsd", selected, x)
    torch.testing.assert_close(learner(x), expected, **TOL)
    assert learner.norm.eps == 1e-6


def token_fuser_reference(y, x, fuser, act):
    """Scenic's ``TokenFuser`` then the encoder's ``x + residual``: ``y`` ``[B, T, S, C]``
    tokens, ``x`` ``[B, T, hw, C]`` the pre-TokenLearner residual."""
    inputs = layer_norm(y, fuser.token_norm.weight, fuser.token_norm.bias)  # fuser_mix_norm1
    inputs = dense(inputs.transpose(-1, -2), fuser.token_mix).transpose(-1, -2)
    inputs = layer_norm(inputs, fuser.mixed_norm.weight, fuser.mixed_norm.bias)  # ..._norm2
    original = layer_norm(x, fuser.original_norm.weight, fuser.original_norm.bias)
    mix = torch.sigmoid(mlp_block(original, fuser.weights, act))  # [B, T, hw, S]
    return torch.einsum("btsc,bths->bthc", inputs, mix) + x


def test_token_fuser_v11_matches_the_reference():
    fuser = randomise(TokenFuserV11(C, S, hidden_dim=7, gelu="tanh"))
    y = torch.randn(B, T, S, C, dtype=torch.float64)
    x = torch.randn(B, T, H * W, C, dtype=torch.float64)
    torch.testing.assert_close(fuser(y, x), token_fuser_reference(y, x, fuser, gelu_tanh), **TOL)
    assert {fuser.token_norm.eps, fuser.mixed_norm.eps, fuser.original_norm.eps} == {1e-6}


def test_token_fuser_v11_starts_as_a_pure_residual():
    fuser = TokenFuserV11(C, S, hidden_dim=7).eval()
    x = torch.randn(B, T, H * W, C)
    assert torch.equal(fuser(torch.randn(B, T, S, C), x), x)
    trained_from_scratch = TokenFuserV11(C, S, hidden_dim=7, zero_init_mix=False)
    assert trained_from_scratch.token_mix.weight.abs().sum() > 0


# --- The config keys reach the layers -----------------------------------------------------------


def tiny(name, *overrides):
    frames = 4 if name.startswith("vivit") else 1
    return load_config(None, [f"model.name={name}", "model.num_classes=5", "model.dropout=0.0",
                              f"data.num_frames={frames}", "data.train_crop_size=32", *overrides])


def clip(name):
    return torch.randn(2, 3, 4 if name.startswith("vivit") else 1, 32, 32)


GELU_MODELS = [
    ("vit_tiny", ()), ("vivit_tiny_fe", ()), ("vivit_tiny_tl4at2", ()),
    ("vit_tiny_tl4at2", ("model.token_reducer=tokenlearner_v1",)),
    ("vivit_tiny_tl4at2_fuser", ()), ("vit_tiny_tl4at2_fuser", ("model.classifier=gap",)),
]


@pytest.mark.parametrize("name, overrides", GELU_MODELS)
def test_gelu_key_changes_every_gelu_of_the_model(name, overrides):
    torch.manual_seed(0)
    exact = build_model(tiny(name, *overrides)).eval()
    torch.manual_seed(0)
    tanh = build_model(tiny(name, *overrides, "model.gelu=tanh")).eval()
    forms = [[m.approximate for m in model.modules() if isinstance(m, nn.GELU)]
             for model in (exact, tanh)]
    assert set(forms[0]) == {"none"} and forms[1] == ["tanh"] * len(forms[0])
    blocks = sum(1 for m in exact.modules() if getattr(m, "kind", "") == "encoder block")
    reducers = (GridTokenLearner, TokenLearnerV11, TokenFuserV11)
    extra = sum(1 for m in exact.modules() if isinstance(m, reducers))
    assert len(forms[0]) >= blocks + extra  # every block's MLP and every reducer and fuser


def test_gelu_key_is_refused_by_a_model_without_it():
    with pytest.raises(ConfigError, match="model.gelu='tanh' does not apply"):
        build_model(load_config(None, ["model.name=x2plus1d_tiny", "model.gelu=tanh"]))


def test_fusers_of_a_built_model_start_as_pure_residuals():
    model = build_model(tiny("vivit_tiny_tl4at2_fuser")).eval()
    fusers = [m for m in model.modules() if isinstance(m, TokenFuserV11)]
    assert fusers
    x = torch.randn(2, 2, 16, 32)
    for fuser in fusers:
        assert torch.equal(fuser.token_mix.weight, torch.zeros_like(fuser.token_mix.weight))
        assert torch.equal(fuser(torch.randn(2, 2, 4, 32), x), x)


def test_token_learner_v1_keys_reach_the_reducer():
    model = build_model(tiny("vit_tiny_tl4at2", "model.token_reducer=tokenlearner_v1",
                             "model.tokenlearner_conv_layers=4",
                             "model.tokenlearner_conv_bias=false",
                             "model.tokenlearner_pooling=sum", "model.gelu=tanh"))
    (learner,) = [m for m in model.modules() if isinstance(m, GridTokenLearner)]
    convs = [m for m in learner.modules() if isinstance(m, nn.Conv3d)]
    assert len(convs) == 4 and all(conv.bias is None for conv in convs)
    assert learner.learner.pooling == "sum" and learner.learner.norm.eps == 1e-6
    defaults = build_model(tiny("vit_tiny_tl4at2", "model.token_reducer=tokenlearner_v1"))
    (learner,) = [m for m in defaults.modules() if isinstance(m, GridTokenLearner)]
    convs = [m for m in learner.modules() if isinstance(m, nn.Conv3d)]
    assert len(convs) == 3 and all(conv.bias is not None for conv in convs)
    assert learner.learner.pooling == "mean"


@pytest.mark.parametrize("key", ["model.tokenlearner_conv_layers=4",
                                 "model.tokenlearner_conv_bias=false",
                                 "model.tokenlearner_pooling=sum"])
def test_token_learner_v1_keys_are_refused_without_that_reducer(key):
    with pytest.raises(ConfigError, match="configures the tokenlearner_v1 reducer"):
        build_model(tiny("vit_tiny_tl4at2", key))  # tokenlearner_v11
    with pytest.raises(ConfigError, match="does not apply"):
        build_model(tiny("vit_tiny", key))


def test_pooling_value_is_checked_on_load():
    with pytest.raises(ConfigError, match="model.tokenlearner_pooling"):
        tiny("vit_tiny_tl4at2", "model.tokenlearner_pooling=max")


@pytest.mark.parametrize("name", ["vit_tiny", "vivit_tiny_fe"])
@pytest.mark.parametrize("gap_norm", ["pool_then_norm", "norm_then_pool"])
def test_gap_norm_order(name, gap_norm):
    model = build_model(tiny(name, "model.classifier=gap", f"model.gap_norm={gap_norm}")).eval()
    encoder = model.temporal_encoder if model.temporal_encoder is not None else model.encoder
    norm = model.temporal_norm if model.temporal_encoder is not None else model.norm
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    seen = []
    encoder.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        features = model.forward_features(clip(name))
    tokens = seen[-1]  # [B, N, C], no class token
    expected = norm(tokens).mean(1) if gap_norm == "norm_then_pool" else norm(tokens.mean(1))
    torch.testing.assert_close(features, expected, rtol=1e-6, atol=1e-6)
    other = norm(tokens.mean(1)) if gap_norm == "norm_then_pool" else norm(tokens).mean(1)
    assert (features - other).abs().max() > 1e-3


def test_gap_norm_is_refused_with_the_class_token():
    with pytest.raises(ConfigError, match="model.gap_norm"):
        build_model(tiny("vit_tiny", "model.gap_norm=norm_then_pool"))
