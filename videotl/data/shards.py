"""``ShardClipDataset``: a split's clips read from tar shards (``data.format=shards``; the
layout, the manifest and the reading of one shard: ``videotl.data.shard_format``).

Who reads what. Each loader process (rank x DataLoader worker: a *slot*) reads one contiguous
block of the split's *stream*: the shards' videos concatenated in a shard order. Shards are
never assigned whole: a block may start or end inside a shard (the slot skips the members
before its start, decoding nothing, and stops reading at its end), so that

* training: the shard order is a permutation drawn from ``(seed, epoch)``, and every one of the
  ``S = ranks x max(1, data.num_workers)`` slots gets ``N // S`` videos, shuffled through a
  buffer of ``data.shuffle_buffer`` videos (drawn from ``(seed, epoch, slot)``) and batched in
  the slot. Every rank yields the same number of batches, as DDP needs; the ``N mod S`` videos
  at the stream's end and each slot's last incomplete batch sit out that epoch (other videos
  each epoch, since the order changes). An epoch's items are a function of ``(seed, epoch)``
  (and the number of slots), so a run resumed at an epoch sees what an uninterrupted one saw.
  Each clip and augmentation comes from the generator of ``(seed, epoch, video)``, exactly as
  for files: the same video gives bit-identical clips from a shard and from its file.
* evaluation: the shards in manifest order; rank ``r`` of ``R`` takes videos
  ``[r N / R, (r + 1) N / R)`` of the stream (integer division), all views of each, and
  its workers split that block the same way: every view of every video is read by exactly one
  process, nothing padded or repeated, as ``ShardedEvalSampler`` guarantees for files.

Items are batched inside each slot (the DataLoader gets ``batch_size=None``), so ``len(loader)``
is exact. Clips, transforms and targets are ``ClipDataset``'s (``train_item``, ``view_item``):
only the source of the bytes differs. A training video that fails to decode is counted as with
files and replaced by another video of the same slot (one read recently or waiting in the
buffer), since a stream cannot reach a random video.

A video the manifest lists as not packed is what a missing file is to the file path, never left
out in silence: it stays one of the dataset's videos (``video_ids``, targets), it is listed in
``failures`` with the packing's reason when the dataset is built (a warning gives the count; in
training it counts towards ``data.max_failure_fraction``), and in evaluation its views come
back with ``"ok": False`` (after the stream: positions ``N`` onwards of the blocks above, ``N``
counting them too), so that evaluation reports it among ``failed_videos``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, default_collate, get_worker_info

from videotl.config import ConfigError, register_choices
from videotl.data.dataset import ClipDataset
from videotl.data.lists import VideoEntry
from videotl.data.shard_format import ShardManifest, ShardReadError, read_shard

logger = logging.getLogger(__name__)

FORMATS = ("files", "shards")  # data.format
register_choices("data.format", lambda: FORMATS)

RECENT_VIDEOS = 8  # read videos a training slot keeps to replace one that fails
# Mixed into the seeds of the shard order and the shuffle buffer (the clip generators use
# (seed, epoch, video) alone), so that no two of these streams coincide.
_ORDER_STREAM, _BUFFER_STREAM = 0x5348, 0x4246


# -- the stream split ---------------------------------------------------------------------
def epoch_shard_order(num_shards: int, seed: int, epoch: int) -> list[int]:
    """The training shard order of ``epoch``: a permutation drawn from ``(seed, epoch)``."""
    sequence = np.random.SeedSequence([seed, epoch, _ORDER_STREAM])
    return np.random.default_rng(sequence).permutation(num_shards).tolist()


def block(count: int, parts: int, part: int) -> tuple[int, int]:
    """``[part * count // parts, (part + 1) * count // parts)``: part ``part`` of ``parts``
    contiguous blocks covering ``range(count)`` exactly."""
    return part * count // parts, (part + 1) * count // parts


def stream_pieces(
    lengths: Sequence[int], order: Sequence[int], start: int, stop: int
) -> list[tuple[int, int, int]]:
    """Positions ``[start, stop)`` of the stream of shards ``order`` (shard ``s`` holding
    ``lengths[s]`` videos) as ``(shard, first, stop)`` ranges of positions inside shards."""
    pieces, offset = [], 0
    for shard in order:
        low, high = max(start, offset), min(stop, offset + lengths[shard])
        if low < high:
            pieces.append((shard, low - offset, high - offset))
        offset += lengths[shard]
        if offset >= stop:
            break
    return pieces


class _ShuffleBuffer:
    """Yields the samples of ``source`` in random order through a buffer holding ``size``
    of them (0: in order); ``waiting`` shows those not yet yielded."""

    def __init__(self, source: Iterator[Any], size: int, rng: np.random.Generator) -> None:
        self.source, self.size, self.rng = source, size, rng
        self.held: list[Any] = []

    def __iter__(self) -> Iterator[Any]:
        for sample in self.source:
            self.held.append(sample)
            if len(self.held) > self.size:
                yield self._pick()
        while self.held:
            yield self._pick()

    def _pick(self) -> Any:
        k = int(self.rng.integers(len(self.held)))
        self.held[k], self.held[-1] = self.held[-1], self.held[k]
        return self.held.pop()

    def waiting(self) -> list[Any]:
        """The samples held (reading one more from the source when none is)."""
        if not self.held:
            sample = next(self.source, None)
            if sample is not None:
                self.held.append(sample)
        return list(self.held)


# -- the dataset ---------------------------------------------------------------------------
class ShardClipDataset(IterableDataset):
    """Batches of ``clips``' items read from the tar shards of ``manifest`` (module docstring).

    The evaluation interface (``num_videos``, ``video_ids``, ``video_target``, ...) is that of
    ``clips``, the ``ClipDataset`` of the manifest's listed videos (minus exclusions), whose
    videos' paths name their shard members (``ShardManifest.entries``). Those not packed are
    listed in ``failures`` here (module docstring).

    Args:
        clips: the split's ``ClipDataset`` (clips, transforms, targets, failures).
        manifest: the split's manifest.
        urls: where each of the manifest's shards is read from (``shard_urls``).
        batch_size: items per batch.
        num_workers: the DataLoader's worker processes (0: the main process).
        rank, world_size: this process and the processes reading together.
        shuffle_buffer: training videos held to shuffle the stream (0: shard order only).

    Raises:
        ConfigError: in training, fewer videos in the shards than loader processes.
        DataLoadingError: in training, more videos not packed than
            ``data.max_failure_fraction`` allows.
    """

    def __init__(
        self,
        clips: ClipDataset,
        manifest: ShardManifest,
        urls: Sequence[str],
        batch_size: int,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 0,
    ) -> None:
        if len(urls) != len(manifest.shards):
            raise ValueError(f"{len(urls)} URLs for {len(manifest.shards)} shards")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        self.clips, self.manifest, self.urls = clips, manifest, list(urls)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.rank, self.world_size, self.shuffle_buffer = rank, world_size, shuffle_buffer
        _, key_of = manifest.entries()
        self.keys = [key_of[entry.path] for entry in clips.videos]  # of each video index
        self.index_of = {key: index for index, key in enumerate(self.keys)}
        # Each shard's keys still listed (data.exclude_file may leave some out), in order.
        self.kept = [[key for key in shard.keys if key in self.index_of]
                     for shard in manifest.shards]
        self.lengths = [len(keys) for keys in self.kept]
        self.streamed = sum(self.lengths)  # the videos in the shards: the stream's length
        self.workers = max(1, num_workers)
        self.unpacked = self._unpacked_videos()  # video indices not in the shards
        if self.split == "train":
            slots = world_size * self.workers
            per_slot = self.streamed // slots
            if per_slot == 0:
                raise ConfigError(
                    f"{self.streamed} {self.split} videos cannot feed {slots} loader "
                    f"processes ({world_size} ranks x {self.workers}); lower data.num_workers")
            # Whole batches, or the one incomplete batch of a slot with fewer items.
            self.items_per_slot = per_slot if per_slot < batch_size else (
                per_slot // batch_size * batch_size)
            self.per_slot = per_slot
            logger.info("%s train: %d videos in %d shards; each of %d loader processes reads %d "
                        "an epoch and uses %d; %d videos sit out each epoch", self.name,
                        self.streamed, len(self.urls), slots, per_slot, self.items_per_slot,
                        self.streamed - slots * self.items_per_slot)

    def _unpacked_videos(self) -> list[int]:
        """The video indices the manifest gives as not packed, listed in ``failures`` as
        videos that cannot be loaded (as a missing file is, for files) after a warning with
        their count."""
        reason_of = {video.key: reason for video, reason in self.manifest.failed}
        unpacked = [index for index, key in enumerate(self.keys) if key in reason_of]
        if not unpacked:
            return unpacked
        logger.warning("%s %s: %d of the %d listed videos are not in the shards (they failed "
                       "when packed: the manifest's \"failed\"); they count as videos that "
                       "cannot be loaded", self.name, self.split, len(unpacked), self.num_videos)
        for index in unpacked:
            reason = reason_of[self.keys[index]]
            self.clips.record_failure(self.clips.videos[index].path,
                                      f"not packed into the shards ({reason})")
        return unpacked

    # -- the evaluation interface (ClipDataset's) ----------------------------------------
    @property
    def split(self) -> str:
        return self.clips.split

    @property
    def name(self) -> str:
        return self.clips.name

    @property
    def videos(self) -> list[VideoEntry]:
        return self.clips.videos

    @property
    def num_videos(self) -> int:
        return self.clips.num_videos

    @property
    def num_classes(self) -> int:
        return self.clips.num_classes

    @property
    def multilabel(self) -> bool:
        return self.clips.multilabel

    @property
    def class_names(self) -> list[str]:
        return self.clips.class_names

    @property
    def view_aggregation(self) -> str:
        return self.clips.view_aggregation

    @property
    def views_per_video(self) -> int:
        return self.clips.views_per_video

    @property
    def video_ids(self) -> list[str]:
        return self.clips.video_ids

    @property
    def excluded(self) -> list[str]:
        return self.clips.excluded

    @property
    def failures(self) -> list[tuple[str, str]]:
        return self.clips.failures

    def video_target(self, index: int) -> torch.Tensor:
        return self.clips.video_target(index)

    def set_epoch(self, epoch: int) -> None:
        """Selects the shard order, shuffling, clips and augmentations of ``epoch``."""
        self.clips.set_epoch(epoch)

    def __len__(self) -> int:
        """Batches this rank yields per epoch (all its workers together)."""
        if self.split == "train":
            return self.workers * math.ceil(self.items_per_slot / self.batch_size)
        return sum(math.ceil(len(range(*self.eval_block(worker))) * self.views_per_video
                             / self.batch_size) for worker in range(self.workers))

    def __repr__(self) -> str:
        return (f"ShardClipDataset({self.name}, split={self.split}, videos={self.num_videos}, "
                f"shards={len(self.urls)}, rank={self.rank}/{self.world_size}, "
                f"workers={self.workers})")

    # -- iteration ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if workers != self.workers:
            raise RuntimeError(f"{self!r} was built for {self.workers} loader processes per "
                               f"rank and runs in {workers}")
        return self.batches(worker)

    def batches(self, worker: int) -> Iterator[dict[str, Any]]:
        """The batches worker ``worker`` of this rank yields in the current epoch."""
        items = self.train_items(worker) if self.split == "train" else self.eval_items(worker)
        batch = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield default_collate(batch)
                batch = []
        if batch:
            yield default_collate(batch)

    def eval_block(self, worker: int) -> tuple[int, int]:
        """The stream positions (videos in manifest order) that ``worker`` of this rank reads
        in evaluation."""
        start, stop = block(self.num_videos, self.world_size, self.rank)
        low, high = block(stop - start, self.workers, worker)
        return start + low, start + high

    def eval_items(self, worker: int) -> Iterator[dict[str, Any]]:
        """Every view of every video of ``eval_block(worker)``: positions below ``streamed``
        are read from the shards, those after are the videos not packed (failed views)."""
        start, stop = self.eval_block(worker)
        order = range(len(self.kept))
        pieces = stream_pieces(self.lengths, order, start, min(stop, self.streamed))
        for video_index, data in self._read(pieces):
            for view in range(self.views_per_video):
                yield self.clips.view_item(video_index, view, data)
        for position in range(max(start, self.streamed), stop):
            video_index = self.unpacked[position - self.streamed]
            for view in range(self.views_per_video):
                yield self.clips.failed_view_item(video_index, view)

    def train_block(self, worker: int, epoch: int) -> list[tuple[int, int, int]]:
        """The shard pieces that ``worker`` of this rank reads in training epoch ``epoch``."""
        slot = self.rank * self.workers + worker
        order = epoch_shard_order(len(self.kept), self.clips.seed, epoch)
        start = slot * self.per_slot
        return stream_pieces(self.lengths, order, start, start + self.per_slot)

    def train_items(self, worker: int) -> Iterator[dict[str, Any]]:
        """``items_per_slot`` training items of the current epoch for ``worker``."""
        epoch = self.clips.epoch
        slot = self.rank * self.workers + worker
        rng = np.random.default_rng(np.random.SeedSequence(
            [self.clips.seed, epoch, slot, _BUFFER_STREAM]))
        buffer = _ShuffleBuffer(self._read(self.train_block(worker, epoch)),
                                self.shuffle_buffer, rng)
        recent: deque[tuple[int, bytes]] = deque(maxlen=RECENT_VIDEOS)
        tried: dict[int, bytes] = {}  # the videos the current item has tried

        def other(current: int, generator: torch.Generator) -> tuple[int, bytes]:
            # ClipDataset's random other video, among those this slot holds.
            candidates = [c for c in [*recent, *buffer.waiting()] if c[0] != current]
            if not candidates:  # nothing else to try: this video again, as ClipDataset does
                return current, tried[current]
            choice = candidates[int(torch.randint(len(candidates), (1,), generator=generator))]
            tried[choice[0]] = choice[1]
            return choice

        taken = 0
        for video_index, data in buffer:
            if taken == self.items_per_slot:
                break
            tried.clear()
            tried[video_index] = data
            item = self.clips.train_item(video_index, data, other)
            if item["video_index"] == video_index:
                recent.append((video_index, data))
            taken += 1
            yield item

    def _read(self, pieces: Sequence[tuple[int, int, int]]) -> Iterator[tuple[int, bytes]]:
        """``(video index, bytes)`` of the videos of ``pieces``, in stream order."""
        for shard, first, stop in pieces:
            url = self.urls[shard]
            for key, data, annotation in read_shard(url, self.kept[shard][first:stop]):
                video_index = self.index_of[key]
                expected = self.clips.videos[video_index].video_id
                if annotation.get("video_id") != expected:
                    raise ShardReadError(url, f"{key}.json names video "
                                              f"{annotation.get('video_id')!r} where the manifest "
                                              f"lists {expected!r} (shards of another packing?)")
                yield video_index, data
