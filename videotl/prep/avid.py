"""AViD annotations.

The official repository (github.com/piergiaj/AViD, ``dataset/``) releases the classification
splits as JSON objects mapping a video file name to its class name:
``avid_train.json`` / ``avid_val.json`` = ``{"yrpxojhg.mp4": "playing harmonica", ...}``. There is
no separate class-name file; the classes are the labels that occur. A two-column CSV form
(``video,label`` rows, an optional header) is accepted too, for copies converted to CSV.

A video file counts for an annotation when its name without extension equals the annotated
name without extension (so re-encoded ``.mp4`` copies of ``.webm`` files still match).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path, PurePosixPath
from typing import Iterable

from videotl.data.lists import AnnotationError, parse_json, read_text, require_file
from videotl.prep.single_label import Annotation

logger = logging.getLogger(__name__)
NUM_CLASSES = 887  # as the AViD paper reports


def read_avid_annotations(path: Path, drop_labels: Iterable[str] = ()) -> list[Annotation]:
    """The annotations of one AViD split file (``.json`` or ``.csv``), without the videos whose
    label is in ``drop_labels``.

    Raises:
        AnnotationError: missing or malformed file (naming it and the entry).
    """
    require_file(path, "AViD annotation file")
    pairs = _json_pairs(path) if path.suffix.lower() == ".json" else _csv_pairs(path)
    dropped = set(drop_labels)
    annotations, left_out = [], 0
    for name, label, where in pairs:
        name, label = name.strip(), label.strip()
        if not name or not label:
            raise AnnotationError(f"{where}: empty video name or label")
        if label in dropped:
            left_out += 1
        else:
            annotations.append(Annotation(name, label, (PurePosixPath(name).stem,), where))
    if left_out:
        logger.info("%s: left out %d videos labelled %s", path, left_out, sorted(dropped))
    return annotations


def _json_pairs(path: Path) -> list[tuple[str, str, str]]:
    content = parse_json(read_text(path, "AViD annotation file"), path)
    if not isinstance(content, dict) or not all(isinstance(v, str) for v in content.values()):
        raise AnnotationError(f"{path}: expected an object {{\"<video>.mp4\": \"<class name>\"}}")
    return [(name, label, f"{path} (entry {name!r})") for name, label in content.items()]


def _csv_pairs(path: Path) -> list[tuple[str, str, str]]:
    pairs = []
    reader = csv.reader(io.StringIO(read_text(path, "AViD annotation file"), newline=""))
    for row in reader:
        number = reader.line_num
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise AnnotationError(f"{path}:{number}: expected 'video,label', got {row!r}")
        if number == 1 and row[1].strip().lower() in ("label", "class"):
            continue
        pairs.append((row[0], row[1], f"{path}:{number}"))
    return pairs
