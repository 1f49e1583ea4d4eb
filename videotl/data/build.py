"""``build_dataset(cfg, split)`` and ``build_loader(cfg, split)``: datasets and loaders from a
config, distributed-aware."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from videotl.data import avid, charades, kinetics  # noqa: F401  (register the datasets)
from videotl.data.dataset import SPLITS, ClipDataset
from videotl.data.registry import DATASETS
from videotl.data.samplers import EpochShuffleSampler, ShardedEvalSampler
from videotl.data.synthetic import KINDS, ensure_synthetic_dataset


def build_dataset(cfg: Any, split: str) -> ClipDataset:
    """The ``data.dataset`` dataset's ``split`` (``"train"``, ``"val"`` or ``"test"``).

    With ``data.synthetic=true`` and no annotation files under ``data.root``, a synthetic
    dataset of that kind is generated there first (``videotl.data.synthetic``).

    Raises:
        RegistryError: unknown ``data.dataset`` (with close matches).
        AnnotationError: missing or malformed annotation files (naming file and line).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    builder = DATASETS.get(cfg.data.dataset)
    if cfg.data.synthetic:
        _ensure_synthetic(cfg)
    return builder(cfg, split)


def _ensure_synthetic(cfg: Any) -> None:
    data = cfg.data
    if data.dataset not in KINDS:
        raise ValueError(f"data.synthetic=true: no synthetic version of dataset {data.dataset!r}"
                         f" (synthetic kinds: {', '.join(KINDS)})")
    ensure_synthetic_dataset(
        data.dataset, data.root, seed=data.synthetic_seed,
        train_videos=data.synthetic_train_videos, eval_videos=data.synthetic_eval_videos,
        short_side=data.synthetic_short_side, video_dir=data.video_dir,
    )


def build_loader(cfg: Any, split: str, dataset: ClipDataset | None = None) -> DataLoader:
    """A DataLoader over ``build_dataset(cfg, split)`` (or ``dataset``).

    Batches: ``train.batch_size`` (train) or ``test.batch_size`` (val, test) items per process.
    With ``torch.distributed`` initialised, training uses ``DistributedSampler`` (shuffled, call
    ``loader.sampler.set_epoch(epoch)``) and evaluation ``ShardedEvalSampler`` (each item on
    exactly one rank, no padding); without it, ``EpochShuffleSampler`` (also with
    ``set_epoch``) and all items in order. Training drops the last incomplete batch when there
    is at least one full batch.

    Workers: ``data.num_workers`` processes, persistent across epochs, each seeded distinctly
    (Python, NumPy and torch) from ``seed`` and the rank; memory is pinned when
    ``data.pin_memory`` and an accelerator is present.
    """
    dataset = dataset if dataset is not None else build_dataset(cfg, split)
    rank, world = _rank_and_world()
    if split == "train":
        batch_size = cfg.train.batch_size
        sampler: Any = (DistributedSampler(dataset, world, rank, shuffle=True, seed=cfg.seed)
                        if dist.is_available() and dist.is_initialized()
                        else EpochShuffleSampler(len(dataset), cfg.seed))
        drop_last = len(sampler) >= batch_size
    else:
        batch_size = cfg.test.batch_size
        sampler = ShardedEvalSampler(len(dataset), world, rank)
        drop_last = False
    workers = cfg.data.num_workers
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cfg.data.pin_memory and _accelerator_available(),
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(loader_seed(cfg.seed, rank)),
        drop_last=drop_last,
    )


def loader_seed(seed: int, rank: int) -> int:
    """A loader's base seed, distinct per rank."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seed_worker(worker_id: int) -> None:
    """Seeds Python's and NumPy's generators from the worker's torch seed.

    PyTorch seeds each worker's torch generator with ``base_seed + worker_id``, where
    ``base_seed`` comes from the loader's generator each time workers start, so workers differ
    from each other, and persistent workers keep drawing new numbers every epoch.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _accelerator_available() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()
