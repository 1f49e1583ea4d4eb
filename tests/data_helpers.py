"""Configs for the tiny synthetic datasets of conftest.py."""

from __future__ import annotations

from pathlib import Path

from videotl.config import load_config
from videotl.data import dataset_spec


def small_data_config(kind: str, root: Path, *overrides: str):
    """A config reading the tiny synthetic ``kind`` set at ``root`` (videos in the release's
    folder, as ``make_synthetic_dataset`` writes them): 4-frame clips, 32 px."""
    video_dir = dataset_spec(kind).video_dir
    return load_config(None, [
        f"data.dataset={kind}", f"data.root={root}", f"data.video_dir={video_dir}",
        "data.num_frames=4", "data.frame_stride=2", "data.train_crop_size=32",
        "data.test_crop_size=32", "data.train_jitter_scales=[32,40]", "data.num_workers=0",
        "test.num_temporal_views=2", "test.num_spatial_crops=3", *overrides,
    ])


def tiny_run(root, output, *overrides: str):
    """The demo's config shrunk for engine tests on the tiny synthetic Kinetics set at ``root``:
    4-frame 32 px clips, 3 epochs, validation at epoch 2, contiguous (not channels-last)
    weights, writing to ``output``."""
    return load_config("configs/demo/synthetic_kinetics.yaml", [
        f"data.root={root}", "data.synthetic=false", f"output_dir={output}",
        "data.num_workers=0",
        "data.num_frames=4", "data.frame_stride=8", "data.train_jitter_scales=[32, 40]",
        "data.train_crop_size=32", "data.test_crop_size=32", "train.batch_size=5",
        "test.batch_size=7", "train.epochs=3", "train.eval_period=2", "train.log_period=1",
        "solver.base_lr=0.003", "test.num_temporal_views=2", "train.channels_last=false",
        *overrides,
    ])
