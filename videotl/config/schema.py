"""Typed experiment configuration: one dataclass per component, composed in ``ExperimentConfig``.

YAML files and ``key=value`` overrides are validated against these classes: an unknown key, a
value of the wrong type, or one outside a field's ``metadata`` bounds (``min``, ``max``,
``choices``) is an error naming the key. Keys are lowercase and dotted (``model.name``,
``data.num_frames``, ``output_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional


def _field(default: Any, **bounds: Any) -> Any:
    """A dataclass field with validation bounds in its metadata."""
    return field(default=default, metadata=bounds)


@dataclass
class ModelConfig:
    """Which network to build and its hyper-parameters (see ``videotl.models.list_models()``)."""

    name: str = "x2plus1d_m"
    num_classes: int = _field(400, min=1)
    # X(2+1)D: the space-time module of the res5 blocks (see videotl.models.space_time).
    space_time_module: str = "conv2d+conv1d"
    # TokenLearner: tokens learned per frame.
    num_tokens: int = _field(8, min=1)
    dropout: float = _field(0.5, min=0.0, max=1.0)


@dataclass
class DataConfig:
    """Input clips and the dataset they come from (see docs/DATASETS.md)."""

    num_frames: int = _field(16, min=1)
    train_crop_size: int = _field(224, min=1)
    test_crop_size: int = _field(256, min=1)
    # Dataset (videotl.data.DATASETS): "kinetics", "charades" or "avid", read under `root`.
    dataset: str = "kinetics"
    root: str = "data/kinetics400"
    # Folder of the videos, relative to `root` ("" = `root` itself).
    video_dir: str = ""
    # Class-name list, relative to `root` ("" = the dataset's own default file name).
    class_names_file: str = ""
    # Clip sampling: `sampling_fps` frames per second when set, otherwise every
    # `frame_stride`-th native frame.
    sampling_fps: Optional[float] = _field(None, min=0.01)
    frame_stride: int = _field(4, min=1)
    # Training augmentation: short side drawn in [min, max], random crop, horizontal flip.
    train_jitter_scales: List[int] = field(default_factory=lambda: [256, 320])
    random_flip: bool = True
    # Normalisation of [0, 1] pixel values, per RGB channel.
    mean: List[float] = field(default_factory=lambda: [0.45, 0.45, 0.45])
    std: List[float] = field(default_factory=lambda: [0.225, 0.225, 0.225])
    # Decoding: backend, its threads per loader process, and resizing inside the decoder.
    decoder: str = _field("decord", choices=("decord", "pyav"))
    decoder_threads: int = _field(1, min=0)
    resize_at_decode: bool = True
    # DataLoader processes (0 = load in the main process) and pinned host memory.
    num_workers: int = _field(4, min=0)
    pin_memory: bool = True
    # Robustness: a file listing videos to skip (one per line, relative to `root`); the
    # fraction of training videos that may fail before training stops; retries per item.
    exclude_file: str = ""
    max_failure_fraction: float = _field(0.01, min=0.0, max=1.0)
    clip_retries: int = _field(2, min=0)
    video_retries: int = _field(10, min=0)
    # Synthetic data (videotl.data.synthetic): generated into `root` when its annotation
    # files are missing. Sizes default to the kind's demo size when null.
    synthetic: bool = False
    synthetic_train_videos: Optional[int] = _field(None, min=1)
    synthetic_eval_videos: Optional[int] = _field(None, min=1)
    synthetic_short_side: int = _field(128, min=16)
    synthetic_seed: int = _field(0, min=0)


@dataclass
class TrainConfig:
    """Training schedule and batches (``batch_size`` is per process)."""

    batch_size: int = _field(8, min=1)


@dataclass
class TestConfig:
    """Multi-view testing: ``num_temporal_views`` clips x ``num_spatial_crops`` crops per video."""

    num_temporal_views: int = _field(4, min=1)
    num_spatial_crops: int = _field(3, choices=(1, 3))
    batch_size: int = _field(8, min=1)


@dataclass
class ExperimentConfig:
    """The whole experiment; ``load_config`` returns one of these."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output_dir: str = "output"
    seed: int = _field(0, min=0)
