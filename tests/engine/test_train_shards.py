"""Training and testing from tar shards (data.format=shards) through the engine: an interrupted
run resumes to the same weights, and a checkpoint scores the same from shards as from files."""

from pathlib import Path

import numpy as np
import pytest
import torch

from videotl.config import load_config
from videotl.engine.hooks import HookBase
from videotl.engine.log_hooks import read_metrics
from videotl.engine.run import evaluate_checkpoint, train
from videotl.prep.shards import make_shards
from videotl.utils import checkpoint as ckpt

from data_helpers import tiny_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_repo(repo, monkeypatch):
    monkeypatch.chdir(repo)


@pytest.fixture(scope="module")
def shards(synthetic_kinetics, tmp_path_factory):
    """The overrides reading the tiny synthetic Kinetics set from shards of 3 videos."""
    out = tmp_path_factory.mktemp("engine_shards")
    cfg = load_config(REPO / "configs/demo/synthetic_kinetics.yaml",
                      [f"data.root={synthetic_kinetics}", "data.synthetic=false"])
    assert make_shards(cfg, out, max_bytes=None, max_videos=3, jobs=1, progress=False).failed == 0
    return ["data.format=shards", f"data.shard_dir={out}", "data.shuffle_buffer=4"]


def test_an_interrupted_run_from_shards_resumes_to_the_same_weights(
        synthetic_kinetics, shards, tmp_path):
    class Interrupt(HookBase):
        def after_step(self):
            if self.trainer.iteration + 1 == 4:  # second step of epoch 2, after checkpoint 1
                raise KeyboardInterrupt

    # Loader processes read the shards: the run must not depend on their random state.
    run = ["data.num_workers=1", "train.epochs=2", "train.batch_size=10", "train.eval_period=0",
           "train.final_test=false", *shards]
    train(tiny_run(synthetic_kinetics, tmp_path / "full", *run))
    steps, _ = read_metrics(tmp_path / "full" / "metrics.jsonl")
    assert len(steps) == 2 * 2  # 20 videos / 10 per batch, each epoch
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_run(synthetic_kinetics, cut, *run), extra_hooks=[Interrupt()])
    torch.manual_seed(1234)  # another process would not share this one's random state
    train(tiny_run(synthetic_kinetics, cut, *run))
    a = ckpt.load_checkpoint(tmp_path / "full" / "checkpoints" / "epoch_0002.pth")["model"]
    b = ckpt.load_checkpoint(cut / "checkpoints" / "epoch_0002.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    cut_steps, _ = read_metrics(cut / "metrics.jsonl")
    assert [r["loss"] for r in cut_steps] == [r["loss"] for r in steps]


def test_a_checkpoint_scores_the_same_from_shards_as_from_files(synthetic_kinetics, shards,
                                                                tmp_path):
    cfg = tiny_run(synthetic_kinetics, tmp_path / "run", "train.max_iters=1", "train.eval_period=0",
                   "train.final_test=false", *shards)
    train(cfg)
    weights = ckpt.last_checkpoint(tmp_path / "run")
    one_view = "test.num_temporal_views=1"
    from_files = evaluate_checkpoint(tiny_run(synthetic_kinetics, tmp_path / "files", one_view),
                                     weights)
    from_shards = evaluate_checkpoint(tiny_run(synthetic_kinetics, tmp_path / "shards", one_view,
                                               "data.num_workers=2", *shards), weights)
    assert from_shards == from_files and from_files["num_videos"] == 10
    a, b = (np.load(tmp_path / name / "test_scores.npz") for name in ("files", "shards"))
    assert list(a["video_ids"]) == list(b["video_ids"])
    # The clips are bit-identical (tests/data/test_shards.py); batches of other views around
    # them (two loader processes here) change the last bits of a convolution's sums.
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(a["views"], b["views"])
