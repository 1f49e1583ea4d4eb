"""Verifying a dataset's videos with the reader training uses, and writing the unreadable ones
to an exclusion list (``data.exclude_file``).

The videos are those the dataset builders list for a config (``build_dataset``: same lists,
same exclusions). Each video is opened with ``VideoReader`` (the config's ``data.decoder``,
with its automatic PyAV fallback) in a worker process with a time limit, and its frames are
decoded in chunks: all of them, or ``frames`` evenly spaced ones for a quick check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Sequence

from videotl.data import build_dataset
from videotl.data.lists import Comment, read_exclusions
from videotl.data.video_reader import VideoDecodeError, VideoReader
from videotl.prep.files import write_name_list
from videotl.prep.pool import run_tasks
from videotl.prep.progress import listed_files

CHUNK = 32  # frames decoded per call: bounded memory for long videos


@dataclass(frozen=True)
class VideoCheck:
    """One video to check: ``video_id`` as its list names it, ``path`` the file."""

    video_id: str
    path: str
    backend: str
    short_side: int | None
    frames: int | None  # None: every frame


@dataclass(frozen=True)
class CheckOutcome:
    """``error``: why the video cannot be read (None if it can); ``note``: a readable video's
    oddity (a decoder fallback, frames lost at the end)."""

    frames: int
    error: str | None = None
    note: str | None = None


@dataclass
class Verification:
    """What ``verify_videos`` found."""

    checked: int
    unreadable: list[tuple[str, str]]  # (video id, reason)
    notes: list[tuple[str, str]]
    previously_excluded: list[str]

    def text(self, limit: int = 20) -> str:
        lines = [f"{self.checked} videos checked: {len(self.unreadable)} unreadable, "
                 f"{len(self.notes)} readable with notes"]
        lines += listed_files("unreadable", self.unreadable, limit)
        lines += listed_files("notes", self.notes, limit)
        return "\n".join(lines)


def check_video(check: VideoCheck) -> CheckOutcome:
    """Opens and decodes one video as training does; never raises for a bad video."""
    try:
        with VideoReader(check.path, backend=check.backend, short_side=check.short_side,
                         num_threads=1) as reader:
            indexed = reader.num_frames
            wanted = _indices(indexed, check.frames)
            for start in range(0, len(wanted), CHUNK):
                reader.get_frames([min(i, reader.num_frames - 1)
                                   for i in wanted[start:start + CHUNK]])
            notes = []
            if reader.backend != check.backend:
                notes.append(f"{check.backend} cannot decode it; the PyAV fallback can")
            if reader.num_frames < indexed:
                notes.append(f"only {reader.num_frames} of {indexed} indexed frames decode")
            return CheckOutcome(len(wanted), note="; ".join(notes) or None)
    except VideoDecodeError as error:
        return CheckOutcome(0, error=error.reason)


def _indices(count: int, frames: int | None) -> list[int]:
    if frames is None or frames >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / max(frames - 1, 1)) for i in range(frames)})


def listed_videos(cfg: Any, splits: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(video id, path)], excluded ids)`` over ``splits``, each file once, in list order
    (the listed files, also when the config reads tar shards: ``data.format``)."""
    videos: dict[str, str] = {}
    excluded: dict[str, None] = {}
    files = replace(cfg, data=replace(cfg.data, format="files"))
    for split in splits:
        dataset = build_dataset(files, split)
        for entry in dataset.videos:
            videos.setdefault(entry.path, entry.video_id)
        excluded.update(dict.fromkeys(dataset.excluded))
    return [(video_id, path) for path, video_id in videos.items()], list(excluded)


def verify_videos(
    cfg: Any,
    splits: Sequence[str] = ("train", "val", "test"),
    sample: int | None = None,
    seed: int = 0,
    frames: int | None = None,
    short_side: int | None = None,
    jobs: int | None = None,
    timeout: float | None = 120.0,
    progress: bool = True,
) -> Verification:
    """Checks the videos of ``splits`` (or a random ``sample`` of them).

    Args:
        cfg: an experiment config (``data.*`` chooses the dataset, lists and decoder).
        frames: decode this many evenly spaced frames per video (None: all).
        short_side: decode at this short side (None: native size).
        timeout: seconds per video before its process is killed and the video reported.
    """
    videos, excluded = listed_videos(cfg, splits)
    if sample is not None and sample < len(videos):
        videos = random.Random(seed).sample(videos, sample)
    checks = [VideoCheck(video_id, path, cfg.data.decoder, short_side, frames)
              for video_id, path in videos]
    unreadable, notes = [], []
    for result in run_tasks(check_video, checks, jobs=jobs, timeout=timeout,
                            description="verifying", progress=progress):
        video_id = result.task.video_id
        if not result.ok:
            unreadable.append((video_id, result.error))
        elif result.value.error:
            unreadable.append((video_id, result.value.error))
        elif result.value.note:
            notes.append((video_id, result.value.note))
    order = {video_id: n for n, (video_id, _) in enumerate(videos)}
    unreadable.sort(key=lambda item: order[item[0]])
    notes.sort(key=lambda item: order[item[0]])
    return Verification(len(checks), unreadable, notes, excluded)


def previous_exclusions(cfg: Any) -> list[str]:
    """The lines of the config's ``data.exclude_file`` (none when it is not set)."""
    name = cfg.data.exclude_file
    if not name:
        return []
    path = Path(name) if Path(name).is_absolute() else Path(cfg.data.root) / name
    return read_exclusions(path)


def write_exclusions(path: Path, verification: Verification,
                     previous: Sequence[str] = (), previous_file: str = "") -> None:
    """Writes the unreadable videos (each after a ``# reason`` comment) after the names of the
    previous exclusion list, as a name list (``videotl.data.lists``) that ``data.exclude_file``
    reads back unchanged, whatever the names."""
    items: list[str | Comment] = [
        Comment(f"Videos that failed verification with the training reader ({date.today()})."),
        Comment("Use as data.exclude_file; lines starting with '#' are comments, a name in "
                "double quotes is a JSON string.")]
    if previous:
        items.append(Comment(f"Excluded before, by {previous_file or 'data.exclude_file'}:"))
        items.extend(previous)
    for video_id, reason in verification.unreadable:
        items += [Comment(reason), video_id]
    write_name_list(Path(path), items)
