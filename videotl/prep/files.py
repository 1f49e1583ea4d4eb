"""Finding video files, naming temporary files, writing text files atomically, and the names of
the reports that preparation writes next to the lists."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from videotl.data.lists import Comment, name_list_text

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".flv", ".3gp", ".mpg", ".mpeg", ".ts",
    ".wmv", ".ogv",
})
PART_SUFFIX = ".part"
MISSING_FILE = "missing_videos.txt"  # annotated videos without a file
UNLISTED_FILE = "unlisted_videos.txt"  # video files that no annotation names


def is_video_name(name: str) -> bool:
    """A visible file with a video extension (hidden files, e.g. partial outputs, are not)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def find_videos(folder: str | os.PathLike) -> list[str]:
    """Video files under ``folder`` (recursively, following links, skipping hidden folders),
    as sorted POSIX paths relative to ``folder``.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    found, seen = [], set()
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = Path(current).relative_to(folder)
        found.extend((relative / name).as_posix() for name in files if is_video_name(name))
    return sorted(found)


def unlistable_reason(path: str) -> str | None:
    """Why ``path`` cannot be written as one line of a video list (None if it can): those lists
    are read line by line, stripped, with ``#`` starting a comment. (Name lists such as
    exclusion lists quote such names: ``videotl.data.lists.name_line``.)"""
    if "\n" in path or "\r" in path:
        return "the name contains a line break"
    if path != path.strip():
        return "the name starts or ends with white space"
    if path.startswith("#"):
        return "the name starts with '#' (a comment in list files)"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not valid UTF-8"
    return None


def part_path(final: Path) -> Path:
    """Where ``final`` is written before being renamed into place: a hidden file in the same
    folder (same file system, so the rename is atomic), ignored by ``find_videos``."""
    return final.with_name(f".{final.name}{PART_SUFFIX}")


def write_text_atomic(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX,
                                         dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_lines(path: Path, lines: Iterable[str]) -> None:
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))


def write_name_list(path: Path, items: Iterable[str | Comment]) -> None:
    """Writes a name list (exclusion list, missing or unlisted videos) in the one format that
    ``videotl.data.lists.read_name_list`` reads back: any name, ``#`` comments."""
    write_text_atomic(path, name_list_text(items))


def video_dir_setting(video_dir: Path, root: Path) -> str:
    """``data.video_dir`` for videos in ``video_dir``: relative to ``root`` (``data.root``)
    when inside it, else absolute."""
    try:
        return video_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(video_dir.resolve())
