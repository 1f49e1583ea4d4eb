"""Finding video files, naming temporary files, writing text files atomically, and the names of
the reports that preparation writes next to the lists."""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
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
# The first bytes of a macOS resource-fork file ("._clip.mp4" beside "clip.mp4" on a copy from a
# Mac): a video extension, no video inside.
APPLE_DOUBLE_MAGIC = b"\x00\x05\x16\x07"


def is_video_name(name: str) -> bool:
    """A file name with a video extension (hidden names too: ``.clip.mp4`` is a video)."""
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


@dataclass
class FolderScan:
    """Everything a search of a folder met, as POSIX paths relative to the folder.

    Attributes:
        videos: files with a video name, sorted: the inputs.
        skipped: ``(path, reason)`` for every other entry, sorted: files that are not videos,
            broken links, folders that cannot be listed or are reached again through a link.
    """

    videos: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def found(self) -> int:
        """Entries met: ``len(videos) + len(skipped)``."""
        return len(self.videos) + len(self.skipped)


def scan_folder(folder: str | os.PathLike, leave_out: Path | None = None) -> FolderScan:
    """Searches ``folder`` recursively, following links, hidden files and folders included.

    ``leave_out``: a folder inside it not to search (an output folder), reported as skipped.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    scan, seen = FolderScan(), set()
    left_out = os.path.realpath(leave_out) if leave_out is not None else None

    def unlistable(error: OSError) -> None:
        scan.skipped.append((_relative(error.filename, folder) + "/",
                             f"cannot be listed ({error.strerror or error})"))

    for current, dirs, files in os.walk(folder, onerror=unlistable, followlinks=True):
        relative = Path(current).relative_to(folder)
        real = os.path.realpath(current)
        if real in seen or real == left_out:
            reason = ("the output folder, not searched" if real == left_out
                      else "a link to a folder searched already")
            scan.skipped.append((relative.as_posix() + "/", reason))
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in files:
            path = (relative / name).as_posix()
            reason = _not_a_video(Path(current) / name)
            if reason:
                scan.skipped.append((path, reason))
            else:
                scan.videos.append(path)
    scan.videos.sort()
    scan.skipped.sort()
    return scan


def _relative(path: str, folder: Path) -> str:
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _not_a_video(path: Path) -> str | None:
    """Why the file ``path`` is no input to re-encode or list (None: it is one)."""
    extension = os.path.splitext(path.name)[1]
    if not is_video_name(path.name):
        return f"not a video file (extension {extension!r})" if extension else \
            "not a video file (no extension)"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken link (its target does not exist)"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not stat.S_ISREG(mode):  # a FIFO or device would block a decoder until its time-out
        return "not a regular file"
    if path.name.startswith("._") and _starts_with(path, APPLE_DOUBLE_MAGIC):
        return "a macOS resource-fork file (AppleDouble), not a video"
    return None


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(len(magic)) == magic
    except OSError:  # unreadable: the decoder reports it
        return False


def find_videos(folder: str | os.PathLike) -> list[str]:
    """The videos of ``scan_folder(folder)``: sorted POSIX paths relative to ``folder``.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
    """
    return scan_folder(folder).videos


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
