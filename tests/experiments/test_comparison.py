"""tools/run_ablation.py: every variant trained with the same budget, one table."""

import csv
import subprocess
import sys

import pytest

from videotl.experiments.ablation import run_variants, variant_directory, write_tables
from videotl.experiments.ablation_variants import ABLATION_VARIANTS

TINY = ["data.num_workers=0", "data.num_frames=4", "data.sampling_fps=1.0",
        "data.train_jitter_scales=[32, 36]", "data.train_crop_size=32", "data.test_crop_size=32",
        "train.batch_size=2", "test.batch_size=8", "train.epochs=1", "train.eval_period=0",
        "test.num_temporal_views=2"]


def test_variants_train_with_the_same_budget_and_fill_one_table(synthetic_charades, tmp_path,
                                                                repo, monkeypatch):
    monkeypatch.chdir(repo)
    names = ["conv2d+conv1d", "fixed_grid_tokens"]
    variants = [(name, ABLATION_VARIANTS.get(name).overrides) for name in names]
    results = run_variants("configs/charades/synthetic_ablation.yaml", variants,
                           [f"data.root={synthetic_charades}", "data.synthetic=false", *TINY],
                           tmp_path / "runs")
    assert [r.name for r in results] == names
    assert all(r.metric[0] == "map" and 0.0 <= r.metric[1] <= 1.0 for r in results)
    assert results[0].params != results[1].params and all(r.gflops > 0 for r in results)
    assert all(r.train_clips_per_second > 0 for r in results)
    for result in results:
        assert (tmp_path / "runs" / variant_directory(result.name) / "test_metrics.json").exists()
    write_tables(results, tmp_path / "t.md", tmp_path / "t.csv", heading="# Results")
    table = (tmp_path / "t.md").read_text()
    assert table.startswith("# Results") and "| `conv2d+conv1d` |" in table
    assert "model.tokenizer=fixed_grid" in table and "map (%)" in table
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [row["variant"] for row in rows] == names
    assert float(rows[1]["map"]) == pytest.approx(results[1].metric[1])


def test_unknown_variant_is_refused_before_training(repo, tmp_path):
    result = subprocess.run(
        [sys.executable, "tools/run_ablation.py", "--config",
         "configs/charades/synthetic_ablation.yaml", "--variants", "conv2d+conv1d,fixed_grid_token",
         "--out", str(tmp_path)], capture_output=True, text=True, cwd=repo)
    assert result.returncode == 2
    assert "unknown ablation variant 'fixed_grid_token'" in result.stderr
    assert "fixed_grid_tokens" in result.stderr and not any(tmp_path.iterdir())
