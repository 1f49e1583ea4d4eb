"""Tar shards in the WebDataset layout: their manifest, and ``ShardClipDataset``, which reads a
split's clips from them (``data.format=shards``).

Opening many small files is slow on network file systems and object stores; reading a few large
tar files front to back is not. ``data_prep/make_shards.py`` (``videotl.prep.shards``) packs the
videos of each split, in an order shuffled once with a fixed seed, into a folder holding

* ``<split>-000000.tar``, ``<split>-000001.tar``, ...: two members per video sharing its *key*
  (its position in the split's list, 8 digits): ``<key>.json``, its annotation (labels or timed
  actions, the original relative path, duration), and ``<key>.<ext>``, the video file's bytes
  under its original extension (lowercased, as WebDataset reads suffixes);
* ``<split>.json``: the manifest (``ShardManifest``): dataset, class names, every video's
  annotation in list order, each shard's name, size and keys in order, and the videos that
  could not be packed, with their annotations and the reason.

Reading never writes a file: a video's bytes go from the tar stream to the decoder in memory
(``VideoReader(..., data=bytes)``). The shards are opened with WebDataset's ``gopen`` (a local
path, ``file:``, ``pipe:<command>`` whose output is the tar, or the URL schemes WebDataset
knows) and read with its tar iterators; ``data.shard_urls`` may name them by a brace pattern
(``shards/{split}-{000000..000009}.tar``) or a command (``pipe:cat shards/{split}-...``).

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

import json
import logging
import math
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, default_collate, get_worker_info
from webdataset.gopen import Pipe, gopen, set_options
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext, group_by_keys, tar_file_expander

from videotl.config import ConfigError, register_choices
from videotl.data.dataset import ClipDataset
from videotl.data.lists import AnnotationError, VideoEntry, parse_json, read_text
from videotl.errors import RunError

logger = logging.getLogger(__name__)

FORMATS = ("files", "shards")  # data.format
register_choices("data.format", lambda: FORMATS)

MANIFEST_FORMAT = "videotl-shards"
MANIFEST_VERSION = 2  # 2: failed videos carry their key and annotation
ANNOTATION_SUFFIX = "json"
KEY_DIGITS = 8
RECENT_VIDEOS = 8  # read videos a training slot keeps to replace one that fails
# Mixed into the seeds of the shard order and the shuffle buffer (the clip generators use
# (seed, epoch, video) alone), so that no two of these streams coincide.
_ORDER_STREAM, _BUFFER_STREAM = 0x5348, 0x4246


class ShardReadError(RunError, RuntimeError):
    """A shard cannot be opened or read, or differs from its manifest; the message names it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot read shard {url}: {reason}")
        self.url, self.reason = url, reason


def shard_name(prefix: str, number: int) -> str:
    """``"train-000003.tar"``: the name of shard ``number`` of a split."""
    return f"{prefix}-{number:06d}.tar"


def manifest_path(folder: str | os.PathLike, split: str) -> Path:
    """``<folder>/<split>.json``."""
    return Path(folder) / f"{split}.json"


def shard_folder(root: str, shard_dir: str) -> Path:
    """The folder of the manifests (``data.shard_dir``, relative to ``data.root``)."""
    return Path(shard_dir) if os.path.isabs(shard_dir) else Path(root) / shard_dir


def video_key(position: int) -> str:
    """The key of the video at ``position`` in its split's list (no dot: WebDataset splits
    member names at the first dot)."""
    return f"{position:0{KEY_DIGITS}d}"


@dataclass(frozen=True)
class ShardVideo:
    """One packed video, as the manifest and its ``<key>.json`` member describe it.

    Attributes:
        key: the members' common name (``video_key``).
        video_id: how the dataset names it (``VideoEntry.video_id``).
        path: its file when packed, relative to the video folder (absolute when outside it).
        member: the tar member holding its bytes, ``<key>.<ext>``.
        label: class index (single-label datasets).
        actions: ``(class, start_s, end_s)`` (datasets with timed actions).
        duration: seconds of video (frames that decode / frame rate) when packed.
    """

    key: str
    video_id: str
    path: str
    member: str
    label: int | None = None
    actions: tuple[tuple[int, float, float], ...] = ()
    duration: float | None = None

    def annotation(self) -> dict[str, Any]:
        """The ``<key>.json`` member's content."""
        value: dict[str, Any] = {"key": self.key, "video_id": self.video_id, "path": self.path,
                                 "member": self.member}
        if self.label is not None:
            value["label"] = self.label
        if self.actions:
            value["actions"] = [list(action) for action in self.actions]
        if self.duration is not None:
            value["duration"] = self.duration
        return value

    @classmethod
    def from_annotation(cls, value: Any, where: str) -> "ShardVideo":
        if not isinstance(value, dict) or not all(
                isinstance(value.get(name), str) for name in ("key", "video_id", "path", "member")):
            raise AnnotationError(f"{where}: a video needs the strings key, video_id, path and "
                                  f"member, got {value!r}")
        try:
            actions = tuple((int(c), float(s), float(e)) for c, s, e in value.get("actions", ()))
            label = None if value.get("label") is None else int(value["label"])
            duration = None if value.get("duration") is None else float(value["duration"])
        except (TypeError, ValueError):
            raise AnnotationError(f"{where}: bad label, actions or duration in {value!r}") from None
        return cls(value["key"], value["video_id"], value["path"], value["member"], label,
                   actions, duration)


@dataclass(frozen=True)
class ShardFile:
    """One shard: its file name, bytes, and the keys of its videos in member order."""

    name: str
    bytes: int
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ShardManifest:
    """A split's shards (the ``<split>.json`` file; module docstring).

    Attributes:
        dataset, split: ``data.dataset`` and the split.
        class_names: in index order.
        multilabel: targets are timed actions (``VideoEntry.actions``).
        prefix: the shards' name prefix: the split whose packing they are (a split listing the
            same videos as an earlier one, as Charades' test and val, shares its shards).
        shards: in stream order.
        videos: every packed video, in the split's list order.
        failed: ``(video, reason)`` of the listed videos not packed, in list order: the
            video's key, id, path and annotation (its ``member`` empty).
        excluded: video ids the config's ``data.exclude_file`` left out when packing.
        listed: videos the split listed (after exclusions): ``len(videos) + len(failed)``.
        seed: the seed of the order of videos into shards.
    """

    dataset: str
    split: str
    class_names: tuple[str, ...]
    multilabel: bool
    prefix: str
    shards: tuple[ShardFile, ...]
    videos: tuple[ShardVideo, ...]
    failed: tuple[tuple[ShardVideo, str], ...] = ()
    excluded: tuple[str, ...] = ()
    listed: int = 0
    seed: int = 0

    def to_json(self) -> str:
        value = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
            "dataset": self.dataset, "split": self.split, "multilabel": self.multilabel,
            "prefix": self.prefix, "seed": self.seed,
            "counts": {"listed": self.listed, "packed": len(self.videos),
                       "failed": len(self.failed), "excluded": len(self.excluded),
                       "shards": len(self.shards),
                       "bytes": sum(shard.bytes for shard in self.shards)},
            "class_names": list(self.class_names),
            "shards": [{"name": s.name, "bytes": s.bytes, "keys": list(s.keys)}
                       for s in self.shards],
            "videos": [video.annotation() for video in self.videos],
            "failed": [{**_without_member(video.annotation()), "reason": reason}
                       for video, reason in self.failed],
            "excluded": list(self.excluded),
        }
        return _json_lines(value)

    def entry_path(self, video: ShardVideo, shard: ShardFile) -> str:
        """How messages name a packed video: ``train-000003.tar:00000012.mp4 (a/b.mp4)``."""
        return f"{shard.name}:{video.member} ({video.path})"

    def entries(self) -> tuple[list[VideoEntry], dict[str, str]]:
        """The listed videos as ``VideoEntry`` in list order, packed (``path``: ``entry_path``)
        and not packed (``path``: the file's, as the manifest gives it), and each entry path's
        key."""
        shard_of = {key: shard for shard in self.shards for key in shard.keys}
        listed = [(video, self.entry_path(video, shard_of[video.key])) for video in self.videos]
        listed += [(video, video.path) for video, _ in self.failed]
        entries, keys = [], {}
        for video, path in sorted(listed, key=lambda pair: pair[0].key):  # keys: list positions
            entries.append(VideoEntry(path, video.video_id, video.label, video.actions))
            keys[path] = video.key
        return entries, keys


def _without_member(annotation: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in annotation.items() if name != "member"}


def _json_lines(value: dict[str, Any]) -> str:
    """``value`` as JSON with one line per key, and per item of a list of objects (a manifest
    of 10^5 videos stays readable and compact)."""
    parts = []
    for key, item in value.items():
        if isinstance(item, list) and item and isinstance(item[0], dict):
            rows = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in item)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(item, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def read_manifest(path: str | os.PathLike) -> ShardManifest:
    """The manifest at ``path``.

    Raises:
        AnnotationError: no such file, not a manifest, or videos and shards that disagree
            (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"shard manifest not found: {path} (write the shards with "
                              "data_prep/make_shards.py, or check data.shard_dir)")
    value = parse_json(read_text(path, "shard manifest"), path)
    if not isinstance(value, dict) or value.get("format") != MANIFEST_FORMAT:
        raise AnnotationError(f"{path}: not a videotl shard manifest")
    if value.get("version") != MANIFEST_VERSION:
        raise AnnotationError(f"{path}: manifest version {value.get('version')!r}; this videotl "
                              f"reads version {MANIFEST_VERSION} (write the shards again)")
    try:
        shards = tuple(ShardFile(str(s["name"]), int(s["bytes"]), tuple(map(str, s["keys"])))
                       for s in value["shards"])
        videos = tuple(ShardVideo.from_annotation(v, str(path)) for v in value["videos"])
        manifest = ShardManifest(
            dataset=str(value["dataset"]), split=str(value["split"]),
            class_names=tuple(map(str, value["class_names"])),
            multilabel=bool(value["multilabel"]), prefix=str(value["prefix"]), shards=shards,
            videos=videos,
            failed=tuple((ShardVideo.from_annotation({**f, "member": ""}, str(path)),
                          str(f["reason"])) for f in value.get("failed", ())),
            excluded=tuple(map(str, value.get("excluded", ()))),
            listed=int(value["counts"]["listed"]), seed=int(value.get("seed", 0)))
    except (KeyError, TypeError, ValueError) as error:
        raise AnnotationError(f"{path}: malformed shard manifest ({type(error).__name__}: "
                              f"{error})") from None
    in_shards = [key for shard in shards for key in shard.keys]
    listed = [video.key for video in videos]
    if sorted(in_shards) != sorted(listed) or len(set(listed)) != len(listed):
        raise AnnotationError(f"{path}: the shards' keys and the videos' keys differ")
    if set(listed) & {video.key for video, _ in manifest.failed}:
        raise AnnotationError(f"{path}: a video is listed both as packed and as failed")
    return manifest


def shard_urls(pattern: str, folder: Path, manifest: ShardManifest) -> list[str]:
    """Where each of the manifest's shards is read from: ``folder/<name>`` when ``pattern`` is
    empty, else the URLs of ``pattern`` (``data.shard_urls``: ``{split}`` stands for the
    shards' prefix, braces expand as in WebDataset), one per shard in order, each naming its
    shard's file.

    Raises:
        ConfigError: the pattern gives another number of URLs, or a URL that does not name its
            shard.
    """
    if not pattern:
        return [str(folder / shard.name) for shard in manifest.shards]
    urls = expand_urls(pattern.replace("{split}", manifest.prefix))
    if len(urls) != len(manifest.shards):
        raise ConfigError(f"data.shard_urls={pattern!r} gives {len(urls)} URLs for the "
                          f"{len(manifest.shards)} shards of the {manifest.split} split")
    for url, shard in zip(urls, manifest.shards):
        if shard.name not in url:
            raise ConfigError(f"data.shard_urls={pattern!r}: URL {url!r} does not name shard "
                              f"{shard.name} (the URLs must follow the manifest's shards)")
    return urls


# -- reading ------------------------------------------------------------------------------
def read_shard(url: str, keys: Sequence[str]) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """``(key, video bytes, annotation)`` of the videos ``keys`` of the shard at ``url``, in
    the shard's member order, which ``keys`` must follow. Members of other videos are skipped
    without reading their bytes into memory; reading stops after the last key.

    Raises:
        ShardReadError: the shard cannot be opened or read (a missing file, a failing
            command, a truncated tar), or lacks a key or a member (naming the shard).
    """
    expected = list(keys)
    if not expected:
        return
    wanted = set(expected)
    try:
        stream = gopen(url)
    except Exception as error:  # noqa: BLE001 - any scheme's failure to open, named below
        raise ShardReadError(url, _reason(error)) from None
    position = 0
    try:
        members = tar_file_expander([{"url": url, "stream": stream}], eof_value=None,
                                    select_files=lambda name: base_plus_ext(name)[0] in wanted)
        for sample in group_by_keys(members):
            key = sample["__key__"]
            if key != expected[position]:
                raise ShardReadError(url, f"holds video {key!r} where {expected[position]!r} "
                                          "was expected (the shard and its manifest differ)")
            data, annotation = _split_sample(sample, url)
            yield key, data, annotation
            position += 1
            if position == len(expected):
                return
        raise ShardReadError(url, f"ends before video {expected[position]!r} ({position} of "
                                  f"the {len(expected)} videos read){_exit_status(stream)}")
    except ShardReadError:
        raise
    except Exception as error:  # noqa: BLE001 - tarfile's, the pipe's and WebDataset's errors
        raise ShardReadError(url, f"{_reason(error)}{_exit_status(stream)}") from None
    finally:
        _close(stream)


def _split_sample(sample: dict[str, Any], url: str) -> tuple[bytes, dict[str, Any]]:
    key = sample["__key__"]
    videos = [name for name in sample if not name.startswith("__") and name != ANNOTATION_SUFFIX]
    if ANNOTATION_SUFFIX not in sample or len(videos) != 1:
        raise ShardReadError(url, f"video {key!r} needs one {key}.json and one video member, "
                                  f"found {sorted(n for n in sample if not n.startswith('__'))}")
    try:
        annotation = json.loads(sample[ANNOTATION_SUFFIX])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShardReadError(url, f"{key}.json is not JSON ({error})") from None
    return sample[videos[0]], annotation


def _reason(error: BaseException) -> str:
    # WebDataset appends the stream and URL to an exception's arguments: keep the message.
    text = str(error.args[0]) if error.args else type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    return " ".join(text.split(" @ ")[0].split()) or type(error).__name__


def _close(stream: Any) -> None:
    # A command still writing when reading stops early dies of SIGPIPE: not an error here.
    set_options(stream, ignore_errors=True)
    try:
        stream.close()
    except OSError:
        pass


def _exit_status(stream: Any) -> str:
    """``" (command exit status 1)"`` for a ``pipe:`` whose command failed, else ``""``."""
    if not isinstance(stream, Pipe):
        return ""
    _close(stream)
    status = stream.proc.poll()
    return f" (command exit status {status})" if status not in (None, 0) else ""


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
