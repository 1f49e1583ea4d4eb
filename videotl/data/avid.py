"""AViD (887 classes, 3-15 s videos): same list format as Kinetics (``{train,val,test}.csv`` of
``path label`` under ``data.root``, class names in ``classes.txt``), its own class list and
defaults (``configs/avid/base.yaml``). See docs/DATASETS.md."""

from __future__ import annotations

from dataclasses import replace

from videotl.data.kinetics import KINETICS, read_single_label_list
from videotl.data.registry import VideoList, register_dataset

AVID = replace(KINETICS, name="avid")  # the Kinetics list format, files and label kind


@register_dataset(AVID)
def read_avid(split: str, root: str, video_dir: str, class_names_file: str,
              num_classes: int) -> VideoList:
    """AViD (single-label; per-view scores averaged per video)."""
    return read_single_label_list(AVID, split, root, video_dir, class_names_file, num_classes)
