"""Class names for drawing predictions, read from the dataset's class file alone (the videos and
lists need not be present)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from videotl.data.charades import CLASS_NAMES_FILE as CHARADES_CLASS_FILE
from videotl.data.charades import read_charades_classes
from videotl.data.kinetics import CLASS_NAMES_FILE as LIST_CLASS_FILE
from videotl.data.lists import read_class_names

logger = logging.getLogger(__name__)

# data.dataset -> (default class file under data.root, its reader, multi-label)
CLASS_FILES: dict[str, tuple[str, Callable[[Path], list[str]], bool]] = {
    "kinetics": (LIST_CLASS_FILE, read_class_names, False),
    "avid": (LIST_CLASS_FILE, read_class_names, False),
    "charades": (CHARADES_CLASS_FILE, lambda path: read_charades_classes(path)[0], True),
}


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
    default_file, reader, multilabel = CLASS_FILES.get(cfg.data.dataset, ("", None, False))
    if names_file is not None:
        return _checked(read_class_names(Path(names_file)), num_classes, Path(names_file),
                        multilabel)
    path = Path(cfg.data.root) / (cfg.data.class_names_file or default_file)
    if reader is None or not path.is_file():
        why = (f"no class file {path}" if reader is not None
               else f"no known class file for dataset {cfg.data.dataset!r}")
        logger.warning("%s: showing classes as 'class <k>'", why)
        return ClassLabels([f"class {k}" for k in range(num_classes)], multilabel,
                           f"{why}; classes shown by index")
    return _checked(reader(path), num_classes, path, multilabel)


def _checked(names: list[str], num_classes: int, path: Path, multilabel: bool) -> ClassLabels:
    if len(names) != num_classes:
        raise ValueError(f"{path} names {len(names)} classes but the model has "
                         f"model.num_classes={num_classes}")
    return ClassLabels(names, multilabel, str(path))
