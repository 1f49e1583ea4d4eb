"""Token reducers (TokenLearner, ATS, Token Pooling, grid pooling) at the same layers of the
tiny ViT/ViViT: ATS against straightforward formulas and per-sample processing, Token Pooling
against brute-force clustering, output counts, gradients, errors, and insertion of ATS into a
trained model."""

import math

import pytest
import torch
import torch.nn.functional as F

from videotl.config import ConfigError, load_config
from videotl.models import build_model
from videotl.models.layers.attention import AttentionContext
from videotl.models.reducers import (
    TOKEN_REDUCERS,
    AdaptiveTokenSampler,
    InputReducer,
    QueryReducer,
    ReducerSpec,
    ReducingEncoderBlock,
    TokenPooling,
    build_token_reducer,
)
from videotl.models.reducers.ats import sample_tokens, significance
from videotl.models.reducers.token_pooling import weighted_kmeans, weighted_kmedoids

TOL = dict(atol=1e-5, rtol=1e-5)
# vivit_tiny*: width 32, 4 heads, 4 blocks, tubelets 2x8x8; a 4 x 32 x 32 clip has T' = 2
# temporal indices of a 4 x 4 grid (P = 16). vit_tiny*: one image, P = 16.
FRAMES, SIZE, P, DIM = 4, 32, 16, 32
REDUCED = ["vivit_tiny_tl4at2", "vivit_tiny_fe_tl4at2", "vit_tiny_tl4at2"]


def tiny(name, *overrides, classes=5):
    frames = FRAMES if name.startswith("vivit") else 1
    return build_model(load_config(None, [
        f"model.name={name}", f"model.num_classes={classes}", "model.dropout=0.0",
        f"data.num_frames={frames}", f"data.train_crop_size={SIZE}", *overrides,
    ]))


def clip(name, batch=3):
    frames = FRAMES if name.startswith("vivit") else 1
    return torch.randn(batch, 3, frames, SIZE, SIZE)


def block_lengths(model, x):
    """Sequence length seen by every encoder block of the (spatial) encoder, in call order."""
    seen = []
    hooks = [block.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
             for block in model.encoder.blocks]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return seen


def sharpen_attention(model, factor=20.0):
    """Scales every block's query and key weights: peaked attention, so that ATS keeps counts
    that vary from sample to sample."""
    for block in model.encoder.blocks:
        sharpen_attention_block(block, factor)
    return model


def sharpen_attention_block(block, factor=20.0):
    with torch.no_grad():
        block.attn.qkv.weight[:2 * DIM] *= factor
    return block


def record_selections(model):
    selections = []
    for reducer in model.encoder.reducers:
        reducer.register_forward_hook(lambda m, args, out: selections.append(out))
    return selections


# --- ATS ----------------------------------------------------------------------------------------


def reference_sample(scores, valid, num_samples, offsets):
    """Inverse transform sampling, one row at a time, over the real tokens only."""
    kept = torch.zeros_like(valid)
    for row in range(scores.shape[0]):
        real = valid[row].nonzero().flatten().tolist()
        if len(real) <= num_samples:
            kept[row, real] = True
            continue
        values = [float(scores[row, j]) for j in real]
        order = sorted(range(len(real)), key=lambda i: values[i])  # ascending, stable
        total, cdf = sum(values), []
        for i in order:
            cdf.append((cdf[-1] if cdf else 0.0) + values[i] / total)
        for k in range(num_samples):
            point = (k + float(offsets[row, k])) / num_samples
            position = next((i for i, c in enumerate(cdf) if c >= point), len(cdf) - 1)
            kept[row, real[order[position]]] = True
    return kept


def test_inverse_transform_sampling_equals_a_per_row_reference():
    scores = torch.rand(40, 12) ** 4  # skewed: some tokens are picked several times
    valid = torch.rand(40, 12) > 0.2
    kept = sample_tokens(scores, valid, num_samples=5)
    assert torch.equal(kept, reference_sample(scores, valid, 5, torch.full((40, 5), 0.5)))
    counts = kept.sum(1)
    assert (counts <= 5).all() and (counts < 5).any()  # duplicates merged: K' <= K
    assert not (kept & ~valid).any()
    torch.manual_seed(3)
    jittered = sample_tokens(scores, valid, 5, random=True)
    torch.manual_seed(3)
    offsets = torch.rand(40, 5)
    assert torch.equal(jittered, reference_sample(scores, valid, 5, offsets))


def test_rows_with_at_most_k_real_tokens_keep_them_all():
    scores = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    kept = sample_tokens(scores, valid, num_samples=3)
    assert kept[0].tolist() == [True, True, True, False]  # 3 real tokens, K = 3: all, even at 0
    assert kept[1].tolist() == [True, False, False, False]  # all points land on the 0.9 token


def test_significance_is_class_attention_times_value_norm_summed_over_heads():
    query, key, value = torch.randn(3, 2, 4, 1 + 2 * 5, 8).unbind(0)
    context = AttentionContext(query, key, value)
    expected = torch.zeros(2, 11)
    for head in range(4):
        logits = torch.einsum("bd,bnd->bn", query[:, head, 0], key[:, head]) / math.sqrt(8)
        expected += logits.softmax(dim=-1) * value[:, head].norm(dim=-1)
    torch.testing.assert_close(significance(context, 1, 2), expected[:, 1:].view(2, 2, 5), **TOL)


def test_ats_block_outputs_attention_rows_of_the_kept_tokens():
    block = sharpen_attention_block(ReducingEncoderBlock(dim=DIM, num_heads=4, mlp_dim=40).eval())
    sampler = AdaptiveTokenSampler(max_tokens=3).eval()
    x = torch.randn(4, 1 + 2 * 6, DIM)
    with torch.no_grad():
        out = block(x, queries=sampler, num_prefix=1, frames=2)
    index, mask = out.selection.index, out.selection.mask
    assert mask is not None and (index[:, 0] == 0).all() and mask[:, 0].all()
    for sample in range(4):
        rows = index[sample][mask[sample]]
        assert rows.tolist() == sorted(rows.tolist()) and len(rows) <= 1 + 2 * 3
        h = block.norm1(x[sample:sample + 1])
        q, k, v = (t.view(1, 13, 4, 8).transpose(1, 2) for t in block.attn.qkv(h).chunk(3, -1))
        attention = torch.softmax(q[:, :, rows] @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
        y = x[sample:sample + 1, rows] + block.attn.proj((attention @ v).transpose(1, 2).flatten(2))
        y = y + block.mlp(block.norm2(y))
        torch.testing.assert_close(out.tokens[sample:sample + 1][:, mask[sample]], y, **TOL)


@pytest.mark.parametrize("name", REDUCED)
def test_ats_with_k_at_least_n_keeps_every_token_and_changes_nothing(name):
    plain = tiny(name, "model.reducer_layers=[]").eval()
    ats = tiny(name, "model.token_reducer=ats", f"model.reducer_tokens=[{P}]",
               "model.reducer_layers=[1,2,3]").eval()
    ats.load_state_dict(plain.state_dict())  # ATS has no parameters
    x = clip(name)
    with torch.no_grad():
        torch.testing.assert_close(ats(x), plain(x))
    assert block_lengths(ats, x) == block_lengths(plain, x)


@pytest.mark.parametrize("name", REDUCED)
def test_padded_batch_equals_per_sample_processing(name):
    model = sharpen_attention(tiny(name, "model.token_reducer=ats", "model.reducer_tokens=[12, 5]",
                                   "model.reducer_layers=[1, 2]")).eval()
    selections = record_selections(model)
    x = clip(name, batch=6)
    with torch.no_grad():
        batched = model(x)
        counts = [selection.mask.sum(1) for selection in selections]
        per_sample = torch.cat([model(x[i:i + 1]) for i in range(6)])
    assert len(set(counts[0].tolist())) > 1 and len(set(counts[1].tolist())) > 1  # padding used
    torch.testing.assert_close(batched, per_sample, **TOL)


def test_ats_is_deterministic_in_evaluation_and_jittered_in_training():
    model = sharpen_attention(tiny("vit_tiny_tl4at2", "model.token_reducer=ats",
                                   "model.reducer_tokens=[6]"), factor=4.0)
    selections = record_selections(model)
    x = clip("vit_tiny_tl4at2", batch=8)
    model.eval()
    with torch.no_grad():
        model(x), model(x)
    assert torch.equal(selections[0].index, selections[1].index)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(x)
    trained = [s.index if s.mask is None else s.index * s.mask for s in selections[2:]]
    assert any(not torch.equal(trained[0], other) for other in trained[1:])


def test_ats_inserted_into_a_trained_model_keeps_the_informative_token():
    """A tiny ViT trained without reduction to name the colour of the one bright patch; ATS
    inserted afterwards (no retraining) keeps the accuracy with fewer tokens, and keeps the bright
    patch far more often than a blind choice of as many tokens would."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        model = tiny("vit_tiny_tl4at2", "model.reducer_layers=[]", classes=3)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for _ in range(150):
            images, labels, _ = bright_patch_images(32, generator)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        images, labels, patches = bright_patch_images(256, generator)
        ats = tiny("vit_tiny_tl4at2", "model.token_reducer=ats", "model.reducer_tokens=[4]",
                   "model.reducer_layers=[2]", classes=3)
        ats.load_state_dict(model.state_dict())  # strict: ATS adds no parameters
        selections = record_selections(ats.eval())
        with torch.no_grad():
            accuracy = (model.eval()(images).argmax(1) == labels).float().mean()
            ats_accuracy = (ats(images).argmax(1) == labels).float().mean()
    finally:
        torch.set_num_threads(threads)
    index, mask = selections[0].index, selections[0].mask
    real = torch.ones_like(index, dtype=torch.bool) if mask is None else mask
    kept_tokens = real.sum(1).float().mean() - 1  # without the class token
    found = ((index == 1 + patches[:, None]) & real).any(1).float().mean()
    assert accuracy > 0.95 and ats_accuracy >= accuracy - 0.02
    assert kept_tokens <= 4 and found > 2 * kept_tokens / 16


def bright_patch_images(batch, generator):
    """Noise images with one of the 16 8x8 patches bright in one colour channel (the label)."""
    x = 0.5 * torch.randn(batch, 3, 4, 8, 4, 8, generator=generator)
    patches = torch.randint(0, 16, (batch,), generator=generator)
    labels = torch.randint(0, 3, (batch,), generator=generator)
    x[torch.arange(batch), labels, patches // 4, :, patches % 4] += 2.0
    return x.reshape(batch, 3, 32, 32), labels, patches


# --- Token Pooling ------------------------------------------------------------------------------


def brute_force_kmeans(x, weights, k, iterations):
    centres = x[weights.topk(k).indices]
    for _ in range(iterations):
        assign = torch.tensor([min(range(k), key=lambda c: float((p - centres[c]).square().sum()))
                               for p in x])
        for c in range(k):
            members = assign == c
            if members.any():
                w = weights[members][:, None]
                centres[c] = (w * x[members]).sum(0) / w.sum()
    return centres


def brute_force_kmedoids(x, weights, k, iterations):
    medoids = weights.topk(k).indices.tolist()
    for _ in range(iterations):
        assign = [min(range(k), key=lambda c: float((p - x[medoids[c]]).square().sum())) for p in x]
        for c in range(k):
            members = [i for i, a in enumerate(assign) if a == c]
            if members:
                medoids[c] = min(members, key=lambda j: sum(
                    float(weights[i] * (x[i] - x[j]).square().sum()) for i in members))
    return x[medoids]


@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_weighted_clustering_equals_brute_force(iterations):
    x, weights = torch.randn(3, 20, 6), torch.rand(3, 20)
    kmeans = weighted_kmeans(x, weights, 5, iterations)
    kmedoids = weighted_kmedoids(x, weights, 5, iterations)
    for g in range(3):
        torch.testing.assert_close(kmeans[g], brute_force_kmeans(x[g], weights[g], 5, iterations),
                                   **TOL)
        assert torch.equal(kmedoids[g], brute_force_kmedoids(x[g], weights[g], 5, iterations))


@pytest.mark.parametrize("method", ["kmedoids", "kmeans"])
def test_token_pooling_with_k_equal_n_is_the_identity_up_to_order(method):
    tokens, weights = torch.randn(2, 3, 10, 8), torch.rand(2, 3, 10)
    pooling = TokenPooling(num_tokens=10, clustering_iterations=4, method=method)
    out = pooling(tokens, None, weights)
    order = weights.argsort(dim=-1, descending=True)
    expected = tokens.gather(2, order[..., None].expand(-1, -1, -1, 8))
    torch.testing.assert_close(out, expected, **TOL)


@pytest.mark.parametrize("method", ["kmedoids", "kmeans"])
def test_clustering_does_not_increase_the_weighted_reconstruction_error(method):
    tokens, weights = torch.randn(1, 4, 30, 8), torch.rand(1, 4, 30)

    def error(iterations):
        pooled = TokenPooling(6, iterations, method)(tokens, None, weights)
        distances = torch.cdist(tokens[0], pooled[0]).square().amin(-1)  # [T', P]
        return (weights[0] * distances).sum()

    errors = [error(i) for i in range(4)]
    assert all(a >= b - 1e-5 for a, b in zip(errors, errors[1:])) and errors[-1] < errors[0]


def test_token_pooling_gradients_reach_the_tokens():
    tokens = torch.randn(1, 2, 12, 8, requires_grad=True)
    weights = torch.rand(1, 2, 12)
    TokenPooling(4, 3, "kmeans")(tokens, None, weights).sum().backward()
    assert (tokens.grad.abs().sum(-1) > 0).all()  # every token is in a centre's weighted mean
    tokens.grad = None
    out = TokenPooling(4, 3, "kmedoids")(tokens, None, weights)
    out.sum().backward()
    moved = tokens.grad.abs().sum(-1) > 0  # exactly the medoids, copied to the output
    assert moved.sum(-1).tolist() == [[4, 4]]


# --- All reducers in the models -----------------------------------------------------------------


@pytest.mark.parametrize("kind", TOKEN_REDUCERS.names())
@pytest.mark.parametrize("name", REDUCED)
def test_each_reducer_leaves_the_configured_tokens(name, kind):
    model = tiny(name, f"model.token_reducer={kind}")  # 4 tokens at layer 2
    frames = 1 if name.startswith("vit_") or "_fe_" in name else 2
    lengths = block_lengths(model, clip(name))
    assert lengths[:2] == [1 + frames * P] * 2
    if kind == "ats":  # at most K = 4 per temporal index, at least one
        assert lengths[2] == 1 + frames * P and 1 + frames <= lengths[3] <= 1 + frames * 4
    else:
        assert lengths[2:] == [1 + frames * 4] * 2


@pytest.mark.parametrize("kind", ["grid_pool", "token_pooling", "tokenlearner_v11", "ats"])
def test_reducers_at_several_layers_with_their_own_counts(kind):
    model = tiny("vivit_tiny_tl4at2", f"model.token_reducer={kind}",
                 "model.reducer_layers=[1, 3]", "model.reducer_tokens=[9, 4]")
    lengths = block_lengths(model, clip("vivit_tiny"))
    if kind == "ats":
        assert lengths[:2] == [33, 33] and lengths[2] <= 19 and lengths[3] <= 19
    else:
        assert lengths == [33, 19, 19, 9]  # 16 -> 9 (3 x 3) -> 4 (2 x 2) per temporal index


@pytest.mark.parametrize("kind", TOKEN_REDUCERS.names())
@pytest.mark.parametrize("name", ["vivit_tiny_tl4at2", "vit_tiny_tl4at2"])
def test_gradients_reach_every_parameter_with_each_reducer(name, kind):
    model = tiny(name, f"model.token_reducer={kind}")
    model(clip(name)).square().mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name


def test_grid_pool_is_average_pooling_on_the_grid():
    reducer = build_token_reducer("grid_pool", ReducerSpec(dim=8, reducer_tokens=6))
    tokens = torch.randn(2, 3, 4 * 6, 8)  # a 4 x 6 grid -> 2 x 3 = 6 tokens: 2 x 2 pooling
    grid = tokens.view(2 * 3, 4, 6, 8).permute(0, 3, 1, 2)
    expected = F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2).reshape(2, 3, 6, 8)
    torch.testing.assert_close(reducer(tokens, (4, 6)), expected)
    assert reducer.output_grid((4, 6)) == (2, 3)
    with pytest.raises(ValueError, match=r"cannot lay out 6 tokens .* 4x4 grid; token counts "
                                         r"that fit: \[1, 4, 9, 16\]"):
        reducer.output_grid((4, 4))


def test_received_attention_is_the_column_sum_of_the_attention_weights():
    block = ReducingEncoderBlock(dim=DIM, num_heads=4, mlp_dim=40).eval()
    x = torch.randn(2, 9, DIM)
    out = block(x, received=True)
    torch.testing.assert_close(out.tokens, block(x), **TOL)
    q, k, _ = block.attn.project(block.norm1(x))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(out.received, weights.sum(dim=(1, 2)), **TOL)


def test_padded_keys_take_no_part_in_attention():
    block = ReducingEncoderBlock(dim=DIM, num_heads=4, mlp_dim=40).eval()
    x = torch.randn(2, 7, DIM)
    padded = torch.cat([x, torch.randn(2, 3, DIM)], dim=1)
    mask = torch.tensor([[True] * 7 + [False] * 3] * 2)
    torch.testing.assert_close(block(padded, mask)[:, :7], block(x), **TOL)


@pytest.mark.parametrize("overrides, message", [
    (["model.token_reducer=token_pooling", "model.reducer_layers=[0]"],
     "token_pooling weighs tokens by the attention they received in the block before it"),
    (["model.token_reducer=tokenlearner_v1", "model.reducer_layers=[1, 2]"],
     "tokenlearner_v1 at layer 2 needs the tokens on their grid"),
    (["model.token_reducer=ats", "model.classifier=gap"],
     "ats scores tokens by the class token's attention; use classifier 'token'"),
    (["model.reducer_layers=[2, 1]"],  # refused by load_config, before the model is built
     r"^config key 'model.reducer_layers' must hold integers, each >= 0, increasing, "
     r"got \[2, 1\]$"),
    (["model.reducer_layers=[4]"], r"reducer_layers must be in \[0, 4\)"),
    (["model.reducer_layers=[1, 2]", "model.reducer_tokens=[4, 4, 4]"],
     "must be one value or one per reducer layer"),
    (["model.token_reducer=grid_pool", "model.reducer_tokens=[8]"],
     "grid_pool cannot lay out 8 tokens"),
])
def test_placements_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny("vivit_tiny_tl4at2", *overrides)(clip("vivit_tiny"))


def test_fuser_takes_only_reducers_that_need_the_grid_alone():
    assert tiny("vivit_tiny_tl4at2_fuser", "model.token_reducer=grid_pool")(
        clip("vivit_tiny")).shape == (3, 5)
    for kind in ("ats", "token_pooling"):
        with pytest.raises(ValueError, match=f"token_fuser needs a token_reducer .* not {kind}"):
            tiny("vivit_tiny_tl4at2_fuser", f"model.token_reducer={kind}")


def test_reducer_keys_do_not_apply_to_models_without_reducers():
    with pytest.raises(ConfigError, match=r"model.reducer_layers=\[1\] does not apply to model "
                                          r"'vivit_tiny'"):
        tiny("vivit_tiny", "model.reducer_layers=[1]")
    with pytest.raises(ConfigError, match="model.clustering_iterations' must be >= 0"):
        tiny("vivit_tiny_tl4at2", "model.clustering_iterations=-1")


def test_each_reducer_is_of_one_of_the_two_kinds():
    for kind in TOKEN_REDUCERS.names():
        reducer = build_token_reducer(kind, ReducerSpec(dim=DIM, reducer_tokens=4))
        assert isinstance(reducer, InputReducer) != isinstance(reducer, QueryReducer), kind
        assert isinstance(reducer, QueryReducer) == (kind == "ats"), kind
        assert reducer.kind == kind


def test_reducer_spec_fields_are_named_like_their_config_keys():
    spec = ReducerSpec(dim=DIM, reducer_tokens=4, clustering_iterations=2)
    config = load_config(None, ["model.reducer_tokens=[4]", "model.clustering_iterations=2"])
    assert [spec.reducer_tokens] == config.model.reducer_tokens
    assert spec.clustering_iterations == config.model.clustering_iterations
    pooling = build_token_reducer("token_pooling", spec)
    assert (pooling.num_tokens, pooling.clustering_iterations) == (4, 2)


@pytest.mark.parametrize("old, message", [
    ("tokenlearner", "model.token_reducer: unknown token reducer 'tokenlearner'; did you mean "
                     "'tokenlearner_v1', 'tokenlearner_v11', 'token_pooling_kmeans'? (known: ats, "
                     "grid_pool, token_pooling, token_pooling_kmeans, tokenlearner_v1, "
                     "tokenlearner_v11)"),
    ("spatial_pool", "model.token_reducer: unknown token reducer 'spatial_pool'; did you mean "
                     "'grid_pool'? (known: ats, grid_pool, token_pooling, token_pooling_kmeans, "
                     "tokenlearner_v1, tokenlearner_v11)"),
])
def test_old_reducer_names_are_refused_with_the_new_name(old, message):
    with pytest.raises(ConfigError) as error:
        tiny("vivit_tiny_tl4at2", f"model.token_reducer={old}")
    assert str(error.value) == message


@pytest.mark.parametrize("overrides, message", [
    (["model.reducer_layers=[2, 1]"],  # refused when the config loads, before any build
     "config key 'model.reducer_layers' must hold integers, each >= 0, increasing, got [2, 1]"),
    (["model.reducer_layers=[1, 2]", "model.reducer_tokens=[4, 4, 4]"],
     "model.reducer_layers, model.reducer_tokens: reducer_tokens [4, 4, 4] must be one value or "
     "one per reducer layer (reducer_layers [1, 2])"),
    (["model.token_reducer=ats", "model.classifier=gap"],
     "model.classifier: ats scores tokens by the class token's attention; use classifier "
     "'token', not 'gap'"),
    (["data.train_crop_size=4"],
     "data.train_crop_size: train_crop_size 4 is smaller than the patch size 8"),
])
def test_build_errors_name_the_config_keys_of_the_arguments(overrides, message):
    with pytest.raises(ConfigError) as error:
        tiny("vivit_tiny_tl4at2", *overrides)
    assert str(error.value) == message
