"""Multiply-adds of ViT-B/16 and ViViT-B/16 with each token reducer equal a straightforward
analytic count (ATS for a given kept count), and ``model_stats.py --tokens`` / ``--ats-kept``."""

import json
import runpy
import sys

import pytest

from videotl.config import load_config
from videotl.experiments.reducer_sweep import count_model

C, MLP, P = 768, 3072, 196  # B/16 at 224^2: a 14 x 14 grid per temporal index
MODELS = {  # name: (frames, T', tubelet frames, classes)
    "vit_b16_tl8at6": (1, 1, 1, 1000),
    "vivit_b16_tl8at6": (32, 16, 2, 400),
}


def block(tokens):
    """q, k, v and output projections, Q K^T and A V, and the MLP."""
    return 4 * tokens * C * C + 2 * tokens * tokens * C + 2 * tokens * C * MLP


def embedding_and_head(name):
    _, temporal, tubelet, classes = MODELS[name]
    return temporal * P * 3 * tubelet * 16 * 16 * C + C * classes


def ats_block(full, kept):
    """ATS in a block: q, k, v of every token, the class token's attention row (scores), then
    attention, projection and MLP for the kept tokens only."""
    return 3 * full * C * C + full * C + 2 * kept * full * C + kept * C * C + 2 * kept * C * MLP


def analytic(name, reducer, tokens, kept=None, iterations=5):
    """Six blocks on all tokens, the reducer, six blocks on the reduced tokens (class token
    included); Token Pooling's block 5 computes its attention weights explicitly (same count)."""
    temporal = MODELS[name][1]
    full, reduced = 1 + temporal * P, 1 + temporal * tokens
    if reducer == "ats":
        kept_all = 1 + temporal * (tokens if kept is None else kept)
        macs = 6 * block(full) + ats_block(full, kept_all) + 5 * block(kept_all)
    else:
        clustering = {
            "token_pooling": P * P * C + iterations * P * P * tokens,  # distances; medoid costs
            "token_pooling_kmeans": iterations * 2 * P * tokens * C,  # distances; means
            "grid_pool": 0,  # averages are not multiply-adds
        }[reducer]
        macs = 6 * block(full) + temporal * clustering + 6 * block(reduced)
    return macs + embedding_and_head(name)


def config(name, *overrides):
    frames, _, _, classes = MODELS[name]
    return load_config(None, [
        f"model.name={name}", f"data.num_frames={frames}", f"model.num_classes={classes}",
        "data.train_crop_size=224", "data.test_crop_size=224", *overrides,
    ])


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("reducer, tokens, kept", [
    ("ats", 16, None), ("ats", 16, 5), ("ats", 49, 30), ("token_pooling", 16, None),
    ("token_pooling_kmeans", 8, None), ("grid_pool", 49, None),
])
def test_counts_equal_the_analytic_formula(name, reducer, tokens, kept):
    cfg = config(name, f"model.token_reducer={reducer}", f"model.reducer_tokens=[{tokens}]")
    expected = analytic(name, reducer, tokens, kept)
    assert count_model(cfg, kept).gmacs * 1e9 == pytest.approx(expected, rel=1e-12)


def test_clustering_iterations_are_counted():
    cfg = config("vit_b16_tl8at6", "model.token_reducer=token_pooling",
                 "model.clustering_iterations=2")
    expected = analytic("vit_b16_tl8at6", "token_pooling", 8, iterations=2)
    assert count_model(cfg).gmacs * 1e9 == pytest.approx(expected, rel=1e-12)


def run_tool(capsys, monkeypatch, repo, *args):
    """Runs tools/model_stats.py in this process: ``(exit status, stdout, stderr)``."""
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", ["model_stats.py", *args])
    status = 0
    try:
        runpy.run_path("tools/model_stats.py", run_name="__main__")
    except SystemExit as error:
        status = error.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_gflops_vs_tokens_for_each_reducer(capsys, monkeypatch, repo):
    status, out, err = run_tool(capsys, monkeypatch, repo, "--config",
                                "configs/imagenet/tl_b16_384.yaml", "--tokens", "4,8,576",
                                "--reducers", "ats,grid_pool", "--json")
    assert status == 0, err
    sweep = json.loads(out)
    assert sweep["input"] == [3, 1, 384, 384] and sweep["reducer_layers"] == [6]
    full = 1 + 24 * 24  # ViT-B/16 at 384^2
    baseline = 12 * block(full) + 576 * 3 * 256 * C + C * 1000
    assert sweep["baseline_gflops"] == pytest.approx(2 * baseline / 1e9, rel=1e-12)
    ats, pool = sweep["gflops"]["ats"], sweep["gflops"]["grid_pool"]
    assert ats[0] < ats[1] < ats[2] and ats[2] == pytest.approx(sweep["baseline_gflops"])
    assert pool[1] is None and "grid_pool cannot lay out 8 tokens" in sweep["errors"][
        "grid_pool"][0]
    assert pool[2] == pytest.approx(sweep["baseline_gflops"])  # 576 tokens: no pooling
    status, table, _ = run_tool(capsys, monkeypatch, repo, "--config",
                                "configs/imagenet/tl_b16_384.yaml", "--tokens", "4,8",
                                "--reducers", "ats", "--ats-kept", "3")
    assert status == 0 and "counted with min(3, K) kept tokens per temporal index" in table


def test_ats_counts_say_which_kept_count_they_assume(capsys, monkeypatch, repo):
    args = ("--config", "configs/imagenet/tl_b16_384.yaml", "model.token_reducer=ats",
            "model.reducer_layers=[4, 8]")
    status, out, err = run_tool(capsys, monkeypatch, repo, *args, "--ats-kept", "5", "--json")
    assert status == 0, err
    assert json.loads(out)["ats_kept_tokens"] == [5, 5]
    _, table, _ = run_tool(capsys, monkeypatch, repo, *args)
    assert "counted with [8, 8] kept tokens per temporal index" in table
    status, _, err = run_tool(capsys, monkeypatch, repo, *args, "--ats-kept", "0")
    assert status == 2 and "--ats-kept must be >= 1" in err
    status, _, err = run_tool(capsys, monkeypatch, repo, "--config",
                              "configs/imagenet/vit_b16_384.yaml", "--tokens", "4")
    assert status == 2 and "has no token reducer to sweep" in err


ATS_SUPPLEMENT = {108: 3.0, 78: 2.5, 48: 2.0}  # single-stage DeiT-S + ATS: K -> average GFLOPs


@pytest.mark.parametrize("tokens", sorted(ATS_SUPPLEMENT))
def test_ats_in_deit_s_matches_the_supplement(tokens):
    """DeiT-S (ViT-S/16 at 224^2) has 22.05M parameters and 4.6 GFLOPs (multiply-adds; ATS
    supplement Table 1); with ATS at stage 3 keeping K tokens, 3, 2.5 and 2 GFLOPs on average
    (§5.1). Those averages are over the kept counts K' <= K seen on ImageNet, so counting with
    K' = K gives at most a few percent more."""
    common = ["model.num_classes=1000", "data.num_frames=1", "data.train_crop_size=224",
              "data.test_crop_size=224"]
    deit = count_model(load_config(None, ["model.name=vit_s16", *common]))
    assert deit.params == pytest.approx(22.05e6, rel=1e-3)
    assert deit.gmacs == pytest.approx(4.6, rel=0.01)
    ats = count_model(load_config(None, [
        "model.name=vit_s16_tl8at6", "model.token_reducer=ats", "model.reducer_layers=[3]",
        f"model.reducer_tokens=[{tokens}]", *common]))
    assert ats.params == deit.params  # parameter-free
    assert ATS_SUPPLEMENT[tokens] <= ats.gmacs <= 1.035 * ATS_SUPPLEMENT[tokens]
