"""Video data: readers, clip sampling, transforms, datasets, loaders and synthetic datasets.

``build_dataset(cfg, split)`` and ``build_loader(cfg, split)`` are the entry points; see
docs/DATASETS.md for the dataset layouts. Each registered dataset has one ``DatasetSpec``
(``dataset_spec(name)``): its files, class-file reader and label kind.
"""

from videotl.data.build import build_dataset, build_loader, loader_seed, seed_worker
from videotl.data.dataset import (
    ClipDataset,
    DataLoadingError,
    LoadingPolicy,
    overlapping_actions,
)
from videotl.data.lists import AnnotationError, VideoEntry
from videotl.data.registry import (
    DATASETS,
    DatasetSpec,
    VideoList,
    dataset_spec,
    list_datasets,
    register_dataset,
)
from videotl.data.samplers import EpochShuffleSampler, ShardedEvalSampler
from videotl.data.sampling import ClipSampling
from videotl.data.synthetic import ensure_synthetic_dataset, make_synthetic_dataset
from videotl.data.video_reader import VideoDecodeError, VideoReader

__all__ = [
    "DATASETS",
    "AnnotationError",
    "ClipDataset",
    "ClipSampling",
    "DataLoadingError",
    "DatasetSpec",
    "EpochShuffleSampler",
    "LoadingPolicy",
    "ShardedEvalSampler",
    "VideoDecodeError",
    "VideoEntry",
    "VideoList",
    "VideoReader",
    "build_dataset",
    "build_loader",
    "dataset_spec",
    "ensure_synthetic_dataset",
    "list_datasets",
    "loader_seed",
    "make_synthetic_dataset",
    "overlapping_actions",
    "register_dataset",
    "seed_worker",
]
