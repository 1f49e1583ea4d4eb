"""The dataset registry: name -> ``builder(cfg, split) -> ClipDataset``."""

from __future__ import annotations

from typing import Callable

from videotl.registry import Registry

DATASETS: Registry[Callable] = Registry("dataset")


def register_dataset(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering a dataset builder ``(cfg, split) -> ClipDataset`` under ``name``."""
    return DATASETS.register(name)
