"""Checkpoints: atomic writes, safe loading (``weights_only``), RNG state, and initialising a model
from weights trained for another head."""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^epoch_(\d+)\.pth$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit; the message names the file."""


def checkpoint_path(output_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR / f"epoch_{epoch:04d}.pth"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``output_dir`` (oldest first); partial writes never match."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def last_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Writes to a temporary file in the same folder, flushes it to disk, then renames it: a run
    killed at any moment leaves either the previous file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def prune_checkpoints(output_dir: str | os.PathLike, keep: int) -> None:
    for old in list_checkpoints(output_dir)[:-keep]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads with ``weights_only=True``: tensors and plain containers only, never code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None


def rng_state() -> dict[str, Any]:
    """The random states of Python, NumPy and PyTorch (CPU and CUDA) as safe-to-load values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass
class LoadReport:
    """What ``load_model_weights`` did with each key."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    def summary(self, source: str) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {source}"]
        for key, ours, theirs in self.mismatched:
            lines.append(f"  skipped {key}: shape {list(theirs)} in file, {list(ours)} in model")
        if self.missing:
            lines.append(f"  missing in file (kept as initialised): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected in file (ignored): {', '.join(self.unexpected)}")
        return "\n".join(lines)


def load_model_weights(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Initialises ``model`` from a checkpoint (``{"model": state_dict}``) or a bare state dict.

    Tensors whose shape differs (e.g. a classifier for another number of classes) are skipped and
    reported, as are missing and unexpected keys; everything else is loaded.
    """
    state = load_checkpoint(path)
    weights = state.get("model", state)
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no state dict")
    weights = {key.removeprefix("module."): value for key, value in weights.items()}
    own = model.state_dict()
    report = LoadReport()
    usable = {}
    for key, value in weights.items():
        if key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            report.mismatched.append((key, tuple(own[key].shape), tuple(value.shape)))
        else:
            usable[key] = value
            report.loaded.append(key)
    report.missing = [key for key in own if key not in weights]
    model.load_state_dict(usable, strict=False)
    logger.info(report.summary(str(path)))
    return report
