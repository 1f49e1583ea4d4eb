"""The TokenLearner modules against straightforward reference formulas."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from videotl.models.layers import (
    JointSpaceTimeAttention,
    TokenFuser,
    TokenFuserV11,
    TokenLearner,
    TokenLearnerModule,
    TokenLearnerV11,
    VectorTransformer,
    projected_vector_attention,
    vector_attention,
    vector_attention_reference,
)

TOL = dict(atol=1e-5, rtol=1e-5)


def grads(output, inputs, seed=1):
    weight = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad((output * weight).sum(), inputs)


def qkv(batch=2, n=24, m=20, c=12, d=None, scale=1.0):
    d = c if d is None else d
    q = (scale * torch.randn(batch, n, d)).requires_grad_()
    k = (scale * torch.randn(batch, m, d)).requires_grad_()
    v = torch.randn(batch, m, c).requires_grad_()
    return q, k, v


# --- TokenLearner -------------------------------------------------------------------------------


@pytest.mark.parametrize("num_conv_layers", [1, 3])
def test_token_learner_matches_eq1(num_conv_layers):
    learner = TokenLearner(in_channels=6, num_tokens=4, num_conv_layers=num_conv_layers)
    x = torch.randn(2, 6, 3, 5, 7)
    tokens, maps = learner(x, return_maps=True)
    assert tokens.shape == (2, 3, 4, 6) and maps.shape == (2, 3, 4, 5, 7)
    assert maps.min() > 0 and maps.max() < 1
    # Reference: per frame, alpha = sigmoid(conv2d stack), z_i = mean_hw(alpha_i * x).
    convs = [m for m in learner.attention if isinstance(m, torch.nn.Conv3d)]
    for t in range(3):
        frame = x[:, :, t]
        h = frame
        for index, conv in enumerate(convs):
            if index:
                h = F.gelu(h)
            h = F.conv2d(h, conv.weight[:, :, 0], conv.bias, padding=1)
        alpha = torch.sigmoid(h)  # [B, S, H, W]
        expected = (alpha[:, :, None] * frame[:, None]).mean(dim=(-1, -2))  # [B, S, C]
        torch.testing.assert_close(tokens[:, t], expected, **TOL)
        torch.testing.assert_close(maps[:, t], alpha, **TOL)


def test_token_learner_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_conv_layers"):
        TokenLearner(4, num_conv_layers=0)
    with pytest.raises(ValueError, match="odd"):
        TokenLearner(4, kernel_size=2)


def test_token_learner_v11_softmax_maps():
    learner = TokenLearnerV11(dim=10, num_tokens=3, hidden_dim=16)
    x = torch.randn(2, 4, 9, 10)
    tokens, maps = learner(x, return_maps=True)
    assert tokens.shape == (2, 4, 3, 10) and maps.shape == (2, 4, 3, 9)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 3), **TOL)
    logits = learner.mlp(learner.norm(x))  # [B, T, P, S]
    expected_maps = torch.softmax(logits, dim=2).transpose(-1, -2)
    torch.testing.assert_close(maps, expected_maps, **TOL)
    torch.testing.assert_close(tokens, torch.einsum("btsp,btpc->btsc", maps, x), **TOL)


# --- Vector attention ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,head_dim", [("sdpa", 1), ("sdpa", 8), ("auto", None)])
def test_vector_attention_equals_reference_forward_and_gradients(kernel, head_dim):
    q, k, v = qkv(scale=0.7)
    out = vector_attention(q, k, v, head_dim=head_dim, kernel=kernel)
    expected = vector_attention_reference(q, k, v)
    torch.testing.assert_close(out, expected, **TOL)
    for got, want in zip(grads(out, (q, k, v)), grads(expected, (q, k, v))):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("kernel", ["sdpa", "auto"])
def test_vector_attention_at_paper_shape_equals_reference(kernel):
    # N = S*T = 8*64 tokens of C = 432 channels, as in the res5 module (batch 1).
    q, k, v = qkv(batch=1, n=512, m=512, c=432, scale=0.5)
    out = vector_attention(q, k, v, kernel=kernel)
    expected = vector_attention_reference(q, k, v)
    torch.testing.assert_close(out, expected, **TOL)
    for got, want in zip(grads(out, (q, k, v)), grads(expected, (q, k, v))):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_vector_attention_sdpa_runs_on_a_fused_kernel():
    # PyTorch's fused CPU kernel never holds the [B, N, M, C] tensor; forbidding every other
    # backend makes this fail if the layout ever falls back to the materialising path.
    q, k, v = qkv()
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = vector_attention(q, k, v, kernel="sdpa")
        out.sum().backward()
    torch.testing.assert_close(out, vector_attention_reference(q, k, v), **TOL)


@pytest.mark.parametrize("kernel", ["sdpa", "auto"])
def test_vector_attention_is_per_channel(kernel):
    # Changing channel c of q, k or v changes only channel c of the output.
    q, k, v = (t.detach() for t in qkv())
    base = vector_attention(q, k, v, kernel=kernel)
    k2 = k.clone()
    k2[..., 3] += torch.randn(k.shape[:2])  # (a constant shift would cancel in the softmax)
    changed = (vector_attention(q, k2, v, kernel=kernel) - base).abs().amax(dim=(0, 1))
    assert changed[3] > 1e-3 and torch.all(changed[torch.arange(12) != 3] == 0)


def test_vector_attention_rejects_mismatched_shapes():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="vector_attention needs"):
        vector_attention(q, k, v[:, :-1])
    with pytest.raises(ValueError, match="unknown vector_attention kernel 'flash'"):
        vector_attention(q, k, v, kernel="flash")


def test_projected_vector_attention_equals_reference():
    q, k, v = qkv(c=6, d=10, scale=0.7)
    gamma = (0.3 * torch.randn(6, 10)).requires_grad_()
    out = projected_vector_attention(q, k, v, gamma, chunk_size=7)
    expected = vector_attention_reference(q, k, v, gamma)
    torch.testing.assert_close(out, expected, **TOL)
    for got, want in zip(grads(out, (q, k, v, gamma)), grads(expected, (q, k, v, gamma))):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("qk_dim", [None, 5])
def test_vector_transformer_matches_eq2(qk_dim):
    layer = VectorTransformer(dim=8, qk_dim=qk_dim)
    z = torch.randn(2, 11, 8)
    zn = layer.norm(z)
    gamma = None if layer.gamma is None else layer.gamma.weight
    assert (gamma is None) == (qk_dim is None)
    y = vector_attention_reference(layer.query(zn), layer.key(zn), layer.value(zn), gamma)
    torch.testing.assert_close(layer(z), layer.proj(y), **TOL)


# --- TokenFuser ---------------------------------------------------------------------------------


def test_token_fuser_matches_eq3_and_broadcasts():
    fuser = TokenFuser(num_tokens=3, num_frames=4)
    y = torch.randn(2, 12, 5)
    x = torch.randn(2, 5, 4, 6, 7)
    out = fuser(y, x)
    weight, bias = fuser.mix.weight, fuser.mix.bias  # [T, S*T], [T]
    o = torch.einsum("ti,bic->bct", weight, y) + bias[None, None, :]  # o_t[c]
    torch.testing.assert_close(out, x + o[..., None, None], **TOL)
    delta = out - x  # the same vector at every location of a frame
    assert torch.allclose(delta, delta[..., :1, :1].expand_as(delta), atol=1e-6)


def test_token_fuser_reports_frame_mismatch():
    fuser = TokenFuser(num_tokens=2, num_frames=4)
    with pytest.raises(ValueError) as error:
        fuser(torch.randn(1, 6, 5), torch.randn(1, 5, 3, 2, 2))
    assert str(error.value) == ("TokenFuser was built for num_frames=4 x num_tokens=2 (8 tokens); "
                                "got 6 tokens for an input of 3 frames. Build it with "
                                "num_frames=3.")


def test_token_fuser_v11_matches_formula():
    fuser = TokenFuserV11(dim=6, num_tokens=3, hidden_dim=8)
    y = torch.randn(2, 4, 3, 6)
    x = torch.randn(2, 4, 10, 6)
    out = fuser(y, x)
    mixed = fuser.token_mix(fuser.token_norm(y).transpose(-1, -2)).transpose(-1, -2)
    mixed = fuser.mixed_norm(mixed)
    weights = torch.sigmoid(fuser.weights(fuser.original_norm(x)))  # [B, T, P, S]
    expected = x + torch.einsum("btps,btsc->btpc", weights, mixed)
    torch.testing.assert_close(out, expected, **TOL)
    with pytest.raises(ValueError, match="expects 3 tokens"):
        fuser(torch.randn(2, 4, 2, 6), x)


# --- Combined module and joint attention --------------------------------------------------------


def test_token_learner_module_shapes_and_gradients():
    module = TokenLearnerModule(channels=8, num_frames=3, num_tokens=4)
    x = torch.randn(2, 8, 3, 5, 5, requires_grad=True)
    out, maps = module(x, return_maps=True)
    assert out.shape == x.shape and maps.shape == (2, 3, 4, 5, 5)
    out.square().mean().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


def test_token_learner_module_composition():
    module = TokenLearnerModule(channels=6, num_frames=2, num_tokens=3)
    x = torch.randn(1, 6, 2, 4, 4)
    tokens = module.learner(x).reshape(1, 6, 6)
    expected = module.fuser(module.transformer(tokens), x)
    torch.testing.assert_close(module(x), expected, **TOL)


def test_joint_space_time_attention_equals_multihead_attention():
    layer = JointSpaceTimeAttention(dim=16, num_heads=4).eval()
    reference = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    reference.in_proj_weight.data.copy_(layer.attn.qkv.weight)
    reference.in_proj_bias.data.copy_(layer.attn.qkv.bias)
    reference.out_proj.weight.data.copy_(layer.attn.proj.weight)
    reference.out_proj.bias.data.copy_(layer.attn.proj.bias)
    x = torch.randn(2, 16, 3, 4, 5)
    tokens = x.flatten(2).transpose(1, 2)
    normed = layer.norm(tokens)
    attended, _ = reference(normed, normed, normed, need_weights=False)
    expected = (tokens + attended).transpose(1, 2).reshape(x.shape)
    torch.testing.assert_close(layer(x), expected, **TOL)
