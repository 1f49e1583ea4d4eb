"""The papers' figures for ViViT / ViT with TokenLearner, from the shipped configs, counted on the
meta device: multiply-adds (the papers' "GFLOPs" in ViViT Tables 2 and 5 and TokenLearner Tables 1
and 7), parameters, and our counts equal to a straightforward analytic formula."""

import functools
import json
import subprocess
import sys

import pytest

from videotl.config import load_config
from videotl.models import build_model
from videotl.models.complexity import measure_complexity

K400 = "configs/kinetics400/"
IMAGENET = "configs/imagenet/"
PAPER_GMACS = {
    K400 + "vivit_b16.yaml": 455.2,  # ViViT Table 2
    K400 + "vivit_l16.yaml": 1446,  # ViViT Table 5, TokenLearner Table 7
    K400 + "vivit_l16_tl16at12.yaml": 766,  # Table 7
    K400 + "vivit_l16_tl8at18.yaml": 1105,  # Table 7
    IMAGENET + "vit_b16_384.yaml": 55.6,  # Table 1
    IMAGENET + "tl_b16_384.yaml": 28.7,
    IMAGENET + "vit_s32_384.yaml": 3.4,
    IMAGENET + "tl_s32_384.yaml": 1.9,
}
PAPER_PARAMS = {
    K400 + "vivit_b16.yaml": 88.9e6,  # ViViT Table 2
    K400 + "vivit_l16.yaml": 308e6,  # Table 7
    K400 + "vivit_l16_tl16at12.yaml": 308e6,
    K400 + "vivit_l16_tl8at18.yaml": 383e6,
}


@functools.lru_cache(maxsize=None)
def stats(path):
    cfg = load_config(path)
    size = cfg.data.test_crop_size
    return measure_complexity(lambda: build_model(cfg), [3, cfg.data.num_frames, size, size])


@pytest.mark.parametrize("path", sorted(PAPER_GMACS))
def test_multiply_adds_match_the_paper_within_3_percent(path):
    assert stats(path).gmacs == pytest.approx(PAPER_GMACS[path], rel=0.03)


@pytest.mark.parametrize("path", sorted(PAPER_PARAMS))
def test_parameters_match_the_paper_within_1_percent(path):
    assert stats(path).params == pytest.approx(PAPER_PARAMS[path], rel=0.01)


@pytest.mark.parametrize("model", ["vivit_l16_tl16at12", "vivit_l16_tl8at18"])
def test_token_learner_saving_matches_table_7_within_3_percent(model):
    ratio = stats(K400 + f"{model}.yaml").gmacs / stats(K400 + "vivit_l16.yaml").gmacs
    paper = PAPER_GMACS[K400 + f"{model}.yaml"] / PAPER_GMACS[K400 + "vivit_l16.yaml"]
    assert ratio == pytest.approx(paper, rel=0.03)  # 0.53 and 0.76


def block_macs(tokens, dim, mlp_dim):
    """q, k, v and output projections, Q K^T and A V, and the two MLP layers."""
    return 4 * tokens * dim * dim + 2 * tokens * tokens * dim + 2 * tokens * dim * mlp_dim


def analytic_macs(dim, depth, mlp_dim, patch, tubelet, frames, size, classes, tl=None):
    """Tubelet embedding, blocks (class token included), TokenLearner v1.1 ``(S, layer)`` (MLP
    of hidden width 64 on every token, weighted sum), classifier."""
    temporal, positions = frames // tubelet, (size // patch) ** 2
    macs = temporal * positions * 3 * tubelet * patch * patch * dim + dim * classes
    tokens, layer = tl or (0, depth)
    macs += layer * block_macs(1 + temporal * positions, dim, mlp_dim)
    if tl is not None:
        macs += (depth - layer) * block_macs(1 + temporal * tokens, dim, mlp_dim)
        macs += temporal * positions * (dim * 64 + 64 * tokens + tokens * dim)
    return macs


B, L, S = (768, 12, 3072), (1024, 24, 4096), (384, 12, 1536)
ANALYTIC = {
    K400 + "vivit_b16.yaml": analytic_macs(*B, 16, 2, 32, 224, 400),
    K400 + "vivit_l16.yaml": analytic_macs(*L, 16, 2, 32, 224, 400),
    K400 + "vivit_l16_tl16at12.yaml": analytic_macs(*L, 16, 2, 32, 224, 400, tl=(16, 12)),
    K400 + "vivit_l16_tl8at18.yaml": analytic_macs(1024, 30, 4096, 16, 2, 32, 224, 400, (8, 18)),
    IMAGENET + "vit_b16_384.yaml": analytic_macs(*B, 16, 1, 1, 384, 1000),
    IMAGENET + "tl_b16_384.yaml": analytic_macs(*B, 16, 1, 1, 384, 1000, tl=(8, 6)),
    IMAGENET + "vit_s32_384.yaml": analytic_macs(*S, 32, 1, 1, 384, 1000),
    IMAGENET + "tl_s32_384.yaml": analytic_macs(*S, 32, 1, 1, 384, 1000, tl=(8, 6)),
}


@pytest.mark.parametrize("path", sorted(ANALYTIC))
def test_multiply_adds_equal_the_analytic_count(path):
    assert stats(path).gmacs * 1e9 == pytest.approx(ANALYTIC[path], rel=1e-12)


def test_model_stats_reports_blocks_and_token_learner_in_order(repo):
    result = subprocess.run(
        [sys.executable, "tools/model_stats.py", "--config", K400 + "vivit_l16_tl16at12.yaml",
         "--json"], cwd=repo, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["input"] == [3, 32, 224, 224]
    modules = out["modules"]
    assert [m["kind"] for m in modules] == ["encoder block"] * 12 + ["tokenlearner_v11"] + [
        "encoder block"] * 12
    assert modules[12]["name"] == "encoder.reducers.0" and modules[12]["input"] == [16, 196, 1024]
    assert [m["input"] for m in modules[:12]] == [[3137, 1024]] * 12
    assert [m["input"] for m in modules[13:]] == [[257, 1024]] * 12
    embedding_and_head = (16 * 196 * 1536 * 1024 + 1024 * 400) / 1e9
    assert sum(m["gmacs"] for m in modules) + embedding_and_head == pytest.approx(out["gmacs"])
    for module in modules:
        assert module["gflops"] == pytest.approx(2 * module["gmacs"])
