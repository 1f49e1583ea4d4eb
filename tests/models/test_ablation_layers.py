"""The layers of the paper's ablations (Tables 5, 6 and §5.3) against reference formulas, and the
property that makes each what it is."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from videotl.models.layers import (
    TOKEN_FUSIONS,
    TOKEN_TRANSFORMERS,
    TOKENIZERS,
    DenseTokenizer,
    FixedGridTokenizer,
    MultiHeadSelfAttention,
    PooledMlpTokenizer,
    PriorOnlyTokenizer,
    SpatialAttention,
    TemporalAttention,
    TemporalMlpMixer,
    TokenBroadcast,
    TokenFuser,
    TokenLearner,
    TokenLearnerModule,
    VectorTransformer,
)
from videotl.models.layers.tokenizers import fixed_grid_shape

TOL = dict(atol=1e-5, rtol=1e-5)


def assert_gradients_reach_every_parameter(module, x):
    x = x.clone().requires_grad_()
    out = module(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        assert torch.isfinite(parameter.grad).all(), name
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def reference_attention(norm, attn, tokens):
    """``torch.nn.MultiheadAttention(norm(tokens))`` with the weights of ``attn``."""
    reference = torch.nn.MultiheadAttention(tokens.shape[-1], attn.num_heads, batch_first=True)
    reference.in_proj_weight.data.copy_(attn.qkv.weight)
    reference.in_proj_bias.data.copy_(attn.qkv.bias)
    reference.out_proj.weight.data.copy_(attn.proj.weight)
    reference.out_proj.bias.data.copy_(attn.proj.bias)
    normed = norm(tokens)
    return reference(normed, normed, normed, need_weights=False)[0]


# --- Spatial and temporal transformers ----------------------------------------------------------


def test_spatial_attention_attends_within_each_frame():
    layer = SpatialAttention(dim=8, num_heads=2).eval()
    x = torch.randn(2, 8, 3, 4, 5)
    out = layer(x)
    for t in range(3):
        tokens = x[:, :, t].flatten(2).transpose(1, 2)  # [B, H*W, C]
        expected = tokens + reference_attention(layer.norm, layer.attn, tokens)
        expected = expected.transpose(1, 2).reshape(2, 8, 4, 5)
        torch.testing.assert_close(out[:, :, t], expected, **TOL)
    changed = x.clone()
    changed[:, :, 1] += torch.randn(2, 8, 4, 5)  # another frame 1 leaves frames 0 and 2 alone
    difference = (layer(changed) - out).abs().amax(dim=(0, 1, 3, 4))
    assert difference[1] > 1e-3 and difference[0] == 0 and difference[2] == 0


def test_temporal_attention_attends_along_time_at_each_location():
    layer = TemporalAttention(dim=8, num_heads=2).eval()
    x = torch.randn(2, 8, 5, 3, 4)
    out = layer(x)
    for h, w in itertools.product(range(3), range(4)):
        tokens = x[:, :, :, h, w].transpose(1, 2)  # [B, T, C]
        expected = (tokens + reference_attention(layer.norm, layer.attn, tokens)).transpose(1, 2)
        torch.testing.assert_close(out[:, :, :, h, w], expected, **TOL)
    changed = x.clone()
    changed[:, :, :, 2, 1] += torch.randn(2, 8, 5)  # another location (2, 1) only
    difference = (layer(changed) - out).abs().amax(dim=(0, 1, 2))
    assert difference[2, 1] > 1e-3
    difference[2, 1] = 0
    assert torch.all(difference == 0)


@pytest.mark.parametrize("layer_type", [SpatialAttention, TemporalAttention])
def test_axis_attention_gradients(layer_type):
    assert_gradients_reach_every_parameter(layer_type(8, 2), torch.randn(2, 8, 3, 2, 3))


# --- MLP-Mixer over frames ----------------------------------------------------------------------


def test_temporal_mlp_mixer_matches_the_mixer_block_on_frame_averages():
    mixer = TemporalMlpMixer(channels=6, num_frames=4, token_hidden_dim=5, channel_hidden_dim=7)
    x = torch.randn(2, 6, 4, 3, 5)
    z = x.mean(dim=(3, 4)).transpose(1, 2)  # [B, T, C]
    token = mixer.token_mlp
    u = mixer.token_norm(z).transpose(1, 2)  # [B, C, T]: mixes frames, per channel
    z = z + token.fc2(F.gelu(token.fc1(u))).transpose(1, 2)
    channel = mixer.channel_mlp
    z = z + channel.fc2(F.gelu(channel.fc1(mixer.channel_norm(z))))
    torch.testing.assert_close(mixer(x), x + z.transpose(1, 2)[..., None, None], **TOL)


def test_temporal_mlp_mixer_sees_only_frame_averages_and_mixes_across_frames():
    mixer = TemporalMlpMixer(channels=6, num_frames=4)
    x = torch.randn(2, 6, 4, 3, 5)
    delta = mixer(x) - x
    # The same vector is added at every location of a frame.
    torch.testing.assert_close(delta, delta[..., :1, :1].expand_as(delta), **TOL)
    # A zero-mean pattern within a frame leaves the added vectors unchanged ...
    pattern = torch.randn(2, 6, 1, 3, 5)
    same_means = x + (pattern - pattern.mean(dim=(3, 4), keepdim=True))
    torch.testing.assert_close(mixer(same_means) - same_means, delta, **TOL)
    # ... while changing one frame's average changes what the other frames receive.
    shifted = x.clone()
    shifted[:, :, 0] += torch.randn(2, 6, 1, 1)  # (LayerNorm would cancel a constant shift)
    assert (mixer(shifted) - shifted - delta)[:, :, 3].abs().max() > 1e-4


def test_temporal_mlp_mixer_gradients_and_frame_mismatch():
    mixer = TemporalMlpMixer(channels=6, num_frames=4)
    assert_gradients_reach_every_parameter(mixer, torch.randn(2, 6, 4, 2, 3))
    with pytest.raises(ValueError) as error:
        mixer(torch.randn(1, 6, 3, 2, 2))
    assert str(error.value) == ("TemporalMlpMixer was built for num_frames=4; got an input of 3 "
                                "frames. Build it with num_frames=3.")


# --- Tokenizers ---------------------------------------------------------------------------------


def test_fixed_grid_shape():
    assert [fixed_grid_shape(s) for s in (1, 4, 7, 8, 9, 12, 16)] == [
        (1, 1), (2, 2), (1, 7), (2, 4), (3, 3), (3, 4), (4, 4)
    ]


def test_fixed_grid_split_equals_average_pooling_over_the_cells():
    tokenizer = FixedGridTokenizer(num_tokens=8)  # a 2 x 4 grid
    x = torch.randn(2, 5, 3, 6, 8)  # cells of 3 x 2 positions
    tokens = tokenizer(x)
    assert tokens.shape == (2, 3, 8, 5)
    cells = x.reshape(2, 5, 3, 2, 3, 4, 2).mean(dim=(4, 6))  # [B, C, T, rows, cols]
    expected = cells.permute(0, 2, 3, 4, 1).reshape(2, 3, 8, 5)  # row-major cells
    torch.testing.assert_close(tokens, expected, **TOL)
    torch.testing.assert_close(tokens[:, :, 5], x[..., 3:6, 2:4].mean(dim=(-1, -2)).transpose(1, 2))


def test_fixed_grid_at_a_grid_that_does_not_divide_the_frame():
    tokens = FixedGridTokenizer(num_tokens=8)(torch.randn(1, 4, 2, 7, 7))
    assert tokens.shape == (1, 2, 8, 4) and torch.isfinite(tokens).all()
    ones = FixedGridTokenizer(num_tokens=8)(torch.ones(1, 4, 2, 7, 7))
    torch.testing.assert_close(ones, torch.ones_like(ones))  # each token is an average


def test_dense_tokenizer_is_a_dense_layer_over_positions():
    tokenizer = DenseTokenizer(num_tokens=3, grid_size=4)
    x = torch.randn(2, 5, 3, 4, 4)
    weight, bias = tokenizer.dense.weight, tokenizer.dense.bias  # [S, G*G], [S]
    expected = torch.einsum("sp,bctp->btsc", weight, x.flatten(3)) + bias[:, None]
    torch.testing.assert_close(tokenizer(x), expected, **TOL)
    # Other frame sizes are resampled to G x G first.
    small = torch.randn(2, 5, 3, 3, 3)
    frames = small.transpose(1, 2).reshape(6, 5, 3, 3)
    resampled = F.interpolate(frames, size=(4, 4), mode="bilinear", align_corners=False)
    resampled = resampled.reshape(2, 3, 5, 4, 4).transpose(1, 2)
    torch.testing.assert_close(tokenizer(small), tokenizer(resampled), **TOL)


def test_pooled_mlp_tokenizer_generates_tokens_from_the_frame_average():
    tokenizer = PooledMlpTokenizer(channels=5, num_tokens=3, hidden_dim=7)
    x = torch.randn(2, 5, 4, 3, 3)
    tokens = tokenizer(x)
    assert tokens.shape == (2, 4, 3, 5)
    pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # [B, T, C]
    torch.testing.assert_close(tokens, tokenizer.mlp(pooled).reshape(2, 4, 3, 5), **TOL)
    pattern = torch.randn(2, 5, 4, 3, 3)
    same_means = x + pattern - pattern.mean(dim=(3, 4), keepdim=True)
    torch.testing.assert_close(tokenizer(same_means), tokens, **TOL)


def test_prior_only_maps_do_not_depend_on_the_input():
    tokenizer = PriorOnlyTokenizer(num_tokens=3, grid_size=4)
    x, other = torch.randn(2, 2, 5, 3, 4, 4)
    tokens, maps = tokenizer(x, return_maps=True)
    _, other_maps = tokenizer(other, return_maps=True)
    assert maps.shape == (2, 3, 3, 4, 4)
    torch.testing.assert_close(maps, other_maps, rtol=0, atol=0)
    torch.testing.assert_close(maps[1, 2], torch.sigmoid(tokenizer.prior))
    expected = torch.einsum("shw,bcthw->btsc", torch.sigmoid(tokenizer.prior), x) / 16
    torch.testing.assert_close(tokens, expected, **TOL)
    # At another frame size the logits are resampled bilinearly before the sigmoid.
    logits = F.interpolate(tokenizer.prior[None], size=(3, 3), mode="bilinear",
                           align_corners=False)[0]
    torch.testing.assert_close(tokenizer.maps(3, 3), torch.sigmoid(logits))


def test_token_learner_maps_do_depend_on_the_input():
    # The contrast to prior-only attention.
    learner = TokenLearner(in_channels=5, num_tokens=3)
    x, other = torch.randn(2, 2, 5, 3, 4, 4)
    assert (learner(x, return_maps=True)[1] - learner(other, return_maps=True)[1]).abs().max() > 0


# --- Fusion -------------------------------------------------------------------------------------


def test_broadcasting_adds_each_frames_token_average_to_every_location_of_the_frame():
    fusion = TokenBroadcast(num_tokens=3)
    y = torch.randn(2, 4 * 3, 5)
    x = torch.randn(2, 5, 4, 6, 7)
    delta = fusion(y, x) - x
    torch.testing.assert_close(delta, delta[..., :1, :1].expand_as(delta), **TOL)
    for t in range(4):
        average = y[:, 3 * t: 3 * (t + 1)].mean(dim=1)  # [B, C]: frame t's tokens only
        torch.testing.assert_close(delta[:, :, t, 2, 3], average, **TOL)
    with pytest.raises(ValueError, match=r"S=3 tokens for each of the input's 4 frames"):
        fusion(torch.randn(2, 10, 5), x)


# --- The TokenLearner module with its parts switched --------------------------------------------

PARTS = list(itertools.product(TOKENIZERS, TOKEN_TRANSFORMERS, TOKEN_FUSIONS))


@pytest.mark.parametrize("tokenizer, transformer, fusion", PARTS)
def test_every_combination_of_parts_runs_and_trains(tokenizer, transformer, fusion):
    module = TokenLearnerModule(channels=8, num_frames=3, num_tokens=4, tokenizer=tokenizer,
                                transformer=transformer, fusion=fusion, num_heads=2)
    assert_gradients_reach_every_parameter(module, torch.randn(2, 8, 3, 5, 5))


@pytest.mark.parametrize("tokenizer, transformer, fusion", PARTS)
def test_parts_are_composed_in_order(tokenizer, transformer, fusion):
    module = TokenLearnerModule(channels=8, num_frames=3, num_tokens=4, tokenizer=tokenizer,
                                transformer=transformer, fusion=fusion, num_heads=2).eval()
    x = torch.randn(2, 8, 3, 5, 5)
    tokens = module.learner(x).reshape(2, 12, 8)
    torch.testing.assert_close(module(x), module.fuser(module.transformer(tokens), x), **TOL)


def test_each_switch_selects_its_part():
    def parts(**switches):
        module = TokenLearnerModule(channels=8, num_frames=3, num_tokens=4, num_heads=2,
                                    **switches)
        return type(module.learner), module.transformer, type(module.fuser)

    learner, transformer, fuser = parts()  # the paper's module
    assert learner is TokenLearner and fuser is TokenFuser
    assert isinstance(transformer, VectorTransformer)
    assert parts(tokenizer="fixed_grid")[0] is FixedGridTokenizer
    assert parts(tokenizer="dense")[0] is DenseTokenizer
    assert parts(tokenizer="pool_mlp")[0] is PooledMlpTokenizer
    assert parts(tokenizer="prior_only")[0] is PriorOnlyTokenizer
    mhsa = parts(transformer="mhsa")[1]
    assert isinstance(mhsa[0], torch.nn.LayerNorm) and isinstance(mhsa[1], MultiHeadSelfAttention)
    assert mhsa[1].num_heads == 2
    assert isinstance(parts(transformer="none")[1], torch.nn.Identity)
    assert parts(fusion="broadcast")[2] is TokenBroadcast


def test_mhsa_and_vector_transformers_have_the_same_parameters():
    # Table 6 swaps the attention only: both have query, key, value and output projections.
    def count(transformer):
        module = TokenLearnerModule(432, 64, 8, transformer=transformer)
        return sum(p.numel() for p in module.transformer.parameters())

    assert count("mhsa") == count("vector") == 4 * (432 * 432 + 432) + 2 * 432


def test_mhsa_transformer_is_standard_multi_head_attention_over_all_tokens():
    module = TokenLearnerModule(channels=8, num_frames=3, num_tokens=2, transformer="mhsa",
                                num_heads=2).eval()
    tokens = torch.randn(2, 6, 8)
    norm, attn = module.transformer
    expected = reference_attention(norm, attn, tokens)  # no residual: the fusion adds the input
    torch.testing.assert_close(module.transformer(tokens), expected, **TOL)


def test_default_module_is_unchanged():
    module = TokenLearnerModule(channels=432, num_frames=64, num_tokens=8)
    names = sorted(name for name, _ in module.named_parameters())
    assert names == sorted([
        "learner.attention.0.weight", "learner.attention.0.bias",
        *(f"transformer.{p}.{w}" for p in ("norm", "query", "key", "value", "proj")
          for w in ("weight", "bias")),
        "fuser.mix.weight", "fuser.mix.bias",
    ])
    assert sum(p.numel() for p in module.parameters()) == 813_896 - 2 * 432  # BN not included


def test_bad_switches_are_reported():
    with pytest.raises(ValueError, match=r"TokenLearnerModule tokenizer 'grid'.*'fixed_grid'"):
        TokenLearnerModule(8, 3, tokenizer="grid")
    with pytest.raises(ValueError, match=r"transformer 'vectort'.*'vector', 'mhsa', 'none'"):
        TokenLearnerModule(8, 3, transformer="vectort")
    with pytest.raises(ValueError, match=r"fusion 'fuser'.*'tokenfuser', 'broadcast'"):
        TokenLearnerModule(8, 3, fusion="fuser")
    with pytest.raises(ValueError, match=r"num_conv_layers=3 applies to tokenizer='tokenlearner'"):
        TokenLearnerModule(8, 3, num_conv_layers=3, tokenizer="dense")


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_attention_maps_come_from_tokenizers_that_have_them(tokenizer):
    module = TokenLearnerModule(channels=8, num_frames=3, num_tokens=4, tokenizer=tokenizer)
    x = torch.randn(1, 8, 3, 5, 5)
    if tokenizer in ("tokenlearner", "prior_only"):
        out, maps = module(x, return_maps=True)
        assert maps.shape == (1, 3, 4, 5, 5) and torch.allclose(out, module(x))
    else:
        with pytest.raises(ValueError, match="return_maps needs a tokenizer with spatial maps"):
            module(x, return_maps=True)
