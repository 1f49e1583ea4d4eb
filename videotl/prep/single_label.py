"""From a release's annotations and a folder of videos to the lists the single-label loaders read
(Kinetics, AViD): the dataset's class file and split files (``DatasetSpec``: ``classes.txt`` and
``{train,val,test}.csv``) of ``path,label`` rows, with ``path`` relative to the video folder and
``label`` a class index (``videotl.data.lists``).

Videos are matched to annotations by file name without extension, so a release's videos may
sit in any folder layout and container (``.mp4``, ``.mkv``, ``.webm``, ...). Annotated videos
without a file are left out of the lists and reported (``missing_videos.txt``), as are files
that no annotation names (``unlisted_videos.txt``).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from videotl.data import DatasetSpec
from videotl.data.dataset import SPLITS
from videotl.data.lists import AnnotationError, Comment, read_class_names, read_video_list
from videotl.prep.files import (
    MISSING_FILE,
    UNLISTED_FILE,
    find_videos,
    unlistable_reason,
    video_dir_setting,
    write_lines,
    write_name_list,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Annotation:
    """One annotated video of a release.

    Attributes:
        key: how the release names the video (e.g. ``abc_000010_000020`` for Kinetics).
        label: class name, or None where the release gives none (e.g. a test split).
        stems: file names without extension that count as this video, preferred first.
        where: ``file:line`` of the annotation, for messages.
    """

    key: str
    label: str | None
    stems: tuple[str, ...]
    where: str


@dataclass
class SplitLists:
    """What was written for one split."""

    rows: list[tuple[str, int]] = field(default_factory=list)  # (path, class index)
    missing: list[str] = field(default_factory=list)  # keys without a video file
    unlabelled: int = 0  # annotations without a label (not listed)
    # Keys annotated again, or whose file and label an earlier annotation has (first one used).
    repeated: list[str] = field(default_factory=list)
    copied_from: str | None = None  # e.g. "val" when test.csv repeats val.csv


@dataclass
class PrepReport:
    """The outcome of ``write_single_label_lists``."""

    dataset: DatasetSpec
    output: Path
    video_dir: Path
    classes: list[str]
    splits: dict[str, SplitLists]
    unlisted: list[str]
    duplicates: dict[str, list[str]]  # file stem -> the files sharing it (first one used)
    unusable: list[tuple[str, str]]  # (file, reason) for names a list cannot hold

    def config_overrides(self) -> list[str]:
        """``data.root=...`` and ``data.video_dir=...`` for these lists."""
        return [f"data.root={self.output}",
                f"data.video_dir={video_dir_setting(self.video_dir, self.output)}"]

    def summary(self) -> str:
        lines = [f"{len(self.classes)} classes -> {self.output / self.dataset.class_file}"]
        for split, lists in self.splits.items():
            line = (f"{split}: {len(lists.rows)} videos -> "
                    f"{self.output / self.dataset.split_file(split)}")
            if lists.copied_from:
                line += f" (a copy of {lists.copied_from}: no labelled {split} annotations)"
            if lists.missing:
                line += f"; {len(lists.missing)} annotated videos missing"
            if lists.unlabelled:
                line += f"; {lists.unlabelled} without a label, not listed"
            if lists.repeated:
                line += (f"; {len(lists.repeated)} repeat an earlier annotation's video, first "
                         f"annotation used (e.g. {lists.repeated[0]!r})")
            lines.append(line)
        missing = sum(len(lists.missing) for lists in self.splits.values())
        if missing:
            lines.append(f"{missing} annotated videos have no file: {self.output / MISSING_FILE}")
        if self.unlisted:
            lines.append(f"{len(self.unlisted)} video files match no annotation: "
                         f"{self.output / UNLISTED_FILE}")
        for stem, paths in list(self.duplicates.items())[:5]:
            lines.append(f"several files for {stem!r}: {paths}; using {paths[0]!r}")
        for path, reason in self.unusable[:5]:
            lines.append(f"skipped {path!r}: {reason}")
        return "\n".join(lines)


def class_names_from(annotations: Mapping[str, Sequence[Annotation]],
                     class_file: Path | None) -> list[str]:
    """The classes: those of ``class_file`` in its order, else the annotated labels sorted."""
    if class_file is not None:
        names = read_class_names(class_file)
    else:
        names = sorted({a.label for split in annotations.values() for a in split
                        if a.label is not None})
    if not names:
        raise AnnotationError("no labelled annotations: cannot make a class list")
    return names


def write_single_label_lists(
    dataset: DatasetSpec,
    annotations: Mapping[str, Sequence[Annotation]],
    video_dir: str | os.PathLike,
    output: str | os.PathLike,
    class_file: Path | None = None,
) -> PrepReport:
    """Matches ``annotations`` (split -> annotations) to the videos under ``video_dir`` and
    writes ``dataset``'s class file and split files (``classes.txt``, ``{split}.csv``),
    ``missing_videos.txt`` and ``unlisted_videos.txt`` into ``output``.

    Without labelled ``"test"`` annotations, ``test.csv`` repeats ``val.csv`` (the usual
    practice for Kinetics and AViD, whose test labels are not public or not released).

    Raises:
        AnnotationError: a label outside ``class_file``, or no labelled annotations.
        FileNotFoundError: ``video_dir`` does not exist.
        ValueError: ``dataset`` is multi-label (its files are not ``path,label`` lists).
    """
    if dataset.multilabel:
        raise ValueError(f"dataset {dataset.name!r} is multi-label: its annotation files are not "
                         "'path,label' lists")
    video_dir, output = Path(video_dir), Path(output)
    classes = class_names_from(annotations, class_file)
    files, unusable = _usable(find_videos(video_dir))
    by_stem, duplicates = _index_by_stem(files)
    splits = {split: _match(annotations[split], by_stem, {c: i for i, c in enumerate(classes)})
              for split in SPLITS if split in annotations}
    if "test" not in splits or not splits["test"].rows:
        if "val" in splits:
            splits["test"] = SplitLists(list(splits["val"].rows), copied_from="val",
                                        unlabelled=splits.get("test", SplitLists()).unlabelled)
    used = {path for lists in splits.values() for path, _ in lists.rows}
    report = PrepReport(dataset, output, video_dir, classes, splits,
                        [path for path in files if path not in used], duplicates, unusable)
    _write(report)
    return report


def _usable(files: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    usable, unusable = [], []
    for path in files:
        reason = unlistable_reason(path)
        if reason:
            unusable.append((path, reason))
        else:
            usable.append(path)
    return usable, unusable


def _index_by_stem(files: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    paths_of = defaultdict(list)
    for path in files:
        paths_of[Path(path).stem].append(path)
    duplicates = {stem: paths for stem, paths in paths_of.items() if len(paths) > 1}
    return {stem: paths[0] for stem, paths in paths_of.items()}, duplicates


def _match(annotations: Sequence[Annotation], by_stem: dict[str, str],
           index_of: dict[str, int]) -> SplitLists:
    lists, seen, rows = SplitLists(), set(), set()
    for annotation in annotations:
        if annotation.key in seen:
            lists.repeated.append(annotation.key)
            continue
        seen.add(annotation.key)
        if annotation.label is None:
            lists.unlabelled += 1
            continue
        if annotation.label not in index_of:
            raise AnnotationError(f"{annotation.where}: label {annotation.label!r} is not in "
                                  "the class list")
        path = next((by_stem[s] for s in annotation.stems if s in by_stem), None)
        row = (path, index_of[annotation.label])
        if path is None:
            lists.missing.append(annotation.key)
        elif row in rows:  # two clips matched to one <youtube_id> file: the list reader
            lists.repeated.append(annotation.key)  # would drop the repeated row anyway
        else:
            rows.add(row)
            lists.rows.append(row)
    return lists


def _write(report: PrepReport) -> None:
    output = report.output
    write_lines(output / report.dataset.class_file, report.classes)
    for split, lists in report.splits.items():
        list_path = output / report.dataset.split_file(split)
        # Comma-separated: the reader splits at the last comma, so paths may hold spaces and
        # commas. An empty split gets a comment line only.
        write_lines(list_path, [f"{path},{label}" for path, label in lists.rows]
                    or [f"# no {split} videos found"])
        if lists.rows:
            _check_readable(list_path, report, lists)
    missing = [item for split, lists in report.splits.items() if lists.missing and
               not lists.copied_from for item in [Comment(split), *lists.missing]]
    write_name_list(output / MISSING_FILE, missing)
    write_name_list(output / UNLISTED_FILE, report.unlisted)
    for path, reason in report.unusable:
        logger.warning("skipped %r: %s", path, reason)
    for split, lists in report.splits.items():
        if lists.repeated and not lists.copied_from:
            logger.warning("%s: %d annotations repeat an earlier annotation's video, first "
                           "annotation used (e.g. %s)", split, len(lists.repeated),
                           lists.repeated[:3])


def _check_readable(list_path: Path, report: PrepReport, lists: SplitLists) -> None:
    """Reads the list back with the loaders' reader: every row must come back unchanged."""
    entries = read_video_list(list_path, report.video_dir, report.classes, len(report.classes))
    back = [(entry.video_id, entry.label) for entry in entries]
    if back != lists.rows:
        differ = [i for i, (a, b) in enumerate(zip(back, lists.rows)) if a != b]
        raise RuntimeError(f"{list_path} does not read back as written ({len(back)} rows read, "
                           f"{len(lists.rows)} written; first difference at row "
                           f"{(differ or [min(len(back), len(lists.rows))])[0] + 1})")
