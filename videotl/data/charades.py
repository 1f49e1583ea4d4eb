"""Charades v1 (157 action classes, multi-label, ~30 s videos), from the official release files.

Under ``data.root``: ``Charades_v1_train.csv`` ("train") and ``Charades_v1_test.csv`` ("val" and
"test"), with columns ``id, subject, scene, quality, relevance, verified, script, objects,
descriptions, actions, length`` where ``actions`` reads ``c092 11.90 21.20;c147 0.00 12.60``
(class, start and end in seconds); ``Charades_v1_classes.txt`` with lines ``c000 Holding some
clothes``; videos ``<id>.mp4`` in ``data.video_dir`` (``Charades_v1_480`` in
``configs/charades/base.yaml``).

A training clip's target holds the actions whose interval overlaps the clip's time span; a
video's target (evaluation) holds all its actions. Per-view outputs are merged per video by
their maximum (``view_aggregation = "max"``), as in the paper's "merging their output responses".
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from videotl.data.lists import (
    AnnotationError,
    IgnoredLines,
    VideoEntry,
    read_text,
    video_folder,
)
from videotl.data.registry import DatasetSpec, VideoList, register_dataset

# The columns of the official CSVs, in order (the loader needs ``id`` and ``actions``).
COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script", "objects",
           "descriptions", "actions", "length")


def read_charades_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    """``(names, {"c000": 0, ...})`` from lines ``c000 Holding some clothes``."""
    text = read_text(path, "Charades class list")
    names, index_of = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        code, _, name = line.strip().partition(" ")
        if not code or code in index_of:
            raise AnnotationError(f"{path}:{number}: expected a new 'cNNN name' line, got {line!r}")
        index_of[code] = len(names)
        names.append(name.strip() or code)
    if not names:
        raise AnnotationError(f"{path}: no classes")
    return names, index_of


def read_charades_class_names(path: Path) -> list[str]:
    """Class names in index order from lines ``c000 Holding some clothes``."""
    return read_charades_classes(path)[0]


# The test file serves as validation too: the release has no separate validation split.
CHARADES = DatasetSpec(
    name="charades", multilabel=True, view_aggregation="max",
    train_file="Charades_v1_train.csv", val_file="Charades_v1_test.csv",
    test_file="Charades_v1_test.csv", class_file="Charades_v1_classes.txt",
    read_classes=read_charades_class_names, video_dir="Charades_v1_480",
)


def parse_actions(
    text: str, index_of: dict[str, int], where: str
) -> tuple[tuple[int, float, float], ...]:
    """``"c092 11.90 21.20;c147 0.00 12.60"`` -> ``((92, 11.9, 21.2), (147, 0.0, 12.6))``
    (class indices from the class list)."""
    actions = []
    for part in text.split(";"):
        if not part.strip():
            continue
        fields = part.split()
        if len(fields) != 3 or fields[0] not in index_of:
            raise AnnotationError(f"{where}: bad action {part.strip()!r}; expected 'cNNN start end'"
                                  " with a class from the class list")
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise AnnotationError(f"{where}: bad times in action {part.strip()!r}") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise AnnotationError(f"{where}: bad times in action {part.strip()!r}")
        actions.append((index_of[fields[0]], start, end))
    return tuple(actions)


def read_charades_csv(path: Path, folder: Path, index_of: dict[str, int]) -> list[VideoEntry]:
    """Videos of an official Charades CSV, each with its timed actions (an empty ``actions``
    field is a video without actions, kept). A row repeating an earlier id with the same
    actions is left out and reported in one warning.

    Raises:
        AnnotationError: missing columns, a row with too few or too many fields, an empty id,
            a bad action, an id repeated with other actions, or no rows (naming file and line).
    """
    # newline="": quoted fields (descriptions) may hold line breaks, as csv expects.
    reader = csv.DictReader(io.StringIO(read_text(path, "Charades annotation file"), newline=""))
    missing = [c for c in ("id", "actions") if c not in (reader.fieldnames or [])]
    if missing:
        raise AnnotationError(f"{path}: missing columns {missing}; expected {list(COLUMNS)}")
    entries: list[VideoEntry] = []
    first_row: dict[str, int] = {}  # id -> index in entries
    ignored = IgnoredLines(path)
    for row in reader:
        video_id = (row["id"] or "").strip()
        where = f"{path}:{reader.line_num} (id {video_id})"
        _check_fields(row, len(reader.fieldnames or ()), where)
        if not video_id:
            raise AnnotationError(f"{where}: empty id")
        entry = VideoEntry(str(folder / f"{video_id}.mp4"), video_id,
                           actions=parse_actions(row["actions"], index_of, where))
        if video_id in first_row:
            if entries[first_row[video_id]].actions != entry.actions:
                raise AnnotationError(f"{where}: id {video_id!r} repeated with other actions")
            ignored.add(reader.line_num, "repeated ids", video_id)
            continue
        first_row[video_id] = len(entries)
        entries.append(entry)
    ignored.report()
    if not entries:
        raise AnnotationError(f"{path}: no videos")
    return entries


def _check_fields(row: dict, expected: int, where: str) -> None:
    """A row shorter than the header would lose its actions, a longer one (an unquoted comma)
    would shift them: both are errors, never read as 'no actions'."""
    count = expected + len(row.get(None) or ()) - sum(value is None for value in row.values())
    if count != expected:
        raise AnnotationError(f"{where}: {count} fields, expected {expected} as in the header "
                              "(a comma in an unquoted field?)")


@register_dataset(CHARADES)
def read_charades(split: str, root: str, video_dir: str, class_names_file: str) -> VideoList:
    """Charades v1 (multi-label; per-view scores merged by maximum): the videos of ``split``
    with their timed actions, from the official files under ``root``."""
    names, index_of = read_charades_classes(Path(root) / (class_names_file or CHARADES.class_file))
    videos = read_charades_csv(Path(root) / CHARADES.split_file(split),
                               video_folder(root, video_dir), index_of)
    return VideoList(videos, names)
