"""Charades v1: the loader reads the official files unchanged (``videotl.data.charades``), so
preparing means checking them with the loader's own parsers, copying them into ``data.root``,
and matching the annotated ids to ``<video_dir>/<id>.mp4``.

Annotated videos without a file are written, one id per line (quoted where an id would not read
back from a plain line: ``videotl.data.lists.name_line``), to ``missing_videos.txt``: an
exclusion list (``data.exclude_file``) that keeps the loaders from trying them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from videotl.data.charades import CHARADES, read_charades_classes, read_charades_csv
from videotl.data.lists import Comment
from videotl.prep.files import (
    MISSING_FILE,
    UNLISTED_FILE,
    find_videos,
    video_dir_setting,
    write_name_list,
)


@dataclass
class CharadesReport:
    """The outcome of ``prepare_charades``."""

    output: Path
    video_dir: Path
    num_classes: int
    videos: dict[str, int]  # annotation file -> videos annotated
    missing: dict[str, list[str]]  # annotation file -> ids without <id>.mp4
    unlisted: list[str]  # video files that are not <id>.mp4 of an annotated id

    def config_overrides(self) -> list[str]:
        overrides = [f"data.root={self.output}",
                     f"data.video_dir={video_dir_setting(self.video_dir, self.output)}"]
        if any(self.missing.values()):
            overrides.append(f"data.exclude_file={MISSING_FILE}")
        return overrides

    def summary(self) -> str:
        lines = [f"{self.num_classes} classes; annotation files copied to {self.output}"]
        for name, count in self.videos.items():
            lines.append(f"{name}: {count} videos, {len(self.missing[name])} without a file")
        if any(self.missing.values()):
            lines.append(f"ids without a video (an exclusion list): {self.output / MISSING_FILE}")
        if self.unlisted:
            lines.append(f"{len(self.unlisted)} video files are not <id>.mp4 of an annotated "
                         f"video: {self.output / UNLISTED_FILE}")
        return "\n".join(lines)


def prepare_charades(
    annotation_dir: str | os.PathLike, video_dir: str | os.PathLike, output: str | os.PathLike
) -> CharadesReport:
    """Checks the release files in ``annotation_dir``, copies them into ``output`` and reports
    the annotated videos missing from ``video_dir`` and the files there that are not listed.

    Raises:
        AnnotationError: a release file is missing or malformed (naming file and line).
        FileNotFoundError: ``video_dir`` does not exist.
    """
    annotation_dir, video_dir, output = Path(annotation_dir), Path(video_dir), Path(output)
    _, index_of = read_charades_classes(annotation_dir / CHARADES.class_file)
    entries = {name: read_charades_csv(annotation_dir / name, video_dir, index_of)
               for name in CHARADES.split_files}
    files = find_videos(video_dir)
    present = set(files)
    annotated = {f"{entry.video_id}.mp4" for videos in entries.values() for entry in videos}
    missing = {name: [e.video_id for e in videos if f"{e.video_id}.mp4" not in present]
               for name, videos in entries.items()}
    report = CharadesReport(output, video_dir, len(index_of),
                            {name: len(videos) for name, videos in entries.items()}, missing,
                            [path for path in files if path not in annotated])
    _copy_release(annotation_dir, output)
    # Name lists: an id starting with '#' or holding a line break is quoted, not a comment.
    write_name_list(output / MISSING_FILE,
                    [item for name, ids in missing.items() if ids
                     for item in [Comment(name), *ids]])
    write_name_list(output / UNLISTED_FILE, report.unlisted)
    return report


def _copy_release(annotation_dir: Path, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    for name in CHARADES.annotation_files:
        source, target = annotation_dir / name, output / name
        if target.exists() and os.path.samefile(source, target):
            continue
        temporary = target.with_name(f".{name}.part")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
