"""Class names for drawing predictions, read from the dataset's class file alone (the videos and
lists need not be present)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videotl.data import DATASETS, dataset_spec
from videotl.data.lists import read_class_names

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassLabels:
    """Names of the model's classes, whether its scores are multi-label (sigmoid), and where the
    names come from (``source``: a file, or why they are generic ``class <k>`` names)."""

    names: list[str]
    multilabel: bool
    source: str


def class_labels(cfg: Any, names_file: str | Path | None = None) -> ClassLabels:
    """The class names of ``cfg``'s dataset for ``cfg.model.num_classes`` classes.

    ``names_file`` (one name per line, or JSON) replaces the dataset's class file. Without it,
    the file is ``data.class_names_file`` or the dataset's default under ``data.root``; when that
    is missing (or the dataset unknown here), the names are ``class 0``, ``class 1``, ... and
    ``source`` says why.

    Raises:
        AnnotationError: ``names_file`` is missing or malformed.
        ValueError: the file names a different number of classes than the model has.
    """
    num_classes = cfg.model.num_classes
    spec = dataset_spec(cfg.data.dataset) if cfg.data.dataset in DATASETS else None
    multilabel = spec is not None and spec.multilabel
    if names_file is not None:
        return _checked(read_class_names(Path(names_file)), num_classes, Path(names_file),
                        multilabel)
    if spec is None:
        return _by_index(num_classes, False,
                         f"no known class file for dataset {cfg.data.dataset!r}")
    path = Path(cfg.data.root) / (cfg.data.class_names_file or spec.class_file)
    if not path.is_file():
        return _by_index(num_classes, multilabel, f"no class file {path}")
    return _checked(spec.read_classes(path), num_classes, path, multilabel)


def _by_index(num_classes: int, multilabel: bool, why: str) -> ClassLabels:
    logger.warning("%s: showing classes as 'class <k>'", why)
    return ClassLabels([f"class {k}" for k in range(num_classes)], multilabel,
                       f"{why}; classes shown by index")


def _checked(names: list[str], num_classes: int, path: Path, multilabel: bool) -> ClassLabels:
    if len(names) != num_classes:
        raise ValueError(f"{path} names {len(names)} classes but the model has "
                         f"model.num_classes={num_classes}")
    return ClassLabels(names, multilabel, str(path))
