"""AViD (887 classes, 3-15 s videos): same list format as Kinetics (``{train,val,test}.csv`` of
``path label`` under ``data.root``, class names in ``classes.txt``), its own class list and
defaults (``configs/avid/base.yaml``). See docs/DATASETS.md."""

from __future__ import annotations

from typing import Any

from videotl.data.dataset import ClipDataset
from videotl.data.kinetics import build_list_dataset
from videotl.data.registry import register_dataset

NUM_CLASSES = 887


@register_dataset("avid")
def build_avid(cfg: Any, split: str) -> ClipDataset:
    """AViD (single-label; per-view scores averaged per video)."""
    return build_list_dataset(cfg, split, "avid")
