"""Kinetics (400/600/700 classes): ``{train,val,test}.csv`` lists of ``path label`` under
``data.root`` (PySlowFast format), class names in ``classes.txt``. See docs/DATASETS.md."""

from __future__ import annotations

import logging
from pathlib import Path

from videotl.data.lists import read_class_names, read_video_list, video_folder
from videotl.data.registry import DatasetSpec, VideoList, register_dataset

logger = logging.getLogger(__name__)

KINETICS = DatasetSpec(
    name="kinetics", multilabel=False, view_aggregation="mean",
    train_file="train.csv", val_file="val.csv", test_file="test.csv",
    class_file="classes.txt", read_classes=read_class_names,
)


def read_single_label_list(
    spec: DatasetSpec, split: str, root: str, video_dir: str, class_names_file: str,
    num_classes: int,
) -> VideoList:
    """The videos of ``split`` from ``<root>/<spec.split_file(split)>`` and the class names.

    The class-name file is ``class_names_file`` (relative to ``root``), by default
    ``spec.class_file``; its length is the number of classes. Without that default file the
    classes are ``num_classes`` indices named ``"0"``, ``"1"``, ...
    """
    names_path = Path(root) / (class_names_file or spec.class_file)
    if class_names_file or names_path.is_file():
        class_names: list[str] | None = spec.read_classes(names_path)
        num_classes = len(class_names)
    else:
        logger.warning("%s: no %s under %s; using num_classes=%d unnamed classes",
                       spec.name, spec.class_file, root, num_classes)
        class_names = None
    videos = read_video_list(Path(root) / spec.split_file(split), video_folder(root, video_dir),
                             class_names, num_classes)
    return VideoList(videos, class_names or [str(i) for i in range(num_classes)])


@register_dataset(KINETICS)
def read_kinetics(split: str, root: str, video_dir: str, class_names_file: str,
                  num_classes: int) -> VideoList:
    """Kinetics-400/600/700 (single-label; per-view scores averaged per video)."""
    return read_single_label_list(KINETICS, split, root, video_dir, class_names_file, num_classes)
