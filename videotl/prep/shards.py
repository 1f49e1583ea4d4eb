"""Packing a dataset's splits into tar shards (``data_prep/make_shards.py``), in parallel,
resumably and atomically. The layout, the manifest and the reader: ``videotl.data.shard_format``.

The videos of a split are those the training loaders list (``build_dataset`` with
``data.format=files``: the same lists, the same ``data.exclude_file``), each keyed by its
position in the list (``video_key``). They go into shards in an order drawn once from ``seed``
(a permutation of the list), so that no shard is a run of one class; a shard is closed before
it would pass ``max_bytes`` (the videos' file sizes plus tar headers) or ``max_videos``. A split
listing exactly the videos of an earlier one (Charades' test and val) shares its shards.

Nothing is dropped in silence: a listed video whose file is missing (found while planning) or
that cannot be read or probed with the training reader (``VideoReader``, while packing; it
also gives the duration) is left out of its shard and listed, with the reason, in the summary
and the manifest's ``failed`` (with its annotation: reading the shards reports it as a video
that fails to load, as reading the files would).

Resumable and atomic, as ``videotl.prep.resize``: each shard is a task for a worker process
(``videotl.prep.pool``: a time limit, a crash costs one shard); it is written under a temporary
name (``videotl.files.atomic_write``) and renamed when complete, then its record
``<shard>.record.json`` (what it holds, what failed, and a fingerprint of the plan: keys,
files, sizes, modification times, annotations). A rerun skips every shard whose file and record
match the new plan, rewrites the others, removes temporary files that a killed run left and
shards of this prefix that the plan no longer has, and writes each split's manifest last, so
that an interrupted run leaves no manifest naming an unfinished shard. Tar members carry fixed
metadata (time 0, owner 0): the same plan gives byte-identical shards.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import stat
import tarfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from videotl.data import build_dataset
from videotl.data.lists import VideoEntry, video_folder
from videotl.data.shard_format import (
    ANNOTATION_SUFFIX,
    ShardFile,
    ShardManifest,
    ShardVideo,
    manifest_path,
    shard_name,
    video_key,
)
from videotl.data.video_reader import VideoDecodeError, VideoReader
from videotl.files import atomic_write, remove_stale_temporaries, write_text_atomic
from videotl.prep.pool import TaskResult, run_tasks
from videotl.prep.progress import listed_files

logger = logging.getLogger(__name__)

RECORD_SUFFIX = ".record.json"
MIB = 2 ** 20
# What a video adds to a shard besides its bytes: two 512-byte headers, its annotation and the
# padding of both members to 512 bytes (an estimate: annotations are short).
MEMBER_OVERHEAD = 2048
_SHARD_FILE = re.compile(r"^(?P<prefix>.+)-\d{6}\.tar(?:\.record\.json)?$")


@dataclass(frozen=True)
class PackedVideo:
    """One listed video planned into a shard."""

    key: str
    entry: VideoEntry
    relative: str  # its path relative to the video folder (absolute when outside it)
    member: str  # ``<key>.<ext>``
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ShardJob:
    """One shard to write: its file, record and videos (in member order)."""

    path: Path
    record: Path
    videos: tuple[PackedVideo, ...]
    fingerprint: str


@dataclass(frozen=True)
class ShardRecord:
    """What a written shard holds (its ``.record.json``)."""

    name: str
    fingerprint: str
    bytes: int
    videos: tuple[ShardVideo, ...]
    failed: tuple[tuple[str, str, str, str], ...]  # (key, video id, path, reason)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "fingerprint": self.fingerprint,
                           "bytes": self.bytes,
                           "videos": [video.annotation() for video in self.videos],
                           "failed": [list(item) for item in self.failed]}, indent=1) + "\n"

    @classmethod
    def read(cls, path: Path) -> "ShardRecord | None":
        """The record at ``path``; None when there is none or it cannot be read (the shard is
        then written again)."""
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
            return cls(value["name"], value["fingerprint"], int(value["bytes"]),
                       tuple(ShardVideo.from_annotation(v, str(path)) for v in value["videos"]),
                       tuple((str(k), str(v), str(p), str(r)) for k, v, p, r in value["failed"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass
class SplitPlan:
    """A split's listed videos (after exclusions) and its shards."""

    split: str
    dataset: str
    videos: tuple[VideoEntry, ...]
    class_names: tuple[str, ...]
    multilabel: bool
    excluded: tuple[str, ...]
    seed: int
    prefix: str = ""
    jobs: list[ShardJob] = field(default_factory=list)
    missing: list[tuple[str, str, str, str]] = field(default_factory=list)  # as record.failed


@dataclass
class SplitSummary:
    """What happened to one split."""

    split: str
    prefix: str
    listed: int
    packed: int = 0
    shards: int = 0
    written: int = 0  # shards written by this run
    kept: int = 0  # shards complete from an earlier run
    bytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    manifest: Path | None = None


@dataclass
class ShardSummary:
    """What ``make_shards`` did."""

    out: Path
    splits: list[SplitSummary] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # stale files deleted
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(len(split.failed) for split in self.splits)

    def text(self, limit: int = 20) -> str:
        lines = []
        for split in self.splits:
            shared = f" (the {split.prefix} shards)" if split.prefix != split.split else ""
            lines.append(
                f"{split.split}: {split.listed} videos listed, {split.packed} packed, "
                f"{len(split.failed)} failed; {split.shards} shards{shared}, "
                f"{split.bytes / MIB:.1f} MiB ({split.written} written, {split.kept} complete "
                "before)")
            lines += listed_files(f"{split.split}, failed", split.failed, limit)
        if self.removed:
            lines.append(f"removed {len(self.removed)} stale files: "
                         + ", ".join(self.removed[:5]) + (" ..." if len(self.removed) > 5 else ""))
        if self.interrupted:
            lines.append("interrupted: finished shards are kept and no manifest was written; "
                         "run again to continue")
        lines.append(f"{self.seconds:.1f} s")
        return "\n".join(lines)


def _relative(path: str, folder: Path) -> str:
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return path


def _member(key: str, path: str) -> str:
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if not extension or extension == ANNOTATION_SUFFIX:
        extension = "bin"
    return f"{key}.{extension}"


def plan_split(
    entries: Sequence[VideoEntry], folder: Path, out: Path, prefix: str, seed: int,
    max_bytes: int | None, max_videos: int | None,
) -> tuple[list[ShardJob], list[tuple[str, str, str, str]]]:
    """``(shards, missing videos as (key, video id, path, reason))`` for the listed
    ``entries`` (module docstring: order, limits)."""
    order = np.random.default_rng(seed).permutation(len(entries)).tolist() if entries else []
    groups: list[list[PackedVideo]] = [[]]
    missing, used = [], 0
    for position in order:
        entry, key = entries[position], video_key(position)
        relative = _relative(entry.path, folder)
        try:
            status = os.stat(entry.path)
        except OSError as error:
            missing.append((key, entry.video_id, relative,
                            f"file not found or unreadable ({error.strerror})"))
            continue
        if not stat.S_ISREG(status.st_mode):
            missing.append((key, entry.video_id, relative, "not a regular file"))
            continue
        cost = status.st_size + MEMBER_OVERHEAD
        current = groups[-1]
        if current and ((max_videos and len(current) >= max_videos)
                        or (max_bytes and used + cost > max_bytes)):
            groups.append([])
            used = 0
        groups[-1].append(PackedVideo(key, entry, relative, _member(key, entry.path),
                                      status.st_size, status.st_mtime_ns))
        used += cost
    jobs = []
    for number, videos in enumerate(group for group in groups if group):
        path = out / shard_name(prefix, number)
        jobs.append(ShardJob(path, path.with_name(path.name + RECORD_SUFFIX), tuple(videos),
                             _fingerprint(path.name, videos)))
    missing.sort()
    return jobs, missing


def _fingerprint(name: str, videos: Sequence[PackedVideo]) -> str:
    plan = [name, [[v.key, v.entry.path, v.entry.video_id, v.entry.label,
                    [list(a) for a in v.entry.actions], v.relative, v.member, v.size, v.mtime_ns]
                   for v in videos]]
    return hashlib.sha256(json.dumps(plan).encode("utf-8")).hexdigest()


def complete_record(job: ShardJob) -> ShardRecord | None:
    """The record of ``job``'s shard when a run wrote it for this very plan (else None)."""
    record = ShardRecord.read(job.record)
    if record is None or record.fingerprint != job.fingerprint:
        return None
    try:
        size = job.path.stat().st_size
    except OSError:
        return None
    return record if size == record.bytes else None


def write_shard(job: ShardJob) -> ShardRecord:
    """Writes ``job``'s shard, then its record; a video that cannot be read or probed is left
    out and listed in the record."""
    packed, failed = [], []
    with atomic_write(job.path, "wb") as handle:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for video in job.videos:
                entry = video.entry
                try:
                    data = Path(entry.path).read_bytes()
                except OSError as error:
                    failed.append((video.key, entry.video_id, video.relative,
                                   f"cannot be read ({error.strerror or error})"))
                    continue
                try:
                    with VideoReader(video.relative, data=data) as reader:
                        duration = round(reader.duration, 6)
                except VideoDecodeError as error:
                    failed.append((video.key, entry.video_id, video.relative, error.reason))
                    continue
                shard_video = ShardVideo(video.key, entry.video_id, video.relative, video.member,
                                         entry.label, entry.actions, duration)
                annotation = json.dumps(shard_video.annotation(), sort_keys=True,
                                        ensure_ascii=False).encode("utf-8")
                _add_member(tar, f"{video.key}.{ANNOTATION_SUFFIX}", annotation)
                _add_member(tar, video.member, data)
                packed.append(shard_video)
    record = ShardRecord(job.path.name, job.fingerprint, job.path.stat().st_size, tuple(packed),
                         tuple(failed))
    write_text_atomic(job.record, record.to_json())
    return record


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o444, 0  # fixed: identical shards on reruns
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def make_shards(
    cfg: Any,
    out: str | os.PathLike,
    splits: Sequence[str] = ("train", "val", "test"),
    max_bytes: int | None = 256 * MIB,
    max_videos: int | None = None,
    seed: int = 0,
    jobs: int | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> ShardSummary:
    """Packs ``splits`` of the config's dataset into shards in ``out`` (module docstring).

    Args:
        cfg: an experiment config (``data.*`` chooses the dataset and its lists).
        max_bytes, max_videos: shard limits (None: no limit of that kind; not both).
        seed: the seed of the order of videos into shards.
        jobs: worker processes (default: the CPU cores); each writes one shard at a time.
        timeout: seconds one shard may take before its worker is killed and its videos are
            reported (None: no limit).

    Raises:
        ValueError: no shard limit, or a limit below 1.
        AnnotationError: missing or malformed lists (as ``build_dataset``).
    """
    if max_bytes is None and max_videos is None:
        raise ValueError("shards need a size limit, a video limit or both")
    for name, value in (("shard size", max_bytes), ("videos per shard", max_videos)):
        if value is not None and value < 1:
            raise ValueError(f"the {name} must be at least 1, got {value}")
    start = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = ShardSummary(out)
    summary.removed += [path.name for path in remove_stale_temporaries(out)]
    plans = _plan(cfg, out, splits, seed, max_bytes, max_videos)
    own = {job.path.name for plan in plans for job in plan.jobs}
    own |= {name + RECORD_SUFFIX for name in own}
    prefixes = {plan.prefix for plan in plans}
    stale = [path for path in sorted(out.iterdir()) if path.name not in own and
             (match := _SHARD_FILE.match(path.name)) and match["prefix"] in prefixes]
    unique = {job.path: job for plan in plans for job in plan.jobs}
    records = {path: complete_record(job) for path, job in unique.items()}
    todo = [job for path, job in unique.items() if records[path] is None]
    if todo or stale:  # no manifest may name a shard that is about to change
        for plan in plans:
            manifest_path(out, plan.split).unlink(missing_ok=True)
    for path in stale:
        path.unlink(missing_ok=True)
        summary.removed.append(path.name)
    if stale:
        logger.info("removed %d shards and records the plan no longer has", len(stale))
    written = set()
    errors: dict[Path, str] = {}
    try:
        for result in run_tasks(write_shard, todo, jobs=jobs, timeout=timeout,
                                description="packing shards", progress=progress):
            _collect(result, records, errors)
            if result.ok:
                written.add(result.task.path)
    except KeyboardInterrupt:  # the workers are stopped; finished shards are kept
        summary.interrupted = True
    summary.removed += [path.name for path in remove_stale_temporaries(out)]
    for plan in plans:
        summary.splits.append(_finish(plan, records, errors, written, out,
                                      write=not summary.interrupted))
    summary.seconds = time.monotonic() - start
    return summary


def _plan(cfg: Any, out: Path, splits: Sequence[str], seed: int, max_bytes: int | None,
          max_videos: int | None) -> list[SplitPlan]:
    files = replace(cfg, data=replace(cfg.data, format="files"))
    folder = video_folder(cfg.data.root, cfg.data.video_dir)
    plans: list[SplitPlan] = []
    for split in dict.fromkeys(splits):
        dataset = build_dataset(files, split)
        plan = SplitPlan(split, cfg.data.dataset, tuple(dataset.videos),
                         tuple(dataset.class_names), dataset.multilabel,
                         tuple(dataset.excluded), seed)
        earlier = next((p for p in plans if p.videos == plan.videos), None)
        if earlier is not None:  # the same videos: the same shards
            plan.prefix, plan.jobs, plan.missing = earlier.prefix, earlier.jobs, earlier.missing
        else:
            plan.prefix = split
            plan.jobs, plan.missing = plan_split(plan.videos, folder, out, split, seed,
                                                 max_bytes, max_videos)
        plans.append(plan)
    return plans


def _collect(result: TaskResult, records: dict[Path, ShardRecord | None],
             errors: dict[Path, str]) -> None:
    job = result.task
    if result.ok:
        records[job.path] = result.value
    else:
        errors[job.path] = result.error
        logger.warning("shard %s failed: %s", job.path.name, result.error)


def _unpacked(plan: SplitPlan, key: str, path: str) -> ShardVideo:
    """The manifest's row of a video not packed: its annotation, so that reading the shards
    keeps it among the split's videos (as a video that fails to load)."""
    entry = plan.videos[int(key)]  # keys are list positions
    return ShardVideo(key, entry.video_id, path, "", entry.label, entry.actions)


def _finish(plan: SplitPlan, records: dict[Path, ShardRecord | None], errors: dict[Path, str],
            written: set[Path], out: Path, write: bool) -> SplitSummary:
    """The split's summary; writes its manifest (when ``write``) from the shards' records."""
    summary = SplitSummary(plan.split, plan.prefix, len(plan.videos))
    shards, videos, failed = [], [], list(plan.missing)
    for job in plan.jobs:
        record = records.get(job.path)
        if record is None:
            reason = f"shard {job.path.name} not written: {errors.get(job.path, 'interrupted')}"
            failed += [(v.key, v.entry.video_id, v.relative, reason) for v in job.videos]
            continue
        shards.append(ShardFile(record.name, record.bytes, tuple(v.key for v in record.videos)))
        videos += record.videos
        failed += record.failed
        summary.written += job.path in written and plan.prefix == plan.split
    failed.sort()  # list order (keys are list positions)
    summary.kept = len(shards) - summary.written if plan.prefix == plan.split else 0
    summary.shards, summary.packed = len(shards), len(videos)
    summary.bytes = sum(shard.bytes for shard in shards)
    summary.failed = [(path, reason) for _, _, path, reason in failed]
    if write:
        manifest = ShardManifest(
            dataset=plan.dataset, split=plan.split, class_names=plan.class_names,
            multilabel=plan.multilabel, prefix=plan.prefix, shards=tuple(shards),
            videos=tuple(sorted(videos, key=lambda video: video.key)),
            failed=tuple((_unpacked(plan, key, path), reason) for key, _, path, reason in failed),
            excluded=plan.excluded, listed=len(plan.videos), seed=plan.seed)
        summary.manifest = manifest_path(out, plan.split)
        write_text_atomic(summary.manifest, manifest.to_json())
    return summary
