"""Reading annotation lists: ``path label`` video lists, class-name files, name lists (exclusion
lists, missing-video reports); and ``VideoEntry``, one video of a list.

Every list is UTF-8 text; a byte-order mark (as Windows editors write) is not part of the first
line. Lines a reader leaves out (comments, repeated entries, blank lines that would shift class
indices) are counted and reported in one warning per file, never dropped without a word.

Name lists (``data.exclude_file``, ``missing_videos.txt``) hold one name per line. A name that
would not read back unchanged from a plain line (it starts with ``#`` or ``"``, has white space
at an end, or holds a line break or another unprintable character) is written as a JSON string
in double quotes; plain names stay plain, so hand-written lists keep working. ``name_line`` and
``read_name_list`` are the one writer and the one reader of that format.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from videotl.errors import InputError

logger = logging.getLogger(__name__)

# A byte-order mark at the start is dropped by this codec (and only there).
ENCODING = "utf-8-sig"
# ASCII digits only: str.isdigit() also accepts '²', which int() then refuses.
_INTEGER = re.compile(r"[+-]?[0-9]+")
EXAMPLES = 3  # lines quoted in a warning about ignored lines


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


class AnnotationError(InputError, ValueError):
    """An annotation file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Comment:
    """A comment line of a name list (``# text``)."""

    text: str


class IgnoredLines:
    """The lines a reader leaves out of one file, reported together in one warning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[tuple[int, str, str]] = []  # (line number, why, the line)

    def add(self, number: int, why: str, line: str) -> None:
        self.lines.append((number, why, line))

    def report(self) -> None:
        """Logs one warning with the count per reason and the first few lines (nothing when no
        line was left out)."""
        if not self.lines:
            return
        counts = Counter(why for _, why, _ in self.lines)
        reasons = ", ".join(f"{count} {why}" for why, count in counts.items())
        examples = "; ".join(f"line {number}: {printable(line)!r}"
                             for number, _, line in self.lines[:EXAMPLES])
        more = f"; ... and {len(self.lines) - EXAMPLES} more" if len(self.lines) > EXAMPLES else ""
        logger.warning("%s: %d lines ignored (%s), e.g. %s%s", self.path, len(self.lines),
                       reasons, examples, more)


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


def read_text(path: Path, what: str) -> str:
    """The text of the annotation file ``path`` (UTF-8, without a byte-order mark).

    Raises:
        AnnotationError: no such file, or bytes that are not UTF-8 (naming the line).
    """
    data = require_file(path, what).read_bytes()
    try:
        return data.decode(ENCODING)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise AnnotationError(f"{path}:{line}: not UTF-8 text (byte "
                              f"{data[error.start:error.start + 1]!r} at offset {error.start})"
                              ) from None


def printable(text: str) -> str:
    """``text`` on one line for messages: bytes of undecodable file names as ``\\xff``, line
    breaks, tabs and other unprintable characters as Python escapes (``\\n``)."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte: escaped below
        pass
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def read_class_names(path: Path) -> list[str]:
    """Class names in index order, from a ``.txt`` (one per line) or ``.json`` file.

    JSON: a list of names, or a mapping ``{"name": index}`` (as in PySlowFast's
    ``classids.json``) whose indices must be ``0 .. K-1``. In a ``.txt`` file line ``i`` holds
    class ``i``: blank lines before the last name are left out and reported (they would shift
    the indices of the names after them).
    """
    text = read_text(path, "class-name file")
    if path.suffix.lower() != ".json":
        names = _names_from_lines(text.splitlines(), path)
    else:
        names = _names_from_json(parse_json(text, path), path)
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise AnnotationError(f"{path}: duplicate class names {duplicates[:5]}")
    if not names:
        raise AnnotationError(f"{path}: no class names")
    return names


def _names_from_lines(lines: Sequence[str], path: Path) -> list[str]:
    last = max((n for n, line in enumerate(lines) if line.strip()), default=-1)
    ignored, names = IgnoredLines(path), []
    for number, line in enumerate(lines[:last + 1], start=1):
        if line.strip():
            names.append(line.strip())
        else:
            ignored.add(number, "blank lines between class names", line)
    ignored.report()
    return names


def parse_json(text: str, path: Path) -> object:
    """The JSON value of ``text`` (the contents of ``path``).

    Raises:
        AnnotationError: not JSON, or an object giving a key twice (naming file and line).
    """

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:  # json.loads would silently keep the last one
            raise AnnotationError(f"{path}: keys given twice: {repeated[:5]}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def _names_from_json(value: object, path: Path) -> list[str]:
    if isinstance(value, list):
        wrong = [name for name in value if not isinstance(name, str)]
        if wrong:
            raise AnnotationError(f"{path}: class names must be strings, got {wrong[0]!r}")
        return list(value)
    if not isinstance(value, dict):
        raise AnnotationError(f"{path}: expected a list of names or a {{name: index}} mapping")
    by_index: dict[int, str] = {}
    for name, index in value.items():
        number = _json_index(index)
        if number is None:
            raise AnnotationError(f"{path}: class {name!r} has index {index!r}, not an integer")
        if number in by_index:
            raise AnnotationError(f"{path}: classes {by_index[number]!r} and {name!r} share "
                                  f"index {number}")
        by_index[number] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(f"{path}: class indices must be 0 .. {len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def _json_index(value: object) -> int | None:
    """An integer index given as a JSON number or a string of digits (None otherwise)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


def read_video_list(
    path: Path, folder: Path, class_names: Sequence[str] | None, num_classes: int
) -> list[VideoEntry]:
    """Reads a PySlowFast-style list: one ``path label`` per line (comma also accepted).

    ``label`` is a class index, or a class name when ``class_names`` is given. ``path`` is
    relative to ``folder`` or absolute and may contain spaces (the label is the last field).
    A first line whose label field reads ``label`` is a header and skipped. Blank lines are
    skipped; ``#`` comment lines and exact repeats of an earlier row (same video, same label)
    are left out and reported in one warning. A video listed again with another label is kept.

    Raises:
        AnnotationError: a malformed line, a label that is not an integer in
            ``[0, num_classes)`` nor a class name, or no videos (naming the file, line and
            value).
    """
    lines = read_text(path, "video list").splitlines()
    index_of = {name: i for i, name in enumerate(class_names or [])}
    entries: list[VideoEntry] = []
    rows: set[tuple[str, int]] = set()  # (video as listed, label)
    ignored = IgnoredLines(path)
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            ignored.add(number, "comment lines", text)
            continue
        fields = text.rsplit(",", 1) if "," in text else text.rsplit(None, 1)
        if len(fields) != 2 or not fields[0].strip():
            raise AnnotationError(f"{path}:{number}: expected 'path label', got {text!r}")
        video, label_text = fields[0].strip(), fields[1].strip()
        if number == 1 and label_text.lower() == "label":
            continue
        label = _parse_label(label_text, index_of, num_classes, f"{path}:{number}")
        if (video, label) in rows:  # it would only weigh the video twice
            ignored.add(number, "repeated rows", text)
            continue
        rows.add((video, label))
        entries.append(VideoEntry(resolve_path(folder, video), video_id=video, label=label))
    ignored.report()
    if not entries:
        raise AnnotationError(f"{path}: no videos listed")
    return entries


def _parse_label(text: str, index_of: dict[str, int], num_classes: int, where: str) -> int:
    if _INTEGER.fullmatch(text):
        label = int(text)
    elif text in index_of:
        label = index_of[text]
    else:
        raise AnnotationError(f"{where}: label {text!r} is neither a class index (an integer) "
                              "nor a class name")
    if not 0 <= label < num_classes:
        raise AnnotationError(f"{where}: label {text} outside [0, {num_classes})")
    return label


def name_line(name: str) -> str:
    """The line listing ``name`` in a name list: ``name`` itself when a plain line reads back as
    it, else ``name`` as a JSON string, with every unprintable character escaped (``\\n``,
    ``\\udcff`` for an undecodable byte of a file name) so that it stays one readable line."""
    if name and name == name.strip() and name.isprintable() and not name.startswith(("#", '"')):
        return name
    quoted = json.dumps(name, ensure_ascii=False)
    return "".join(char if char.isprintable() else json.dumps(char)[1:-1] for char in quoted)


def comment_line(text: str) -> str:
    """``# text`` on one line (line breaks and other unprintable characters escaped)."""
    return f"# {printable(' '.join(text.split()))}" if text.strip() else "#"


def name_list_text(items: Iterable[str | Comment]) -> str:
    """The text of a name list: one line per name (``name_line``) or ``Comment``."""
    return "".join(f"{comment_line(item.text) if isinstance(item, Comment) else name_line(item)}\n"
                   for item in items)


def read_name_list(path: Path, what: str) -> list[str]:
    """The names of a name list, in order (the format: the module docstring). Blank lines and
    lines starting with ``#`` are skipped; a line starting with ``"`` is one JSON string; any
    other line is a name, without the white space at its ends.

    Raises:
        AnnotationError: no such file, not UTF-8, or a quoted line that is not one JSON string
            (naming the file and line).
    """
    names = []
    for number, line in enumerate(read_text(path, what).splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        names.append(_unquote(text, f"{path}:{number}") if text.startswith('"') else text)
    return names


def _unquote(text: str, where: str) -> str:
    try:
        name = json.loads(text)
    except json.JSONDecodeError:
        name = None
    if not isinstance(name, str):
        raise AnnotationError(f"{where}: a line starting with '\"' must be one JSON string "
                              f"(a quoted name), got {text!r}")
    return name


def read_exclusions(path: Path) -> list[str]:
    """The names of the exclusion list ``path`` (``read_name_list``)."""
    return read_name_list(path, "exclusion list (data.exclude_file)")


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
                    name, len(unmatched), list_path, printable(unmatched[0]))
    return kept, excluded


def _normalise(path: str, root: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(root, path)
    return os.path.normpath(os.path.abspath(full))
