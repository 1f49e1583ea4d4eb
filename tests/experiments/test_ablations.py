"""The paper's ablations as config variants: each builds what it names, and docs/ABLATIONS.md shows
the figures tools/model_stats.py reports for it."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

from videotl.config import ConfigError, load_config, registered_choices
from videotl.config.schema import ExperimentConfig
from videotl.experiments.ablation_variants import ABLATION_VARIANTS
from videotl.models import build_model
from videotl.models.layers import (
    TOKEN_FUSIONS,
    TOKEN_TRANSFORMERS,
    TOKENIZERS,
    TokenLearnerModule,
)
from videotl.models.space_time import SPACE_TIME_MODULES

VARIANTS = ABLATION_VARIANTS.names()


def doc_rows(text):
    """``{variant: [{column header: cell}, ...]}``: the rows that start with a variant in the
    tables of module figures (those with a ``params (ours)`` column; not the training results)."""
    rows = {}
    header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif ("params (ours)" in header and cells[0].startswith("`")
              and cells[0].strip("`") in ABLATION_VARIANTS):
            rows.setdefault(cells[0].strip("`"), []).append(dict(zip(header, cells)))
    return rows


@pytest.fixture(scope="module")
def documented():
    return doc_rows((REPO / "docs" / "ABLATIONS.md").read_text())


def tiny(variant, *more):
    return load_config(None, [*ABLATION_VARIANTS.get(variant).overrides, "model.name=x2plus1d_tiny",
                              "data.num_frames=4", "model.num_classes=3", *more])


@pytest.mark.parametrize("name", VARIANTS)
def test_documented_figures_are_what_the_tool_reports(name, documented, res5_module):
    variant = ABLATION_VARIANTS.get(name)
    module = res5_module(*variant.overrides)
    paper = {
        "params (paper)": f"{variant.paper_params_m:.2f}M" if variant.paper_params_m else "-",
        "GFLOPs (paper)": str(variant.paper_gflops or "-"),
        "Charades 6 fps mAP (paper)": str(variant.paper_charades_6fps or "-"),
    }
    assert documented.get(name), f"docs/ABLATIONS.md has no row for {name}"
    for row in documented[name]:
        assert row["params (ours)"] == f"{module.params / 1e6:.3f}M"
        assert row["GFLOPs (ours)"] == f"{module.gflops:.2f}"
        assert {key: row[key] for key in paper if key in row} == {
            key: value for key, value in paper.items() if key in row
        }


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_builds_what_it_names(name):
    cfg = tiny(name)
    model = build_model(cfg)
    res5 = [block.space_time for block in model.stages[-1]]
    assert {module.kind for module in res5} == {cfg.model.space_time_module}
    for token_learner in (m for block in res5 for m in block.modules()
                          if isinstance(m, TokenLearnerModule)):
        assert token_learner.tokenizer == cfg.model.tokenizer
    keys = dict(item.split("=", 1) for item in ABLATION_VARIANTS.get(name).overrides)
    assert keys["model.space_time_module"] in SPACE_TIME_MODULES


def test_config_choices_are_the_modules_choices():
    choices = registered_choices()
    assert choices["model.tokenizer"] == TOKENIZERS
    assert choices["model.token_transformer"] == TOKEN_TRANSFORMERS
    assert choices["model.token_fusion"] == TOKEN_FUSIONS
    defaults = ExperimentConfig().model
    assert (defaults.tokenizer, defaults.token_transformer, defaults.token_fusion) == (
        "tokenlearner", "vector", "tokenfuser"
    )


def test_token_learner_keys_need_a_module_with_a_token_learner():
    cfg = load_config(None, ["model.space_time_module=conv2d+temporal_transformer",
                             "model.tokenizer=fixed_grid", "model.token_fusion=broadcast"])
    with pytest.raises(ConfigError, match=(
        r"model.tokenizer='fixed_grid', model.token_fusion='broadcast' configures the "
        r"TokenLearner module, but model 'x2plus1d_m' with "
        r"model.space_time_module='conv2d\+temporal_transformer' has none"
    )):
        build_model(cfg)


def test_bad_token_learner_values_name_the_key():
    with pytest.raises(ConfigError, match=r"'model.tokenizer' must be one of .*'fixed_grid'"):
        load_config(None, ["model.tokenizer=grid"])
    with pytest.raises(ConfigError, match=r"'model.token_fusion' must be one of"):
        load_config(None, ["model.token_fusion=fuser"])


def test_unknown_variant_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean 'fixed_grid_tokens'"):
        ABLATION_VARIANTS.get("fixed_grid")


def test_model_stats_variant_option(repo):
    command = [sys.executable, "tools/model_stats.py", "--config",
               "configs/charades/x2plus1d_m_tokenlearner_64f.yaml"]
    result = subprocess.run([*command, "--variant", "fixed_grid_tokens", "data.num_frames=8",
                             "--json"], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["input"] == [3, 8, 256, 256]  # the trailing override applies too
    cfg = load_config(repo / "configs/charades/x2plus1d_m_tokenlearner_64f.yaml",
                      ["model.tokenizer=fixed_grid", "data.num_frames=8"])
    assert stats["params"] == sum(p.numel() for p in build_model(cfg).parameters())
    result = subprocess.run([*command, "--variant", "fixed_grid"], cwd=repo, capture_output=True,
                            text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--variant: unknown ablation variant 'fixed_grid'" in result.stderr
