"""``build_dataset(cfg, split)`` and ``build_loader(cfg, split)``: datasets and loaders from a
config, distributed-aware.

This is the one adapter between the config and the data package. A dataset's list reader
(``videotl.data.registry``) declares the arguments it takes; each one named in
``LIST_ARGUMENTS`` is filled from the config key beside it. The clips, transforms and decoding
policy of ``ClipDataset`` come from ``data.*`` and ``test.*`` here, the same for every dataset.
With ``data.format=shards`` the videos and their annotations come from the split's tar shards
and manifest instead (``videotl.data.shards``); everything else is the same.
"""

from __future__ import annotations

import inspect
import random
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from videotl.config import DataConfig, ExperimentConfig
from videotl.data import avid, charades, kinetics  # noqa: F401  (register the datasets)
from videotl.data.dataset import SPLITS, ClipDataset, LoadingPolicy
from videotl.data.lists import apply_exclusions
from videotl.data.lists import AnnotationError
from videotl.data.registry import DATASETS, DatasetSpec, VideoList
from videotl.data.samplers import EpochShuffleSampler, ShardedEvalSampler
from videotl.data.shard_format import manifest_path, read_manifest, shard_folder, shard_urls
from videotl.data.shards import ShardClipDataset
from videotl.data.sampling import ClipSampling
from videotl.data.synthetic import KINDS, ensure_synthetic_dataset
from videotl.data.torchcodec_decode import require_torchcodec
from videotl.data.transforms import EvalTransform, TrainTransform
from videotl.utils.distributed import get_rank, get_world_size, is_distributed

# list-reader argument -> dotted config key (``split`` is the function's own argument)
LIST_ARGUMENTS = {
    "root": "data.root",
    "video_dir": "data.video_dir",
    "class_names_file": "data.class_names_file",
    "num_classes": "model.num_classes",
}


def build_dataset(cfg: ExperimentConfig, split: str) -> ClipDataset | ShardClipDataset:
    """The ``data.dataset`` dataset's ``split`` (``"train"``, ``"val"`` or ``"test"``).

    With ``data.synthetic=true`` and no annotation files under ``data.root``, a synthetic
    dataset of that kind is generated there first (``videotl.data.synthetic``). Videos listed in
    ``data.exclude_file`` are skipped (and listed in ``dataset.excluded``). With
    ``data.format=shards``: ``shard_dataset``.

    Raises:
        RegistryError: unknown ``data.dataset`` (with close matches).
        AnnotationError: missing or malformed annotation files (naming file and line).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    dataset = DATASETS.get(cfg.data.dataset)
    if cfg.data.format == "shards":
        return shard_dataset(cfg, split)
    if cfg.data.synthetic:
        _ensure_synthetic(cfg.data)
    listed = dataset.read(split=split, **list_arguments(cfg, dataset.read))
    return clip_dataset(cfg, split, dataset.spec, listed)


def shard_dataset(cfg: ExperimentConfig, split: str) -> ShardClipDataset:
    """The split read from its tar shards: the manifest ``<data.shard_dir>/<split>.json``
    (relative to ``data.root``) lists the videos; the shards are read from beside it, or from
    ``data.shard_urls``. Batches hold ``train.batch_size`` (train) or ``test.batch_size`` items;
    the stream is split across this process group's ranks and ``data.num_workers`` workers.
    The videos the manifest lists as failed (not packed) stay in the split and are reported as
    a missing file would be: a warning with their count, ``dataset.failures``, and, in
    evaluation, views with ``"ok": False`` (so ``failed_videos`` of the evaluation lists them).

    Raises:
        AnnotationError: no manifest, a malformed one, or one of another dataset.
        ConfigError: ``data.shard_urls`` does not match the manifest's shards.
        DataLoadingError: in training, more videos not packed than
            ``data.max_failure_fraction`` allows.
    """
    data = cfg.data
    path = manifest_path(shard_folder(data.root, data.shard_dir), split)
    manifest = read_manifest(path)
    if manifest.dataset != data.dataset:
        raise AnnotationError(f"{path}: shards of dataset {manifest.dataset!r}, but "
                              f"data.dataset={data.dataset!r}")
    urls = shard_urls(data.shard_urls, path.parent, manifest)
    entries, _ = manifest.entries()
    clips = clip_dataset(cfg, split, DATASETS.get(data.dataset).spec,
                         VideoList(entries, manifest.class_names))
    batch_size = cfg.train.batch_size if split == "train" else cfg.test.batch_size
    return ShardClipDataset(clips, manifest, urls, batch_size, num_workers=data.num_workers,
                            rank=get_rank(), world_size=get_world_size(),
                            shuffle_buffer=data.shuffle_buffer)


def list_arguments(cfg: ExperimentConfig, read: Callable[..., VideoList]) -> dict[str, Any]:
    """The keyword arguments (besides ``split``) that the list reader ``read`` receives."""
    arguments = {}
    for name in inspect.signature(read).parameters:
        if name == "split":
            continue
        if name not in LIST_ARGUMENTS:
            raise TypeError(f"list reader {read.__module__}.{read.__qualname__} takes {name!r}, "
                            f"which no config key fills (known: {', '.join(LIST_ARGUMENTS)})")
        section, key = LIST_ARGUMENTS[name].split(".")
        arguments[name] = getattr(getattr(cfg, section), key)
    return arguments


def clip_dataset(
    cfg: ExperimentConfig, split: str, spec: DatasetSpec, listed: VideoList
) -> ClipDataset:
    """A ``ClipDataset`` of ``listed`` with the config's clips, transforms and decoding."""
    data = cfg.data
    kept, excluded = apply_exclusions(listed.videos, data.exclude_file, data.root, spec.name)
    dataset = ClipDataset(
        kept,
        split,
        num_classes=len(listed.class_names),
        multilabel=spec.multilabel,
        class_names=listed.class_names,
        sampling=ClipSampling(data.num_frames, data.sampling_fps, data.frame_stride),
        train_transform=TrainTransform(data.train_jitter_scales, data.train_crop_size,
                                       data.mean, data.std, flip=data.random_flip),
        eval_transform=EvalTransform(data.test_crop_size, cfg.test.num_spatial_crops
                                     if split == "test" else 1, data.mean, data.std),
        num_temporal_views=cfg.test.num_temporal_views,
        policy=loading_policy(data),
        name=spec.name,
        view_aggregation=spec.view_aggregation,
        seed=cfg.seed,
    )
    dataset.excluded = excluded
    return dataset


def loading_policy(data: DataConfig) -> LoadingPolicy:
    """Decoding and failure handling from ``data.*``; a decoder that cannot load on this machine
    (``data.decoder=torchcodec`` without torchcodec or FFmpeg's libraries) is an ``InputError``
    here, before any loader process starts."""
    if data.decoder == "torchcodec":
        require_torchcodec()
    return LoadingPolicy(
        backend=data.decoder,
        decoder_threads=data.decoder_threads,
        resize_at_decode=data.resize_at_decode,
        max_failure_fraction=data.max_failure_fraction,
        clip_retries=data.clip_retries,
        video_retries=data.video_retries,
    )


def _ensure_synthetic(data: DataConfig) -> None:
    if data.dataset not in KINDS:
        raise ValueError(f"data.synthetic=true: no synthetic version of dataset {data.dataset!r}"
                         f" (synthetic kinds: {', '.join(KINDS)})")
    ensure_synthetic_dataset(
        data.dataset, data.root, seed=data.synthetic_seed,
        train_videos=data.synthetic_train_videos, eval_videos=data.synthetic_eval_videos,
        short_side=data.synthetic_short_side, video_dir=data.video_dir,
    )


def build_loader(
    cfg: ExperimentConfig, split: str, dataset: ClipDataset | ShardClipDataset | None = None
) -> DataLoader:
    """A DataLoader over ``build_dataset(cfg, split)`` (or ``dataset``).

    A ``ShardClipDataset`` (``data.format=shards``) splits its stream across ranks and workers
    and batches itself (``videotl.data.shards``); the loader only runs its workers.

    Batches: ``train.batch_size`` (train) or ``test.batch_size`` (val, test) items per process.
    In a process group, training uses ``DistributedSampler`` (shuffled, call
    ``loader.sampler.set_epoch(epoch)``) and evaluation ``ShardedEvalSampler`` (each item on
    exactly one rank, no padding); without one, ``EpochShuffleSampler`` (also with
    ``set_epoch``) and all items in order. Training drops the last incomplete batch when there
    is at least one full batch.

    Workers: ``data.num_workers`` processes, persistent across epochs, each seeded distinctly
    (Python, NumPy and torch) from ``seed`` and the rank; memory is pinned when
    ``data.pin_memory`` and an accelerator is present.
    """
    dataset = dataset if dataset is not None else build_dataset(cfg, split)
    rank, world = get_rank(), get_world_size()
    workers = cfg.data.num_workers
    if isinstance(dataset, ShardClipDataset):
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            pin_memory=cfg.data.pin_memory and _accelerator_available(),
            persistent_workers=workers > 0,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(loader_seed(cfg.seed, rank)),
        )
    if split == "train":
        batch_size = cfg.train.batch_size
        sampler: Sampler[int] = (
            DistributedSampler(dataset, world, rank, shuffle=True, seed=cfg.seed)
            if is_distributed() else EpochShuffleSampler(len(dataset), cfg.seed))
        drop_last = len(sampler) >= batch_size
    else:
        batch_size = cfg.test.batch_size
        sampler = ShardedEvalSampler(len(dataset), world, rank)
        drop_last = False
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


def _accelerator_available() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()
