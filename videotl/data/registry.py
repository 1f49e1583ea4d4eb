"""The dataset registry: name -> ``RegisteredDataset`` (the dataset's ``DatasetSpec`` and the
function that lists its videos).

A ``DatasetSpec`` holds the facts about a dataset's release files that several parts of the
toolkit need: the loaders, synthetic generation (``videotl.data.synthetic``), the class names of
attention videos (``videotl.visualization.labels``) and preparation (``videotl.prep``). Each
dataset module states its spec once and registers it with its list reader::

    @register_dataset(KINETICS)
    def read_kinetics(split: str, root: str, ...) -> VideoList: ...

``dataset_spec(name)`` returns a registered spec; ``videotl.data.build`` fills the reader's
arguments from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from videotl.config import register_choices
from videotl.data.dataset import SPLITS
from videotl.data.lists import VideoEntry
from videotl.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset's release files and label kind.

    Attributes:
        name: the ``data.dataset`` value.
        multilabel: targets are multi-hot ``[num_classes]`` (timed actions) instead of one class
            index per video; scores are sigmoids instead of a softmax.
        view_aggregation: how per-view scores are merged per video (``"mean"`` or ``"max"``).
        train_file, val_file, test_file: annotation file of each split, under ``data.root``
            (two splits may share one file).
        class_file: the class-name file under ``data.root`` when ``data.class_names_file`` is
            empty.
        read_classes: class names in index order from a class file.
        video_dir: the release's video folder under ``data.root`` (``""``: ``data.root``
            itself), the default of ``data.video_dir`` in the dataset's base config.
    """

    name: str
    multilabel: bool
    view_aggregation: str
    train_file: str
    val_file: str
    test_file: str
    class_file: str
    read_classes: Callable[[Path], list[str]]
    video_dir: str = ""

    def split_file(self, split: str) -> str:
        """The annotation file of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        files = {"train": self.train_file, "val": self.val_file, "test": self.test_file}
        if split not in files:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return files[split]

    @property
    def split_files(self) -> tuple[str, ...]:
        """Each split's annotation file once, in split order."""
        return tuple(dict.fromkeys((self.train_file, self.val_file, self.test_file)))

    @property
    def annotation_files(self) -> tuple[str, ...]:
        """The class file, then ``split_files``: what a complete ``data.root`` holds."""
        return (self.class_file, *self.split_files)


@dataclass(frozen=True)
class VideoList:
    """What a dataset's list reader returns for one split: the videos, in list order, and the
    ``num_classes`` class names in index order."""

    videos: Sequence[VideoEntry]
    class_names: Sequence[str]


@dataclass(frozen=True)
class RegisteredDataset:
    """A registry entry: the spec and the list reader ``read(split=..., <arguments>)``, whose
    other arguments ``videotl.data.build.list_arguments`` fills from the config."""

    spec: DatasetSpec
    read: Callable[..., VideoList]


DATASETS: Registry[RegisteredDataset] = Registry("dataset")


def register_dataset(spec: DatasetSpec) -> Callable[[Callable[..., VideoList]],
                                                    Callable[..., VideoList]]:
    """Decorator registering a list reader under ``spec.name`` together with ``spec``."""

    def decorator(read: Callable[..., VideoList]) -> Callable[..., VideoList]:
        DATASETS.add(spec.name, RegisteredDataset(spec, read))
        return read

    return decorator


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of the registered dataset ``name``.

    Raises:
        RegistryError: unknown name (with close matches).
    """
    return DATASETS.get(name).spec


def list_datasets() -> list[str]:
    """Names accepted by ``data.dataset``."""
    return DATASETS.names()


register_choices("data.dataset", DATASETS)
