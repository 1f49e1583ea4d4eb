"""The model registry: model names -> builder functions that only set hyper-parameters."""

from __future__ import annotations

from typing import Callable

from torch import nn

from videotl.registry import Registry

ModelBuilder = Callable[..., nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(name: str | None = None) -> Callable[[ModelBuilder], ModelBuilder]:
    """Registers a builder under ``name`` (default: the function's name); duplicates raise."""
    return MODELS.register(name)
