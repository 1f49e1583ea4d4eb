"""Kinetics-400/600/700 annotations, in both official forms.

* CSV (``kinetics-400_train.csv``, ``700_2020/annotations/train.csv``, ...): a header row with the
  columns ``label,youtube_id,time_start,time_end,split`` (Kinetics-400 adds ``is_cc``; the
  test files of Kinetics-600/700 have no ``label`` column). Other columns are ignored.
* JSON (``kinetics_train.json``, ...): ``{youtube_id: {"annotations": {"label": ...,
  "segment": [start, end]}, "duration": ..., "subset": ..., "url": ...}}``; test entries may
  have no label (and, when they also lack a segment, are matched by ``<youtube_id>`` only).

A video file counts for an annotation when its name without extension is
``<youtube_id>_<start:06d>_<end:06d>`` (the name the ActivityNet crawler, the CVDF archives and
MMAction2 give trimmed clips) or, failing that, ``<youtube_id>``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from videotl.data.lists import AnnotationError, parse_json, read_text, require_file
from videotl.prep.single_label import Annotation

REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")


def clip_name(youtube_id: str, start: float, end: float) -> str:
    """``"abc_000010_000020"``: the usual file name (without extension) of a trimmed clip."""
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}"


def read_kinetics_annotations(path: Path) -> list[Annotation]:
    """The annotations of one official Kinetics file (``.csv`` or ``.json``).

    Raises:
        AnnotationError: missing file, missing columns, bad times (naming file and line).
    """
    require_file(path, "Kinetics annotation file")
    if path.suffix.lower() == ".json":
        return _from_json(path)
    return _from_csv(path)


def _from_csv(path: Path) -> list[Annotation]:
    reader = csv.DictReader(io.StringIO(read_text(path, "Kinetics annotation file"), newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise AnnotationError(f"{path}: missing columns {missing}; expected a header "
                              "'label,youtube_id,time_start,time_end,split'")
    annotations = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        label = (row.get("label") or "").strip() or None
        annotations.append(_annotation(row["youtube_id"], row["time_start"],
                                       row["time_end"], label, where))
    return annotations


def _from_json(path: Path) -> list[Annotation]:
    content = parse_json(read_text(path, "Kinetics annotation file"), path)
    if not isinstance(content, dict):
        raise AnnotationError(f"{path}: expected an object {{youtube_id: {{...}}}}")
    annotations = []
    for youtube_id, entry in content.items():
        where = f"{path} (entry {youtube_id!r})"
        details = entry.get("annotations") if isinstance(entry, dict) else None
        label = (str(details.get("label") or "").strip() or None) if isinstance(details, dict) \
            else None
        if isinstance(details, dict) and "segment" not in details and label is None:
            annotations.append(Annotation(youtube_id, None, (youtube_id,), where))
            continue
        if not isinstance(details, dict) or "segment" not in details:
            raise AnnotationError(f"{where}: expected {{\"annotations\": {{\"label\": ..., "
                                  "\"segment\": [start, end]}, ...}")
        segment = details["segment"]
        if not isinstance(segment, (list, tuple)) or len(segment) != 2:
            raise AnnotationError(f"{where}: segment must be [start, end], got {segment!r}")
        annotations.append(_annotation(youtube_id, segment[0], segment[1], label, where))
    return annotations


def _annotation(youtube_id: Any, start: Any, end: Any, label: str | None,
                where: str) -> Annotation:
    youtube_id = str(youtube_id or "").strip()
    if not youtube_id:
        raise AnnotationError(f"{where}: empty youtube_id")
    try:
        start_s, end_s = float(start), float(end)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: bad times {start!r}, {end!r}") from None
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s < start_s:
        raise AnnotationError(f"{where}: bad segment [{start_s}, {end_s}]")
    name = clip_name(youtube_id, start_s, end_s)
    return Annotation(name, label, (name, youtube_id), where)
