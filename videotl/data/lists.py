"""Reading annotation lists: ``path label`` video lists, class-name files, exclusion lists; and
``VideoEntry``, one video of a list."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoEntry:
    """One video of a list.

    Attributes:
        path: the file to read.
        video_id: how the dataset names it (path as listed, or the Charades id).
        label: class index for single-label datasets.
        actions: ``(class, start_s, end_s)`` for datasets with timed actions (multi-label).
    """

    path: str
    video_id: str
    label: int | None = None
    actions: tuple[tuple[int, float, float], ...] = field(default=())


class AnnotationError(ValueError):
    """An annotation file is missing or malformed; the message names the file and line."""


def video_folder(root: str, video_dir: str) -> Path:
    """Where listed video paths are relative to: ``root/video_dir`` (or ``root``)."""
    return Path(root) / video_dir if video_dir else Path(root)


def resolve_path(folder: Path, path: str) -> str:
    """``path`` if absolute, else ``folder / path``."""
    return path if os.path.isabs(path) else str(folder / path)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise AnnotationError(
            f"{what} not found: {path} (check data.root, or set data.synthetic=true to generate "
            "a synthetic dataset there)"
        )
    return path


def read_class_names(path: Path) -> list[str]:
    """Class names in index order, from a ``.txt`` (one per line) or ``.json`` file.

    JSON: a list of names, or a mapping ``{"name": index}`` (as in PySlowFast's
    ``classids.json``) whose indices must be ``0 .. K-1``.
    """
    text = require_file(path, "class-name file").read_text(encoding="utf-8")
    if path.suffix.lower() != ".json":
        names = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        names = _names_from_json(json.loads(text), path)
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise AnnotationError(f"{path}: duplicate class names {duplicates[:5]}")
    if not names:
        raise AnnotationError(f"{path}: no class names")
    return names


def _names_from_json(value: object, path: Path) -> list[str]:
    if isinstance(value, list):
        return [str(name) for name in value]
    if not isinstance(value, dict):
        raise AnnotationError(f"{path}: expected a list of names or a {{name: index}} mapping")
    by_index = {int(index): str(name) for name, index in value.items()}
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(f"{path}: class indices must be 0 .. {len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def read_video_list(
    path: Path, folder: Path, class_names: Sequence[str] | None, num_classes: int
) -> list[VideoEntry]:
    """Reads a PySlowFast-style list: one ``path label`` per line (comma also accepted).

    ``label`` is a class index, or a class name when ``class_names`` is given. ``path`` is
    relative to ``folder`` or absolute and may contain spaces (the label is the last field).
    A first line whose label field reads ``label`` is a header and skipped.
    """
    lines = require_file(path, "video list").read_text(encoding="utf-8").splitlines()
    index_of = {name: i for i, name in enumerate(class_names or [])}
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(",", 1) if "," in line else line.rsplit(None, 1)
        if len(fields) != 2 or not fields[0].strip():
            raise AnnotationError(f"{path}:{number}: expected 'path label', got {line!r}")
        video, label_text = fields[0].strip(), fields[1].strip()
        if number == 1 and label_text.lower() == "label":
            continue
        label = _parse_label(label_text, index_of, num_classes, f"{path}:{number}")
        entries.append(VideoEntry(resolve_path(folder, video), video_id=video, label=label))
    if not entries:
        raise AnnotationError(f"{path}: no videos listed")
    return entries


def _parse_label(text: str, index_of: dict[str, int], num_classes: int, where: str) -> int:
    if text.lstrip("-").isdigit():
        label = int(text)
    elif text in index_of:
        label = index_of[text]
    else:
        raise AnnotationError(f"{where}: label {text!r} is neither a class index nor a class name")
    if not 0 <= label < num_classes:
        raise AnnotationError(f"{where}: label {label} outside [0, {num_classes})")
    return label


def read_exclusions(path: Path) -> list[str]:
    """One video per line; blank lines and ``#`` comments ignored."""
    lines = require_file(path, "exclusion list (data.exclude_file)").read_text(encoding="utf-8")
    return [line.strip() for line in lines.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def apply_exclusions(
    videos: Sequence[VideoEntry], exclude_file: str, root: str, name: str
) -> tuple[list[VideoEntry], list[str]]:
    """Drops the videos listed in ``exclude_file`` (absolute, or relative to ``root``).

    A line matches a video by its id (the path as listed, or the Charades id) or by file path
    (absolute, or relative to ``root``). Returns ``(kept, excluded video ids)`` and logs the
    count. One list may serve all splits: lines matching no video of this split are fine.
    """
    if not exclude_file:
        return list(videos), []
    list_path = Path(exclude_file) if os.path.isabs(exclude_file) else Path(root) / exclude_file
    lines = read_exclusions(list_path)
    wanted = set(lines) | {_normalise(line, root) for line in lines}
    kept, excluded, matched = [], [], set()
    for entry in videos:
        keys = {entry.video_id, _normalise(entry.path, root)}
        hits = keys & wanted
        if hits:
            excluded.append(entry.video_id)
            matched |= hits
        else:
            kept.append(entry)
    unmatched = [line for line in lines if line not in matched
                 and _normalise(line, root) not in matched]
    if excluded:
        logger.info("%s: skipping %d videos listed in %s", name, len(excluded), list_path)
    if unmatched:
        logger.info("%s: %d lines of %s match no video of this split (e.g. %s)",
                    name, len(unmatched), list_path, unmatched[0])
    return kept, excluded


def _normalise(path: str, root: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(root, path)
    return os.path.normpath(os.path.abspath(full))
