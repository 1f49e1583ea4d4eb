"""Kinetics (400/600/700 classes): ``{train,val,test}.csv`` lists of ``path label`` under
``data.root`` (PySlowFast format), class names in ``classes.txt``. See docs/DATASETS.md."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from videotl.data.dataset import ClipDataset, dataset_from_config
from videotl.data.lists import read_class_names, read_video_list, video_folder
from videotl.data.registry import register_dataset

logger = logging.getLogger(__name__)

CLASS_NAMES_FILE = "classes.txt"


def list_split_file(split: str) -> str:
    """The list file of a split: ``train.csv``, ``val.csv`` or ``test.csv``."""
    return f"{split}.csv"


def build_list_dataset(cfg: Any, split: str, name: str) -> ClipDataset:
    """A single-label dataset from ``<data.root>/<split>.csv`` and a class-name file.

    The class-name file is ``data.class_names_file`` (relative to ``data.root``), by default
    ``classes.txt``; its length is the number of classes. Without that default file the
    classes are ``model.num_classes`` indices named ``"0"``, ``"1"``, ...
    """
    data = cfg.data
    root = Path(data.root)
    names_path = root / (data.class_names_file or CLASS_NAMES_FILE)
    if data.class_names_file or names_path.is_file():
        class_names: list[str] | None = read_class_names(names_path)
        num_classes = len(class_names)
    else:
        logger.warning("%s: no %s under %s; using model.num_classes=%d unnamed classes",
                       name, CLASS_NAMES_FILE, root, cfg.model.num_classes)
        class_names, num_classes = None, cfg.model.num_classes
    videos = read_video_list(root / list_split_file(split), video_folder(data.root, data.video_dir),
                             class_names, num_classes)
    names = class_names or [str(i) for i in range(num_classes)]
    return dataset_from_config(cfg, split, videos, num_classes, False, names, name)


@register_dataset("kinetics")
def build_kinetics(cfg: Any, split: str) -> ClipDataset:
    """Kinetics-400/600/700 (single-label; per-view scores averaged per video)."""
    return build_list_dataset(cfg, split, "kinetics")
