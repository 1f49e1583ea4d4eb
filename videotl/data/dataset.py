"""``ClipDataset``: map-style video dataset behind every registered dataset.

Splits:

* ``"train"``: one item per video, one random clip per item (``view_index`` 0).
* ``"val"``: one centred view per video (1 temporal view x 1 centre crop).
* ``"test"``: ``num_temporal_views x num_spatial_crops`` views per video; item ``idx`` is video
  ``idx // views_per_video``, view ``idx % views_per_video``.

Item: ``{"video": float32 [C, T, H, W] normalised, "target": ..., "video_index": int,
"view_index": int, "ok": bool}``. ``target`` is an int64 scalar class (single-label) or a float32
multi-hot ``[num_classes]`` (multi-label); for a training clip of a video with timed actions it
holds the actions overlapping the clip's time span, in evaluation the video's target
(``video_target``).

Failures are never silent. In evaluation an undecodable view gives ``"ok": False`` and a zero
``"video"``; the file is logged once and listed in ``failures``. In training the item retries
another clip of the same video (``clip_retries``), then other random videos (``video_retries``);
each bad file is logged once and counted, and once more than ``max_failure_fraction`` of the
videos have failed, loading stops with ``DataLoadingError`` listing them.

``train_item`` and ``view_item`` make the items of one video from its file or from its bytes
(``data``): the tar-shard dataset (``videotl.data.shards``) reads the bytes and hands them here,
so that clips, transforms and targets are this module's whatever the videos are stored in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from videotl.data.failures import FailureLog
from videotl.data.lists import VideoEntry
from videotl.data.sampling import ClipSampling, clip_seconds, split_view
from videotl.data.transforms import EvalTransform, TrainTransform, frames_to_cthw
from videotl.data.video_reader import VideoDecodeError, VideoReader
from videotl.errors import RunError

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class DataLoadingError(RunError, RuntimeError):
    """Too many videos failed to load; the message lists them."""


@dataclass(frozen=True)
class LoadingPolicy:
    """Decoding and failure handling (see the module docstring)."""

    backend: str = "pyav"
    decoder_threads: int = 1
    resize_at_decode: bool = True
    max_failure_fraction: float = 0.01
    clip_retries: int = 2
    video_retries: int = 10


class ClipDataset(Dataset):
    """Clips of a list of videos (see the module docstring for splits, items and failures).

    Args:
        videos: the videos, in order (``video_index`` indexes this list).
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_classes: number of classes.
        multilabel: targets are multi-hot ``[num_classes]`` instead of a class index.
        class_names: ``num_classes`` names.
        sampling: frames per clip and their spacing.
        train_transform: used for ``"train"``.
        eval_transform: used for ``"val"`` and ``"test"`` (its ``num_crops`` spatial crops).
        num_temporal_views: clips per video in ``"test"`` (``"val"`` uses 1).
        policy: decoding backend and failure handling.
        name: the dataset's name in messages.
        view_aggregation: how per-view outputs should be merged per video (``"mean"`` or
            ``"max"``), for the evaluator.
        seed: training clips and augmentations are drawn from a generator seeded with
            ``(seed, epoch, item)`` (``set_epoch``), so they do not depend on the number of
            loader processes and a resumed run sees the same clips as an uninterrupted one.
    """

    def __init__(
        self,
        videos: Sequence[VideoEntry],
        split: str,
        num_classes: int,
        multilabel: bool,
        class_names: Sequence[str],
        sampling: ClipSampling,
        train_transform: TrainTransform,
        eval_transform: EvalTransform,
        num_temporal_views: int = 1,
        policy: LoadingPolicy = LoadingPolicy(),
        name: str = "dataset",
        view_aggregation: str = "mean",
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if len(class_names) != num_classes:
            raise ValueError(f"{name}: {len(class_names)} class names for {num_classes} classes")
        if not videos:
            raise ValueError(f"{name}: the {split} split has no videos")
        self.videos = list(videos)
        self.split = split
        self.num_classes = num_classes
        self.multilabel = multilabel
        self.class_names = list(class_names)
        self.sampling = sampling
        self.train_transform = train_transform
        self.eval_transform = eval_transform
        self.policy = policy
        self.name = name
        self.view_aggregation = view_aggregation
        if split == "test":
            self.num_temporal_views = num_temporal_views
            self.num_spatial_crops = eval_transform.num_crops
        else:
            self.num_temporal_views, self.num_spatial_crops = 1, 1
        self.excluded: list[str] = []
        self._failures = FailureLog(f"{name} {split}")
        self.seed = seed
        # Shared with loader processes (also persistent ones), which read it for every item.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Selects the training clips and augmentations of ``epoch`` (call before iterating)."""
        self._epoch[0] = epoch

    @property
    def epoch(self) -> int:
        """The epoch ``set_epoch`` selected, as loader processes see it too."""
        return int(self._epoch[0])

    def _item_generator(self, index: int) -> torch.Generator:
        key = np.random.SeedSequence([self.seed, int(self._epoch[0]), index])
        return torch.Generator().manual_seed(int(key.generate_state(1, dtype=np.uint64)[0] >> 1))

    # -- the interface -------------------------------------------------------------------
    @property
    def video_ids(self) -> list[str]:
        return [entry.video_id for entry in self.videos]

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def views_per_video(self) -> int:
        return self.num_temporal_views * self.num_spatial_crops

    @property
    def failures(self) -> list[tuple[str, str]]:
        """Videos that failed to load so far, in any loader process: ``[(path, reason)]``."""
        return self._failures.entries()

    def video_target(self, index: int) -> torch.Tensor:
        """Ground truth of video ``index``: int64 scalar, or float32 multi-hot ``[K]``."""
        entry = self.videos[index]
        if self.multilabel:
            return self._multi_hot(action[0] for action in entry.actions)
        return torch.tensor(entry.label, dtype=torch.int64)

    def __len__(self) -> int:
        return self.num_videos * (1 if self.split == "train" else self.views_per_video)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} outside [0, {len(self)}) of {self.name} {self.split}")
        if self.split == "train":
            return self._train_item(index)
        return self._view_item(index)

    def __repr__(self) -> str:
        return (f"ClipDataset({self.name}, split={self.split}, videos={self.num_videos}, "
                f"views_per_video={self.views_per_video}, classes={self.num_classes})")

    # -- training ------------------------------------------------------------------------
    def _train_item(self, index: int) -> dict[str, Any]:
        return self.train_item(index)

    def train_item(
        self,
        video_index: int,
        data: bytes | None = None,
        other: Callable[[int, torch.Generator], tuple[int, bytes | None]] | None = None,
    ) -> dict[str, Any]:
        """The training item of video ``video_index``: a clip and augmentation drawn from the
        generator of ``(seed, epoch, video_index)``, decoded from ``data`` (the video file's
        bytes) when given, else from the file.

        A video that fails is replaced (module docstring) by ``other(video_index, generator)``
        -> ``(video_index, data)``; by default another random video, read from its file.
        """
        index = video_index
        errors = []
        generator = self._item_generator(index)
        for _ in range(self.policy.video_retries + 1):
            try:
                video, target = self._train_clip(self.videos[video_index], generator, data)
                return self._item(video, target, video_index, 0, True)
            except VideoDecodeError as error:
                errors.append(error)
                self._count_failure(error)
                if other is None:
                    video_index, data = self._other_video(video_index, generator), None
                else:
                    video_index, data = other(video_index, generator)
        tried = "; ".join(f"{error.path}: {error.reason}" for error in errors)
        raise DataLoadingError(
            f"{self.name} {self.split}: no clip could be loaded for item {index} after trying "
            f"{len(errors)} videos ({tried})"
        )

    def _train_clip(
        self, entry: VideoEntry, generator: torch.Generator, data: bytes | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.train_transform.draw_scale(generator)
        reader = self._open(entry, scale, data)
        last_error = None
        for _ in range(self.policy.clip_retries + 1):
            indices = self.sampling.train_indices(reader.num_frames, reader.fps, generator,
                                                  first_frame=reader.first_frame)
            try:
                frames = reader.get_frames(indices)
            except VideoDecodeError as error:
                last_error = error
                continue
            video = self.train_transform(frames_to_cthw(frames), generator=generator,
                                         scale=scale)
            return video, self._clip_target(entry, indices, reader.fps)
        assert last_error is not None
        raise last_error

    def _clip_target(self, entry: VideoEntry, indices: list[int], fps: float) -> torch.Tensor:
        if not self.multilabel:
            return torch.tensor(entry.label, dtype=torch.int64)
        start, end = clip_seconds(indices, fps)
        return self._multi_hot(overlapping_actions(entry.actions, start, end))

    def _count_failure(self, error: VideoDecodeError) -> None:
        self.record_failure(error.path, error.reason)

    def record_failure(self, path: str, reason: str) -> None:
        """Lists the video at ``path`` in ``failures`` (logged the first time). In training it
        counts towards ``max_failure_fraction``: once more videos than that have failed,
        ``DataLoadingError`` lists them.

        The tar-shard dataset calls it for the videos that failed to be packed, as the
        decoding of a file that is missing calls it here."""
        self._failures.record(path, reason)
        if self.split != "train":
            return
        failures = self.failures
        if len(failures) > self.policy.max_failure_fraction * self.num_videos:
            listing = "\n".join(f"  {path}: {reason}" for path, reason in failures)
            raise DataLoadingError(
                f"{self.name} {self.split}: {len(failures)} of {self.num_videos} videos failed to "
                f"load, more than data.max_failure_fraction="
                f"{self.policy.max_failure_fraction}. Fix or list them in data.exclude_file:\n"
                f"{listing}"
            )

    def _other_video(self, video_index: int, generator: torch.Generator) -> int:
        if self.num_videos == 1:
            return video_index
        other = int(torch.randint(self.num_videos - 1, (1,), generator=generator))
        return other + (other >= video_index)

    # -- evaluation ----------------------------------------------------------------------
    def _view_item(self, index: int) -> dict[str, Any]:
        return self.view_item(*divmod(index, self.views_per_video))

    def view_item(self, video_index: int, view: int, data: bytes | None = None) -> dict[str, Any]:
        """View ``view`` (temporal view ``view // num_spatial_crops``, crop ``view %
        num_spatial_crops``) of video ``video_index``, decoded from ``data`` (the video file's
        bytes) when given, else from the file."""
        temporal, spatial = split_view(view, self.num_spatial_crops)
        entry = self.videos[video_index]
        target = self.video_target(video_index)
        try:
            reader = self._open(entry, self.eval_transform.crop_size, data)
            indices = self.sampling.view_indices(
                reader.num_frames, reader.fps, temporal, self.num_temporal_views,
                first_frame=reader.first_frame,
            )
            frames = reader.get_frames(indices)
        except VideoDecodeError as error:
            self.record_failure(error.path, error.reason)
            return self.failed_view_item(video_index, view)
        video = self.eval_transform(frames_to_cthw(frames), spatial)
        return self._item(video, target, video_index, view, True)

    def failed_view_item(self, video_index: int, view: int) -> dict[str, Any]:
        """View ``view`` of video ``video_index`` when the video cannot be loaded: a zero
        ``"video"`` with ``"ok": False`` (the caller lists the video in ``failures``)."""
        size = self.eval_transform.crop_size
        empty = torch.zeros(3, self.sampling.num_frames, size, size)
        return self._item(empty, self.video_target(video_index), video_index, view, False)

    # -- helpers -------------------------------------------------------------------------
    def _open(self, entry: VideoEntry, short_side: int, data: bytes | None = None) -> VideoReader:
        return VideoReader(
            entry.path,
            backend=self.policy.backend,
            short_side=short_side if self.policy.resize_at_decode else None,
            num_threads=self.policy.decoder_threads,
            data=data,
        )

    def _multi_hot(self, classes: Any) -> torch.Tensor:
        target = torch.zeros(self.num_classes, dtype=torch.float32)
        for label in classes:
            target[label] = 1.0
        return target

    @staticmethod
    def _item(
        video: torch.Tensor, target: torch.Tensor, video_index: int, view: int, ok: bool
    ) -> dict[str, Any]:
        return {"video": video, "target": target, "video_index": video_index,
                "view_index": view, "ok": ok}


def overlapping_actions(
    actions: Sequence[tuple[int, float, float]], start: float, end: float
) -> list[int]:
    """Classes of the actions whose interval ``[s, e]`` overlaps ``[start, end)``.

    An action overlaps when ``s < end`` and ``e > start``: touching at a single instant does
    not count.
    """
    return sorted({label for label, begin, finish in actions if begin < end and finish > start})
