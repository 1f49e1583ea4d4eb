"""A trained model ready to run: built from its config, weights from a checkpoint, in the memory
layout it was trained in (``tools/test_net.py``, ``Predictor``, the attention visualisation)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from videotl.config import ExperimentConfig
from videotl.models.build import build_model
from videotl.utils.checkpoint import load_model_weights


def set_memory_format(model: nn.Module, cfg: ExperimentConfig) -> nn.Module:
    """``train.channels_last``: the weights in ``channels_last_3d`` layout, in training and in
    testing alike, so that a checkpoint tested on its own scores exactly as its final test."""
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    return model


def load_trained_model(cfg: ExperimentConfig, checkpoint: str | Path,
                       device: torch.device) -> nn.Module:
    """``build_model(cfg)`` with every weight from ``checkpoint`` (``model.pretrained`` is not
    read: the checkpoint replaces it), on ``device`` in the layout of ``set_memory_format``, in
    eval mode.

    Raises:
        CheckpointError: unreadable file, or weights missing or of other shapes than the model's.
    """
    cfg = replace(cfg, model=replace(cfg.model, pretrained=None))
    model = build_model(cfg)
    load_model_weights(model, checkpoint, strict=True, model_name=cfg.model.name)
    return set_memory_format(model.to(device), cfg).eval()
