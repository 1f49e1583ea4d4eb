"""The encoder block, stochastic depth, TokenLearner's normalised maps and grid resampling against
straightforward formulas."""

import pytest
import torch
import torch.nn.functional as F

from videotl.models.layers import DropPath, EncoderBlock, TokenLearner, resize_grid_embedding

TOL = dict(atol=1e-5, rtol=1e-5)


def test_encoder_block_equals_pre_norm_attention_and_mlp():
    block = EncoderBlock(dim=12, num_heads=3, mlp_dim=20).eval()
    x = torch.randn(2, 7, 12)
    h = block.norm1(x)
    q, k, v = F.linear(h, block.attn.qkv.weight, block.attn.qkv.bias).chunk(3, dim=-1)
    heads = [slice(i * 4, (i + 1) * 4) for i in range(3)]
    attended = torch.cat([
        torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / 2.0, dim=-1) @ v[..., s]
        for s in heads
    ], dim=-1)
    x1 = x + block.attn.proj(attended)
    expected = x1 + block.mlp.fc2(F.gelu(block.mlp.fc1(block.norm2(x1))))
    torch.testing.assert_close(block(x), expected, **TOL)


def test_drop_path_drops_whole_samples_and_rescales():
    drop = DropPath(0.5)
    x = torch.ones(1000, 3, 4)
    out = drop(x)
    kept = out.flatten(1).amax(1) > 0
    assert torch.equal(out[kept], torch.full_like(out[kept], 2.0)) and not out[~kept].any()
    assert 400 < int(kept.sum()) < 600
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match="drop path rate"):
        DropPath(1.0)


def test_token_learner_norm_computes_maps_from_normalised_features():
    learner = TokenLearner(in_channels=6, num_tokens=2, num_conv_layers=1, norm=True)
    x = 5 + 3 * torch.randn(2, 6, 3, 4, 5)
    tokens, maps = learner(x, return_maps=True)
    normalised = learner.norm(x.movedim(1, -1)).movedim(-1, 1)
    expected_maps = torch.sigmoid(learner.attention(normalised))  # [B, S, T, H, W]
    torch.testing.assert_close(maps, expected_maps.transpose(1, 2), **TOL)
    expected = torch.einsum("bsthw,bcthw->btsc", expected_maps, x) / 20
    torch.testing.assert_close(tokens, expected, **TOL)


def test_resize_grid_embedding():
    embed = torch.randn(3, 4, 5, 8)
    assert resize_grid_embedding(embed, (4, 5)) is embed
    expected = F.interpolate(embed.permute(0, 3, 1, 2), size=(6, 3), mode="bicubic",
                             align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(resize_grid_embedding(embed, (6, 3)), expected)
