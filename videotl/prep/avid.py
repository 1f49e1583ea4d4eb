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
import json
from pathlib import Path, PurePosixPath
from typing import Iterable

from videotl.data.lists import AnnotationError, require_file
from videotl.prep.single_label import Annotation

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
    annotations = []
    for name, label, where in pairs:
        name, label = name.strip(), label.strip()
        if not name or not label:
            raise AnnotationError(f"{where}: empty video name or label")
        if label not in dropped:
            annotations.append(Annotation(name, label, (PurePosixPath(name).stem,), where))
    return annotations


def _json_pairs(path: Path) -> list[tuple[str, str, str]]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(content, dict) or not all(isinstance(v, str) for v in content.values()):
        raise AnnotationError(f"{path}: expected an object {{\"<video>.mp4\": \"<class name>\"}}")
    return [(name, label, f"{path} (entry {name!r})") for name, label in content.items()]


def _csv_pairs(path: Path) -> list[tuple[str, str, str]]:
    pairs = []
    with path.open(newline="", encoding="utf-8-sig") as stream:
        for number, row in enumerate(csv.reader(stream), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise AnnotationError(f"{path}:{number}: expected 'video,label', got {row!r}")
            if number == 1 and row[1].strip().lower() in ("label", "class"):
                continue
            pairs.append((row[0], row[1], f"{path}:{number}"))
    return pairs
