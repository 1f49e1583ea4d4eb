"""Checkpoints, the one module for them: training checkpoints (atomic writes, safe loading with
``weights_only``, RNG state, rotation) and model weights from any file videotl reads (its own
checkpoints, bare state dicts, ``.safetensors``), with one report of what was loaded.

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers, never code)
or safetensors. Weights saved from a DistributedDataParallel or ``torch.compile`` wrapper carry a
``module.`` / ``_orig_mod.`` prefix on every name; it is removed in one place,
``strip_wrapper_prefix``.
"""

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
from safetensors.torch import load_file, save as safetensors_bytes
from torch import nn

from videotl.errors import InputError
from videotl.files import atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^epoch_(\d+)\.pth$")
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
# Keys under which training checkpoints and other projects' files nest the model's weights.
CONTAINER_KEYS = ("state_dict", "model", "module")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(InputError, ValueError):
    """A checkpoint cannot be read or does not fit the model; the message names the file (and
    the key, where one is at fault)."""


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
    """Writes atomically (``videotl.files.atomic_write``): a run killed at any moment, or a full
    disk, leaves either the previous file or the complete new one."""
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def prune_checkpoints(output_dir: str | os.PathLike, keep: int) -> None:
    for old in list_checkpoints(output_dir)[:-keep]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A whole training checkpoint (model, optimiser, hooks, RNG), loaded with
    ``weights_only=True``: tensors and plain containers only, never code."""
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


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file, on the CPU.

    A checkpoint holding the weights under ``state_dict``, ``model`` or ``module`` (videotl's
    training checkpoints: ``model``) is unwrapped, and wrapper prefixes are removed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            state: Any = load_file(str(path), device="cpu")
        except Exception as error:  # noqa: BLE001 - corrupt files raise many kinds of errors
            raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    elif path.suffix in TORCH_SUFFIXES:
        state = load_checkpoint(path)
    else:
        raise CheckpointError(
            f"cannot read {path}: expected a .safetensors or {'/'.join(TORCH_SUFFIXES)} file"
        )
    return strip_wrapper_prefix(_tensors(state, path))


def _tensors(state: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, dict):
        for key in CONTAINER_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path} holds no state dict (a mapping of names to tensors)")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors (top-level keys: {', '.join(state)})")
    return tensors


def strip_wrapper_prefix(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Removes ``module.`` (DistributedDataParallel) and ``_orig_mod.`` (``torch.compile``) while
    every name carries it; a prefix on only some names belongs to the model and stays."""
    changed = True
    while changed and tensors:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in tensors):
                tensors = {key[len(prefix):]: value for key, value in tensors.items()}
                changed = True
    return tensors


@dataclass
class LoadReport:
    """What loading weights into a model did with each tensor name.

    ``mismatched`` holds ``(name, model shape, file shape)`` of tensors skipped for their shape
    (e.g. a classifier for another number of classes); ``adapted`` describes tensors reshaped on
    the way in (inflated filters, resampled position embeddings).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    note: str = ""

    def summary(self) -> str:
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        note = f" ({self.note})" if self.note else ""
        lines = [f"loaded {len(self.loaded)} of the model's {total} tensors from "
                 f"{self.source}{note}"]
        lines += [f"  adapted: {entry}" for entry in self.adapted]
        for key, ours, theirs in self.mismatched:
            lines.append(f"  skipped {key}: shape {list(theirs)} in file, {list(ours)} in model")
        if self.missing:
            lines.append(f"  missing in file (kept as initialised): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected in file (ignored): {', '.join(self.unexpected)}")
        return "\n".join(lines)


def save_state_dict(
    tensors: dict[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> None:
    """Writes model weights as ``.safetensors`` (with string ``metadata``), atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"cannot write {path}: weights are written as .safetensors files")
    data = safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                             metadata)
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def load_model_weights(
    model: nn.Module, path: str | os.PathLike, strict: bool = False, model_name: str = ""
) -> LoadReport:
    """Initialises ``model`` from the weights in ``path`` (see ``read_state_dict``).

    Not ``strict``: tensors whose shape differs (e.g. a classifier for another number of
    classes) are skipped and reported, as are missing and unexpected names; everything else is
    loaded. ``strict``: every tensor of the model must come from the file with its shape
    (testing a trained model), else ``CheckpointError`` with the report naming ``model_name``
    (default: the model's class); extra names are allowed.
    """
    weights = read_state_dict(path)
    own = model.state_dict()
    report = LoadReport(str(path))
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
    if strict and (report.missing or report.mismatched):
        name = model_name or type(model).__name__
        raise CheckpointError(f"checkpoint {path} does not fit model {name!r}:\n"
                              + report.summary())
    model.load_state_dict(usable, strict=False)
    logger.info(report.summary())
    return report
