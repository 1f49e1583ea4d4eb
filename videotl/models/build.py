"""``build_model(cfg)``: the one adapter between the experiment config and model builders.

Builders take explicit keyword arguments. Each builder argument named below is filled from the
config key beside it; a ``model.*`` key whose value differs from its default but that the chosen
model does not take is an error, so a setting never goes silently unused. ``data.*`` keys describe
the input and are passed only to the models that need them.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from videotl.config import ConfigError, ExperimentConfig
from videotl.models import backbones  # noqa: F401  (registers the models)
from videotl.models.layers import TokenLearnerModule
from videotl.models.registry import MODELS
from videotl.models.space_time import SPACE_TIME_MODULES
from videotl.models.token_reducers import TOKEN_REDUCERS
from videotl.registry import Registry, RegistryError
from videotl.utils.checkpoint import CheckpointError

# builder argument -> dotted config key
BUILDER_ARGUMENTS = {
    "num_classes": "model.num_classes",
    "num_frames": "data.num_frames",
    "space_time_module": "model.space_time_module",
    "num_tokens": "model.num_tokens",
    "dropout": "model.dropout",
    "tokenizer": "model.tokenizer",
    "token_transformer": "model.token_transformer",
    "token_fusion": "model.token_fusion",
    "image_size": "data.train_crop_size",
    "classifier": "model.classifier",
    "token_reducer": "model.token_reducer",
    "reducer_layers": "model.reducer_layers",
    "reducer_tokens": "model.reducer_tokens",
    "token_pooling_iterations": "model.token_pooling_iterations",
    "attention_dropout": "model.attention_dropout",
    "drop_path": "model.drop_path",
    "pretrained": "model.pretrained",
    "pretrained_inflation": "model.pretrained_inflation",
}

# config keys whose value names an entry of a registry
REGISTRY_KEYS: dict[str, Registry] = {
    "model.space_time_module": SPACE_TIME_MODULES,
    "model.token_reducer": TOKEN_REDUCERS,
}

# config keys that configure TokenLearnerModule: set to a non-default value, the built model must
# contain one.
TOKEN_LEARNER_KEYS = ("model.tokenizer", "model.token_transformer", "model.token_fusion")


def list_models() -> list[str]:
    """Names accepted by ``model.name``."""
    return MODELS.names()


def build_model(cfg: ExperimentConfig) -> nn.Module:
    """Builds ``cfg.model.name`` with the config's values for the arguments its builder takes."""
    try:
        builder = MODELS.get(cfg.model.name)
    except RegistryError as error:
        raise ConfigError(f"model.name: {error}") from None
    arguments = model_arguments(cfg, builder)
    try:
        model = builder(**arguments)
    except CheckpointError as error:
        raise ConfigError(f"model.pretrained: {error}") from None
    check_token_learner_keys_are_used(cfg, model, arguments)
    return model


def model_arguments(cfg: ExperimentConfig, builder: Any) -> dict[str, Any]:
    """The keyword arguments ``builder`` receives for ``cfg``."""
    accepted = inspect.signature(builder).parameters
    defaults = ExperimentConfig()
    arguments = {}
    for argument, key in BUILDER_ARGUMENTS.items():
        value = _get(cfg, key)
        if argument in accepted:
            _check_registered(key, value)
            arguments[argument] = value
        elif key.startswith("model.") and value != _get(defaults, key):
            raise ConfigError(
                f"{key}={value!r} does not apply to model {cfg.model.name!r}, which takes: "
                f"{', '.join(BUILDER_ARGUMENTS[a] for a in accepted if a in BUILDER_ARGUMENTS)}"
            )
    return arguments


def check_token_learner_keys_are_used(
    cfg: ExperimentConfig, model: nn.Module, arguments: dict[str, Any]
) -> None:
    """Raises if a TokenLearner key is set but ``model`` has no ``TokenLearnerModule``."""
    defaults = ExperimentConfig()
    changed = [
        f"{key}={_get(cfg, key)!r}" for key in TOKEN_LEARNER_KEYS
        if _get(cfg, key) != _get(defaults, key)
    ]
    if not changed or any(isinstance(m, TokenLearnerModule) for m in model.modules()):
        return
    module = arguments.get("space_time_module")
    where = f" with model.space_time_module={module!r}" if module is not None else ""
    raise ConfigError(
        f"{', '.join(changed)} configures the TokenLearner module, but model "
        f"{cfg.model.name!r}{where} has none; choose a module with one (e.g. conv2d+tokenlearner)"
    )


def _check_registered(key: str, value: Any) -> None:
    registry = REGISTRY_KEYS.get(key)
    if registry is not None and value not in registry:
        raise ConfigError(f"{key}: {registry.unknown_message(value)}")


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg
