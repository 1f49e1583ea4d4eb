"""Whether a run may resume from the checkpoint in its ``output_dir``.

A checkpoint stores the config it was trained with. Resuming with a config that differs in
anything that changes the weights (model, data, solver, seed, the training length and batch)
would produce weights no config describes, so it stops with the differing keys and how to start
afresh. Keys that change only how the run is executed or reported may differ.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from videotl.config import ConfigError, ExperimentConfig

logger = logging.getLogger(__name__)

# Keys (or sections, ending in ".") that do not change the weights a run produces.
NON_RESULT_KEYS = (
    "output_dir", "device", "num_threads", "test.",
    "data.num_workers", "data.pin_memory", "data.decoder_threads",
    "data.max_failure_fraction", "data.clip_retries", "data.video_retries",
    "train.eval_period", "train.checkpoint_period", "train.keep_checkpoints",
    "train.auto_resume", "train.final_test", "train.log_period", "train.compile",
    "train.channels_last",
)


def check_resumable(cfg: ExperimentConfig, state: dict[str, Any], checkpoint: Path) -> None:
    """Raises ``ConfigError`` naming every key whose value changes the result and differs from
    the config stored in ``state`` (a checkpoint without one is resumed with a warning)."""
    stored = state.get("config")
    if not isinstance(stored, str):
        logger.warning("%s stores no config; resuming without checking it", checkpoint)
        return
    before = _flat(yaml.safe_load(stored) or {})
    now = _flat(OmegaConf.to_container(OmegaConf.structured(cfg)))
    differing = [key for key in sorted(set(before) | set(now))
                 if before.get(key) != now.get(key) and not _non_result(key)]
    if differing:
        changes = "; ".join(f"{key}: {before.get(key)!r} -> {now.get(key)!r}"
                            for key in differing)
        raise ConfigError(
            f"cannot resume from {checkpoint}: the config differs from the one it was trained "
            f"with in {changes}. To start afresh, choose a new output_dir or set "
            "train.auto_resume=false"
        )


def _non_result(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in NON_RESULT_KEYS)


def _flat(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, dict):
        return {prefix.rstrip("."): values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat.update(_flat(value, f"{prefix}{key}."))
    return flat
